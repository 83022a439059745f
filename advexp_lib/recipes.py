"""Every training recipe of the book in one table, each resolved once into a plain frozen spec.

:func:`recipe` gives a :class:`Recipe` (arch, activation, TrainConfig, hooks named in :data:`HOOKS`) from
which the zoo trains. :data:`RECIPES`: Woods et al. (2019)'s four; CAM-ready ones after Boopathy et al.
(2020), Chalasani et al. (2020), Chen et al. (2019); logistic regression; Boopathy et al.'s ``smallgap``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

from .adversarial_training import PgdAdversarialTraining, RmseAdversarialTraining
from .checks import InputError, check_choice
from .data import dataset_info
from .protocols import PGD_CIFAR10, PGD_MNIST
from .regularizers import (
    IGNormRegularizer,
    InterpretabilityRegularizer,
    L1Penalty,
    WoodsRegularizer,
)
from .training import TrainConfig

__all__ = [
    "Recipe",
    "RECIPES",
    "HOOKS",
    "recipe",
    "recipe_names",
    "variant",
    "config_hash",
    "linf_settings",
]


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a trained model's weights, resolved once.

    Set: ``name``, ``dataset``, ``arch``, ``activation``, ``train``, ``version`` (bumped when a hook's
    numerics change), ``loss_term`` / ``input_transform`` ((name in :data:`HOOKS`, kwargs) or None).
    Derived, also by ``dataclasses.replace``: ``model_kwargs`` (of :func:`~advexp_lib.models.build_model`),
    ``augment`` (CIFAR-10), ``make_loss_term`` / ``make_input_transform`` (hook factories), ``hash``.
    """

    name: str
    dataset: str
    arch: str
    activation: str = "relu"
    train: TrainConfig = TrainConfig()
    loss_term: tuple[str, dict] | None = None
    input_transform: tuple[str, dict] | None = None
    version: int = 1
    model_kwargs: dict = field(init=False, repr=False, compare=False)
    augment: bool = field(init=False, repr=False, compare=False)
    make_loss_term: object = field(init=False, repr=False, compare=False)
    make_input_transform: object = field(init=False, repr=False, compare=False)
    hash: str = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        info = dataset_info(self.dataset)
        derived = {
            "model_kwargs": dict(
                arch=self.arch,
                num_classes=info.num_classes,
                in_channels=info.channels,
                activation=self.activation,
                mean=list(info.mean),
                std=list(info.std),
                image_size=info.size,
            ),
            "augment": self.dataset == "cifar10",
            "make_loss_term": _factory(self.loss_term),
            "make_input_transform": _factory(self.input_transform),
            "hash": hashlib.sha256(json.dumps(self.describe(), sort_keys=True).encode()).hexdigest()[:16],
        }
        for k, v in derived.items():
            object.__setattr__(self, k, v)

    def describe(self) -> dict:
        """The recipe's set fields as plain JSON data (what :func:`config_hash` hashes)."""
        keys = ("name", "dataset", "arch", "activation", "loss_term", "input_transform", "version")
        return json.loads(json.dumps({**{k: getattr(self, k) for k in keys}, "train": asdict(self.train)}))


def _factory(hook):
    """``HOOKS[name]`` with the hook's keyword arguments bound (a zero-argument factory), or None."""
    if hook is None:
        return None
    name, kwargs = hook
    return functools.partial(HOOKS[check_choice(name, "hook", HOOKS)], **kwargs)


# --------------------------------------------------------------------------------- Woods et al. (2019)

# 2: the search, the adaptive psi and the ResNet initialization as the reference computes them
_WOODS_VERSION = 2
# (L_target, k_psi0) of the adaptive psi, l2 / l2min adversarial-training eps, and the activation
_WOODS_CIFAR = dict(target=1.5, k_psi0=220.0, adv_eps=0.01, l2min_eps=0.1, activation="half_huber")
_WOODS_MNIST = dict(target=1.2, k_psi0=1.0, adv_eps=0.05, l2min_eps=0.1, activation="half_huber(1.5)")


def standard(dataset: str) -> Recipe:
    """Plain training: ResNet-44 on CIFAR-10 (the paper's schedule), the small CNN on 28 x 28 data."""
    if dataset == "cifar10":
        return Recipe(
            "standard",
            dataset,
            "resnet44",
            train=TrainConfig(
                num_epochs=200,
                batch_size=128,
                optimizer="sgd",
                lr=0.1,
                momentum=0.9,
                weight_decay=1e-4,
                schedule="step",
                milestones=(170, 195),
            ),
            version=_WOODS_VERSION,
        )
    return Recipe(
        "standard",
        dataset,
        "small_cnn",
        train=TrainConfig(num_epochs=12, batch_size=64, optimizer="adam", lr=2e-3, schedule="cosine"),
        version=_WOODS_VERSION,
    )


def adv(dataset: str) -> Recipe:
    """Woods et al.'s adversarial training: the RMSE search in the paper's "l2" mode, 7 steps, whole batch."""
    p = _woods_settings(dataset)
    return replace(
        standard(dataset),
        name="adv",
        input_transform=("rmse_adv", dict(minimal=False, eps=p["adv_eps"], steps=7)),
    )


def robust(dataset: str) -> Recipe:
    """The robust additions: half-Huber ReLU and L_adv with adaptive psi."""
    p = _woods_settings(dataset)
    ladv = (
        "woods_ladv",
        dict(
            z=2.0,
            zeta=0.2,
            target=p["target"],
            k_psi0=p["k_psi0"],
            k_psi=0.02,
            eps_better=1.0,
            eps_worse=0.01,
        ),
    )
    return replace(standard(dataset), name="robust", activation=p["activation"], loss_term=ladv)


def all_(dataset: str) -> Recipe:
    """The robust additions plus "l2min" adversarial training (7 steps) on a random half of each batch."""
    p = _woods_settings(dataset)
    return replace(
        robust(dataset),
        name="all",
        input_transform=("rmse_adv", dict(minimal=True, eps=p["l2min_eps"], steps=7, half=True)),
    )


def _woods_settings(dataset: str) -> dict:
    return _WOODS_CIFAR if dataset == "cifar10" else _WOODS_MNIST


# ------------------------------------------------------------------ Boopathy et al., Chalasani et al.


def linf_settings(dataset: str, *, steps: int = 5, training: bool = True, warmup_epochs: int = 5) -> dict:
    """l-inf budget and PGD settings for ``dataset``: dict(eps, steps, step_size, warmup_epochs).

    CIFAR-10: eps 8/255, 10 x 2/255, 5 warm-up epochs (Boopathy et al.). mnist5k training: eps 0.3,
    ``steps`` steps of 2.5 eps / steps. Otherwise: 40 x 0.01 at eps 0.3, warm-up 2 (0 if not ``training``).
    """
    if dataset == "cifar10":
        return {**asdict(PGD_CIFAR10), "warmup_epochs": 5}
    if dataset == "mnist5k" and training:
        return {
            "eps": PGD_MNIST.eps,
            "steps": steps,
            "step_size": round(2.5 * PGD_MNIST.eps / steps, 6),
            "warmup_epochs": warmup_epochs,
        }
    return {**asdict(PGD_MNIST), "warmup_epochs": 2 if training else 0}


def cam_standard(dataset: str) -> Recipe:
    """Natural training of the CAM-ready arch: the same-architecture baseline of the recipes below."""
    return Recipe(
        "cam_standard",
        dataset,
        _cam_arch(dataset),
        train=_cam_train(dataset, 30, 3e-3),
        version=_version(dataset),
    )


def pgd_linf(dataset: str) -> Recipe:
    """Madry l-inf PGD adversarial training (Chalasani et al. 2020: MNIST eps 0.3, random start)."""
    return Recipe(
        "pgd_linf",
        dataset,
        _cam_arch(dataset),
        train=_cam_train(dataset),
        input_transform=("pgd_linf", dict(linf_settings(dataset, steps=5), random_start=True)),
        version=_version(dataset),
    )


def int_(dataset: str) -> Recipe:
    """Boopathy et al. (2020) Int: CE + 0.01 D~(x, x'), x' maximizing D~ by PGD."""
    return Recipe(
        "int",
        dataset,
        _cam_arch(dataset),
        train=_cam_train(dataset, 15),
        loss_term=("interpretability", dict(linf_settings(dataset, steps=3), lambda_=0.01, variant="int")),
        version=_version(dataset),
    )


def int2(dataset: str) -> Recipe:
    """Boopathy et al. (2020) Int2: CE + 0.01 D~(x, x'), x' from plain PGD on CE."""
    return Recipe(
        "int2",
        dataset,
        _cam_arch(dataset),
        train=_cam_train(dataset, 15),
        loss_term=("interpretability", dict(linf_settings(dataset, steps=3), lambda_=0.01, variant="int2")),
        version=_version(dataset),
    )


def l1(dataset: str) -> Recipe:
    """Chalasani et al.'s l1 baseline: lambda 2e-4 on the mean loss (their 0.01 on sums of 50 losses)."""
    return Recipe(
        "l1",
        dataset,
        _cam_arch(dataset),
        train=_cam_train(dataset, 30, 3e-3),
        loss_term=("l1", {"lambda_": 2e-4}),
        version=2,
    )


def logreg(dataset: str) -> Recipe:
    """Multi-class logistic regression (arch ``linear``), natural training: Chalasani et al.'s theorem."""
    return Recipe("logreg", dataset, "linear", train=_logreg_train())


def logreg_l1(dataset: str) -> Recipe:
    """Logistic regression with l1 regularization of every parameter, lambda 2e-4 (as ``l1``)."""
    return Recipe("logreg_l1", dataset, "linear", train=_logreg_train(), loss_term=("l1", {"lambda_": 2e-4}))


def logreg_pgd(dataset: str) -> Recipe:
    """Logistic regression with l-inf PGD adversarial training, eps 0.3 (as ``pgd_linf``; change ``eps``)."""
    settings = dict(linf_settings(dataset, steps=5), random_start=True)
    return Recipe(
        "logreg_pgd", dataset, "linear", train=_logreg_train(), input_transform=("pgd_linf", settings)
    )


def _logreg_train() -> TrainConfig:
    return TrainConfig(num_epochs=20, batch_size=64, optimizer="adam", lr=5e-3, schedule="cosine")


def ig_norm(dataset: str) -> Recipe:
    """Chen et al. (2019) IG-NORM: CE + ||IG of the loss from x to x'||_1, x' from PGD."""
    return Recipe(
        "ig_norm",
        dataset,
        _cam_arch(dataset),
        train=_cam_train(dataset, 8),
        loss_term=(
            "ig_norm",
            dict(
                linf_settings(dataset, steps=3, warmup_epochs=3),
                lambda_=0.1 if dataset == "mnist5k" else 1.0,
                n_steps=2,
            ),
        ),
        version=_version(dataset),
    )


# Boopathy et al.'s train.py (MNIST): Adam lr 1e-4, batch 50, 100 epochs of 55,000 digits; PGD 40 x 0.01
# at eps 0.3; eps 0 up to step 2,000, then linear to 10,000; lambda 0.01. On mnist5k every arm gets 8 epochs
# (640 steps), lr 3e-3 (chosen on a validation split) and the ramp kept in passes over the data, not steps.
_SMALLGAP_REFERENCE = dict(epochs=100, lr=1e-4, ramp=(2_000, 10_000))
_SMALLGAP_MNIST5K = dict(epochs=8, lr=3e-3, ramp=(160, 400))


def _smallgap_budget(dataset: str) -> dict:
    """The scaled budget on mnist5k, the reference's on full-size data."""
    return _SMALLGAP_MNIST5K if dataset == "mnist5k" else _SMALLGAP_REFERENCE


def smallgap_settings(dataset: str) -> dict:
    """Boopathy et al.'s inner PGD, 40 x 0.01 at eps 0.3, with their per-step eps ramp.

    ``ramp_steps`` (eps 0 up to s0, then linear to 0.3 at s1): (2,000, 10,000) on full-size data (the
    reference's); on ``mnist5k`` (160, 400) of 640 steps, the reference's ramp in passes over the data.
    """
    budget = _smallgap_budget(dataset)
    return {**asdict(PGD_MNIST), "ramp_steps": budget["ramp"]}


def _smallgap_recipe(name: str, dataset: str, **hook) -> Recipe:
    if dataset == "cifar10":
        raise InputError(f"dataset: recipe {name!r} is Boopathy et al.'s MNIST network; use mnist5k or mnist")
    budget = _smallgap_budget(dataset)
    train = TrainConfig(num_epochs=budget["epochs"], batch_size=50, optimizer="adam", lr=budget["lr"])
    return Recipe(name, dataset, "smallgap", train=train, **hook)


def smallgap_normal(dataset: str) -> Recipe:
    """Boopathy et al.'s "MNIST-Small" network (arch ``smallgap``), natural training, their budget."""
    return _smallgap_recipe("smallgap_normal", dataset)


def smallgap_adv(dataset: str) -> Recipe:
    """Their Adv: Madry PGD training (40 x 0.01, random start, the ramp of :func:`smallgap_settings`)."""
    return _smallgap_recipe(
        "smallgap_adv",
        dataset,
        input_transform=("pgd_linf", dict(smallgap_settings(dataset), random_start=True)),
    )


def smallgap_int(dataset: str) -> Recipe:
    """Their Int: CE + 0.01 D~(x, x'), x' maximizing D~ (40 x 0.01, random start), the same budget."""
    term = dict(smallgap_settings(dataset), lambda_=0.01, variant="int")
    return _smallgap_recipe("smallgap_int", dataset, loss_term=("interpretability", term))


def smallgap_int2(dataset: str) -> Recipe:
    """Their Int2: CE + 0.01 D~(x, x'), x' from PGD on CE (40 x 0.01, random start), the same budget."""
    term = dict(smallgap_settings(dataset), lambda_=0.01, variant="int2")
    return _smallgap_recipe("smallgap_int2", dataset, loss_term=("interpretability", term))


def _version(dataset: str) -> int:
    """2 on CIFAR-10, whose ResNets now start from the reference's initialization; 1 elsewhere."""
    return 2 if dataset == "cifar10" else 1


def _cam_arch(dataset: str) -> str:
    return "resnet20" if dataset == "cifar10" else "cam_cnn"


def _cam_train(dataset: str, mnist5k_epochs: int = 20, mnist5k_lr: float = 2e-3) -> TrainConfig:
    if dataset == "cifar10":  # Madry-style schedule, shortened to a resnet20
        return TrainConfig(
            num_epochs=100,
            batch_size=128,
            optimizer="sgd",
            lr=0.1,
            momentum=0.9,
            weight_decay=5e-4,
            schedule="step",
            milestones=(50, 75),
        )
    if dataset == "mnist5k":
        return TrainConfig(
            num_epochs=mnist5k_epochs, batch_size=64, optimizer="adam", lr=mnist5k_lr, schedule="cosine"
        )
    return TrainConfig(num_epochs=20, batch_size=64, optimizer="adam", lr=1e-3, schedule="cosine")


# ------------------------------------------------------------------------------------------ the tables


RECIPES: dict = {
    "standard": standard,
    "adv": adv,
    "robust": robust,
    "all": all_,
    "cam_standard": cam_standard,
    "pgd_linf": pgd_linf,
    "int": int_,
    "int2": int2,
    "l1": l1,
    "ig_norm": ig_norm,
    "logreg": logreg,
    "logreg_l1": logreg_l1,
    "logreg_pgd": logreg_pgd,
    "smallgap_normal": smallgap_normal,
    "smallgap_adv": smallgap_adv,
    "smallgap_int": smallgap_int,
    "smallgap_int2": smallgap_int2,
}
"""Recipe name -> function(dataset) -> :class:`Recipe`."""

HOOKS: dict = {
    "woods_ladv": WoodsRegularizer.with_adaptive_psi,
    "rmse_adv": RmseAdversarialTraining,
    "pgd_linf": PgdAdversarialTraining,
    "interpretability": InterpretabilityRegularizer,
    "l1": L1Penalty,
    "ig_norm": IGNormRegularizer,
}
"""Hook name -> factory(**kwargs) -> :class:`~advexp_lib.hooks.BatchHook`."""


def recipe_names() -> list[str]:
    """Every recipe name, Woods et al.'s first."""
    return list(RECIPES)


def recipe(dataset: str, name: str, **overrides) -> Recipe:
    """The recipe ``name`` for ``dataset``; ``overrides`` replace TrainConfig fields (e.g. num_epochs)."""
    check_choice(name, "recipe", RECIPES)
    dataset_info(dataset)  # validates the dataset name
    return variant(RECIPES[name](dataset), **overrides)


def variant(
    r: Recipe, *, loss_term: dict | None = None, input_transform: dict | None = None, **overrides
) -> Recipe:
    """``r`` with changed TrainConfig fields (``overrides``, e.g. seed=1) and hook keyword arguments.

    E.g. ``variant(recipe("mnist5k", "l1"), loss_term={"lambda_": 2e-3})``: same name, new hash.
    """
    bad = set(overrides) - set(asdict(r.train))
    if bad:
        raise InputError(
            f"overrides: unknown TrainConfig field(s) {sorted(bad)}; valid: {sorted(asdict(r.train))}"
        )
    out = replace(r, train=replace(r.train, **overrides)) if overrides else r
    for field_name, changes in (("loss_term", loss_term), ("input_transform", input_transform)):
        if changes is None:
            continue
        hook = getattr(out, field_name)
        if hook is None:
            raise InputError(f"{field_name}: recipe {r.name!r} has none to change")
        out = replace(out, **{field_name: (hook[0], {**hook[1], **changes})})
    return out


def config_hash(r: Recipe) -> str:
    """sha256 (first 16 hex digits) of the recipe's canonical JSON (:meth:`Recipe.describe`): ``r.hash``."""
    return r.hash
