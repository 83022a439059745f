#!/usr/bin/env bash
# The main job: set up, execute every notebook with papermill (executed copies and
# results/summary.json under results/), then build the Jupyter Book to _build/html.
# Extra arguments are papermill parameter overrides, e.g.
#   bash scripts/main.sh -p dataset cifar10 -p device cuda -p num_epochs 200
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
VENV="${ADVEXP_VENV:-.venv}"
"$VENV/bin/python" -m advexp_book reproduce --out results --jobs 2 "$@"
"$VENV/bin/python" -m advexp_book book --results results
