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
- :func:`isa_run`: the interpretability sneaking attack on a network's correctly
  classified images toward random wrong classes; :func:`isa_summary` keeps its
  D1-minus-D2 reductions against the attack alone at the minimal budget and at
  the ISA's own (the equal-budget control).
- :func:`interpretation_robustness`: their ``aai_topk``, the attack on the true
  class's CAM at its clean top-k cells, scored by Kendall's tau of the CAMs
  before and after; :func:`interpretation_tests` compares networks on it.

Hand-written: the protocol is the reference's; the statistics are scipy's
(:func:`advexp_lib.stats.mcnemar`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from advexp_lib.attacks import pgd
from advexp_lib.attacks.sneaking import IsaResult, interpretability_sneaking_attack
from advexp_lib.attributions import Cam
from advexp_lib.checks import InputError, check_images, check_positive
from advexp_lib.data import DatasetNotFoundError, load_tensors
from advexp_lib.metrics import kendall_tau, robust_accuracy_curve, top_k_intersection
from advexp_lib.models import eval_mode, tandem_margin
from advexp_lib.protocols import PGD_EVAL
from advexp_lib.speedups import attack_view, cam_view
from advexp_lib.stats import (
    Estimate,
    bootstrap_mean,
    mcnemar,
    paired_mean_difference,
    seed_mean_difference,
    wilson,
)

__all__ = [
    "REFERENCE_EPS_MNIST",
    "REFERENCE_EPS_CIFAR",
    "reference_test_indices",
    "reference_mnist_test",
    "reference_cifar10_test",
    "pgd_audit",
    "pgd_robustness",
    "paired_tests",
    "seed_differences",
    "seed_arm_rates",
    "isa_run",
    "isa_summary",
    "eps_index",
    "prose_rates",
    "pgd_record",
    "interpretation_robustness",
    "interpretation_summary",
    "interpretation_tests",
]

REFERENCE_EPS_MNIST = (0.0, 0.05, 0.1, 0.2, 0.3, 0.35, 0.4)  # eval.py's MNIST grid (l-inf, [0, 1] pixels)
REFERENCE_EPS_CIFAR = (0.0, 2 / 255, 4 / 255, 6 / 255, 8 / 255, 9 / 255, 10 / 255)  # its CIFAR-10 grid


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

    Raises:
        InputError: ``n`` is larger than the images there are.
    """
    try:
        x, y, source = load_tensors("mnist", "test", download=download, return_source=True)
    except DatasetNotFoundError as err:
        x, y = load_tensors("mnist5k", "test")
        source = (
            "mnist5k's test split, because the MNIST test set is not here "
            f"({str(err).split('. ')[0]}). These are MNIST training digits; up to 149 of the 5,000 "
            "lie in the published networks' training set (train[5000:]), so these are not test-set figures"
        )
    return _reference_draw(x, y, source, n, seed)


def reference_cifar10_test(n: int = 200, seed: int = 99, *, download: bool = True) -> tuple:
    """(x, y, source): ``n`` CIFAR-10 test images drawn as the reference's ``eval.py`` draws them.

    :func:`reference_test_indices` of the test images here
    (:func:`advexp_lib.data.load_tensors`): on the original test set these are
    the reference's own images; on the shipped JPEG copies the same rule picks
    ``n`` of the copies, not the reference's images, and ``source`` says so.

    Raises:
        InputError: ``n`` is larger than the images there are.
    """
    x, y, source = load_tensors("cifar10", "test", download=download, return_source=True)
    return _reference_draw(x, y, source, n, seed)


def _reference_draw(x, y, source: str, n: int, seed: int) -> tuple:
    """The images :func:`reference_test_indices` picks from (x, y), with their source."""
    if n > x.shape[0]:
        raise InputError(f"n: asked for {n} test images but {source} holds {x.shape[0]}")
    idx = reference_test_indices(x.shape[0], n, seed)
    return x[idx], y[idx], source


def pgd_audit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    robust: torch.Tensor | None = None,
    steps: int = PGD_EVAL.steps,
    step_size: float = PGD_EVAL.step_size,
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
    The attacks differentiate :func:`advexp_lib.speedups.attack_view` of the
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
                with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
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
    steps: int = PGD_EVAL.steps,
    step_size: float = PGD_EVAL.step_size,
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


def seed_arm_rates(arms: dict, pairs, eps: float, *, audit: bool = False) -> dict:
    """{"a-b": [rate of a, rate of b]}: each arm's robust accuracy at ``eps``, averaged over its seeds
    (``arms`` as :func:`seed_differences`), so that a comparison with both at 0 or 1 is not judged.

    Examples:
        >>> row = {"eps": torch.tensor([0.0, 0.3], dtype=torch.float64),
        ...        "robust": torch.tensor([[True, True], [True, False]]), "audit": {}}
        >>> seed_arm_rates({"a": [row, row], "b": [row]}, [("a", "b")], 0.3)
        {'a-b': [0.5, 0.5]}
    """
    return {
        f"{a}-{b}": [
            float(torch.stack([_robust_flags(r, eps, audit) for r in arms[k]]).double().mean())
            for k in (a, b)
        ]
        for a, b in pairs
    }


def isa_run(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, generator: torch.Generator, **settings
) -> tuple[IsaResult, torch.Tensor, torch.Tensor]:
    """(ISA result, images, labels): :func:`~advexp_lib.attacks.sneaking.interpretability_sneaking_attack`
    on the images of ``x`` that ``model`` classifies correctly, each toward a wrong class drawn
    uniformly with ``generator`` (as the reference draws its targets); ``settings`` go to the attack."""
    with eval_mode(model), torch.no_grad():
        logits = model(x)
    keep = logits.argmax(1) == y
    xk, yk = x[keep], y[keep]
    k = logits.shape[1]
    t = ((yk.cpu() + 1 + torch.randint(k - 1, yk.shape, generator=generator)) % k).to(y.device)
    return interpretability_sneaking_attack(model, xk, yk, t, **settings), xk, yk


def isa_summary(result: IsaResult) -> dict:
    """{"minimal" | "equal": {p: Estimate or None}}: the D1-minus-D2 reduction difference at each
    multiple p (as "2"), against the attack alone at the minimal eps (the paper's comparison) and
    at the ISA's own p x eps (:meth:`~advexp_lib.attacks.sneaking.IsaResult.reduction_difference`);
    an undefined Estimate (n = 0) where no image qualifies."""
    undefined = Estimate(math.nan, math.nan, math.nan, 0)  # no image where both runs succeeded: not shown
    return {
        against: {
            f"{p:g}": undefined if d is None else d
            for p, d in result.reduction_difference(against=against).items()
        }
        for against in ("minimal", "equal")
    }


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


def prose_rates(results: dict, networks, budgets, *, divisor: float = 1.0, prefix: str) -> dict:
    """{f"{prefix}_{network}_{pgd|audit}_{b:g}": robust accuracy} of :func:`pgd_robustness` ``results``
    at each budget ``b / divisor`` of ``budgets``, under the reference's PGD and under the audit: the
    rates a chapter's prose quotes, named for ``myst_nb.glue``. Each network is read on its own grid;
    one of ``networks`` absent from ``results`` (not attacked in this run) is left out.

    Examples:
        >>> r = {"int": {"eps": torch.tensor([0.0, 0.3]), "accuracy": torch.tensor([1.0, 0.5]),
        ...              "audit": {0.3: torch.tensor([True, False, False, False])}}}
        >>> prose_rates(r, ["int", "adv"], [0.3], prefix="mnist")
        {'mnist_int_pgd_0.3': 0.5, 'mnist_int_audit_0.3': 0.25}
    """
    out = {}
    for n in (n for n in networks if n in results):
        for b in budgets:
            e = b / divisor
            out[f"{prefix}_{n}_pgd_{b:g}"] = float(results[n]["accuracy"][eps_index(results[n]["eps"], e)])
            out[f"{prefix}_{n}_audit_{b:g}"] = float(_robust_flags(results[n], e, audit=True).double().mean())
    return out


def pgd_record(results: dict, tests: dict) -> dict:
    """What a chapter records of :func:`pgd_robustness` ``results`` and their :func:`paired_tests`.

    ``tests`` = {"audit" | "their PGD": {budget: {"a-b": PairedTest}}}, budgets as labels
    such as "0.35" or "9/255". Returns {"n": images, "robust_accuracy": {network: {eps:
    accuracy}}, "audit": {network: {eps: accuracy under the audit}}, "difference":
    {attack: {budget: {"a-b": Estimate of the paired difference}}}, "arms": {attack:
    {budget: {"a-b": [rate of a, rate of b]}}}, "mcnemar_p": {attack: {budget: {"a-b": p}}}}.

    Examples:
        >>> row = {"eps": torch.tensor([0.0, 0.3], dtype=torch.float64),
        ...        "accuracy": torch.tensor([1.0, 0.5]), "audit": {},
        ...        "robust": torch.tensor([[True, True], [True, False]])}
        >>> other = dict(row, robust=torch.tensor([[True, True], [False, False]]))
        >>> tests = {"their PGD": {"0.3": paired_tests({"a": row, "b": other}, [("a", "b")], 0.3)}}
        >>> pgd_record({"a": row, "b": other}, tests)["difference"]["their PGD"]["0.3"]["a-b"].value
        0.5
    """
    return {
        "n": int(next(iter(results.values()))["robust"].shape[1]) if results else 0,
        "robust_accuracy": {
            n: dict(zip(r["eps"].tolist(), r["accuracy"].tolist())) for n, r in results.items()
        },
        "audit": {
            n: {f"{e:g}": float(f.double().mean()) for e, f in r["audit"].items()} for n, r in results.items()
        },
        **{
            part: {
                attack: {budget: {pair: get(t) for pair, t in ts.items()} for budget, ts in by_budget.items()}
                for attack, by_budget in tests.items()
            }
            for part, get in (
                ("difference", lambda t: t.difference),
                ("arms", lambda t: [t.a_rate, t.b_rate]),
                ("mcnemar_p", lambda t: t.p_value),
            )
        },
    }


def interpretation_robustness(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    k: int = 8,
    steps: int = PGD_EVAL.steps,
    step_size: float = PGD_EVAL.step_size,
    seed: int = 0,
) -> dict:
    r"""Boopathy et al.'s attack on interpretation (``aai_topk`` of their ``eval.py``), and its scores.

    With I = CAM_y at the last feature grid (:class:`~advexp_lib.attributions.Cam`,
    not upsampled) and T the k cells where I(x) is largest (signed values),
    l-inf PGD from a uniform random start in the eps-ball (``steps`` sign
    steps of ``step_size``, pixels kept in [0, 1]) *minimizes*
    sum_{i in T} I(x')_i: it pushes the evidence out of the map's clean top
    cells, with no term on the prediction. The reference scores an image by
    Kendall's tau-b of I(x) and I(x') over all cells, and averages it over the
    images whose prediction the attack left unchanged (``kept``). The top-k
    intersection of the two maps (signed ranking, :func:`~advexp_lib.metrics.top_k_intersection`)
    is given beside it. The attack differentiates :func:`~advexp_lib.speedups.cam_view`
    of the model (the same logits and CAM); the model itself scores x'.

    Returns:
        {"tau": (N,) Kendall tau-b (NaN where the prediction changed, or a map
        is constant), "intersection": (N,) top-k intersection (NaN where the
        prediction changed), "kept": (N,) bool, "x_adv": the attacked images,
        "eps": eps, "k": k}.

    Examples:
        >>> r = interpretation_robustness(cam_model, x, y, 0.1, k=2, steps=3)
        >>> sorted(r)
        ['eps', 'intersection', 'k', 'kept', 'tau', 'x_adv']
    """
    check_images(x, "x")
    check_positive(eps, "eps")
    check_positive(k, "k", integer=True)
    cam, view = Cam(upsample=False), cam_view(model)
    clean = cam.attribute(model, x, y)
    if k > clean[0].numel():
        raise InputError(f"k: expected at most the {clean[0].numel()} cells of a map, got {k}")
    top = clean.flatten(1).topk(k, dim=1).indices

    def objective(xa):  # the clean top cells' CAM, to be pushed down
        return -cam.attribute(view, xa, y, differentiable=True).flatten(1).gather(1, top).sum(1)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        x_adv = pgd(
            view, x, eps=eps, steps=steps, step_size=step_size, random_start=True, objective=objective
        )
    with eval_mode(model), torch.no_grad():
        kept = model(x).argmax(1) == model(x_adv).argmax(1)
    attacked = cam.attribute(model, x_adv, y)
    nan = torch.full((x.shape[0],), float("nan"), dtype=clean.dtype, device=clean.device)
    tau = torch.where(kept, kendall_tau(clean, attacked), nan)
    inter = torch.where(kept, top_k_intersection(clean, attacked, k, absolute=False), nan)
    out = {"tau": tau.cpu(), "intersection": inter.cpu(), "kept": kept.cpu(), "x_adv": x_adv}
    return {**out, "eps": float(eps), "k": k}


def interpretation_summary(results: dict) -> dict:
    """{network: {"kept", "tau", "intersection"}} of {network: :func:`interpretation_robustness`}:
    the share of images whose prediction survived (Wilson interval), and over those, the mean
    Kendall tau and top-k intersection (bootstrap intervals): the reference's score is the mean tau."""
    out = {}
    for name, r in results.items():
        kept = r["kept"]
        row = {"kept": wilson(int(kept.sum()), kept.numel())}
        for key in ("tau", "intersection"):
            v = r[key][~r[key].isnan()].double()
            row[key] = bootstrap_mean(v) if v.numel() else None
        out[name] = row
    return out


def interpretation_tests(results: dict, pairs) -> dict:
    """{"a-b": Estimate}: Kendall tau of network a minus b, paired over the images both kept.

    ``results`` = {network: :func:`interpretation_robustness` on the same images
    and eps}. Images where either prediction changed (or a map is constant) are
    left out of the pair; the estimate's n says how many remain (with fewer than
    two, an undefined estimate: NaN, n = the pairs left).
    """
    out = {}
    for a, b in pairs:
        for label in (a, b):
            if label not in results:
                raise InputError(f"pairs: no results for {label!r}; have {sorted(results)}")
        ta, tb = results[a]["tau"].double(), results[b]["tau"].double()
        both = ~(ta.isnan() | tb.isnan())
        n = int(both.sum())
        out[f"{a}-{b}"] = (
            paired_mean_difference(ta[both], tb[both]) if n > 1 else Estimate(math.nan, math.nan, math.nan, n)
        )
    return out
