"""The RMSE search's settings, the reference code's protocols and l-inf PGD protocols; loads no torch."""

from __future__ import annotations

from dataclasses import dataclass, field

from .checks import InputError, check_positive

__all__ = [
    "SearchConfig",
    "ARA_PAPER",
    "AE_PAPER",
    "AE_REFERENCE",
    "ARA_N_IMAGES",
    "ARA_SEED",
    "PgdProtocol",
    "PGD_MNIST",
    "PGD_CIFAR10",
    "PGD_EVAL",
]


@dataclass(frozen=True)
class SearchConfig:
    """Settings of one RMSE search (:func:`~advexp_lib.attacks.search.rmse_search`); change with ``replace``.

    Examples:
        >>> from dataclasses import replace
        >>> replace(ARA_PAPER, steps=50).steps
        50
    """

    steps: int = field(metadata={"help": "search steps T"})
    eps: float = field(metadata={"help": "budget, RMSE units (the path is eps * overshoot long)"})
    momentum: float = field(default=0.0, metadata={"help": "momentum m in [0, 1)"})
    overshoot: float = field(default=1.0, metadata={"help": "path length / eps"})
    clip: bool = field(
        default=False, metadata={"help": "keep x + delta in [0, 1] (the reference does not clip)"}
    )
    grad_floor: float = field(
        default=1e-8,
        metadata={"help": "added to each direction's RMSE before dividing (the reference's 1e-8)"},
    )

    def __post_init__(self):
        check_positive(self.steps, "steps", integer=True)
        check_positive(self.eps, "eps")
        check_positive(self.overshoot, "overshoot")
        check_positive(self.grad_floor, "grad_floor", allow_zero=True)
        if isinstance(self.momentum, bool) or not isinstance(self.momentum, (int, float)):
            raise InputError(f"momentum: expected a number in [0, 1), got {self.momentum!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise InputError(f"momentum: expected a value in [0, 1), got {self.momentum!r}")
        if not isinstance(self.clip, bool):
            raise InputError(f"clip: expected True or False, got {self.clip!r}")


ARA_PAPER = SearchConfig(steps=450, eps=20.0, momentum=0.9)
"""The ARA protocol: the defaults of the reference code's ARA command (Woods et al.'s ``calculate-ara``)."""
AE_PAPER = SearchConfig(steps=35, eps=0.1, overshoot=5.0, clip=True)
"""The explanation protocol of the reference code (its eps is the paper's rho, CIFAR-10's budget), with
x' kept in [0, 1]: an explanation is an image. The reference searches unclipped and saves its PNGs
clamped; :data:`AE_REFERENCE` is its search exactly."""
AE_REFERENCE = SearchConfig(steps=35, eps=0.1, overshoot=5.0, clip=False)
"""The reference code's explanation search exactly: :data:`AE_PAPER` unclipped (x' may leave [0, 1])."""

ARA_N_IMAGES = 1000  # the reference code's ARA command: the first 1,000 test images ...
ARA_SEED = 1776  # ... of the permutation with this seed


@dataclass(frozen=True)
class PgdProtocol:
    """An l-inf PGD protocol: budget ``eps``, ``steps`` iterations of ``step_size`` (pixels in [0, 1]).

    Examples:
        >>> PGD_MNIST.steps * PGD_MNIST.step_size >= PGD_MNIST.eps  # the steps can reach the budget
        True
    """

    eps: float
    steps: int
    step_size: float

    def __post_init__(self):
        check_positive(self.eps, "eps")
        check_positive(self.steps, "steps", integer=True)
        check_positive(self.step_size, "step_size")


PGD_MNIST = PgdProtocol(eps=0.3, steps=40, step_size=0.01)
"""Madry et al.'s MNIST training attack (40 x 0.01 at eps 0.3, random start): Boopathy et al.'s and
Chalasani et al.'s inner attack on digits."""
PGD_CIFAR10 = PgdProtocol(eps=8 / 255, steps=10, step_size=2 / 255)
"""Boopathy et al.'s CIFAR-10 inner attack (10 x 2/255 at eps 8/255)."""
PGD_EVAL = PgdProtocol(eps=0.3, steps=200, step_size=0.01)
"""Boopathy et al.'s evaluation attack: 200 steps of 0.01 at each budget of a grid (MNIST's eps 0.3 shown;
the grid sets eps)."""
