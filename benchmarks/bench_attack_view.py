"""PGD on ``speedups.attack_view(model)`` against PGD on the model itself, as ratios within one run.

    .venv/bin/python benchmarks/bench_attack_view.py [--n 100] [--steps 20] [--rounds 3] [--published]

For the shipped ``smallgap_adv`` (SmallGap: the folded affine tail) and
``cam_standard`` (CamCNN with max-pooling: NHWC feeding) on ``--n`` mnist5k
test images, runs l-inf PGD (eps 0.3, ``--steps`` sign steps of 0.01, no
random start) on the model and on its view in alternating rounds, and prints
the median seconds of each, their ratio (model / view), the share of pixels
where the two x' differ by more than 1e-6, and the robust accuracy each x'
leaves (model / view, scored on the model itself), at ``--steps`` and at 200 steps.

``--published`` (needs ``ADVEXP_BOOPATHY_DIR`` and the MNIST test set under
``ADVEXP_DATA_PATH``): for Boopathy et al.'s ``int2``, ``adv`` and ``intone``
on the first ``--n`` of the reference's test images (seed 99), runs
``metrics.robust_accuracy_curve`` (200 steps) at eps 0, .1, .3, .35, .4 with
the view and with ``attack_view`` replaced by the identity, and prints both
curves, their seconds and how many (eps, image) robustness flags differ ("differing").

``--cam``: for ``smallgap_adv``, ``--steps`` gradient steps of the interpretability
sneaking attack's costly part (the CAM of the true class and its input gradient) on the
model and on ``speedups.cam_view(model)``, in alternating rounds: median seconds, their
ratio, and the largest CAM difference.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from advexp_book import companion_eval
from advexp_lib import data, metrics, zoo
from advexp_lib.attacks import pgd
from advexp_lib.attributions import Cam
from advexp_lib.speedups import attack_view, cam_view


def cam(n: int, steps: int, rounds: int) -> None:
    """Seconds of CAM + input gradient on SmallGap and on its ``cam_view``, median of ``rounds``."""
    x, y = data.load_tensors("mnist5k", "test", n=n, seed=0)
    model = zoo.get_model("mnist5k", "smallgap_adv", progress=False).eval()
    view, explain = cam_view(model), Cam(upsample=False)

    def run(net):
        for _ in range(steps):
            z = x.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(explain.attribute(net, z, y, differentiable=True).sum(), z)
        return g

    times = {"model": [], "view": []}
    for _ in range(rounds):
        for label, net in (("model", model), ("view", view)):
            t0 = time.perf_counter()
            run(net)
            times[label].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    with torch.no_grad():
        diff = (explain.attribute(model, x, y) - explain.attribute(view, x, y)).abs().max().item()
    print(f"smallgap_adv CAM + gradient, n={n}, {steps} steps:")
    print(f"  model {med['model']:.3f} s  view {med['view']:.3f} s  ratio {med['model'] / med['view']:.2f}")
    print(f"  largest CAM difference {diff:.2e}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--published", action="store_true")
    p.add_argument("--cam", action="store_true")
    a = p.parse_args()
    if a.published:
        return published(a.n)
    if a.cam:
        return cam(a.n, a.steps, a.rounds)
    x, y = data.load_tensors("mnist5k", "test", n=a.n, seed=0)
    for recipe in ("smallgap_adv", "cam_standard"):
        model = zoo.get_model("mnist5k", recipe, progress=False).eval()
        view = attack_view(model, x)
        times = {"model": [], "view": []}
        for _ in range(a.rounds):
            for label, net in (("model", model), ("view", view)):
                t0 = time.perf_counter()
                pgd(net, x, y, eps=0.3, steps=a.steps, progress=False)
                times[label].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{recipe} ({type(model).__name__}, {type(view).__name__}), n={a.n}, {a.steps} steps:")
        ratio = med["model"] / med["view"]
        print(f"  model {med['model']:.3f} s  view {med['view']:.3f} s  ratio {ratio:.2f}")
        for steps in (a.steps, 200):
            xa, xb = (pgd(net, x, y, eps=0.3, steps=steps, progress=False) for net in (model, view))
            with torch.no_grad():
                ra, rb = ((model(v).argmax(1) == y).float().mean().item() for v in (xa, xb))
            differ = ((xa - xb).abs() > 1e-6).float().mean().item()
            print(f"  {steps} steps: pixels differing {differ:.2e}; robust accuracy {ra:.3f} / {rb:.3f}")


def published(n):
    x, y, source = companion_eval.reference_mnist_test(n, 99, download=False)
    print(f"{x.shape[0]} images from {source}")
    grid = [0.0, 0.1, 0.3, 0.35, 0.4]
    for name in ("int2", "adv", "intone"):
        model = zoo.get_model("mnist", name, source="boopathy2020", progress=False)
        out = {}
        for label in ("view", "plain"):
            saved = metrics.attack_view
            if label == "plain":  # the benchmark overrides the view to measure it
                metrics.attack_view = lambda model, x: model
            try:
                t0 = time.perf_counter()
                settings = dict(per_image=True, progress=False)
                _, acc, flags = metrics.robust_accuracy_curve(model, x, y, grid, **settings)
                out[label] = (acc, flags, time.perf_counter() - t0)
            finally:
                metrics.attack_view = saved
        (av, fv, tv), (ap, fp, tp) = out["view"], out["plain"]
        differ = (fv != fp).sum().item()
        print(f"{name}: view {av.tolist()} {tv:.0f} s; plain {ap.tolist()} {tp:.0f} s; differing {differ}")


if __name__ == "__main__":
    main()
