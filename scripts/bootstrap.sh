#!/usr/bin/env bash
# Create .venv (or $ADVEXP_VENV) with the pinned dependencies and advexp_lib installed editable.
# Idempotent: re-installs only when requirements.lock or pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${ADVEXP_VENV:-.venv}"
PY="${PYTHON:-python3}"
stamp="$VENV/.advexp-stamp"
want="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "[bootstrap] installing pinned dependencies into $VENV (first run takes a few minutes)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r requirements.lock
"$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
echo "$want" > "$stamp"
echo "[bootstrap] ready: $VENV"
