"""The book's command line: ``python -m advexp_book {reproduce,book} ...``.

``reproduce`` executes every notebook with papermill (:func:`advexp_book.reproduce.run_notebooks`);
``book`` builds the Jupyter Book from the executed copies (:func:`advexp_book.reproduce.build_book`).
Bad input prints the message in one line (no traceback) and exits with status 2.
The library's own commands (train, zoo, ara, explain) are ``python -m advexp_lib``.
"""

from __future__ import annotations

import argparse
import ast
import json

from advexp_lib.cli import HelpFormatter, run

from .reproduce import build_book, run_notebooks

__all__ = ["main"]

DESCRIPTION = """\
The advexp book: execute every notebook with papermill, then build the Jupyter Book.

  python -m advexp_book reproduce --out results --jobs 2   # the main job's notebooks
  python -m advexp_book book --results results            # the book, to _build/html
ADVEXP_SMOKE=1 runs every notebook at its smoke sizes (seconds each)."""


def main(argv=None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the command; 2 on bad input."""
    return run(_parser().parse_args(argv))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m advexp_book", description=DESCRIPTION, formatter_class=HelpFormatter
    )
    sub = p.add_subparsers(required=True, metavar="command", title="commands")
    r = sub.add_parser(
        "reproduce",
        help="execute every notebook with papermill (ADVEXP_SMOKE=1 for a quick smoke run)",
        formatter_class=HelpFormatter,
    )
    r.add_argument("--out", default="results", help="folder of the executed notebooks and summary.json")
    r.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="papermill override, e.g. -p dataset cifar10 -p device cuda",
    )
    r.add_argument("--notebook", action="append", default=None, help="run only these notebook paths")
    r.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="notebooks executed at once, each kernel given cpu_count / jobs threads",
    )
    r.add_argument("-q", "--quiet", action="store_true", help="no per-notebook log lines")
    r.set_defaults(run=_reproduce)
    b = sub.add_parser(
        "book", help="build the Jupyter Book from executed notebooks", formatter_class=HelpFormatter
    )
    b.add_argument("--results", default="results", help="folder of the executed notebooks")
    b.add_argument(
        "--html-out", default=None, help="write HTML_OUT/_build/html (if not given: in the repository)"
    )
    b.add_argument(
        "--repository",
        default=None,
        help="GitHub address for the repository and Binder buttons (if not given: the origin remote's, "
        "when it is on GitHub; else no buttons)",
    )
    b.add_argument(
        "--branch",
        default=None,
        help="the branch the Binder button opens (if not given: the checked-out one)",
    )
    b.set_defaults(run=_book)
    return p


def _literal(text: str):
    """A papermill value: a Python literal (``3``, ``0.5``, ``True``), else the bare word as a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _reproduce(args) -> int:
    log = (lambda *a, **k: None) if args.quiet else print
    parameters = {k: _literal(v) for k, v in args.parameter}
    summary = run_notebooks(args.out, parameters, args.notebook, log=log, jobs=args.jobs)
    print(json.dumps(summary["seconds"], indent=1))
    return 0


def _book(args) -> int:
    print(build_book(args.results, html_out=args.html_out, repository=args.repository, branch=args.branch))
    return 0
