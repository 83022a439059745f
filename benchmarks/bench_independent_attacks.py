"""Cost of the independent attacks of ``metrics.ensemble_ara`` relative to the RMSE search, within one run.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_independent_attacks.py [--n 100] [--steps 450]

On the shipped mnist5k ``robust`` model and the first ``--n`` test images of the
seed-1776 permutation, each attack gets the same step budget (``--steps``, the
RMSE search's 450 by default): the RMSE search (``attacks.rmse_search``, attack
mode), foolbox's DDN and FMN (``attacks.independent_attack``), each a forward
and a backward pass per step, and the gradient-free boundary attack (one
forward pass per step, on ``--n-boundary`` images, with ``--boundary-steps``).
Rounds visit every attack in turn (so load drift hits all alike); the printout
gives the median seconds per image-step of each attack divided by the RMSE
search's, and each attack's ARA on these images for scale.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from advexp_lib import zoo
from advexp_lib.attacks import SearchConfig, independent_attack, rmse_search
from advexp_lib.data import load_tensors
from advexp_lib.metrics import ara_from_distances


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--steps", type=int, default=450)
    p.add_argument("--n-boundary", type=int, default=10)
    p.add_argument("--boundary-steps", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args(argv)
    model = zoo.get_model("mnist5k", "robust", progress=False)
    x, y = load_tensors("mnist5k", "test", n=a.n, seed=1776)
    xb, yb = x[: a.n_boundary], y[: a.n_boundary]

    config = SearchConfig(steps=a.steps, eps=20.0, momentum=0.9)

    def search():
        return rmse_search(model, x, y, criterion="attack", config=config).distances

    def other(name, xs, ys, steps):
        return lambda: independent_attack(model, xs, ys, attack=name, steps=steps).distances

    runs = {
        "rmse": search,
        "ddn": other("ddn", x, y, a.steps),
        "fmn": other("fmn", x, y, a.steps),
        "boundary": other("boundary", xb, yb, a.boundary_steps),
    }
    image_steps = {k: a.n * a.steps for k in ("rmse", "ddn", "fmn")}
    image_steps["boundary"] = a.n_boundary * a.boundary_steps
    times, distances = {k: [] for k in runs}, {}
    for _ in range(a.rounds):
        for k, run in runs.items():
            torch.manual_seed(0)
            t = time.perf_counter()
            distances[k] = run()
            times[k].append(time.perf_counter() - t)
    per = {k: statistics.median(v) / image_steps[k] for k, v in times.items()}
    print(
        f"robust mnist5k model, {a.n} images, {a.steps} steps "
        f"({a.n_boundary} images x {a.boundary_steps} steps for boundary)"
    )
    print("| attack | seconds per image-step / RMSE search's | failures | ARA |\n|---|---|---|---|")
    for k in runs:
        d = distances[k]
        finite = torch.isfinite(d)
        ara = ara_from_distances(d, 10) if finite.all() else float("inf")
        print(f"| {k} | {per[k] / per['rmse']:.2f} | {int((~finite).sum())} | {ara:.4f} |")


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    main()
