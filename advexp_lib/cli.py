"""Command line: ``python -m advexp_lib {train,reproduce,book} ...``.

Bad input prints the library's message (no traceback) and exits with status 2.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys

from .checks import AdvexpError

__all__ = ["main"]


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except AdvexpError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m advexp_lib", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(required=True, metavar="command")

    t = sub.add_parser("train", help="train a recipe (or a plain arch) and save a checkpoint")
    t.add_argument("--dataset", default="mnist5k")
    t.add_argument("--recipe", default="standard", help="zoo recipe name (default: standard)")
    t.add_argument("--arch", default=None, help="override the recipe's architecture")
    t.add_argument("--epochs", type=int, default=None, help="override num_epochs")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--device", default="cpu", help="cpu or cuda (under torchrun each rank takes GPU LOCAL_RANK)")
    t.add_argument("--out", required=True, help="checkpoint path (resumed if it exists)")
    t.add_argument("--no-progress", action="store_true")
    t.add_argument("--amp", choices=("bf16", "fp16"), default=None,
                   help="mixed precision (standard training only; the double-backprop regularizer stays float32)")
    t.add_argument("--compile", nargs="?", const="inductor", default=None, metavar="BACKEND",
                   help="torch.compile the model (default backend: inductor)")
    t.add_argument("--channels-last", action="store_true", help="NHWC memory layout (faster convs on GPUs)")
    t.set_defaults(run=_train)

    r = sub.add_parser("reproduce", help="execute every notebook with papermill")
    r.add_argument("--out", default="results")
    r.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="papermill override, e.g. -p dataset cifar10 -p device cuda")
    r.add_argument("--notebook", action="append", default=None, help="run only these notebook paths")
    r.set_defaults(run=_reproduce)

    b = sub.add_parser("book", help="build the Jupyter Book from executed notebooks")
    b.add_argument("--results", default="results")
    b.set_defaults(run=_book)
    return p


def _train(args) -> int:
    import os
    from dataclasses import replace

    from . import distributed
    from .zoo import recipe, train_recipe

    overrides = {k: v for k, v in (("num_epochs", args.epochs), ("seed", args.seed), ("amp", args.amp),
                                   ("compile", args.compile)) if v is not None}
    if args.channels_last:
        overrides["channels_last"] = True
    r = recipe(args.dataset, args.recipe, **overrides)
    if args.arch:
        r = replace(r, arch=args.arch)
    device = distributed.init_from_env(args.device)  # launched by torchrun: join the group, DDP follows
    try:
        _, history = train_recipe(r, device=device, checkpoint=args.out, progress=not args.no_progress)
    finally:
        distributed.shutdown()
    if int(os.environ.get("RANK", "0")) == 0:  # torchrun's rank (the group is already closed): print once
        print(json.dumps(history[-1], indent=1))
    return 0


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word is a string


def _reproduce(args) -> int:
    from .reproduce import run_notebooks

    summary = run_notebooks(args.out, {k: _literal(v) for k, v in args.parameter}, args.notebook)
    print(json.dumps(summary["seconds"], indent=1))
    return 0


def _book(args) -> int:
    from .reproduce import build_book

    print(build_book(args.results))
    return 0
