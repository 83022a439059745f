"""The names the library offers, importable without torch: datasets, training recipes, independent attacks.

Each room implements its own names (:mod:`advexp_lib.data`, :mod:`advexp_lib.recipes`,
:mod:`advexp_lib.attacks.independent`) and the tests check they implement
exactly these; they are listed here so that the command line can show its
choices in ``--help`` before it loads torch.
"""

from __future__ import annotations

__all__ = ["DATASETS", "RECIPE_NAMES", "INDEPENDENT_ATTACKS"]

DATASETS = ("mnist5k", "mnist", "fashion_mnist", "cifar10", "imagefolder:<path>")
"""Dataset names of :func:`advexp_lib.data.load_dataset` (``imagefolder:<path>``: a folder of the user's)."""

RECIPE_NAMES = (
    "standard",
    "adv",
    "robust",
    "all",
    "cam_standard",
    "pgd_linf",
    "int",
    "int2",
    "l1",
    "ig_norm",
    "logreg",
    "logreg_l1",
    "logreg_pgd",
    "smallgap_normal",
    "smallgap_adv",
    "smallgap_int",
    "smallgap_int2",
)
"""The training recipes of :data:`advexp_lib.recipes.RECIPES`, Woods et al.'s first."""

INDEPENDENT_ATTACKS = {
    "ddn": "foolbox DDNAttack: decoupled direction and norm (Rony et al. 2019)",
    "fmn": "foolbox L2FMNAttack: fast minimum-norm (Pintor et al. 2021)",
    "boundary": "foolbox BoundaryAttack: gradient-free, decision-based (Brendel et al. 2018)",
}
"""The minimal-norm attacks of :func:`advexp_lib.attacks.independent.independent_attack`."""
