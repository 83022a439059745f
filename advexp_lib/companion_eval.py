"""Boopathy et al.'s robustness protocol, on any networks: their test images, their PGD, a stronger audit,
paired tests.

- :func:`reference_test_indices`: the test images their ``eval.py`` draws
  (``np.random.seed(99); np.random.permutation(N)[:200]``);
  :func:`reference_mnist_test` loads them, or says why it cannot.
- :func:`pgd_robustness`: per-image robustness under their PGD (200 sign
  steps of 0.01 from x, no random start, each budget afresh), plus an audit
  at chosen budgets by a stronger attack of the same budget.
- :func:`pgd_audit`: the audit: the margin loss and random restarts.
- :func:`paired_tests`: McNemar tests of pairs of networks on the same images.

Hand-written: the protocol is the reference's; the statistics are scipy's
(:func:`advexp_lib.stats.mcnemar`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .attacks import pgd
from .checks import InputError, check_images, check_positive
from .data import DatasetNotFoundError, load_tensors
from .metrics import robust_accuracy_curve
from .models import attack_view, eval_mode, tandem_margin
from .stats import mcnemar, seed_mean_difference

__all__ = [
    "REFERENCE_EPS_MNIST",
    "reference_test_indices",
    "reference_mnist_test",
    "pgd_audit",
    "pgd_robustness",
    "paired_tests",
    "seed_differences",
    "eps_index",
    "figures",
]

REFERENCE_EPS_MNIST = (0.0, 0.05, 0.1, 0.2, 0.3, 0.35, 0.4)  # eval.py's MNIST grid (l-inf, [0, 1] pixels)


def reference_test_indices(total: int = 10000, n: int = 200, seed: int = 99) -> torch.Tensor:
    """The test images Boopathy et al.'s ``eval.py`` evaluates: ``RandomState(seed).permutation(total)[:n]``.

    numpy's legacy generator, as their ``np.random.seed(99)`` then
    ``np.random.permutation``; defaults: the MNIST test set, 200 images, seed 99.

    Examples:
        >>> reference_test_indices(10, 3).tolist()
        [8, 5, 4]
    """
    check_positive(total, "total", integer=True)
    check_positive(n, "n", integer=True)
    if n > total:
        raise InputError(f"n: asked for {n} of {total} images")
    return torch.from_numpy(np.random.RandomState(seed).permutation(total)[:n].astype(np.int64))


def reference_mnist_test(n: int = 200, seed: int = 99, *, download: bool = True) -> tuple:
    """(x, y, source): the reference's ``n`` MNIST test images, or a stand-in when the test set is absent.

    From the real MNIST test set (:func:`advexp_lib.data.load_tensors` of
    "mnist", which also reads the two ``t10k`` files alone), the images
    :func:`reference_test_indices` picks. When it is absent and cannot be
    downloaded, the ``mnist5k`` test split, drawn the same way from its 1,000
    images. ``source`` says which, and why: the ``mnist5k`` digits are MNIST
    *training* digits, some of which the published networks were trained on,
    so figures on them are not test-set figures.
    """
    try:
        x, y = load_tensors("mnist", "test", download=download)
        source = "the MNIST test set"
    except DatasetNotFoundError as err:
        x, y = load_tensors("mnist5k", "test")
        source = (
            "mnist5k's test split, because the MNIST test set is not here "
            f"({str(err).split('. ')[0]}). These are MNIST training digits; up to 149 of the 5,000 "
            "lie in the published networks' training set (train[5000:]), so these are not test-set figures"
        )
    idx = reference_test_indices(x.shape[0], min(n, x.shape[0]), seed)
    return x[idx], y[idx], source


def pgd_audit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    robust: torch.Tensor | None = None,
    steps: int = 200,
    step_size: float = 0.01,
    restarts: int = 2,
    seed: int = 0,
) -> dict:
    r"""Which images survive each attack of a stronger audit of the same l-inf budget ``eps``.

    Every image in ``robust`` (the images the reference's PGD left correct;
    default: the correctly classified ones) is attacked by PGD (``steps`` x
    ``step_size``, sign steps) on the margin max_{j != y} z_j - z_y from x
    (Carlini & Wagner's loss, which does not saturate as the cross-entropy
    does), and by ``restarts`` cross-entropy PGD runs from uniform random
    starts in the ball (seeds ``seed``, ``seed + 1`` ...). A gap between the
    reference's robust accuracy and the audit's flags an attack too weak for
    the network (masked gradients, or a start point the attack cannot leave).
    The attacks differentiate :func:`advexp_lib.models.attack_view` of the
    model; the model itself classifies their results.

    Returns:
        {"margin": (N,) bool, "random start 0": ..., ..., "audit": (N,) bool}:
        per attack, the images of ``robust`` it left correct (False outside
        ``robust``); "audit", those that survived every attack.
    """
    check_images(x, "x")
    check_positive(restarts, "restarts", integer=True, allow_zero=True)
    with eval_mode(model), torch.no_grad():
        correct = model(x).argmax(1) == y
    start = correct.clone() if robust is None else robust.to(correct.device).bool() & correct
    idx = torch.nonzero(start).flatten()
    xi, yi = x[idx], y[idx]
    view = attack_view(model, x)  # the same function, differentiated faster; decisions stay model's
    settings = dict(eps=eps, steps=steps, step_size=step_size, progress=False)
    out = {}
    for r in range(-1, restarts):  # -1: the margin loss from x; r >= 0: random start r
        name = "margin" if r < 0 else f"random start {r}"
        survived = start.clone()
        if idx.numel() and eps > 0:
            if r < 0:
                x_adv = pgd(view, xi, objective=lambda xa: -tandem_margin(view(xa), yi), **settings)
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed + r)
                    x_adv = pgd(view, xi, yi, random_start=True, **settings)
            with eval_mode(model), torch.no_grad():
                survived[idx] = model(x_adv).argmax(1) == yi
        out[name] = survived.cpu()
    out["audit"] = torch.stack([start.cpu(), *out.values()]).all(0)
    return out


def pgd_robustness(
    models: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    eps_grid=REFERENCE_EPS_MNIST,
    *,
    steps: int = 200,
    step_size: float = 0.01,
    audit_eps=(),
    restarts: int = 2,
    seed: int = 0,
    progress=None,
) -> dict:
    """Per-image robustness of each network under the reference's PGD, and under the audit.

    Returns {label: {"eps": (E,) float64, "accuracy": (E,), "robust": (E, N)
    bool, "audit": {eps: (N,) bool}, "audit_attacks": {eps: {attack: (N,) bool}}}}:
    the reference's protocol
    (:func:`advexp_lib.metrics.robust_accuracy_curve`, each budget afresh,
    no random start) at every budget of ``eps_grid``, and :func:`pgd_audit`
    at each budget of ``audit_eps`` (each must be on the grid).
    """
    out = {}
    for label, model in models.items():
        eps, acc, robust = robust_accuracy_curve(
            model, x, y, eps_grid, steps=steps, step_size=step_size, per_image=True, progress=progress
        )
        row = {"eps": eps, "accuracy": acc, "robust": robust, "audit": {}, "audit_attacks": {}}
        settings = dict(steps=steps, step_size=step_size, restarts=restarts, seed=seed)
        for e in audit_eps:
            attacks = pgd_audit(model, x, y, float(e), robust=robust[eps_index(eps, e)], **settings)
            row["audit"][float(e)] = attacks.pop("audit")
            row["audit_attacks"][float(e)] = attacks
        out[label] = row
    return out


def paired_tests(results: dict, pairs, eps: float, *, audit: bool = False) -> dict:
    """{"a-b": :class:`~advexp_lib.stats.PairedTest`} for each (a, b) of ``pairs`` at budget ``eps``.

    ``results`` as :func:`pgd_robustness` returns; ``audit`` compares the
    audit's per-image outcomes instead of the reference PGD's.
    """
    out = {}
    for a, b in pairs:
        flags = []
        for label in (a, b):
            if label not in results:
                raise InputError(f"pairs: no results for {label!r}; have {sorted(results)}")
            flags.append(_robust_flags(results[label], eps, audit))
        out[f"{a}-{b}"] = mcnemar(*flags)
    return out


def seed_differences(arms: dict, pairs, eps: float, *, audit: bool = False, seed: int = 0) -> dict:
    """{"a-b": Estimate} of robust accuracy a minus b at budget ``eps``, over each arm's training seeds.

    ``arms`` = {label: [one :func:`pgd_robustness` row per training seed]}, every row on the
    same images (a published network is a list of one). The difference is of the
    seed-averaged robust accuracies, with the two-level bootstrap of
    :func:`advexp_lib.stats.seed_mean_difference` (images paired, seeds resampled per arm);
    ``audit`` compares the audit's per-image outcomes instead of the reference PGD's.

    Examples:
        >>> row = {"eps": torch.tensor([0.0, 0.3], dtype=torch.float64),
        ...        "robust": torch.tensor([[True, True], [True, False]]), "audit": {}}
        >>> other = dict(row, robust=torch.tensor([[True, True], [False, False]]))
        >>> seed_differences({"a": [row, row], "b": [other]}, [("a", "b")], 0.3)["a-b"].value
        0.5
    """
    out = {}
    for a, b in pairs:
        flags = []
        for label in (a, b):
            if label not in arms or not arms[label]:
                raise InputError(f"pairs: no results for {label!r}; have {sorted(arms)}")
            flags.append(torch.stack([_robust_flags(r, eps, audit) for r in arms[label]]))
        out[f"{a}-{b}"] = seed_mean_difference(*flags, seed=seed)
    return out


def _robust_flags(row: dict, eps: float, audit: bool) -> torch.Tensor:
    """(N,) bool of a :func:`pgd_robustness` row at ``eps``: the audit's outcomes, or the reference PGD's."""
    return row["audit"][float(eps)] if audit else row["robust"][eps_index(row["eps"], eps)]


def eps_index(eps: torch.Tensor, e: float) -> int:
    """The position of budget ``e`` in the grid ``eps`` (as :func:`pgd_robustness` returns it), to 1e-9.

    Examples:
        >>> eps_index(torch.tensor([0.0, 0.1, 0.3], dtype=torch.float64), 0.3)
        2
    """
    hit = torch.nonzero((eps - float(e)).abs() < 1e-9).flatten()
    if hit.numel() == 0:
        raise InputError(f"eps: {e:g} is not on the grid {eps.tolist()}")
    return int(hit[0])


def figures(results: dict, tests: dict, reference_tests: dict | None = None) -> dict:
    """What a chapter records of :func:`pgd_robustness` ``results`` and ``tests`` ({"eps e": paired_tests}).

    Keys: ``n_published``; ``published_robust_accuracy`` {network: {eps: accuracy}};
    ``published_audit`` {network: {eps: accuracy under the audit}};
    ``published_mcnemar_p`` {"eps e": {"a-b": p}}; and ``published_at_<e>``
    (e.g. ``published_at_0_4``) {"a-b": Estimate of the paired difference} for each tested eps;
    with ``reference_tests`` (the same under the reference's PGD alone), ``published_ref_at_<e>`` too.
    """
    out = {
        "n_published": int(next(iter(results.values()))["robust"].shape[1]) if results else 0,
        "published_robust_accuracy": {
            n: dict(zip(r["eps"].tolist(), r["accuracy"].tolist())) for n, r in results.items()
        },
        "published_audit": {
            n: {f"{e:g}": float(f.double().mean()) for e, f in r["audit"].items()} for n, r in results.items()
        },
        "published_mcnemar_p": {e: {pair: t.p_value for pair, t in ts.items()} for e, ts in tests.items()},
    }
    for prefix, by_eps in (("published_at_", tests), ("published_ref_at_", reference_tests or {})):
        for e, ts in by_eps.items():
            out[prefix + e.removeprefix("eps ").replace(".", "_")] = {
                pair: t.difference for pair, t in ts.items()
            }
    return out
