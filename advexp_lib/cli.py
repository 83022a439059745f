"""Command line: ``python -m advexp_lib {train,reproduce,book,zoo,ara,explain} ...``.

Bad input prints the library's message (no traceback) and exits with status 2.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from . import distributed
from .checks import AdvexpError, CheckpointError, InputError
from .data import dataset_info, load_dataset, load_tensors
from .metrics import accuracy_robustness_area
from .plotting import adversarial_explanation_panel
from .reproduce import build_book, run_notebooks
from .woods_import import import_woods_checkpoint
from .zoo import model_from_checkpoint, recipe, ship_checkpoint, train_recipe, trained_checkpoint

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
    t.add_argument(
        "--device", default="cpu", help="cpu or cuda (under torchrun each rank takes GPU LOCAL_RANK)"
    )
    t.add_argument("--out", required=True, help="checkpoint path (resumed if it exists)")
    t.add_argument("--no-progress", action="store_true")
    t.add_argument(
        "--amp",
        choices=("bf16", "fp16"),
        default=None,
        help="mixed precision (standard training only; the double-backprop regularizer stays float32)",
    )
    t.add_argument(
        "--compile",
        nargs="?",
        const="inductor",
        default=None,
        metavar="BACKEND",
        help="torch.compile the model (default backend: inductor)",
    )
    t.add_argument("--channels-last", action="store_true", help="NHWC memory layout (faster convs on GPUs)")
    t.set_defaults(run=_train)

    r = sub.add_parser("reproduce", help="execute every notebook with papermill")
    r.add_argument("--out", default="results")
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
    r.set_defaults(run=_reproduce)

    b = sub.add_parser("book", help="build the Jupyter Book from executed notebooks")
    b.add_argument("--results", default="results", help="folder of the executed notebooks (default: results)")
    b.add_argument("--html-out", default=None, help="write HTML_OUT/_build/html (default: the repository)")
    b.set_defaults(run=_book)

    z = sub.add_parser("zoo", help="train zoo recipes into the cache (--ship: into the package too)")
    z.add_argument("recipes", nargs="*", default=["standard", "adv", "robust", "all"])
    z.add_argument("--dataset", default="mnist5k")
    z.add_argument("--retrain", action="store_true", help="train even if cached or shipped")
    z.add_argument(
        "--ship",
        action="store_true",
        help="copy the trained checkpoints (without optimizer state) to advexp_lib/checkpoints/",
    )
    z.add_argument("--device", default="cpu")
    z.set_defaults(run=_zoo)

    a = sub.add_parser("ara", help="Accuracy-Robustness Area of a checkpoint (Woods et al.)")
    a.add_argument("checkpoint", help="an advexp checkpoint or a published Woods et al. ResNet-44 file")
    a.add_argument("--dataset", default="mnist5k")
    a.add_argument("--n-images", type=int, default=1000, help="test images (seeded permutation)")
    a.add_argument("--seed", type=int, default=1776, help="permutation seed (paper: 1776)")
    a.add_argument("--kind", choices=["attack", "btr"], default="attack")
    a.add_argument("--steps", type=int, default=450)
    a.add_argument("--eps", type=float, default=20.0)
    a.add_argument("--momentum", type=float, default=0.9)
    a.add_argument("--batch-size", type=int, default=None, help="images per search batch (default: all)")
    a.add_argument("--device", default="cpu")
    a.add_argument("--out", default=None, help="also write the result (JSON) here")
    a.set_defaults(run=_ara)

    e = sub.add_parser("explain", help="adversarial-explanation panel (PNG) of one test image")
    e.add_argument("checkpoint")
    e.add_argument("--dataset", default="mnist5k")
    e.add_argument("--index", type=int, default=0, help="index into the test split")
    e.add_argument("--rho", type=float, default=0.1)
    e.add_argument("--steps", type=int, default=35)
    e.add_argument("--overshoot", type=float, default=5.0)
    e.add_argument("--device", default="cpu")
    e.add_argument("--out", default="data/results", help="folder for the PNG")
    e.set_defaults(run=_explain)
    return p


def _zoo(args) -> int:
    for name in args.recipes:
        path = trained_checkpoint(args.dataset, name, retrain=args.retrain, device=args.device)
        print(ship_checkpoint(path) if args.ship else path)
    return 0


def _load_model(path, device):
    """An advexp checkpoint, else a published Woods et al. file; never executes pickled code."""
    try:
        return model_from_checkpoint(path, device=device)
    except CheckpointError as err:
        if "not an advexp checkpoint" not in str(err):
            raise
        return import_woods_checkpoint(path).to(device).eval()


def _ara(args) -> int:
    model = _load_model(args.checkpoint, args.device)
    x, y = load_tensors(args.dataset, "test", n=args.n_images, seed=args.seed)
    res = accuracy_robustness_area(
        model,
        x.to(args.device),
        y.to(args.device),
        kind=args.kind,
        steps=args.steps,
        eps=args.eps,
        momentum=args.momentum,
        batch_size=args.batch_size,
    )
    out = {
        "checkpoint": str(args.checkpoint),
        "dataset": args.dataset,
        "kind": args.kind,
        "n_images": args.n_images,
        "steps": args.steps,
        "eps": args.eps,
        "momentum": args.momentum,
        "accuracy": res.accuracy,
        "ara": res.ara,
        "median_distance": float(res.distances.median()),
        "unreliable": int(res.unreliable.sum()),
    }
    print(json.dumps(out, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


def _explain(args) -> int:
    model = _load_model(args.checkpoint, args.device)
    ds = load_dataset(args.dataset, "test")
    if not 0 <= args.index < len(ds):
        raise InputError(f"index: expected 0 <= index < {len(ds)}, got {args.index}")
    x, y = ds[args.index]
    fig = adversarial_explanation_panel(
        model,
        x.to(args.device),
        int(y),
        dataset_info(args.dataset).classes,
        rho=args.rho,
        steps=args.steps,
        overshoot=args.overshoot,
    )
    out = Path(args.out) / f"{Path(args.checkpoint).stem}-{args.dataset}-{args.index}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(out)
    return 0


def _train(args) -> int:
    overrides = {
        k: v
        for k, v in (
            ("num_epochs", args.epochs),
            ("seed", args.seed),
            ("amp", args.amp),
            ("compile", args.compile),
        )
        if v is not None
    }
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
    summary = run_notebooks(args.out, {k: _literal(v) for k, v in args.parameter}, args.notebook)
    print(json.dumps(summary["seconds"], indent=1))
    return 0


def _book(args) -> int:
    print(build_book(args.results, html_out=args.html_out))
    return 0
