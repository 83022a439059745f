"""Sweep driver behind the mnist5k Woods recipes (``advexp_lib.recipes``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tune_woods_mnist.py robust '{"target": 1.2, "d": 1.5}'

Trains the named mnist5k recipe (standard, adv, robust, all) with the given
overrides, without caching it, then prints one JSON line: test accuracy and
Attack / BTR ARA on the first ``--n-images`` (default 200) of the 1,000 ARA test
images (seed 1776, paper ARA settings). Overrides: ``target`` (L_target),
``zeta``, ``d`` (half-Huber width), ``l2min_eps`` (the ``all`` recipe's search
budget), ``k_psi``, ``k_psi0``, ``num_epochs``, ``lr``, ``batch_size``, ``optimizer``.
Images the reference search cannot move are searched again with unit steps
(``never_met="retry"``) and counted in ``retried``. ``--kinds attack``
skips the BTR search. ``--holdout`` keeps the test images out of the sweep: it
trains on 3,000 of the 4,000 training images and scores accuracy and ARA on the
other 1,000 (100 per class, seed 1776), so the test figures of the chosen
setting stay held out.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import torch

from advexp_lib import data, zoo
from advexp_lib.metrics import accuracy_robustness_area

LADV_KEYS = ("target", "zeta", "k_psi", "k_psi0")
TRAIN_KEYS = ("num_epochs", "lr", "batch_size", "optimizer")
HOLDOUT_SEED = 1776


def with_overrides(r: zoo.Recipe, over: dict) -> zoo.Recipe:
    unknown = set(over) - set(LADV_KEYS + TRAIN_KEYS + ("d", "l2min_eps"))
    if unknown:
        raise SystemExit(f"overrides: unknown key(s) {sorted(unknown)}")
    if r.loss_term and any(k in over for k in LADV_KEYS):
        r = replace(
            r, loss_term=(r.loss_term[0], {**r.loss_term[1], **{k: over[k] for k in LADV_KEYS if k in over}})
        )
    if "d" in over:
        r = replace(r, activation=f"half_huber({over['d']})")
    if "l2min_eps" in over and r.input_transform:
        r = replace(
            r, input_transform=(r.input_transform[0], {**r.input_transform[1], "eps": over["l2min_eps"]})
        )
    train = {k: over[k] for k in TRAIN_KEYS if k in over}
    return replace(r, train=replace(r.train, **train)) if train else r


def holdout_split(per_class: int = 100, seed: int = HOLDOUT_SEED):
    """mnist5k's 4,000 training images split into (3,000-image Dataset, (x_val, y_val)): ``per_class``
    validation images of each class, drawn with ``seed``, in a seeded random order."""
    ds = data.load_dataset("mnist5k", "train")
    g = torch.Generator().manual_seed(seed)
    val, keep = data.stratified_split(ds.y, per_class, len(ds.classes), g)
    val, keep = val[torch.randperm(len(val), generator=g)], torch.sort(keep).values
    return data.TensorImageDataset(ds.x[keep], ds.y[keep], ds.classes), (ds.x[val], ds.y[val])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe", choices=("standard", "adv", "robust", "all"))
    ap.add_argument("overrides", nargs="?", default="{}", help="JSON object, e.g. '{\"target\": 1.2}'")
    ap.add_argument("--n-images", type=int, default=200)
    ap.add_argument("--kinds", default="attack,btr", help="ARA criteria to measure (comma-separated)")
    ap.add_argument(
        "--holdout",
        action="store_true",
        help="train on 3,000 training images, score on the other 1,000 (test images untouched)",
    )
    a = ap.parse_args()
    over = json.loads(a.overrides)
    r = with_overrides(zoo.recipe("mnist5k", a.recipe), over)
    if a.holdout:
        train_data, (x, y) = holdout_split()
        test_data = data.TensorImageDataset(x, y, train_data.classes)
        x, y = x[: a.n_images], y[: a.n_images]
    else:
        train_data = test_data = None
        x, y = data.load_tensors("mnist5k", "test", n=a.n_images, seed=1776)
    t = time.perf_counter()
    model, history = zoo.train_recipe(r, progress=False, train_data=train_data, test_data=test_data)
    seconds = time.perf_counter() - t
    kinds = a.kinds.split(",")
    res = {
        k: accuracy_robustness_area(model, x, y, kind=k, progress=False, on_late="flag", never_met="retry")
        for k in kinds
    }
    print(
        json.dumps(
            dict(
                recipe=a.recipe,
                overrides=over,
                n_images=len(y),
                holdout=a.holdout,
                test_accuracy=history[-1]["test_accuracy"],  # final weights, scored split (test, or held out)
                **{f"{k}_ara": round(v.ara, 4) for k, v in res.items()},
                unreliable=int(sum(v.unreliable.sum() for v in res.values())),
                retried=int(sum(v.retried.sum() for v in res.values())),
                train_seconds=round(seconds, 1),
                final_ce=round(history[-1]["ce"], 3),
                final_psi=history[-1].get("psi"),
            )
        )
    )


if __name__ == "__main__":
    main()
