"""Training regularizers (hand-written: no library provides them).

- :class:`WoodsRegularizer`: the Lipschitz-inspired input-gradient penalty L_adv
  of Woods et al. (2019) with the adaptive strength :class:`AdaptivePsi`.

Randomness (which output each example regularizes) is drawn for the *global*
batch when ``torch.distributed`` is initialized and each rank keeps its
contiguous slice, so multi-process training draws what one process would.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .checks import InputError, check_positive
from .training import LossTerm

__all__ = ["AdaptivePsi", "WoodsRegularizer", "tandem_margin"]


class AdaptivePsi:
    r"""Integral controller for the regularization strength psi (Woods et al. 2019).

    After each batch with classification loss CE:

        I <- max(0, I + clip(-ln(CE / L_target), -eps_worse, +eps_better))
        psi = k_psi0 * exp(k_psi * I)

    psi grows while CE < L_target (room to trade accuracy for robustness) and
    decays slowly when CE > L_target, so L_target sets the trade-off.

    Args:
        target: L_target. Default 1.5 (paper, CIFAR-10 ResNet-44).
        k_psi0: psi at I = 0. Default 220.
        k_psi: growth rate of psi in I. Default 0.02.
        eps_better, eps_worse: per-batch clip of the increment. Defaults 1, 0.01.
    """

    def __init__(self, target=1.5, k_psi0=220.0, k_psi=0.02, eps_better=1.0, eps_worse=0.01):
        for name, v in (("target", target), ("k_psi0", k_psi0), ("eps_better", eps_better),
                        ("eps_worse", eps_worse)):
            check_positive(v, name)
        check_positive(k_psi, "k_psi", allow_zero=True)
        self.target, self.k_psi0, self.k_psi = float(target), float(k_psi0), float(k_psi)
        self.eps_better, self.eps_worse = float(eps_better), float(eps_worse)
        self.integral = 0.0

    @property
    def psi(self) -> float:
        return self.k_psi0 * math.exp(self.k_psi * self.integral)

    def update(self, ce: float) -> float:
        """Feed one batch's cross-entropy; return the new psi."""
        if not math.isfinite(ce) or ce < 0:
            raise InputError(f"ce: expected a finite non-negative loss, got {ce!r}")
        step = -math.log(max(ce, 1e-12) / self.target)
        self.integral = max(0.0, self.integral + min(max(step, -self.eps_worse), self.eps_better))
        return self.psi


def tandem_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """g_y - max_{j != y} g_j per example."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
    return true - other


class WoodsRegularizer(LossTerm):
    r"""L_adv of Woods et al. (2019): psi * mean(|G|^z), G = d(sum_i s_i)/dx (double backprop).

    Per example, s_i is the tandem margin g_y - max_{j != y} g_j with
    probability ``zeta``, otherwise a uniformly random logit g_k. The training
    loss becomes CE(g, y) + psi * mean over examples and pixels of |G|^z.

    Args:
        z: exponent of the gradient penalty. Default 2.
        zeta: probability of the tandem output. Default 0.2.
        psi: a fixed float, or an :class:`AdaptivePsi` (default: paper values)
            updated after every step with the batch's cross-entropy.
    History/checkpoint: ``psi``, ``psi_integral`` (I) and ``grad_penalty`` per epoch.
    """

    requires_input_grad = True

    def __init__(self, *, z: float = 2.0, zeta: float = 0.2, psi: float | AdaptivePsi | None = None):
        check_positive(z, "z")
        if not 0.0 <= zeta <= 1.0:
            raise InputError(f"zeta: expected a probability in [0, 1], got {zeta!r}")
        self.z, self.zeta = float(z), float(zeta)
        self.psi = AdaptivePsi() if psi is None else psi
        if not isinstance(self.psi, AdaptivePsi):
            check_positive(self.psi, "psi", allow_zero=True)

    def current_psi(self) -> float:
        return self.psi.psi if isinstance(self.psi, AdaptivePsi) else float(self.psi)

    def __call__(self, model, x, y, logits):
        n, c = logits.shape
        u = global_draw(lambda m: torch.rand(m, device=x.device), n)
        k = global_draw(lambda m: torch.randint(c, (m,), device=x.device), n)
        s = torch.where(u < self.zeta, tandem_margin(logits, y), logits.gather(1, k[:, None]).squeeze(1))
        (grad,) = torch.autograd.grad(s.sum(), x, create_graph=True)
        penalty = grad.abs().pow(self.z).mean()
        psi = self.current_psi()
        stats = {"grad_penalty": penalty.item(), "psi": psi}
        if isinstance(self.psi, AdaptivePsi):
            stats["psi_integral"] = self.psi.integral
        return psi * penalty, stats

    def after_step(self, ce: float) -> None:
        if isinstance(self.psi, AdaptivePsi):
            self.psi.update(ce)

    def state_dict(self) -> dict:
        return {"psi_integral": self.psi.integral} if isinstance(self.psi, AdaptivePsi) else {}

    def load_state_dict(self, state: dict) -> None:
        if isinstance(self.psi, AdaptivePsi) and "psi_integral" in state:
            self.psi.integral = float(state["psi_integral"])


def global_draw(draw, n: int) -> torch.Tensor:
    """``draw(m)`` for the global batch, keeping this rank's contiguous slice of ``n`` rows.

    Without torch.distributed (or with one process) this is ``draw(n)``.
    Assumes equal shards, as the training loop makes them.
    """
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return draw(n)
    rank, world = dist.get_rank(), dist.get_world_size()
    return draw(n * world)[rank * n:(rank + 1) * n]
