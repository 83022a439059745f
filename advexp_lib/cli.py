"""Command line: ``python -m advexp_lib {train,reproduce,book,zoo,ara,explain} ...``.

``--help`` (of the program and of each command) shows every option's choices
and default. Bad input prints the library's message (no traceback) and exits
with status 2.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import math
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

from . import distributed
from .attacks import ARA_PAPER, INDEPENDENT_ATTACKS, SearchConfig
from .checkpoints import load_checkpoint, write_atomic
from .checks import AdvexpError, CheckpointError, InputError, check_choice
from .data import DATASETS, dataset_info, load_dataset, load_image, load_tensors
from .metrics import ARA_N_IMAGES, ARA_SEED, accuracy_robustness_area, ensemble_ara
from .models import runner_up
from .plotting import adversarial_explanation_panel, plot_views
from .reproduce import build_book, run_notebooks
from .widgets import EXPLORER_CONFIG, explorer_views
from .woods_import import import_woods_checkpoint
from .zoo import (
    model_from_checkpoint,
    recipe,
    recipe_names,
    ship_checkpoint,
    train_recipe,
    trained_checkpoint,
)

__all__ = ["main"]


DESCRIPTION = """\
The advexp command line: train and evaluate the book's models, explain images,
run the notebooks and build the book.

Each command has its own help, e.g. python -m advexp_lib ara --help.
Bad input prints a message (no traceback) and exits with status 2."""

_DATASETS = ", ".join(DATASETS)  # the --dataset help of every command
_RECIPES = (
    "zoo recipe: standard, adv (RMSE adversarial training), robust (half-Huber + L_adv), "
    "all (robust + adv. training) or a companion paper's; one of %(choices)s"
)

_ENSEMBLE = ("rmse", "ddn", "fmn")  # ensemble_ara's default attacks
_PER_IMAGE = ("distances", "unreliable", "retried", "per_attack_distances")  # in the --json file only


EXAMPLES = """\
examples:
  python -m advexp_lib zoo standard all              # train (or find) two zoo models
  python -m advexp_lib explain CHECKPOINT --index 3  # explain a test image
  python -m advexp_lib explain CHECKPOINT --image digit.png --target 3
  python -m advexp_lib ara CHECKPOINT --n-images 100 --steps 100   # a quick, rougher ARA
  python -m advexp_lib ara CHECKPOINT --ensemble --json ara.json  # + foolbox attacks, saved as JSON"""


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except AdvexpError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every option's default and keeps the descriptions' line breaks."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m advexp_lib", description=DESCRIPTION, epilog=EXAMPLES, formatter_class=_Help
    )
    sub = p.add_subparsers(required=True, metavar="command", title="commands")
    for add in (_add_train, _add_reproduce, _add_book, _add_zoo, _add_ara, _add_explain):
        add(sub)
    return p


def _command(sub, name, help, description=None) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=description or help, formatter_class=_Help)


def _add_search_flags(p, default: SearchConfig, title: str, rename: dict | None = None) -> None:
    """One flag per :class:`~advexp_lib.attacks.SearchConfig` field, defaults from ``default``.

    ``rename`` gives a field another flag name (``{"eps": "rho"}``: --rho); errors then name the flag.
    """
    p.set_defaults(_search_flags=dict(rename or {}))
    group = p.add_argument_group(title)
    for f in dataclasses.fields(SearchConfig):
        flag = "--" + (rename or {}).get(f.name, f.name).replace("_", "-")
        value = getattr(default, f.name)
        if isinstance(value, bool):
            group.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=value,
                help=f.metadata["help"],
            )
        else:
            group.add_argument(flag, dest=f.name, type=type(value), default=value, help=f.metadata["help"])


def _search_config(args) -> SearchConfig:
    """The SearchConfig the flags of :func:`_add_search_flags` give (checked by the dataclass)."""
    try:
        return SearchConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SearchConfig)})
    except InputError as err:  # name the flag the user typed, not the field behind it
        field, _, rest = str(err).partition(": ")
        raise InputError(f"{args._search_flags.get(field, field)}: {rest}") from None


def _add_train(sub) -> None:
    """The ``train`` subcommand."""
    t = _command(sub, "train", "train a recipe (or a plain arch) and save a checkpoint")
    t.add_argument("--dataset", default="mnist5k", help=f"one of {_DATASETS}")
    t.add_argument(  # no choices=: the library checks the name, with its own message (exit status 2)
        "--recipe", default="standard", help=_RECIPES % {"choices": ", ".join(recipe_names())}
    )
    t.add_argument("--arch", default=None, help="override the recipe's architecture")
    t.add_argument(
        "--epochs", type=int, default=None, help="override num_epochs (if not given: the recipe's)"
    )
    t.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    t.add_argument(
        "--device", default="cpu", help="cpu or cuda (under torchrun each rank takes GPU LOCAL_RANK)"
    )
    t.add_argument("--out", required=True, help="checkpoint path (resumed if it exists)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
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
        help="torch.compile the model (backend if given without one: inductor)",
    )
    t.add_argument("--channels-last", action="store_true", help="NHWC memory layout (faster convs on GPUs)")
    t.set_defaults(run=_train)


def _add_reproduce(sub) -> None:
    """The ``reproduce`` subcommand."""
    r = _command(
        sub,
        "reproduce",
        "execute every notebook with papermill (the full book; ADVEXP_SMOKE=1 for a quick smoke run)",
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
    r.set_defaults(run=_reproduce)


def _add_book(sub) -> None:
    """The ``book`` subcommand."""
    b = _command(sub, "book", "build the Jupyter Book from executed notebooks")
    b.add_argument("--results", default="results", help="folder of the executed notebooks")
    b.add_argument(
        "--html-out", default=None, help="write HTML_OUT/_build/html (if not given: in the repository)"
    )
    b.set_defaults(run=_book)


def _add_zoo(sub) -> None:
    """The ``zoo`` subcommand."""
    z = _command(
        sub,
        "zoo",
        "train zoo recipes into the cache (--ship: into the package too)",
        "Train zoo recipes into the cache (data/zoo/); a recipe already cached or shipped is not\n"
        "trained again unless --retrain. The robust recipes (double backprop) are the slowest to train.",
    )
    z.add_argument(  # no choices=: argparse would check the default list itself; the library checks names
        "recipes",
        nargs="*",
        default=["standard", "adv", "robust", "all"],
        metavar="RECIPE",
        help=_RECIPES % {"choices": ", ".join(recipe_names())},
    )
    z.add_argument("--dataset", default="mnist5k", help=f"one of {_DATASETS}")
    z.add_argument("--retrain", action="store_true", help="train even if cached or shipped")
    z.add_argument(
        "--ship",
        action="store_true",
        help="copy the trained checkpoints (without optimizer state) to advexp_lib/checkpoints/",
    )
    z.add_argument("--device", default="cpu", help="cpu or cuda")
    z.set_defaults(run=_zoo)


def _add_ara(sub) -> None:
    """The ``ara`` subcommand."""
    cost = f"{ARA_N_IMAGES:,} images x {ARA_PAPER.steps} steps"
    a = _command(
        sub,
        "ara",
        f"Accuracy-Robustness Area of a checkpoint (Woods et al.); costly: {cost}",
        "Accuracy-Robustness Area of a checkpoint (Woods et al. 2019). The defaults are the paper's\n"
        f"protocol (metrics.ARA_PAPER): {cost}, one forward and backward pass per image and step.\n"
        "For a quick, rougher figure lower --n-images and --steps.\n"
        "Prints a JSON summary; --json PATH also saves it with the per-image results.\n"
        "Under torchrun (torchrun --nproc_per_node W -m advexp_lib ara ...) each process searches\n"
        "a contiguous share of the images and rank 0 reports them all: one process's result, up to\n"
        "float32 rounding, which depends a little on how the images are batched (--batch-size).",
    )
    a.add_argument("checkpoint", help="an advexp checkpoint or a published Woods et al. ResNet-44 file")
    a.add_argument("--dataset", default="mnist5k", help=f"one of {_DATASETS}")
    a.add_argument("--n-images", type=int, default=ARA_N_IMAGES, help="test images (seeded permutation)")
    a.add_argument(
        "--seed",
        type=int,
        default=ARA_SEED,
        help="permutation seed (the paper's); also seeds torch for randomized attacks",
    )
    a.add_argument(
        "--kind",
        choices=["attack", "btr"],
        default="attack",
        help="attack: until the top-1 class changes; btr: until p(true class) <= 1/C",
    )
    _add_search_flags(a, ARA_PAPER, "the search (the --ensemble attacks get --steps too)")
    a.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images per search batch (if not given: all at once, or this rank's share under torchrun)",
    )
    a.add_argument(
        "--never-met",
        choices=["raise", "retry", "zero"],
        default=None,
        help="an image the search never breaks: raise (its distance is unknown, not 0), retry "
        "(search it again with unit-RMSE steps; flagged as retried) or zero (the reference's 0); "
        "if not given: raise, with --ensemble: retry",
    )
    a.add_argument(
        "--ensemble",
        action="store_true",
        help="each image's distance is the smallest of several attacks' (see --attacks); adds each "
        "attack's own ARA, wins and failures (one process only, not under torchrun)",
    )
    a.add_argument(
        "--attacks",
        default=None,
        metavar="A,B,...",
        help="with --ensemble: comma-separated, of rmse (the search above) and the foolbox attacks "
        f"{', '.join(INDEPENDENT_ATTACKS)} (if not given: {','.join(_ENSEMBLE)})",
    )
    a.add_argument(
        "--device", default="cpu", help="cpu or cuda (under torchrun each rank takes GPU LOCAL_RANK)"
    )
    a.add_argument(
        "--json",
        "--out",
        dest="json",
        default=None,
        metavar="PATH",
        help="also write the result here (atomically, folders created): the summary plus per-image "
        "distances (RMSE; an infinite one, an attack's failure, as null), unreliable and retried flags. "
        "--out: deprecated alias",
    )
    a.set_defaults(run=_ara)


def _add_explain(sub) -> None:
    """The ``explain`` subcommand."""
    e = _command(
        sub,
        "explain",
        "adversarial explanations (PNG) of a test image (--index) or of your own image (--image)",
        "Adversarial explanations (Woods et al.) of one image, saved as a PNG.\n"
        "With --index and no --target: the test image's explanations toward its true class, its\n"
        "runner-up and every class. With --image FILE or --target K: four panels (the image, a\n"
        "saliency map, the explanation toward K and the change); K defaults to the runner-up of\n"
        "the prediction. --image is converted to the checkpoint's channels and resized to its\n"
        "input size (e.g. 1 x 28 x 28 for mnist5k); MNIST digits are light on dark.",
    )
    e.add_argument("checkpoint", help="an advexp checkpoint or a published Woods et al. ResNet-44 file")
    e.add_argument("--dataset", default="mnist5k", help=f"test split and class names of --index: {_DATASETS}")
    src = e.add_mutually_exclusive_group()
    src.add_argument("--index", type=int, default=0, help="index into the dataset's test split")
    src.add_argument("--image", default=None, metavar="FILE", help="your own image (PNG, JPEG, GIF, WEBP)")
    e.add_argument(
        "--target", type=int, default=None, help="class to explain toward (if not given: see above)"
    )
    _add_search_flags(e, EXPLORER_CONFIG, "the explanation search", rename={"eps": "rho"})
    e.add_argument("--device", default="cpu", help="cpu or cuda")
    e.add_argument("--out", default="data/results", help="folder for the PNG")
    e.set_defaults(run=_explain)


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
        try:  # the published files are full pickles, refused above: the importer reads them safely
            return import_woods_checkpoint(path).to(device).eval()
        except CheckpointError:
            raise err from None  # neither: the advexp loader's reason is the one to show


def _ara(args) -> int:
    """The ``ara`` command: print the JSON summary of :func:`_ara_record`, save it all with ``--json``.

    Under torchrun every rank loads the model and the same images;
    :func:`accuracy_robustness_area` searches this rank's contiguous share and
    gathers every image's result, and rank 0 alone prints and writes.
    """
    attacks = _ensemble_attacks(args)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if attacks and world > 1:
        raise InputError(
            f"ensemble: --ensemble runs in one process only (its foolbox attacks are not sharded), "
            f"but torchrun started {world}; run it without torchrun"
        )
    never_met = args.never_met or ("retry" if attacks else "raise")  # the library functions' defaults
    device = distributed.init_from_env(args.device)  # launched by torchrun: join the group, shard images
    try:
        model = _load_model(args.checkpoint, device)
        x, y = load_tensors(args.dataset, "test", n=args.n_images, seed=args.seed)
        x, y = x.to(device), y.to(device)
        torch.manual_seed(args.seed)  # the boundary attack draws random starts
        settings = dict(kind=args.kind, config=_search_config(args))
        search = None
        if not attacks or "rmse" in attacks:
            search = accuracy_robustness_area(
                model, x, y, batch_size=args.batch_size, never_met=never_met, **settings
            )
        ens = None
        if attacks:
            ens = ensemble_ara(
                model, x, y, attacks=attacks, never_met=never_met, rmse_result=search, **settings
            )
        main_process, world = distributed.is_main_process(), distributed.world_size()
    finally:
        distributed.shutdown()
    if not main_process:
        return 0
    record = _ara_record(args, attacks, never_met, world, search, ens)
    summary = {k: v for k, v in record.items() if k not in _PER_IMAGE}
    print(json.dumps(summary, indent=1, allow_nan=False))
    if args.json:
        text = json.dumps(record, indent=1, allow_nan=False) + "\n"
        write_atomic(args.json, lambda f: f.write(text.encode()))
    return 0


def _ensemble_attacks(args) -> tuple[str, ...] | None:
    """The --ensemble attacks (None without --ensemble), names checked before any search runs."""
    if not args.ensemble:
        if args.attacks is not None:
            raise InputError("attacks: --attacks is used only with --ensemble")
        return None
    names = tuple(a.strip() for a in (args.attacks or ",".join(_ENSEMBLE)).split(","))
    if not all(names):
        raise InputError(f"attacks: expected comma-separated attack names, got {args.attacks!r}")
    for name in names:
        check_choice(name, "attacks", ("rmse", *INDEPENDENT_ATTACKS))
    return names


def _ara_record(args, attacks, never_met, world, search, ens) -> dict:
    """The ``ara`` command's result as a JSON-ready dict (keys in the order written).

    Settings: checkpoint, dataset, kind, n_images, seed, the SearchConfig
    fields (steps, eps, momentum, overshoot, clip, grad_floor), batch_size, never_met,
    attacks (None without --ensemble), world_size.
    Results: num_classes, accuracy, ara, median_distance, n_unreliable,
    n_retried; with --ensemble also per_attack (attack -> its own ARA, None if
    it failed on some image), wins and failures (as ``EnsembleAraResult``).
    Per image (the --json file only, in the seeded permutation's order):
    distances (RMSE, the ensemble's smallest with --ensemble), unreliable and
    retried (bools of the RMSE search; None when --attacks leaves it out) and,
    with --ensemble, per_attack_distances (attack -> distances, None = inf,
    the attack failed on that image). The ARA is
    ``metrics.ara_from_distances(distances, num_classes)``.
    """
    res = ens if ens is not None else search
    record = {
        "checkpoint": str(args.checkpoint),
        "dataset": args.dataset,
        "kind": args.kind,
        "n_images": args.n_images,
        "seed": args.seed,
        **dataclasses.asdict(_search_config(args)),
        "batch_size": args.batch_size,
        "never_met": never_met,
        "attacks": list(attacks) if attacks else None,
        "world_size": world,
        "num_classes": res.num_classes,
        "accuracy": res.accuracy,
        "ara": res.ara,
        "median_distance": float(res.distances.median()),
        "n_unreliable": int(search.unreliable.sum()) if search is not None else None,
        "n_retried": int(search.retried.sum()) if search is not None else None,
    }
    if ens is not None:
        record.update(
            per_attack={a: _finite(v) for a, v in ens.per_attack.items()},
            wins=dict(ens.wins),
            failures=dict(ens.failures),
        )
    record.update(
        distances=_floats(res.distances),
        unreliable=search.unreliable.tolist() if search is not None else None,
        retried=search.retried.tolist() if search is not None else None,
    )
    if ens is not None:
        record["per_attack_distances"] = {a: _floats(d) for a, d in ens.per_attack_distances.items()}
    return record


def _finite(value: float) -> float | None:
    """``value`` as a float, None if infinite or NaN (JSON has no inf)."""
    value = float(value)
    return value if math.isfinite(value) else None


def _floats(t: torch.Tensor) -> list:
    return [_finite(v) for v in t.double().cpu().tolist()]


def _explain(args) -> int:
    model = _load_model(args.checkpoint, args.device)
    if args.image is not None:
        channels, size, dataset = _input_of(args.checkpoint, args.dataset)
        x, original = load_image(args.image, channels=channels, size=size)
        print(
            f"{args.image}: {original[0]}x{original[1]} image converted to {channels} channel(s) "
            f"and resized to {size}x{size}, the checkpoint's input size",
            file=sys.stderr,
        )
        name = Path(args.image).stem
    else:
        dataset = args.dataset
        ds = load_dataset(dataset, "test")
        if not 0 <= args.index < len(ds):
            raise InputError(f"index: expected 0 <= index < {len(ds)}, got {args.index}")
        x, y = ds[args.index]
        x, name = x[None], str(args.index)
    x, classes = x.to(args.device), dataset_info(dataset).classes
    if args.image is None and args.target is None:
        fig = adversarial_explanation_panel(model, x, int(y), classes, config=_search_config(args))
    else:
        with torch.no_grad():
            logits = model(x)
        if args.target is not None and not 0 <= args.target < logits.shape[1]:
            raise InputError(f"target: expected a class in [0, {logits.shape[1] - 1}], got {args.target}")
        target = args.target if args.target is not None else int(runner_up(logits, logits.argmax(1))[0])
        views = explorer_views(model, x, target, config=_search_config(args))
        fig = plot_views(views, classes)
        fig.tight_layout()
        if not views["reached"]:
            print(f"note: the explanation did not reach class {target}; try a larger --rho", file=sys.stderr)
    out = Path(args.out) / f"{Path(args.checkpoint).stem}-{dataset}-{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(out)
    return 0


def _input_of(path, dataset: str) -> tuple[int, int, str]:
    """(channels, size, dataset) of the checkpoint's model input, from its metadata.

    A file the advexp loader refuses but :func:`_load_model` opened is a
    published Woods et al. network: CIFAR-10, 3 x 32 x 32.
    """
    try:
        meta = load_checkpoint(path).get("meta") or {}
    except CheckpointError:
        info = dataset_info("cifar10")
        return info.channels, info.size, info.name
    dataset = meta.get("recipe", {}).get("dataset", dataset)
    info, kwargs = dataset_info(dataset), meta.get("model_kwargs", {})
    return int(kwargs.get("in_channels", info.channels)), int(kwargs.get("image_size", info.size)), dataset


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
