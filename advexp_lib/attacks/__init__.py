"""Attacks in pixel space, one room per kind.

- :mod:`~advexp_lib.attacks.search`: Algorithm 1 of Woods et al. (2019), the
  RMSE search, with its settings (:class:`SearchConfig`, :data:`ARA_PAPER`,
  :data:`AE_PAPER`) and criteria (:data:`BUDGET`, :data:`ATTACK`, :data:`BTR`,
  :data:`EXPLAIN`) as objects;
- :mod:`~advexp_lib.attacks.projected_gradient`: l-inf / l2 PGD (Madry et al. 2018);
- :mod:`~advexp_lib.attacks.bisection`: one per-example bisection, and the
  transfer attack :func:`line_search` built on it;
- :mod:`~advexp_lib.attacks.independent`: foolbox's minimal-norm attacks
  (DDN, FMN, Boundary), scored as the RMSE search is;
- :mod:`~advexp_lib.attacks.sneaking`: the interpretability sneaking attack of
  Boopathy et al. (2020), which hides from a map;
- :mod:`~advexp_lib.attacks.topk`: the prediction-preserving top-k attack on
  attribution maps (Ghorbani et al. 2019).

The first four attack the prediction and are re-exported here
(``from advexp_lib.attacks import rmse_search, pgd``). The last two attack an
explanation, so they sit above :mod:`advexp_lib.attributions` and are
imported from their modules. Distances: RMSE for the search, l-inf (or l2) for
PGD, the ISA and the top-k attack.
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
