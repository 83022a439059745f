"""Named training recipes per dataset, and a model cache keyed by the full config.

``get_model(dataset, recipe)`` returns a trained model in eval mode: from the
cache under ``data/zoo/``, else from a checkpoint shipped with the package
(trained by this project with the same config and seed; never downloaded),
else by training it now (with progress). The cache key is a hash of
everything that affects the weights: the recipe's every field, including
``version``, which is bumped whenever a hook's code changes numerics.
Retrain the shipped checkpoints with ``python -m advexp_lib zoo --retrain``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn

from .checks import AdvexpError, CheckpointError, InputError, InputTypeError, check_choice
from .data import dataset_info, load_dataset
from .models import build_model
from .training import TrainConfig, _load_model_state, load_checkpoint, train
from .woods_import import import_woods_checkpoint  # the paper's published CIFAR-10 ResNet-44s

__all__ = ["Recipe", "RECIPES", "recipe", "recipe_names", "config_hash", "get_model", "get_history",
           "train_recipe", "model_from_checkpoint", "zoo_dir", "SHIPPED_DIR", "HOOKS", "trained_checkpoint",
           "ship_checkpoint",
           "import_woods_checkpoint"]

SHIPPED_DIR = Path(__file__).resolve().parent / "checkpoints"


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a trained model's weights.

    ``loss_term`` / ``input_transform``: (hook name in :data:`HOOKS`, keyword
    arguments) or None. ``version`` is bumped when a hook's numerics change.
    """

    name: str
    dataset: str
    arch: str
    activation: str = "relu"
    train: TrainConfig = TrainConfig()
    loss_term: tuple[str, dict] | None = None
    input_transform: tuple[str, dict] | None = None
    version: int = 1

    def describe(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


def _standard(dataset: str) -> Recipe:
    if dataset == "cifar10":  # Woods et al.: ResNet-44, SGD 0.1, 200 epochs, lr / 10 at 170 and 195
        return Recipe("standard", dataset, "resnet44", train=TrainConfig(
            num_epochs=200, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4,
            schedule="step", milestones=(170, 195)))
    # 28 x 28 digits: 12 Adam epochs with cosine decay reach ~98% on mnist5k in ~10 s on 2 cores
    return Recipe("standard", dataset, "small_cnn", train=TrainConfig(
        num_epochs=12, batch_size=64, optimizer="adam", lr=2e-3, schedule="cosine"))


# Woods et al. settings: (L_target, k_psi0) of the adaptive psi, l2 / l2min adversarial-training eps, and the
# half-Huber activation. CIFAR-10 values are the paper's; mnist5k values come from the sweep in _woods's docstring.
_WOODS_CIFAR = dict(target=1.5, k_psi0=220.0, adv_eps=0.01, l2min_eps=0.1, activation="half_huber")
_WOODS_MNIST = dict(target=1.2, k_psi0=1.0, adv_eps=0.05, l2min_eps=0.1, activation="half_huber(1.5)")


def _woods(name: str):
    """Recipe factory for the Woods et al. recipes ``adv``, ``robust`` and ``all``.

    - adv: l2 adversarial training (RMSE search, mode "l2", 7 steps) on a random half of each batch;
    - robust: half-Huber ReLU + L_adv (z 2, zeta 0.2) with adaptive psi;
    - all: robust + half-and-half "l2min" adversarial training (7 steps).

    mnist5k: the small CNN and the standard recipe's optimizer (12 Adam epochs);
    k_psi0 1 (the controller only raises psi, so k_psi0 is its floor; the
    paper's 220 is tuned to CIFAR-10's ResNet-44); adv eps 0.05 RMSE (0.01
    barely moves 28 x 28 digits, whose standard-model median minimal RMSE is
    ~0.04); half-Huber width d = 1.5 and L_target 1.2, chosen by a sweep of
    the robust recipe. Sweep figures: test accuracy; Attack / BTR ARA on the
    first 200 of the 1,000 ARA test images (seed 1776, paper ARA settings), so
    the 1,000-image figures in the docs are not fully held out; standard:
    0.981; 0.0357 / 0.0416. Each row: ``python benchmarks/tune_woods_mnist.py
    robust '{"d": 1.5, "target": 1.2}'`` (keys in that script):

        d 0.5, L_target 0.3 / 0.5 / 0.8 / 1.5:  0.978; 0.0592 / 0.0852   0.973; 0.0623 / 0.0898
                                                0.971; 0.0633 / 0.0918   0.962; 0.0656 / 0.0927
        d 0.5, L_target 0.5, 24 epochs:         0.970; 0.0643 / 0.0907
        d 0.5, L_target 0.8, zeta 0.5 / 1.0:    0.965; 0.0644 / 0.0937   0.963; 0.0601 / 0.0889
        d 0.1 / 1.5 / 2 / 3, L_target 1.5:      0.951; 0.0590 / 0.0848   0.956; 0.0705 / 0.0987
                                                0.951; 0.0712 / 0.1010   0.945; 0.0705 / 0.1041
        d 1.5, L_target 1.0 / 1.2:              0.963; 0.0698 / 0.0994   0.961; 0.0710 / 0.0996
        all (l2min eps 0.1), d 1.5, L_target 1.2: 0.959; 0.0730 / 0.1040 (eps 0.2, d 0.5: 0.955; 0.0733)

    Then Attack ARA on all 1,000 ARA images (``--n-images 1000 --kinds attack``;
    standard 0.0357; the chosen d 1.5, L_target 1.2: 0.962; 0.0687):

        k_psi 0.04 / 0.01:     0.955; 0.0679   0.982; 0.0628   zeta 0.35:  0.960; 0.0685
        batch 128:             0.974; 0.0620   d 1.25:         0.958; 0.0677
        d 2, L_target 1.0:     0.960; 0.0680

    Last, held out (``--holdout --n-images 1000 --kinds attack``): trained on
    3,000 training images, scored on the other 1,000 (100 per class), so no
    test image takes part; standard 0.967; 0.0380, the chosen robust 0.963;
    0.0679 (1.79x), all 0.952; 0.0658 (1.73x):

        k_psi0 30:             0.949; 0.0669   batch 32:       0.950; 0.0665
        k_psi 0.015, 16 epochs: 0.966; 0.0670  k_psi 0.01, 24 epochs: 0.971; 0.0657
        lr 1e-3:               0.949; 0.0676   SGD (momentum 0.9) lr 0.05: 0.940; 0.0382
        SGD lr 0.02: collapsed to chance (0.100): psi outgrows plain SGD steps
        twice the width (conv 32/64, fc 256; a scratch patch, not a recipe):
                               standard 0.968; 0.0393, robust 0.969; 0.0671 (1.71x)
        +-2 px random shifts for both (scratch patch): standard 0.970; 0.0311,
                               robust 0.966; 0.0620 (1.99x, but both models are less robust)

    With d = 0.5 (the paper's) Attack ARA saturates near 1.8x standard; a wider
    quadratic zone (d 1.5) lifts it to 1.9x (1.93x on the 1,000 test images,
    1.79x held out), and no other setting tried beats that at >= 95% accuracy:
    the 2x goal is not met. The shifts reach ~2x only by lowering the standard
    model's ARA more than the robust one's, so they were not adopted.
    """

    def make(dataset: str) -> Recipe:
        base = _standard(dataset)
        p = _WOODS_CIFAR if dataset == "cifar10" else _WOODS_MNIST
        ladv = ("woods_ladv", dict(z=2.0, zeta=0.2, target=p["target"], k_psi0=p["k_psi0"], k_psi=0.02,
                                   eps_better=1.0, eps_worse=0.01))
        if name == "adv":
            return replace(base, name=name, input_transform=("rmse_adv", dict(mode="l2", eps=p["adv_eps"], steps=7)))
        robust = replace(base, name=name, activation=p["activation"], loss_term=ladv)
        if name == "robust":
            return robust
        return replace(robust, input_transform=("rmse_adv", dict(mode="l2min", eps=p["l2min_eps"], steps=7)))

    return make


def _woods_ladv(*, target, k_psi0, k_psi, eps_better, eps_worse, **kw):
    from .regularizers import AdaptivePsi, WoodsRegularizer

    return WoodsRegularizer(psi=AdaptivePsi(target, k_psi0, k_psi, eps_better, eps_worse), **kw)


def _rmse_adv(**kw):
    from .attacks import RmseAdversarialTraining

    return RmseAdversarialTraining(**kw)


# name -> function(dataset) -> Recipe; advexp_lib.recipes_companion adds the companion papers' recipes
RECIPES: dict[str, callable] = {"standard": _standard, "adv": _woods("adv"), "robust": _woods("robust"),
                                "all": _woods("all")}
# hook name -> factory(**kwargs) -> BatchHook
HOOKS: dict[str, callable] = {"woods_ladv": _woods_ladv, "rmse_adv": _rmse_adv}


def recipe_names() -> list[str]:
    return list(RECIPES)


def recipe(dataset: str, name: str, **overrides) -> Recipe:
    """The recipe ``name`` for ``dataset``; ``overrides`` replace TrainConfig fields (e.g. num_epochs)."""
    check_choice(name, "recipe", RECIPES)
    dataset_info(dataset)  # validates the dataset name
    r = RECIPES[name](dataset)
    if overrides:
        bad = set(overrides) - set(asdict(r.train))
        if bad:
            raise InputError(f"overrides: unknown TrainConfig field(s) {sorted(bad)}; valid: {sorted(asdict(r.train))}")
        r = replace(r, train=replace(r.train, **overrides))
    return r


def config_hash(r: Recipe) -> str:
    """sha256 (first 16 hex digits) of the recipe's canonical JSON."""
    return hashlib.sha256(json.dumps(r.describe(), sort_keys=True).encode()).hexdigest()[:16]


def zoo_dir() -> Path:
    from .data import data_root

    return data_root().parent / "zoo"


def model_kwargs(r: Recipe) -> dict:
    info = dataset_info(r.dataset)
    return dict(arch=r.arch, num_classes=info.num_classes, in_channels=info.channels,
                activation=r.activation, mean=list(info.mean), std=list(info.std), image_size=info.size)


def build_hooks(r: Recipe):
    """Instantiate the recipe's (loss_term, input_transform)."""
    made = []
    for spec in (r.loss_term, r.input_transform):
        if spec is None:
            made.append(None)
            continue
        name, kwargs = spec
        check_choice(name, "hook", HOOKS)
        made.append(HOOKS[name](**kwargs))
    return tuple(made)


def train_recipe(r: Recipe, *, device="cpu", checkpoint=None, progress=True, resume=True,
                 train_data=None, test_data=None):
    """Build and train the recipe's model (seeded); return (model in eval mode, history).

    Args:
        train_data, test_data: Datasets replacing the recipe dataset's train /
            test splits (e.g. a validation split for tuning). Default None.
    """
    if not isinstance(r, Recipe):
        raise InputTypeError(f"r: expected a zoo.Recipe (e.g. zoo.recipe('mnist5k', 'standard')), "
                             f"got {type(r).__name__}")
    torch.manual_seed(r.train.seed)  # the init; the loop reseeds per epoch itself
    kwargs = model_kwargs(r)
    model = build_model(**kwargs).to(device)
    loss_term, transform = build_hooks(r)
    if train_data is None:
        train_data = load_dataset(r.dataset, "train", augment=r.dataset == "cifar10")
    history = train(model, train_data, r.train,
                    test_data=load_dataset(r.dataset, "test") if test_data is None else test_data,
                    loss_term=loss_term,
                    input_transform=transform, device=device, checkpoint=checkpoint, resume=resume,
                    progress=progress, meta={"recipe": r.describe(), "config_hash": config_hash(r),
                                             "model_kwargs": kwargs})
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
        raise CheckpointError(f"checkpoint: {path} describes a model this library cannot build: {err}") from None
    _load_model_state(model, ckpt.get("model"), path)
    return model.to(device).eval()


def get_model(dataset: str = "mnist5k", name: str = "standard", *, device="cpu", retrain: bool = False,
              progress: bool = True, **overrides) -> nn.Module:
    """Trained model for (dataset, recipe) in eval mode: cache, shipped file, or train now.

    Args:
        retrain: ignore cache and shipped files and train from scratch. Default False.
        overrides: TrainConfig fields to change (changes the hash, so the cache key).
    """
    path, ckpt = _resolve(recipe(dataset, name, **overrides), retrain=retrain, device=device, progress=progress)
    return _model_from(ckpt, path, device)


def trained_checkpoint(dataset: str = "mnist5k", name: str = "standard", *, retrain: bool = False,
                       device="cpu", progress: bool = True, **overrides) -> Path:
    """Path of the finished checkpoint of (dataset, recipe): cache, shipped file, or trained now."""
    return _resolve(recipe(dataset, name, **overrides), retrain=retrain, device=device, progress=progress)[0]


def ship_checkpoint(path) -> Path:
    """Copy a finished zoo checkpoint into the package (``SHIPPED_DIR/<dataset>-<recipe>.pt``).

    Optimizer state is dropped (a shipped model is for evaluation, not for
    resuming); config hash, history and weights are kept. Atomic write.
    """
    from .training import save_checkpoint

    ckpt = load_checkpoint(path)
    r = ckpt["meta"]["recipe"]
    state = {k: v for k, v in ckpt.items() if k not in ("format", "optimizer", "scheduler")}
    return save_checkpoint(SHIPPED_DIR / f"{r['dataset']}-{r['name']}.pt", state)


def get_history(dataset: str = "mnist5k", name: str = "standard", **overrides) -> list[dict]:
    """Per-epoch training history of (dataset, recipe), training it first if needed."""
    return _resolve(recipe(dataset, name, **overrides))[1]["history"]


def _resolve(r: Recipe, *, retrain=False, device="cpu", progress=True) -> tuple[Path, dict]:
    """(path, its loaded checkpoint) of the finished run of ``r``: each file is read once."""
    h = config_hash(r)
    cached = zoo_dir() / f"{r.dataset}-{r.name}-{h}.pt"
    shipped = SHIPPED_DIR / f"{r.dataset}-{r.name}.pt"
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
    """A finished run of exactly this recipe whose weights fit today's architecture.

    The shape check catches a model class changed in code without a recipe
    ``version`` bump: such a file is stale and is retrained, never half-loaded.
    """
    done = ckpt.get("meta", {}).get("config_hash") == h and int(ckpt["epoch"]) == r.train.num_epochs
    return done and _fits(ckpt, r)


def _fits(ckpt: dict, r: Recipe) -> bool:
    expected = {k: tuple(v.shape) for k, v in build_model(**model_kwargs(r)).state_dict().items()}
    return {k: tuple(v.shape) for k, v in ckpt["model"].items()} == expected


from . import recipes_companion  # noqa: E402,F401 - registers the companion papers' recipes (imports zoo)
