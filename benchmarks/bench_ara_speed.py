"""Our ARA search against a transcription of Woods et al.'s reference loop, as a ratio within one run.

    ADVEXP_WOODS_DIR=../shared/woods_prebuilt .venv/bin/python benchmarks/bench_ara_speed.py [--pairs 3]

On a published ResNet-44 (``--recipe``, default ``robust``) and ``--n`` images
(the reference's four CIFAR-10 example images, then copies of them with
Gaussian noise of std 0.01, seed 0, clamped to [0, 1]), runs the ARA search
with the ARA defaults (450 steps, eps 20, momentum 0.9, model in eval mode):
``advexp_lib.attacks.rmse_search(criterion="attack")`` and
``tests/woods_reference.reference_search(use_l2min=True)``, in alternating
pairs (ours, reference, reference, ours, ...), one thread count for both.

Prints each run's seconds, the median speed ratio (reference time / ours),
and the largest absolute difference between the two searches' per-image
minimal distances (RMSE), which must stay below 1e-5 for the ratio to count.
Also prints the share of images the network misclassifies unperturbed
(distance 0 at step 0): our search drops those after its first step, so the
ratio grows with that share. ``--correct-only`` keeps only copies of the
example images the network classifies right (a share near 0: the cost of
the search step itself). ``--nhwc`` feeds our search channels-last copies,
as it does for networks with max-pooling.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from advexp_lib.attacks import SearchConfig, rmse, rmse_search
from advexp_lib.attacks import search as search_module
from advexp_lib.published import example_images, published_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from woods_reference import reference_search  # noqa: E402  (the transcription lives beside the tests)


def images(n: int, model, correct_only: bool) -> tuple[torch.Tensor, torch.Tensor]:
    ex = example_images(download=False)
    if correct_only:
        with torch.no_grad():
            keep = model(ex["x"]).argmax(1) == ex["y"]
        ex = {"x": ex["x"][keep], "y": ex["y"][keep]}
    k = len(ex["y"])
    gen = torch.Generator().manual_seed(0)
    reps = -(-n // k)
    x = ex["x"].repeat(reps, 1, 1, 1)[:n]
    y = ex["y"].repeat(reps)[:n]
    noise = 0.01 * torch.randn(x.shape, generator=gen)
    noise[:k] = 0
    return (x + noise).clamp(0, 1), y


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="robust", choices=["standard", "adv", "robust", "all"])
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--steps", type=int, default=450)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--correct-only", action="store_true", help="only examples it classifies right")
    p.add_argument("--nhwc", action="store_true", help="feed our search NHWC copies, as for the small CNNs")
    a = p.parse_args()
    model = published_model(a.recipe, download=False).eval()
    if a.nhwc:  # the layout choice is private to the search; the benchmark overrides it to measure it
        search_module.prefers_nhwc = lambda model, x: True
    x, y = images(a.n, model, a.correct_only)
    settings = dict(eps=20.0, steps=a.steps, momentum=0.9)
    config = SearchConfig(**settings)

    def ours():
        return rmse_search(model, x, y, criterion="attack", config=config).distances

    def theirs():
        out = reference_search(model, x, y, use_l2min=True, ensure_proper_minimization=False, **settings)
        return rmse(out - x)

    with torch.no_grad():
        wrong = (model(x).argmax(1) != y).float().mean().item()
    threads = torch.get_num_threads()
    print(f"{a.recipe}: n={a.n}, {a.steps} steps, threads={threads}, misclassified {wrong:.2f}")
    times = {"ours": [], "reference": []}
    dists = {}
    order = [("ours", ours), ("reference", theirs)]
    for k in range(a.pairs):
        for name, fn in order if k % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            dists[name] = fn()
            times[name].append(time.perf_counter() - t0)
            print(f"  pair {k}: {name:9s} {times[name][-1]:7.2f} s", flush=True)
    finite = torch.isfinite(dists["ours"]) & torch.isfinite(dists["reference"])
    same_inf = torch.equal(torch.isfinite(dists["ours"]), torch.isfinite(dists["reference"]))
    diff = (dists["ours"][finite] - dists["reference"][finite]).abs().max().item()
    ratio = statistics.median(r / o for r, o in zip(times["reference"], times["ours"], strict=True))
    print(f"speed ratio reference/ours (median of {a.pairs} pairs): {ratio:.2f}x")
    print(f"max |distance difference| {diff:.2e} (same never-met images: {same_inf})")


if __name__ == "__main__":
    main()
