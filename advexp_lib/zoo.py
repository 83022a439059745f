"""The model zoo: a trained model for every (dataset, recipe), cached on disk and loaded safely.

Looked up in the cache ``data/zoo/`` (key: :func:`~advexp_lib.recipes.config_hash` of every setting that
affects the weights, ``Recipe.version`` included), then a checkpoint shipped in the package (trained here,
never downloaded; ``python -m advexp_lib zoo --retrain --ship``), else trained now. Re-exports ``Recipe``,
``recipe``, ``recipe_names``, ``variant`` and ``config_hash`` of :mod:`advexp_lib.recipes`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .checkpoints import load_checkpoint, load_model_state, save_checkpoint
from .checks import AdvexpError, CheckpointError, InputError, InputTypeError, check_choice
from .data import data_root, load_dataset
from .models import build_model
from .published import BOOPATHY_FILES, BOOPATHY_NETWORKS, WOODS_RECIPE_FILES, boopathy_model, published_model
from .recipes import Recipe, config_hash, recipe, recipe_names, variant  # noqa: F401 (re-exported)
from .training import train

__all__ = [
    "SHIPPED_DIR",
    "SOURCES",
    "zoo_dir",
    "get_model",
    "get_models",
    "get_history",
    "trained_checkpoint",
    "train_recipe",
    "model_from_checkpoint",
    "model_for",
    "ship_checkpoint",
    "Recipe",
    "recipe",
    "recipe_names",
    "variant",
    "config_hash",
]

SHIPPED_DIR = Path(__file__).resolve().parent / "checkpoints"
SOURCES = ("auto", "advexp", "woods2019", "boopathy2020")


def zoo_dir() -> Path:
    """Where trained models are cached: ``zoo/`` beside the dataset folder (default ``data/zoo``)."""
    return data_root().parent / "zoo"


def train_recipe(
    r: Recipe, *, device="cpu", checkpoint=None, progress=True, resume=True, train_data=None, test_data=None
):
    """Build and train the recipe's model (seeded); return (model in eval mode, history).

    ``train_data``, ``test_data``: Datasets replacing the recipe's splits (e.g. for tuning). Default None.
    """
    _check_recipe(r)
    torch.manual_seed(r.train.seed)  # the init; the loop reseeds per epoch itself
    model = build_model(**r.model_kwargs).to(device)
    loss_term, transform = (make() if make else None for make in (r.make_loss_term, r.make_input_transform))
    if train_data is None:
        train_data = load_dataset(r.dataset, "train", augment=r.augment)
    history = train(
        model,
        train_data,
        r.train,
        test_data=load_dataset(r.dataset, "test") if test_data is None else test_data,
        loss_term=loss_term,
        input_transform=transform,
        device=device,
        checkpoint=checkpoint,
        resume=resume,
        progress=progress,
        meta={"recipe": r.describe(), "config_hash": r.hash, "model_kwargs": r.model_kwargs},
    )
    return model.eval(), history


def model_from_checkpoint(path, *, device="cpu") -> nn.Module:
    """Rebuild the model stored in an advexp checkpoint (safe load); eval mode."""
    return _model_from(load_checkpoint(path), path, device)


def _model_from(ckpt: dict, path, device) -> nn.Module:
    meta = ckpt.get("meta")
    kwargs = meta.get("model_kwargs") if isinstance(meta, dict) else None
    if not isinstance(kwargs, dict) or not kwargs:
        raise CheckpointError(f"checkpoint: {path} has no model description (meta.model_kwargs)")
    try:
        model = build_model(**kwargs)
    except (AdvexpError, TypeError) as err:
        raise CheckpointError(
            f"checkpoint: {path} describes a model this library cannot build: {err}"
        ) from None
    load_model_state(model, ckpt.get("model"), path)
    return model.to(device).eval()


def get_model(
    dataset: str = "mnist5k",
    name: str = "standard",
    *,
    source: str = "auto",
    device="cpu",
    retrain: bool = False,
    progress: bool = True,
    **overrides,
) -> nn.Module:
    """Trained model for (dataset, recipe) in eval mode.

    Args:
        source: "advexp": this project's (cache, shipped file, or trained now). "woods2019": the ResNet-44
            Woods et al. published (CIFAR-10; standard, adv, robust, all; hash-checked, safe import,
            :func:`advexp_lib.published.published_model`). "boopathy2020": Boopathy et al.'s network
            ``name`` ("mnist", "cifar10"; :func:`advexp_lib.published.boopathy_model`), a SmallGap.
            "auto" (default): "woods2019" where it applies without ``retrain`` / ``overrides``, else "advexp".
        retrain: ignore cache and shipped files and train from scratch. Default False.
        overrides: TrainConfig fields to change (and so the cache key).
    """
    check_choice(source, "source", SOURCES)
    if source == "boopathy2020":
        if dataset not in BOOPATHY_FILES or retrain or overrides:
            raise InputError(
                f"source: 'boopathy2020' has the published networks ({', '.join(BOOPATHY_NETWORKS)}) "
                f"for {' and '.join(BOOPATHY_FILES)} only, as published (no retrain or overrides); "
                f"got dataset {dataset!r}"
            )
        return boopathy_model(name, dataset, device=device)
    r = recipe(dataset, name, **overrides)
    published = dataset == "cifar10" and name in WOODS_RECIPE_FILES
    if source == "woods2019" and (not published or retrain or overrides):
        raise InputError(
            f"source: 'woods2019' has the published CIFAR-10 networks of {sorted(WOODS_RECIPE_FILES)} only, "
            f"as published (no retrain, no overrides); got dataset {dataset!r}, recipe {name!r}"
        )
    if source == "woods2019" or (source == "auto" and published and not retrain and not overrides):
        return published_model(name, device=device)
    return model_for(r, device=device, retrain=retrain, progress=progress)


def get_models(dataset: str, names, **kwargs) -> dict:
    """{name: :func:`get_model` (dataset, name, **kwargs)} for several recipes, in the order given."""
    return {name: get_model(dataset, name, **kwargs) for name in names}


def model_for(r: Recipe, *, device="cpu", retrain: bool = False, progress: bool = True) -> nn.Module:
    """Trained model of any recipe (e.g. a :func:`~advexp_lib.recipes.variant`) in eval mode.

    From the cache, a shipped file, or trained now, as :func:`get_model`. Shipped files:
    ``<dataset>-<name>.pt`` (table recipes), ``<dataset>-<name>-<hash>.pt`` (variants).
    """
    _check_recipe(r)
    path, ckpt = _resolve(r, retrain=retrain, device=device, progress=progress)
    return _model_from(ckpt, path, device)


def trained_checkpoint(
    dataset: str = "mnist5k",
    name: str = "standard",
    *,
    retrain: bool = False,
    device="cpu",
    progress: bool = True,
    **overrides,
) -> Path:
    """Path of the finished checkpoint of (dataset, recipe): cache, shipped file, or trained now."""
    return _resolve(recipe(dataset, name, **overrides), retrain=retrain, device=device, progress=progress)[0]


def ship_checkpoint(path) -> Path:
    """Copy a finished zoo checkpoint into ``SHIPPED_DIR`` (named as :func:`model_for` says), atomically.

    Optimizer and scheduler state are dropped; config hash, history and weights kept.
    """
    ckpt = load_checkpoint(path)
    r, h = ckpt["meta"]["recipe"], ckpt["meta"]["config_hash"]
    state = {k: v for k, v in ckpt.items() if k not in ("format", "optimizer", "scheduler")}
    return save_checkpoint(_shipped_path(r["dataset"], r["name"], h), state)


def _check_recipe(r) -> None:
    if not isinstance(r, Recipe):
        raise InputTypeError(
            f"r: expected a zoo.Recipe (e.g. zoo.recipe('mnist5k', 'standard')), got {type(r).__name__}"
        )


def _shipped_path(dataset: str, name: str, h: str) -> Path:
    table = recipe(dataset, name).hash == h
    return SHIPPED_DIR / (f"{dataset}-{name}.pt" if table else f"{dataset}-{name}-{h}.pt")


def get_history(dataset: str = "mnist5k", name: str = "standard", **overrides) -> list[dict]:
    """Per-epoch training history of (dataset, recipe), training it first if needed."""
    return _resolve(recipe(dataset, name, **overrides))[1]["history"]


def _resolve(r: Recipe, *, retrain=False, device="cpu", progress=True) -> tuple[Path, dict]:
    """(path, its loaded checkpoint) of the finished run of ``r``: each file is read once."""
    h = r.hash
    cached = zoo_dir() / f"{r.dataset}-{r.name}-{h}.pt"
    shipped = _shipped_path(r.dataset, r.name, h)
    cached_ckpt = load_checkpoint(cached) if cached.is_file() else None  # read once, judged twice below
    if not retrain:
        if cached_ckpt is not None and _complete(cached_ckpt, r, h):
            return cached, cached_ckpt
        shipped_ckpt = load_checkpoint(shipped) if shipped.is_file() else None
        if shipped_ckpt is not None and _complete(shipped_ckpt, r, h):
            return shipped, shipped_ckpt
    # continue an interrupted run of this recipe, unless the architecture changed under it
    resume = not retrain and cached_ckpt is not None and _fits(cached_ckpt, r)
    train_recipe(r, device=device, checkpoint=cached, progress=progress, resume=resume)
    return cached, load_checkpoint(cached)


def _complete(ckpt: dict, r: Recipe, h: str) -> bool:
    """A finished run of exactly this recipe whose weights fit today's architecture (else stale)."""
    done = ckpt.get("meta", {}).get("config_hash") == h and int(ckpt["epoch"]) == r.train.num_epochs
    return done and _fits(ckpt, r)


def _fits(ckpt: dict, r: Recipe) -> bool:
    expected = {k: tuple(v.shape) for k, v in build_model(**r.model_kwargs).state_dict().items()}
    return {k: tuple(v.shape) for k, v in ckpt["model"].items()} == expected
