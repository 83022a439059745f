#!/usr/bin/env bash
# Create .venv (or $ADVEXP_VENV) with the pinned dependencies and advexp_lib installed editable, with
# this checkout on its path for the book's package advexp_book; keep
# notebooks clean in git: this clone's nbstripout filter (scripts/notebook_filter.sh) and the venv's
# JupyterLab saving notebooks as git stores them (scripts/jupyter_server_config.py).
# Idempotent: re-installs only when requirements.lock or pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${ADVEXP_VENV:-.venv}"
PY="${PYTHON:-python3}"
stamp="$VENV/.advexp-stamp"
clean_notebooks() {
  # the book's package (advexp_book/) is not in the library's wheel: the venv finds it in this checkout
  "$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" |
    { read -r site; echo "$(pwd)" > "$site/advexp_book.pth"; }
  bash scripts/notebook_filter.sh "$VENV/bin/python"
  mkdir -p "$VENV/etc/jupyter"
  ln -sfn "$(pwd)/scripts/jupyter_server_config.py" "$VENV/etc/jupyter/jupyter_server_config.py"
}
want="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  clean_notebooks
  exit 0
fi
echo "[bootstrap] installing pinned dependencies into $VENV (first run takes a few minutes)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r requirements.lock
"$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
clean_notebooks
echo "$want" > "$stamp"
echo "[bootstrap] ready: $VENV"
