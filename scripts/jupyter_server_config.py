"""Jupyter server config: JupyterLab saves a notebook the way git stores it, so `git status` stays clean.

git's nbstripout filter (.gitattributes, configured by scripts/notebook_filter.sh) keeps outputs out of
commits, but a notebook saved with outputs still changes size on disk, and `git status` then lists it as
modified without looking at its cleaned content. This pre-save hook runs the same clean filter on every
notebook JupyterLab saves into such a checkout, so the file on disk is what git stores: sources, cell
ids, tags and the kernelspec; no outputs, execution counts, widget state or language_info. Executed
copies with their outputs are what ``python -m advexp_book reproduce`` writes to results/.

scripts/bootstrap.sh links this file as <venv>/etc/jupyter/jupyter_server_config.py, so the venv's
`jupyter lab` loads it; elsewhere: jupyter lab --config scripts/jupyter_server_config.py. A notebook
that git would not filter (outside a checkout, or before the filter is configured) is saved unchanged.
"""

import subprocess
import warnings
from pathlib import Path

import nbformat


def strip_like_git(model, path, contents_manager, **kwargs):
    """ContentsManager pre-save hook: replace a notebook's content by git's clean filter output."""
    if model.get("type") != "notebook" or model.get("content") is None:
        return
    file = Path(contents_manager.root_dir, path)

    def git(*args, **run):
        return subprocess.run(["git", *args], cwd=file.parent, capture_output=True, text=True, **run)

    attr = git("check-attr", "filter", "--", file.name)
    clean = git("config", "--get", "filter.nbstripout.clean")
    if not attr.stdout.strip().endswith(": nbstripout") or clean.returncode != 0:
        return
    text = nbformat.writes(nbformat.from_dict(model["content"]))
    out = subprocess.run(
        clean.stdout.strip(), shell=True, cwd=file.parent, input=text, capture_output=True, text=True
    )
    if out.returncode != 0:  # git would refuse to add it (filter.nbstripout.required): say so, keep outputs
        contents_manager.log.error("nbstripout failed on %s, saved with outputs: %s", path, out.stderr)
        return
    model["content"] = nbformat.reads(out.stdout, as_version=4)


c = get_config()  # noqa: F821 (defined by the config loader)
c.ContentsManager.pre_save_hook = strip_like_git
# the server and its JupyterLab extension each load this file: the second load re-sets the same hook
warnings.filterwarnings("ignore", message=r"Overriding existing pre_save_hook \(strip_like_git\)")
