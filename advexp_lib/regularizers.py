"""Training regularizers as loss terms of the training loop (hand-written: no library provides them).

- :class:`WoodsRegularizer`: input-gradient penalty L_adv of Woods et al. (2019), with :class:`AdaptivePsi`;
- :class:`InterpretabilityRegularizer`: Int / Int2 of Boopathy et al. (2020) on CAM discrepancies;
- :class:`L1Penalty`: l1 regularization, Chalasani et al. (2020)'s baseline;
- :class:`IGNormRegularizer`: IG-NORM of Chen et al. (2019).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .attacks import pgd
from .attributions import class_activation_maps, integrated_gradients_of
from .checks import InputError, check_choice, check_positive
from .distributed import global_draw
from .hooks import LossTerm, PgdWarmup
from .models import tandem_margin
from .protocols import PGD_MNIST

__all__ = [
    "AdaptivePsi",
    "WoodsRegularizer",
    "InterpretabilityRegularizer",
    "cam_discrepancy",
    "L1Penalty",
    "IGNormRegularizer",
    "ig_norm",
]


class AdaptivePsi:
    r"""Integral controller for the regularization strength psi (Woods et al. 2019); after each batch's CE:

        I <- max(0, I + clip(-ln(CE / L_target), -eps_worse, +eps_better))
        psi = k_psi0 * exp(k_psi * I)

    Args:
        target: L_target (default 1.5, the paper's CIFAR-10 ResNet-44); k_psi0: psi at I = 0 (default 220).
        k_psi: growth rate of psi in I (default 0.02); eps_better, eps_worse: the clip (defaults 1, 0.01).
    """

    def __init__(self, target=1.5, k_psi0=220.0, k_psi=0.02, eps_better=1.0, eps_worse=0.01):
        for name, v in (
            ("target", target),
            ("k_psi0", k_psi0),
            ("eps_better", eps_better),
            ("eps_worse", eps_worse),
        ):
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


class WoodsRegularizer(LossTerm):
    r"""L_adv of Woods et al. (2019): psi * mean(|G|^z), G = d(sum_i s_i)/dx (double backprop).

    s_i: the tandem margin g_y - max_{j != y} g_j with probability ``zeta``, else a uniformly random logit g_k
    (drawn for the global batch: :func:`advexp_lib.distributed.global_draw`). Loss: CE(g, y) + L_adv.

    Args:
        z: exponent (default 2); zeta: probability of the tandem output (default 0.2).
        psi: a float, or an :class:`AdaptivePsi` (default: paper values) fed each step's cross-entropy.
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

    @classmethod
    def with_adaptive_psi(
        cls,
        *,
        z: float,
        zeta: float,
        target: float,
        k_psi0: float,
        k_psi: float,
        eps_better: float,
        eps_worse: float,
    ) -> WoodsRegularizer:
        """The regularizer with an :class:`AdaptivePsi` of these settings (how recipes name it)."""
        return cls(z=z, zeta=zeta, psi=AdaptivePsi(target, k_psi0, k_psi, eps_better, eps_worse))

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

    def observe_ce(self, ce: float) -> None:
        if isinstance(self.psi, AdaptivePsi):
            self.psi.update(ce)

    def state_dict(self) -> dict:
        return {"psi_integral": self.psi.integral} if isinstance(self.psi, AdaptivePsi) else {}

    def load_state_dict(self, state: dict) -> None:
        if isinstance(self.psi, AdaptivePsi) and "psi_integral" in state:
            self.psi.integral = float(state["psi_integral"])


# ---------------------------------------------------------------------------------------------------------
# Interpretability and sparsity regularizers: Boopathy et al. (2020) interpretability-aware training (Int,
# Int2), l1 weight decay (Chalasani et al. 2020's baseline) and IG-NORM (Chen et al. 2019).


class _PgdLossTerm(PgdWarmup, LossTerm):
    """Shared set-up of the loss terms that draw x' by l-inf PGD with a linear eps warm-up."""

    def __init__(
        self,
        *,
        lambda_: float,
        eps: float,
        steps: int,
        step_size: float,
        warmup_epochs: int,
        ramp_steps: tuple[int, int] | None = None,
    ):
        check_positive(lambda_, "lambda_", allow_zero=True)
        super().__init__(
            eps=eps, steps=steps, step_size=step_size, warmup_epochs=warmup_epochs, ramp_steps=ramp_steps
        )
        self.lambda_ = float(lambda_)


class InterpretabilityRegularizer(_PgdLossTerm):
    r"""Boopathy et al.'s (2020) interpretability-aware training: CE(f(x), y) + lambda * mean_batch D~(x, x').

    D~: :func:`cam_discrepancy` on a CAM-ready net (:func:`advexp_lib.attributions.class_activation_maps`);
    gradients flow through CAM(x), CAM(x') and p~. x': l-inf PGD with random start in the eps-ball within
    [0, 1] (:func:`advexp_lib.attacks.projected_gradient.pgd`) ascending D~ ("int") or CE(f(x'), y) ("int2").

    Args:
        lambda_: weight of D~ (default 0.01, the paper's); eps: l-inf budget (default 0.3; CIFAR-10: 8/255).
        steps, step_size: PGD; default 40 x 0.01 (:data:`~advexp_lib.protocols.PGD_MNIST`; CIFAR-10:
            :data:`~advexp_lib.protocols.PGD_CIFAR10`, 10 x 2/255). variant: "int" (default) or "int2".
        warmup_epochs: linear eps warm-up, eps_e = eps * min(1, (e + 1) / W); default 0.
        ramp_steps: (s0, s1): the reference's per-step ramp instead (:class:`~advexp_lib.hooks.PgdWarmup`).
    History: ``interp_discrepancy`` (batch mean of D~) and ``eps`` per epoch.
    """

    def __init__(
        self,
        *,
        lambda_: float = 0.01,
        eps: float = PGD_MNIST.eps,
        steps: int = PGD_MNIST.steps,
        step_size: float = PGD_MNIST.step_size,
        variant: str = "int",
        warmup_epochs: int = 0,
        ramp_steps: tuple[int, int] | None = None,
    ):
        super().__init__(
            lambda_=lambda_,
            eps=eps,
            steps=steps,
            step_size=step_size,
            warmup_epochs=warmup_epochs,
            ramp_steps=ramp_steps,
        )
        if variant not in ("int", "int2"):
            raise InputError(f"variant: unknown value {variant!r}; valid: int, int2")
        self.variant = variant

    def __call__(self, model, x, y, logits):
        if self.current_eps == 0:  # x' = x, so D~ = 0 (the reference skips the attack too)
            return logits.new_zeros(()), {"interp_discrepancy": 0.0, "eps": 0.0}
        x = x.detach()
        if self.variant == "int":
            with torch.no_grad():
                ref = class_activation_maps(model, x, upsample=False)
            x_adv = pgd(
                model,
                x,
                eps=self.current_eps,
                steps=self.steps,
                step_size=self.step_size,
                random_start=True,
                objective=lambda xa: cam_discrepancy(model, ref, xa, y),
                progress=False,
            )
        else:
            x_adv = pgd(
                model,
                x,
                y,
                eps=self.current_eps,
                steps=self.steps,
                step_size=self.step_size,
                random_start=True,
                progress=False,
            )
        d = cam_discrepancy(model, class_activation_maps(model, x, upsample=False), x_adv, y)
        return self.lambda_ * d.mean(), {"interp_discrepancy": d.mean().item(), "eps": self.current_eps}


def cam_discrepancy(model, cams: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Boopathy's D~ per example, given the clean CAMs ``cams`` (N x C x h x w, feature grid).

    D~ = ||CAM_y(x') - CAM_y(x)||_1 + sum_{i != y} p~_i(x') ||CAM_i(x') - CAM_i(x)||_1,
    p~ = softmax over i != y of f(x') (renormalized).
    """
    adv = class_activation_maps(model, x_adv, upsample=False)
    dist = (adv - cams).abs().flatten(2).sum(2)  # (N, C): l1 per class
    mask = F.one_hot(y, dist.shape[1]).bool()
    # logits = spatial mean of CAM + bias on a CAM-ready net: saves a second forward pass per PGD step
    bias = model.classifier.bias
    logits = adv.mean(dim=(2, 3)) + (bias if bias is not None else 0.0)
    p = logits.masked_fill(mask, float("-inf")).softmax(1)  # exp(-inf) = 0: renormalized over i != y
    return dist.gather(1, y[:, None]).squeeze(1) + (p * dist.masked_fill(mask, 0.0)).sum(1)


class L1Penalty(LossTerm):
    r"""l1 penalty lambda * sum |theta| on all trainable parameters, biases too (Chalasani et al. 2020).

    Args:
        lambda_: on the mean CE; default 2e-4 = the reference's (jfc43/advex) 0.01 on CE summed over 50.
    History: ``l1`` (sum |theta|) per epoch.
    """

    def __init__(self, *, lambda_: float = 2e-4):
        check_positive(lambda_, "lambda_", allow_zero=True)
        self.lambda_ = float(lambda_)

    def __call__(self, model, x, y, logits):
        total = sum(p.abs().sum() for p in model.parameters() if p.requires_grad)
        return self.lambda_ * total, {"l1": total.item()}


class IGNormRegularizer(_PgdLossTerm):
    r"""IG-NORM (Chen et al. 2019): CE(f(x), y) + lambda * mean_batch ||IG(x, x')||_1; l(z) = CE(f(z), y):

        IG_i(x, x') = (x'_i - x_i) * \int_0^1 d l(x + a (x' - x)) / dz_i da

    (``n_steps`` nodes; differentiable: :func:`advexp_lib.attributions.integrated_gradients_of`).
    x': PGD in the l-inf eps-ball, random start (:meth:`find_x_adv`), on ``x_adv``: "ig": ||IG||_1 itself,
    through an IG of ``attack_nodes`` right-Riemann nodes (Chen et al.'s reference); "ce": CE(f(x'), y), a
    cheaper proxy maximizing a lower bound (sum_i IG_i = l(x') - l(x)).

    Args:
        lambda_: default 1.0 (Chen et al.'s MNIST); eps: default 0.3; steps, step_size: PGD, 40 x 0.01.
        n_steps: IG nodes of the loss (>= 2; default 10); x_adv: "ce" (default) or "ig"; attack_nodes: 10.
        ig_method: "riemann_trapezoid" (default) or "riemann_right" (the reference's, with 50 nodes).
        warmup_epochs: linear eps warm-up as in :class:`InterpretabilityRegularizer`; default 0.
    History: ``ig_norm`` (batch mean of ||IG||_1) and ``eps`` per epoch.
    """

    def __init__(
        self,
        *,
        lambda_: float = 1.0,
        eps: float = PGD_MNIST.eps,
        steps: int = PGD_MNIST.steps,
        step_size: float = PGD_MNIST.step_size,
        n_steps: int = 10,
        ig_method: str = "riemann_trapezoid",
        x_adv: str = "ce",
        attack_nodes: int = 10,
        warmup_epochs: int = 0,
    ):
        super().__init__(
            lambda_=lambda_, eps=eps, steps=steps, step_size=step_size, warmup_epochs=warmup_epochs
        )
        check_positive(n_steps, "n_steps", integer=True)
        check_positive(attack_nodes, "attack_nodes", integer=True)
        if n_steps < 2:
            raise InputError(f"n_steps: the quadrature needs at least 2 nodes, got {n_steps}")
        self.n_steps, self.attack_nodes = n_steps, attack_nodes
        self.ig_method = check_choice(ig_method, "ig_method", ("riemann_trapezoid", "riemann_right"))
        self.x_adv = check_choice(x_adv, "x_adv", ("ce", "ig"))

    def find_x_adv(self, model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x' for the images ``x`` (labels ``y``) by this term's PGD (``x_adv`` "ce" or "ig"), detached."""
        x = x.detach()
        settings = dict(
            eps=self.current_eps,
            steps=self.steps,
            step_size=self.step_size,
            random_start=True,
            progress=False,
        )
        if self.x_adv == "ce":
            return pgd(model, x, y, **settings)

        def objective(z):
            return ig_norm(_loss_of(model, y), z, x, self.attack_nodes, "riemann_right")

        return pgd(model, x, objective=objective, **settings)

    def __call__(self, model, x, y, logits):
        x = x.detach()
        loss = _loss_of(model, y)
        x_adv = self.find_x_adv(model, x, y)
        norm = ig_norm(loss, x_adv, x, self.n_steps, self.ig_method).mean()
        return self.lambda_ * norm, {"ig_norm": norm.item(), "eps": self.current_eps}


def _loss_of(model, y):
    """The per-example cross-entropy z -> CE(f(z), y), the loss whose IG IG-NORM penalizes."""
    return lambda z: F.cross_entropy(model(z), y, reduction="none")


def ig_norm(loss, x_adv: torch.Tensor, x: torch.Tensor, n_steps: int, ig_method: str) -> torch.Tensor:
    """||IG(x, x')||_1 per example of the per-example ``loss`` (differentiable), the IG-NORM term."""
    ig = integrated_gradients_of(loss, x_adv, x, n_steps=n_steps, ig_method=ig_method)
    return ig.abs().flatten(1).sum(1)
