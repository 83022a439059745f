"""Accuracy, Attack ARA and BTR ARA of mnist5k Woods checkpoints, with their training seconds.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/woods_mnist_table.py [CHECKPOINT ...] [--n-images 1000]

Without checkpoints: the four shipped ones (standard, adv, robust, all). ARA
uses the paper's settings (450 steps, eps 20, momentum 0.9) on the first
``--n-images`` of the seed-1776 permutation of the mnist5k test split; test
accuracy is on all 1,000 test images. Prints a table, the ratios to the first
checkpoint, and writes JSON to ``--out`` if given.
"""

import argparse
import json
import time
from pathlib import Path

from advexp_lib import data, metrics, training, zoo


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="*")
    p.add_argument("--n-images", type=int, default=1000)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    paths = a.checkpoints or [
        zoo.SHIPPED_DIR / f"mnist5k-{r}.pt" for r in ("standard", "adv", "robust", "all")
    ]
    x, y = data.load_tensors("mnist5k", "test", n=a.n_images, seed=1776)
    test = data.load_dataset("mnist5k", "test")
    rows = {}
    for path in paths:
        path = Path(path)
        model = zoo.model_from_checkpoint(path)
        history = training.load_checkpoint(path)["history"]
        row = {
            "test_accuracy": training.evaluate(model, test)["accuracy"],
            "train_seconds": sum(r["seconds"] for r in history),
        }
        for kind in ("attack", "btr"):
            t0 = time.perf_counter()
            res = metrics.accuracy_robustness_area(
                model, x, y, kind=kind, progress=False, on_late="flag", never_met="retry"
            )
            row[f"{kind}_ara"] = res.ara
            row[f"{kind}_unreliable"] = int(res.unreliable.sum())
            row[f"{kind}_retried"] = int(res.retried.sum())
            row[f"{kind}_seconds"] = time.perf_counter() - t0
        rows[path.name] = row
        print(path.name, json.dumps(row), flush=True)
    base = next(iter(rows.values()))
    print("\n| checkpoint | test acc | Attack ARA | BTR ARA | Attack / first | BTR / first | train s |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['test_accuracy']:.3f} | {r['attack_ara']:.4f} | {r['btr_ara']:.4f} | "
            f"{r['attack_ara'] / base['attack_ara']:.2f}x | {r['btr_ara'] / base['btr_ara']:.2f}x | "
            f"{r['train_seconds']:.0f} |"
        )
    if a.out:
        Path(a.out).write_text(json.dumps({"n_images": a.n_images, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
