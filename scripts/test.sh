#!/usr/bin/env bash
# The tests: set up, lint (ruff), then pytest over tests/ and every notebook (smoke mode) with nbval.
# Extra arguments go to the first pytest run, e.g. bash scripts/test.sh -k data
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
VENV="${ADVEXP_VENV:-.venv}"
export MPLBACKEND=Agg
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/python" -m pytest tests "$@"
# smoke records go to a scratch folder, never over the main job's results/
ADVEXP_RESULTS_DIR="$(mktemp -d)" ADVEXP_SMOKE=1 "$VENV/bin/python" -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks
