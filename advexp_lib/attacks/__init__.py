"""Attacks in pixel space, one module per kind.

- :mod:`~advexp_lib.attacks.search`: the RMSE search (Woods et al. 2019, Algorithm 1), configs, criteria;
- :mod:`~advexp_lib.attacks.projected_gradient`: l-inf / l2 PGD (Madry et al. 2018);
- :mod:`~advexp_lib.attacks.bisection`: a per-example bisection and the transfer attack :func:`line_search`;
- :mod:`~advexp_lib.attacks.independent`: foolbox's minimal-norm attacks (DDN, FMN, Boundary), scored in RMSE;
- :mod:`~advexp_lib.attacks.sneaking`: the l-inf interpretability sneaking attack (Boopathy et al. 2020);
- :mod:`~advexp_lib.attacks.topk`: the l-inf top-k attack on attribution maps (Ghorbani et al. 2019).

The first four are re-exported here; the last two attack explanations and are imported from their modules.
"""

from .bisection import Bisection, line_search
from .independent import INDEPENDENT_ATTACKS, independent_attack
from .projected_gradient import NORMS, pgd
from .search import (
    AE_PAPER,
    AE_REFERENCE,
    ARA_PAPER,
    ATTACK,
    BTR,
    BUDGET,
    CRITERIA,
    EXPLAIN,
    MODEL_MODES,
    Criterion,
    LateCriterionWarning,
    SearchConfig,
    SearchResult,
    as_criterion,
    criterion_met,
    rmse,
    rmse_search,
    step_sizes,
)

__all__ = [
    "SearchConfig",
    "ARA_PAPER",
    "AE_PAPER",
    "AE_REFERENCE",
    "Criterion",
    "BUDGET",
    "ATTACK",
    "BTR",
    "EXPLAIN",
    "CRITERIA",
    "as_criterion",
    "MODEL_MODES",
    "SearchResult",
    "LateCriterionWarning",
    "rmse",
    "step_sizes",
    "rmse_search",
    "criterion_met",
    "NORMS",
    "pgd",
    "Bisection",
    "line_search",
    "INDEPENDENT_ATTACKS",
    "independent_attack",
]
