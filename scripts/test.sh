#!/usr/bin/env bash
# The tests: set up; lint (ruff); pytest over tests/; every notebook in smoke mode, executed with papermill
# into a scratch folder and built into a scratch book that the browser tests read, its records judged by
# every claim; the notebooks with nbval.
# Extra arguments go to the unit-test run, e.g. bash scripts/test.sh -k data
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
VENV="${ADVEXP_VENV:-.venv}"
PY="$VENV/bin/python"
export MPLBACKEND=Agg
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$PY" -m pytest tests --ignore=tests/test_book_render.py --ignore=tests/test_smoke_records.py "$@"
# smoke runs never write over the main job's results/ or _build/
scratch="$(mktemp -d)"
ADVEXP_SMOKE=1 "$PY" -m advexp_book reproduce --out "$scratch" --jobs 2
"$PY" -m advexp_book book --results "$scratch" --html-out "$scratch"
ADVEXP_BOOK_HTML="$scratch/_build/html" ADVEXP_SMOKE_RESULTS="$scratch" "$PY" -m pytest \
  tests/test_book_render.py tests/test_smoke_records.py -p no:cacheprovider
ADVEXP_RESULTS_DIR="$scratch/nbval" ADVEXP_SMOKE=1 "$PY" -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks
