"""Run every notebook with papermill and build the Jupyter Book from the executed copies.

Executed notebooks go to ``<out>/notebooks/`` (sources are never overwritten);
figures the notebooks :func:`record` are gathered into ``<out>/summary.json``.
A failing notebook stops the run with an error naming the notebook and cell;
results of notebooks that finished earlier stay in place. Every notebook
starts with one call, :func:`start_notebook`. The reproduction report
(:data:`RUNS_LAST`) reads the other notebooks' records, so it runs after them.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from advexp_lib.checkpoints import write_atomic
from advexp_lib.checks import AdvexpError, InputError, check_positive
from advexp_lib.results import from_json, to_json

__all__ = [
    "REPO",
    "NotebookError",
    "BookError",
    "NotebookRun",
    "start_notebook",
    "glue_all",
    "notebook_paths",
    "record",
    "load_records",
    "results_dir",
    "run_notebooks",
    "build_book",
    "github_url",
    "repository_url",
    "current_branch",
    "launch_settings",
    "RUNS_LAST",
]

REPO = Path(__file__).resolve().parents[1]
RUNS_LAST = ("08_reproduction_report.ipynb",)  # reads every other notebook's record


class NotebookError(AdvexpError, RuntimeError):
    """A notebook failed while executing; the message names notebook and cell."""


class BookError(AdvexpError, RuntimeError):
    """The Jupyter Book build failed."""


@dataclass
class NotebookRun:
    """What :func:`start_notebook` returns: the notebook's record key and its effective settings."""

    name: str
    smoke: bool
    seed: int

    def record(self, figures) -> Path:
        """Save the notebook's record (:mod:`advexp_book.records`) under its name (:func:`record`)."""
        name = getattr(figures, "NAME", self.name)
        if name != self.name:
            raise InputError(f"figures: a record of {name!r}, but this notebook is {self.name!r}")
        return record(self.name, figures)


def glue_all(values: dict) -> None:
    """``myst_nb.glue(name, value, display=False)`` for each {name: value}: numbers the prose quotes."""
    from myst_nb import glue  # the book tools are an optional extra of the package

    for name, value in values.items():
        glue(name, value, display=False)


def start_notebook(name: str, params: dict, *, smoke_sizes: dict | None = None) -> NotebookRun:
    """The set-up every notebook runs first: smoke mode, sizes and the seed, in one call.

    Args:
        name: the notebook's record key (e.g. "03_ara_evaluation").
        params: the notebook's namespace (``globals()``) holding its ``parameters``
            cell; it must define ``seed``, and may define ``smoke``.
        smoke_sizes: {parameter: value} to use in smoke mode, i.e. when ``smoke``
            is True or the environment sets ``ADVEXP_SMOKE=1`` (the test command
            runs every notebook that way, in seconds). They overwrite the
            entries of ``params``. Default None: nothing shrinks.
    Returns:
        :class:`NotebookRun`. Seeds torch's global RNG with ``seed``.
    """
    if "seed" not in params:
        raise InputError("params: expected the notebook's namespace with a `seed` parameter (pass globals())")
    smoke = bool(params.get("smoke", False)) or os.environ.get("ADVEXP_SMOKE") == "1"
    params["smoke"] = smoke
    unknown = sorted(set(smoke_sizes or {}) - set(params))
    if unknown:
        raise InputError(f"smoke_sizes: {unknown} are not parameters of the notebook")
    if smoke:
        params.update(smoke_sizes or {})
    torch.manual_seed(params["seed"])
    return NotebookRun(name, smoke, params["seed"])


def results_dir() -> Path:
    """``$ADVEXP_RESULTS_DIR`` (set by the runner) or ``<repo>/results``."""
    return Path(os.environ.get("ADVEXP_RESULTS_DIR", REPO / "results"))


def record(key: str, figures: dict) -> Path:
    """Save a notebook's key figures to ``<results>/records/<key>.json`` (atomically).

    Values may be numbers, strings, lists and dicts of them, and also
    :class:`~advexp_lib.stats.Estimate`\\ s (stored as {value, lo, hi, n}) and
    other dataclasses (their fields), verdicts (their words), tensors and
    numpy values (as lists and numbers). Non-finite floats are written as the
    library writes them everywhere (:func:`advexp_lib.results.to_json`: "inf",
    "-inf", "nan"), and :func:`load_records` reads them back as floats.
    """
    text = json.dumps(to_json(_plain(figures)), indent=2, sort_keys=True, allow_nan=False)
    return write_atomic(results_dir() / "records" / f"{key}.json", lambda f: f.write(text.encode()))


def _plain(value):
    """``value`` with dataclasses, tensors and numpy values turned into dicts, lists and numbers."""
    if hasattr(value, "to_dict"):
        return _plain(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float):
        return value
    return float(value)


def load_records(directory=None) -> dict:
    """All recorded figures: {key: figures}, non-finite floats restored (:func:`record`)."""
    folder = Path(directory or results_dir()) / "records"
    return {p.stem: from_json(json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))}


def notebook_paths() -> list[Path]:
    """The book's notebooks in reading order (``notebooks/NN_*.ipynb``)."""
    return sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def run_notebooks(
    out="results", parameters: dict | None = None, notebooks=None, log=print, *, jobs: int = 1
) -> dict:
    """Execute ``notebooks`` (default: all) with papermill; return the summary written.

    Args:
        out: results folder (executed copies in ``out/notebooks``, ``out/summary.json``).
        parameters: overrides injected into each notebook's ``parameters`` cell
            (only the names that notebook declares).
        jobs: notebooks executed at once (default 1). With ``jobs`` > 1 each
            kernel gets ``cores // jobs`` threads (``OMP_NUM_THREADS``, never more
            than the caller's own setting): on
            a 2-core machine two single-threaded kernels get through more work
            than one two-threaded kernel, whose small convolutions scale poorly
            over threads. The notebooks then start in the order of their last
            recorded run times (``<out>/summary.json``), longest first, else in
            reverse reading order; :data:`RUNS_LAST` still runs after all others.
            Thread counts change float rounding, not results beyond it. The first
            failure stops the run: queued notebooks never start.
    """
    check_positive(jobs, "jobs", integer=True)
    missing = [str(p) for p in (notebooks or []) if not Path(p).is_file()]
    if missing:
        raise InputError(
            f"notebooks: expected paths of .ipynb files, these do not exist: {', '.join(missing)}"
        )
    out = Path(out).resolve()
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    threads = os.environ.get("OMP_NUM_THREADS")  # the caller's: restored after, and for the last notebooks
    paths = [Path(p) for p in (notebooks or notebook_paths())]
    first = [p for p in paths if p.name not in RUNS_LAST]
    if jobs > 1:
        first = _longest_first(first, out)
    timings, stop = {}, threading.Event()

    execute = functools.partial(_execute, out=out, parameters=parameters, stop=stop, timings=timings, log=log)

    try:
        _kernel_environment(out, jobs, threads)
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(execute, nb) for nb in first]
            done, _ = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_EXCEPTION)
            failed = [f.exception() for f in futures if f in done and f.exception() is not None]
            if failed:  # queued notebooks never start; those already running finish first
                stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise failed[0]
        _set_threads(threads)  # the notebooks run last run alone: with the caller's thread count
        for nb in [p for p in paths if p.name in RUNS_LAST]:
            execute(nb)
    finally:
        _set_threads(threads)
    timings = {p.name: timings[p.name] for p in paths}  # reading order
    summary = {"parameters": parameters or {}, "seconds": timings, "jobs": jobs, "figures": load_records(out)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    return summary


def _execute(nb: Path, out: Path, parameters, stop: threading.Event, timings: dict, log) -> None:
    """Run one notebook of :func:`run_notebooks` with papermill into ``out/notebooks`` (through a
    ``.partial.ipynb`` copy), record its seconds in ``timings``; set ``stop`` if it fails."""
    import papermill as pm  # the book tools are an optional extra of the package

    if stop.is_set():  # another notebook failed: start nothing new
        return
    declared = pm.inspect_notebook(str(nb))
    params = {k: v for k, v in (parameters or {}).items() if k in declared}
    target = out / "notebooks" / nb.name
    partial = target.with_suffix(".partial.ipynb")
    log(f"[reproduce] {nb.name} {params or ''}")
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(nb),
            str(partial),
            parameters=params,
            cwd=str(nb.parent),
            kernel_name="python3",
            progress_bar=False,
        )
    except pm.PapermillExecutionError as err:
        stop.set()
        raise NotebookError(
            f"notebook {nb.name} failed in cell {err.exec_count} ({err.ename}: {err.evalue}); "
            f"partial output: {partial}"
        ) from None
    partial.replace(target)
    timings[nb.name] = round(time.perf_counter() - t0, 1)
    log(f"[reproduce] {nb.name} done in {timings[nb.name]} s")


def _set_threads(threads: str | None) -> None:
    """Set (or, with None, unset) ``OMP_NUM_THREADS``, which kernels started after it inherit."""
    if threads is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = threads


def _kernel_environment(out: Path, jobs: int, threads: str | None) -> None:
    """The environment every kernel inherits (this process's, set before the first kernel starts)."""
    os.environ["ADVEXP_RESULTS_DIR"] = str(out)
    # kernels inherit the environment: a non-interactive MPLBACKEND (Agg, as tests set) would keep every
    # figure out of the executed notebooks, so the kernels draw inline whatever the caller's setting
    os.environ.pop("MPLBACKEND", None)
    # and draw no progress bars: the rendered book shows results, not tqdm's stderr
    os.environ.setdefault("ADVEXP_PROGRESS", "0")
    if jobs > 1:  # share the cores out (never above the caller's own limit): oversubscription is slow
        share = max(1, _cores() // jobs)
        _set_threads(str(min(share, int(threads)) if threads and threads.isdigit() else share))
    # kernels run in each notebook's folder: a relative data folder the caller named is made absolute
    # (from the caller's working directory) so that it names the same folder there
    for var in ("ADVEXP_DATA_DIR", "ADVEXP_WOODS_DIR", "ADVEXP_BOOPATHY_DIR"):
        if os.environ.get(var):
            os.environ[var] = str(Path(os.environ[var]).resolve())
    if os.environ.get("ADVEXP_DATA_PATH"):
        folders = os.environ["ADVEXP_DATA_PATH"].split(os.pathsep)
        os.environ["ADVEXP_DATA_PATH"] = os.pathsep.join(str(Path(p).resolve()) for p in folders if p)


def _cores() -> int:
    """The cores this process may run on (its affinity mask, which containers set), else cpu_count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity masks on this platform
        return os.cpu_count() or 1


def _longest_first(paths: list[Path], out: Path) -> list[Path]:
    """``paths`` by their last recorded run time in ``out/summary.json``, longest first; without one,
    in reverse reading order (the later chapters, on the authors' networks, are the longer ones)."""
    try:
        seconds = json.loads((out / "summary.json").read_text())["seconds"]
        return sorted(paths, key=lambda p: -float(seconds.get(p.name) or 0.0))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # absent or not a summary we wrote
        return sorted(paths, key=lambda p: p.name, reverse=True)


_GITHUB = re.compile(
    r"^(?:git@github\.com:|ssh://git@github\.com/|https://github\.com/)([\w.-]+)/([\w.-]+?)(?:\.git)?/?$"
)


def github_url(remote: str) -> str | None:
    """``https://github.com/OWNER/NAME`` for a GitHub remote address (https, ssh or scp form), else None.

    Examples:
        >>> github_url("git@github.com:owner/advexp.git"), github_url("/work/main")
        ('https://github.com/owner/advexp', None)
    """
    match = _GITHUB.match(remote.strip())
    return f"https://github.com/{match[1]}/{match[2]}" if match else None


def repository_url(repo=REPO) -> str | None:
    """:func:`github_url` of ``repo``'s ``origin`` remote; None without one (a local clone, as CI's)."""
    out = subprocess.run(
        ["git", "-C", str(repo), "remote", "get-url", "origin"], capture_output=True, text=True
    )
    return github_url(out.stdout) if out.returncode == 0 else None


def current_branch(repo=REPO) -> str:
    """The branch checked out in ``repo``; "main" on a detached head or outside git."""
    out = subprocess.run(
        ["git", "-C", str(repo), "symbolic-ref", "--short", "-q", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "main"


def launch_settings(url: str, branch: str = "main") -> dict:
    """The Jupyter Book 1.x settings that put the repository and Binder buttons on every page.

    Binder builds the repository at ``branch`` from ``environment.yml`` and runs ``postBuild``
    (the library installed editable, the book's package on the path), then opens the chapter
    in JupyterLab. No Colab button: a notebook opened alone in Colab has neither package.
    """
    return {
        "repository": {"url": url, "path_to_book": "", "branch": branch},
        "html": {"use_repository_button": True, "use_issues_button": True},
        "launch_buttons": {"notebook_interface": "jupyterlab", "binderhub_url": "https://mybinder.org"},
    }


def _stage_config(stage: Path, url: str | None, branch: str) -> None:
    """Copy ``_config.yml`` into ``stage``, with :func:`launch_settings` merged in when ``url`` is known."""
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    for key, value in (launch_settings(url, branch) if url else {}).items():
        config[key] = {**config.get(key, {}), **value}
    (stage / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))


def build_book(results="results", html_out=None, strict=True, repository=None, branch=None) -> Path:
    """Build the Jupyter Book (1.x) with the executed notebooks; return ``_build/html/index.html``.

    The book's sources are staged in ``<results>/book_src`` with executed
    notebooks in place of the sources (and both packages' code, which chapters
    include), then built to ``<repo>/_build/html``. ``repository`` (a GitHub address; default: the
    checkout's ``origin`` if it is on GitHub, :func:`repository_url`) adds the repository and
    Binder buttons (:func:`launch_settings`) at ``branch`` (default: :func:`current_branch`).

    Raises:
        InputError: ``repository`` is not a GitHub repository's address.
    """
    if repository is not None and github_url(repository) is None:
        raise InputError(f"repository: expected https://github.com/OWNER/NAME, got {repository!r}")
    url = github_url(repository) if repository is not None else repository_url()
    results = Path(results).resolve()
    stage = results / "book_src"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    _stage_config(stage, url, branch or current_branch())
    shutil.copy2(REPO / "_toc.yml", stage / "_toc.yml")
    shutil.copytree(REPO / "book", stage / "book")
    # the code of both packages, which chapters show with literalinclude (not the shipped checkpoints)
    for package in ("advexp_lib", "advexp_book"):
        shutil.copytree(
            REPO / package, stage / package, ignore=shutil.ignore_patterns("__pycache__", "checkpoints")
        )
    (stage / "notebooks").mkdir()
    for nb in notebook_paths():
        executed = results / "notebooks" / nb.name
        if not executed.is_file():
            raise NotebookError(
                f"notebook {nb.name} has no executed copy in {executed.parent}: "
                f"run `python -m advexp_book reproduce` first"
            )
        shutil.copy2(executed, stage / "notebooks" / nb.name)
    build = Path(html_out or REPO).resolve()
    exe = Path(sys.executable).parent / "jupyter-book"  # the venv's own, beside its python
    cmd = [str(exe), "build", str(stage), "--path-output", str(build)]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    if subprocess.run(cmd, cwd=REPO).returncode:
        raise BookError(f"jupyter-book build failed (warnings are errors); command: {' '.join(cmd)}")
    return build / "_build" / "html" / "index.html"
