"""Command line: ``python -m advexp_lib {train,zoo,ara,explain} ...``.

Each ``--help`` shows every option's choices (from :data:`advexp_lib.data.DATASETS`,
:func:`advexp_lib.recipes.recipe_names`, :data:`advexp_lib.attacks.independent.INDEPENDENT_ATTACKS`) and
default. Bad input prints the library's message in one line and exits with status 2. ``ara`` and ``explain``
score advexp checkpoints, Woods et al.'s published files or ``--model MODULE:CALLABLE --weights FILE``. The
book's command line is ``python -m advexp_book``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
import warnings
from pathlib import Path

from . import __version__
from .attacks.independent import INDEPENDENT_ATTACKS
from .checks import check_choice
from .data import DATASETS
from .errors import AdvexpError, CheckpointError, InputError
from .protocols import AE_PAPER, ARA_N_IMAGES, ARA_PAPER, ARA_SEED, SearchConfig
from .recipes import recipe_names
from .results import to_json

__all__ = ["main", "run", "HelpFormatter"]


DESCRIPTION = """\
The advexp command line: train and evaluate the book's models (or your own), explain images.
(Running the notebooks and building the book: python -m advexp_book --help.)

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
  python -m advexp_lib ara CHECKPOINT --ensemble --json ara.json  # + foolbox attacks, saved as JSON
  python -m advexp_lib ara --model mynets:build --weights net.pt --normalize 0.5,0.25 --n-images 100"""


def main(argv=None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and :func:`run` the command."""
    return run(_parser().parse_args(argv))


def run(args) -> int:
    """Run a parsed command (its ``args.run``): 0, or 2 with the library's one-line message on bad input."""
    try:
        with warnings.catch_warnings():
            if getattr(args, "quiet", False):  # -q: the result only (the library's warnings are notes)
                warnings.filterwarnings("ignore", module=r"advexp_lib(\.|$)")
            return args.run(args) or 0
    except AdvexpError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every option's default and keeps the descriptions' line breaks."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m advexp_lib", description=DESCRIPTION, epilog=EXAMPLES, formatter_class=HelpFormatter
    )
    p.add_argument("--version", action="version", version=f"advexp_lib {__version__}")
    sub = p.add_subparsers(required=True, metavar="command", title="commands")
    for add in (_add_train, _add_zoo, _add_ara, _add_explain):
        add(sub)
    return p


def _command(sub, name, help, description=None) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=description or help, formatter_class=HelpFormatter)


def _add_quiet(p) -> None:
    """``-q/--quiet`` and ``--no-progress``, the two switches of every long command."""
    p.add_argument("-q", "--quiet", action="store_true", help="print the result only: no progress, no notes")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _progress(args) -> bool:
    return not (args.quiet or args.no_progress)


def _note(args, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr)


def _add_search_flags(p, default: SearchConfig, title: str, rename: dict | None = None) -> None:
    """One flag per ``SearchConfig`` field, defaults from ``default``, renamed by ``rename`` (eps: rho)."""
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


def _add_model_source(p) -> None:
    """The network to score: a checkpoint (positional), or a user's ``--model`` with ``--weights``."""
    p.add_argument(
        "checkpoint",
        nargs="?",
        default=None,
        help="an advexp checkpoint or a published Woods et al. ResNet-44 file (or use --model)",
    )
    g = p.add_argument_group("your own network (instead of CHECKPOINT)")
    g.add_argument(
        "--model",
        default=None,
        metavar="MODULE:CALLABLE",
        help="a callable (importable from PYTHONPATH) that returns the network, e.g. mynets:build",
    )
    g.add_argument(
        "--weights",
        default=None,
        metavar="FILE",
        help="its state dict, loaded without executing code (a plain state dict, or a dict holding one)",
    )
    g.add_argument(
        "--weights-key", default=None, metavar="KEY", help="the entry of FILE holding the state dict"
    )
    g.add_argument(
        "--normalize",
        default=None,
        metavar="MEAN,STD",
        help="the network expects (x - mean) / std: one MEAN,STD for all channels, or C means then C stds; "
        "the scored model then takes [0, 1] pixels",
    )
    p.add_argument(
        "--device", default="cpu", help="cpu or cuda (under torchrun each rank takes GPU LOCAL_RANK)"
    )


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
    t.add_argument("--out", default="data/zoo", help="folder of the checkpoint")
    t.add_argument(
        "--checkpoint",
        default=None,
        metavar="FILE",
        help="the checkpoint file, resumed if it exists (if not given: OUT/<dataset>-<recipe>-<hash>.pt)",
    )
    _add_quiet(t)
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
    _add_quiet(z)
    z.set_defaults(run=_zoo)


def _add_ara(sub) -> None:
    """The ``ara`` subcommand."""
    cost = f"{ARA_N_IMAGES:,} images x {ARA_PAPER.steps} steps"
    a = _command(
        sub,
        "ara",
        f"Accuracy-Robustness Area of a checkpoint or your network (Woods et al.); costly: {cost}",
        "Accuracy-Robustness Area of a network (Woods et al. 2019). The defaults are the reference\n"
        f"code's protocol (protocols.ARA_PAPER): {cost}, one forward and backward pass per image and step.\n"
        "For a quick, rougher figure lower --n-images and --steps.\n"
        "Prints a JSON summary (with the ARA's 95% interval); --json FILE also saves it with the\n"
        "per-image results, --out DIR saves it in DIR.\n"
        "Under torchrun (torchrun --nproc_per_node W -m advexp_lib ara ...) each process searches\n"
        "a contiguous share of the images and rank 0 reports them all: one process's result, up to\n"
        "float32 rounding, which depends a little on how the images are batched (--batch-size).",
    )
    _add_model_source(a)
    a.add_argument("--dataset", default="mnist5k", help=f"one of {_DATASETS}")
    a.add_argument("--n-images", type=int, default=ARA_N_IMAGES, help="test images (seeded permutation)")
    a.add_argument(
        "--seed",
        type=int,
        default=ARA_SEED,
        help="permutation seed (the protocol's); also seeds torch for randomized attacks",
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
    _add_ara_attacks(a)
    a.add_argument(
        "--json",
        default=None,
        metavar="FILE",
        help="also write the result here (atomically, folders created): the summary plus per-image "
        'distances (RMSE; an infinite one, an attack\'s failure, as "inf"), unreliable and retried flags',
    )
    a.add_argument(
        "--out", default=None, metavar="DIR", help="also write the --json file as DIR/<name>-ara.json"
    )
    _add_quiet(a)
    a.set_defaults(run=_ara)


def _add_ara_attacks(a) -> None:
    """The ``ara`` flags of what happens to unbroken images, and of the ensemble of attacks."""
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


def _add_explain(sub) -> None:
    """The ``explain`` subcommand."""
    e = _command(
        sub,
        "explain",
        "adversarial explanations (PNG) of a test image (--index) or of your own image (--image)",
        "Adversarial explanations (Woods et al.) of one image, saved as a PNG in --out.\n"
        "With --index and no --target: the test image's explanations toward every class, marking\n"
        "its true class and its runner-up. With --image FILE or --target K: four panels (the image,\n"
        "a saliency map, the explanation toward K and the change); K defaults to the runner-up of\n"
        "the prediction. --image is converted to the model's channels and resized to its input\n"
        "size (e.g. 1 x 28 x 28 for mnist5k); MNIST digits are light on dark.",
    )
    _add_model_source(e)
    e.add_argument("--dataset", default="mnist5k", help=f"test split and class names of --index: {_DATASETS}")
    src = e.add_mutually_exclusive_group()
    src.add_argument("--index", type=int, default=0, help="index into the dataset's test split")
    src.add_argument("--image", default=None, metavar="FILE", help="your own image (PNG, JPEG, GIF, WEBP)")
    e.add_argument(
        "--target", type=int, default=None, help="class to explain toward (if not given: see above)"
    )
    _add_search_flags(e, AE_PAPER, "the explanation search", rename={"eps": "rho"})
    e.add_argument("--out", default="data/results", help="folder of the PNG (and of --json without a path)")
    e.add_argument(
        "--png", default=None, metavar="FILE", help="the PNG file (if not given: in --out, named for it)"
    )
    e.add_argument("--json", default=None, metavar="FILE", help="also write what the figure shows as JSON")
    _add_quiet(e)
    e.set_defaults(run=_explain)


# ------------------------------------------------------------------------------------------ the commands
# Each imports what it runs here, so that a command loads only the rooms it uses.


def _device(name: str):
    """``torch.device(name)``, refusing a CUDA device the machine does not have."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise InputError(f"device: {name!r} is not a device name ({err})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device: {name!r} asked for, but this machine has no CUDA device; use --device cpu")
    return device


def _zoo(args) -> int:
    from .zoo import ship_checkpoint, trained_checkpoint

    device = _device(args.device)
    for name in args.recipes:
        path = trained_checkpoint(
            args.dataset, name, retrain=args.retrain, device=device, progress=_progress(args)
        )
        print(ship_checkpoint(path) if args.ship else path)
    return 0


def _source(args) -> str:
    """What the command scores: the checkpoint's path or the --model spec; exactly one of them."""
    if (args.checkpoint is None) == (args.model is None):
        raise InputError("model: give a CHECKPOINT or --model MODULE:CALLABLE (one of them)")
    if args.model is None and (args.weights or args.weights_key):
        raise InputError("weights: --weights and --weights-key go with --model")
    return args.checkpoint if args.model is None else args.model


def _load_model(args, device):
    """The network the arguments name, in eval mode, normalized with ``--normalize``; runs no pickled code."""
    from .checkpoints import load_model_state, load_weights
    from .models import with_normalization
    from .woods_import import import_woods_checkpoint
    from .zoo import model_from_checkpoint

    if args.model is not None:
        net = _user_network(args.model)
        if args.weights:
            load_model_state(net, load_weights(args.weights, key=args.weights_key), args.weights)
        elif args.weights_key:
            raise InputError("weights-key: given without --weights")
    else:
        try:
            net = model_from_checkpoint(args.checkpoint, device="cpu")
        except CheckpointError as err:
            try:  # the published files are full pickles, refused above: the importer reads them safely
                net = import_woods_checkpoint(args.checkpoint)
            except CheckpointError:
                raise CheckpointError(
                    f"{err}; a network of your own: --model MODULE:CALLABLE --weights {args.checkpoint}"
                ) from None
    if args.normalize:
        from .data import dataset_info

        mean, std = _normalization(args.normalize, dataset_info(args.dataset).channels)
        net = with_normalization(net, mean, std)
    return net.to(device).eval()


def _user_network(spec: str):
    """The network ``MODULE:CALLABLE()`` returns (the module imported from PYTHONPATH)."""
    from torch import nn

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"model: expected MODULE:CALLABLE, e.g. mynets:build, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise InputError(
            f"model: cannot import {module_name!r} ({err}); is its folder on PYTHONPATH?"
        ) from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise InputError(f"model: {module_name!r} has no callable {attr!r}")
    net = factory()
    if not isinstance(net, nn.Module):
        raise InputError(f"model: {spec}() returned a {type(net).__name__}, not a torch nn.Module")
    return net


def _normalization(text: str, channels: int) -> tuple[list, list]:
    """(mean, std) from "MEAN,STD" (for every channel) or C means then C stds."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"normalize: expected comma-separated numbers, got {text!r}") from None
    if len(values) == 2:
        return [values[0]] * channels, [values[1]] * channels
    if len(values) == 2 * channels:
        return values[:channels], values[channels:]
    raise InputError(
        f"normalize: expected MEAN,STD or {channels} means then {channels} stds ({2 * channels} numbers), "
        f"got {len(values)}"
    )


def _label(args) -> str:
    return Path(args.checkpoint).stem if args.checkpoint is not None else args.model.replace(":", "-")


def _ara(args) -> int:
    """The ``ara`` command: print the summary of :func:`_ara_record` (rank 0 alone under torchrun)."""
    import torch

    from . import distributed
    from .checkpoints import write_atomic
    from .data import load_tensors
    from .metrics import accuracy_robustness_area, ensemble_ara

    _source(args)
    attacks = _ensemble_attacks(args)
    config = _search_config(args)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if attacks and world > 1:
        raise InputError(
            f"ensemble: --ensemble runs in one process only (its foolbox attacks are not sharded), "
            f"but torchrun started {world}; run it without torchrun"
        )
    never_met = args.never_met or ("retry" if attacks else "raise")  # the library functions' defaults
    if world == 1:
        _device(args.device)
    device = distributed.init_from_env(args.device)  # launched by torchrun: join the group, shard images
    try:
        model = _load_model(args, device)
        x, y, images = load_tensors(args.dataset, "test", n=args.n_images, seed=args.seed, return_source=True)
        x, y = x.to(device), y.to(device)
        torch.manual_seed(args.seed)  # the boundary attack draws random starts
        settings = dict(kind=args.kind, config=config, progress=_progress(args))
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
    record = to_json(_ara_record(args, config, attacks, never_met, world, search, ens, images))
    summary = {k: v for k, v in record.items() if k not in _PER_IMAGE}
    print(json.dumps(summary, indent=1, allow_nan=False))
    text = json.dumps(record, indent=1, allow_nan=False) + "\n"
    for path in filter(
        None, [args.json, args.out and Path(args.out) / f"{_label(args)}-ara-{args.kind}.json"]
    ):
        write_atomic(path, lambda f: f.write(text.encode()))
        _note(args, f"wrote {path}")
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


def _ara_record(args, config, attacks, never_met, world, search, ens, images: str) -> dict:
    """The ``ara`` result, JSON-ready: settings, results, then the per-image lists (``_PER_IMAGE``)."""
    res = ens if ens is not None else search
    record = {
        "version": __version__,
        "source": str(_source(args)),
        "weights": args.weights,
        "normalize": args.normalize,
        "dataset": args.dataset,
        "images": images,
        "kind": args.kind,
        "n_images": args.n_images,
        "seed": args.seed,
        **dataclasses.asdict(config),
        "batch_size": args.batch_size,
        "never_met": never_met,
        "attacks": list(attacks) if attacks else None,
        "world_size": world,
        "num_classes": res.num_classes,
        "accuracy": res.accuracy,
        "ara": res.ara,
        "ara_95": res.interval().to_dict(),
        "median_distance": float(res.distances.median()),
        "n_unreliable": int(search.unreliable.sum()) if search is not None else None,
        "n_retried": int(search.retried.sum()) if search is not None else None,
    }
    if ens is not None:
        record.update(
            per_attack={a: float(v) for a, v in ens.per_attack.items()},
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


def _floats(t) -> list:
    """Per-image floats (an attack's failure: an infinite distance, "inf" in the JSON file)."""
    return t.double().cpu().tolist()


def _explain(args) -> int:
    import torch

    from .checkpoints import write_atomic
    from .data import dataset_info
    from .plotting import adversarial_explanation_panel

    _source(args)
    config = _search_config(args)
    device = _device(args.device)
    model = _load_model(args, device)
    x, y, dataset, name, images = _explained_image(args)
    x, classes = x.to(device), dataset_info(dataset).classes
    with torch.no_grad():
        p = model(x).softmax(1)[0]
    record = {
        "version": __version__,
        "source": str(_source(args)),
        "dataset": dataset,
        "images": images,  # where the image came from: a file, or the test images (CIFAR-10: which copy)
        "image": args.image if args.image is not None else args.index,
        "label": y,
        **dataclasses.asdict(config),
        "prediction": int(p.argmax()),
        "p_prediction": float(p.max()),
    }
    title = f"{_label(args)} on {args.image or f'{dataset} test image {args.index}'}"
    if args.image is None and args.target is None:
        fig = adversarial_explanation_panel(model, x, y, classes, config=config, title=title)
        record["targets"] = "every class"
    else:
        fig, views = _one_target(args, model, x, p, classes, config, title)
        record.update({k: views[k] for k in ("target", "reached", "p_target", "p_target_ae", "rmse")})
    # imagefolder:<path> names the folder in the file name, without the colon
    where = dataset if ":" not in dataset else f"imagefolder-{Path(dataset.split(':', 1)[1]).name}"
    png = Path(args.png) if args.png else Path(args.out) / f"{_label(args)}-{where}-{name}.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    record["png"] = str(png)
    if args.json:
        text = json.dumps(to_json(record), indent=1, allow_nan=False) + "\n"
        write_atomic(args.json, lambda f: f.write(text.encode()))
    print(png)
    return 0


def _one_target(args, model, x, p, classes, config, title) -> tuple:
    """(figure, views) of the explanation toward --target (default: the runner-up class)."""
    from .models import runner_up
    from .plotting import plot_views
    from .widgets import explorer_views

    if args.target is not None and not 0 <= args.target < p.shape[0]:
        raise InputError(f"target: expected a class in [0, {p.shape[0] - 1}], got {args.target}")
    target = args.target if args.target is not None else int(runner_up(p[None], p[None].argmax(1))[0])
    views = explorer_views(model, x, target, config=config)
    fig = plot_views(views, classes, title=title)
    fig.tight_layout()
    if not views["reached"]:
        _note(args, f"note: the explanation did not reach class {target}; try a larger --rho")
    return fig, views


def _explained_image(args) -> tuple:
    """(x (1 x C x H x W), label or None, dataset, file-name stem, where it came from) of ``explain``."""
    from .data import load_dataset, load_image

    if args.image is not None:
        channels, size, dataset = _input_of(args)
        x, original = load_image(args.image, channels=channels, size=size)
        _note(
            args,
            f"{args.image}: {original[0]}x{original[1]} image converted to {channels} channel(s) "
            f"and resized to {size}x{size}, the model's input size",
        )
        return x, None, dataset, Path(args.image).stem, str(args.image)
    ds = load_dataset(args.dataset, "test")
    if not 0 <= args.index < len(ds):
        raise InputError(f"index: expected 0 <= index < {len(ds)}, got {args.index}")
    x, y = ds[args.index]
    return x[None], int(y), args.dataset, str(args.index), ds.source


def _input_of(args) -> tuple[int, int, str]:
    """(channels, size, dataset) of the input: checkpoint metadata, else --dataset's (Woods': CIFAR-10)."""
    from .checkpoints import load_checkpoint
    from .data import dataset_info

    if args.checkpoint is None:
        info = dataset_info(args.dataset)
        return info.channels, info.size, args.dataset
    try:
        meta = load_checkpoint(args.checkpoint).get("meta") or {}
    except CheckpointError:
        info = dataset_info("cifar10")
        return info.channels, info.size, info.name
    dataset = meta.get("recipe", {}).get("dataset", args.dataset)
    info, kwargs = dataset_info(dataset), meta.get("model_kwargs", {})
    return int(kwargs.get("in_channels", info.channels)), int(kwargs.get("image_size", info.size)), dataset


def _train(args) -> int:
    from dataclasses import replace

    from . import distributed
    from .zoo import recipe, train_recipe

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
    checkpoint = (
        Path(args.checkpoint) if args.checkpoint else Path(args.out) / f"{r.dataset}-{r.name}-{r.hash}.pt"
    )
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        _device(args.device)
    device = distributed.init_from_env(args.device)  # launched by torchrun: join the group, DDP follows
    try:
        _, history = train_recipe(r, device=device, checkpoint=checkpoint, progress=_progress(args))
    finally:
        distributed.shutdown()
    if int(os.environ.get("RANK", "0")) == 0:  # torchrun's rank (the group is already closed): print once
        print(json.dumps({"checkpoint": str(checkpoint), **history[-1]}, indent=1))
    return 0
