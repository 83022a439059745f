#!/usr/bin/env bash
# Keep notebooks clean in git: configure the nbstripout filter that .gitattributes names for *.ipynb, in
# the git checkout of the current directory. `git add`, `git diff` and `git status` then see a notebook
# without its outputs, execution counts, widget state or kernel language details, so running it in
# JupyterLab leaves the checkout clean. Usage: bash scripts/notebook_filter.sh PYTHON (one with nbstripout)
# Idempotent; does nothing outside a git checkout.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 PYTHON (a python that has nbstripout)" >&2; exit 2; }
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || exit 0
py="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"  # absolute: git runs the filter from any directory
strip="'$py' -m nbstripout --keep-id --extra-keys 'metadata.language_info'"
git config filter.nbstripout.clean "$strip"
git config filter.nbstripout.smudge cat
git config filter.nbstripout.required true
git config diff.ipynb.textconv "$strip --textconv"
