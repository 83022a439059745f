"""The ARA search on a published ResNet-44, channels-last input against channels-first, within one run.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_published_ara.py [--recipe robust] [--n 100]

On Woods et al.'s published network ``--recipe`` (the copy shipped in
``data/woods2019``) and ``--n`` CIFAR-10 test images (``data.load_tensors``:
the original test set when present, else the shipped JPEG copies; the ARA
protocol's seed-1776 permutation), runs the Attack ARA search at the protocol's
settings (``attacks.ARA_PAPER``: 450 steps, eps 20, momentum 0.9) twice per
round after a short warm-up of each layout, alternating the order between
rounds: the images fed as NCHW tensors (the search's layout for these networks
before the channels-last change) and as NHWC copies (``speedups.nhwc_copy``,
today's default on CPU). Prints each run's seconds, the median speed ratio
(NCHW time / NHWC time), and the largest change of a per-image minimal
distance and of the ARA between the layouts: float32 rounding of the
convolutions' sums, carried along by the search.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

from advexp_lib import data, metrics
from advexp_lib.attacks import ARA_PAPER
from advexp_lib.attacks import search as search_module
from advexp_lib.published import published_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="robust", choices=["standard", "adv", "robust", "all"])
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--steps", type=int, default=ARA_PAPER.steps)
    p.add_argument("--rounds", type=int, default=2, help="pairs of runs, the order alternating")
    a = p.parse_args()
    model = published_model(a.recipe, download=False)
    x, y, source = data.load_tensors("cifar10", "test", n=a.n, seed=1776, download=False, return_source=True)
    config = replace(ARA_PAPER, steps=a.steps)
    print(f"{a.recipe}: {a.n} images from {source}; {config}")
    default = search_module.prefers_nhwc
    layouts = {"NCHW": lambda model, x: False, "NHWC": default}

    def run(layout):
        search_module.prefers_nhwc = layouts[layout]  # the layout choice is the search's; overridden here
        try:
            start = time.perf_counter()
            res = metrics.accuracy_robustness_area(model, x, y, config=config, progress=False, on_late="flag")
            return time.perf_counter() - start, res
        finally:
            search_module.prefers_nhwc = default

    for layout in layouts:  # warm-up: oneDNN builds its kernels for each layout on first use
        search_module.prefers_nhwc = layouts[layout]
        metrics.accuracy_robustness_area(
            model, x, y, config=replace(config, steps=3), progress=False, on_late="flag"
        )
    search_module.prefers_nhwc = default
    times, results = {k: [] for k in layouts}, {}
    for r in range(a.rounds):
        for layout in ("NCHW", "NHWC") if r % 2 == 0 else ("NHWC", "NCHW"):
            seconds, results[layout] = run(layout)
            times[layout].append(seconds)
            print(f"round {r}: {layout} {seconds:.1f} s, ARA {results[layout].ara:.5f}")
    ratio = statistics.median(times["NCHW"]) / statistics.median(times["NHWC"])
    change = (results["NHWC"].distances.double() - results["NCHW"].distances.double()).abs()
    print(f"speed ratio NCHW / NHWC: {ratio:.2f}")
    before, after = results["NCHW"], results["NHWC"]
    print(
        f"largest change of a minimal distance: {change.max():.2e} (median {before.distances.median():.2e})"
    )
    print(f"ARA {before.ara:.6f} -> {after.ara:.6f}")


if __name__ == "__main__":
    main()
