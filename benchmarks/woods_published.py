"""Our search on Woods et al.'s published ResNet-44s against the reference's own outputs and loop.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/woods_published.py [--folder DIR] [--ara]

1. The 16 explanations of ``example_output/`` (4 CIFAR-10 test images x 4
   networks, toward the true class, rho 0.1, overshoot 5, 35 steps): largest and
   mean pixel difference (out of 255) between ours and the reference PNG, and
   the correlation of the two changes from the image.
2. Sensitivity of our own search on each network: the same numbers between our
   explanation and ours again with the input moved by 1e-6 (Gaussian noise),
   and ours in float64. On a chaotic (ReLU) network these are as large as the
   differences in 1., which bounds what any reproduction can reach.
3. With ``--ara``: Attack and BTR ARA distances of the four images on the
   standard and robust networks, ours (``metrics.accuracy_robustness_area``)
   against the transcription of the reference loop (tests/woods_reference.py,
   NCHW) with the paper's settings; the relative difference of the ARA.

The folder holds the four ``resnet44-*.pt`` files and ``example_output/``
(default: ``$ADVEXP_WOODS_DIR``, else ``../shared/woods_prebuilt``).
"""

import argparse
import functools
import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from woods_reference import reference_search  # noqa: E402

from advexp_book.experiments import reference_difference  # noqa: E402
from advexp_lib.attacks import AE_REFERENCE, rmse  # noqa: E402
from advexp_lib.attributions import adversarial_explanation  # noqa: E402
from advexp_lib.metrics import accuracy_robustness_area, ara_from_distances  # noqa: E402
from advexp_lib.published import EXAMPLE_NETWORK_ORDER, example_images, published_model  # noqa: E402


def row(label, table):
    cols = table[["max_diff_255", "mean_diff_255", "change_corr"]]
    cells = " | ".join(f"{m:.0f} / {a:.2f} / {c:.3f}" for m, a, c in cols.itertuples(index=False))
    return f"| {label} | {cells} |"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("ADVEXP_WOODS_DIR", ROOT.parent / "shared" / "woods_prebuilt")
    p.add_argument("--folder", default=default)
    p.add_argument("--ara", action="store_true", help="also compare ARA with the reference loop (slow)")
    a = p.parse_args()
    os.environ["ADVEXP_WOODS_DIR"] = str(a.folder)
    ex = example_images(download=False)
    x, labels = ex["x"], ex["y"]
    print(
        "max / mean pixel difference (of 255) / correlation of the changes, per image (ship, frog, cat, car)"
    )
    print("| network, comparison | image 0 | image 1 | image 2 | image 3 |\n|---|---|---|---|---|")
    g = torch.Generator().manual_seed(0)
    for recipe in EXAMPLE_NETWORK_ORDER:
        model = published_model(recipe, download=False)
        # the reference's own search: unclipped, as its PNGs were made
        explain = functools.partial(
            adversarial_explanation, config=AE_REFERENCE, on_late="flag", on_miss="flag", progress=False
        )
        ours = explain(model, x, labels).x_adv
        print(row(f"{recipe}: ours vs reference PNG", reference_difference(ours, ex["reference"][recipe], x)))
        # our own output quantized, as the "reference" of the sensitivity rows
        ours8 = ours.mul(255).add(0.5).floor().clamp(0, 255).div(255)
        nudged = (x + 1e-6 * torch.randn(x.shape, generator=g)).clamp(0, 1)
        moved = explain(model, nudged, labels).x_adv
        print(row(f"{recipe}: ours, input moved 1e-6", reference_difference(moved, ours8, x)))
        f64 = explain(model.double(), x.double(), labels).x_adv.float()
        print(row(f"{recipe}: ours in float64", reference_difference(f64, ours8, x)))
    if not a.ara:
        return
    print("\nARA on the 4 images (450 steps, eps 20, momentum 0.9): ours vs the reference loop")
    for name in ("standard", "robust"):
        model = published_model(name, download=False)
        for kind, l2min in (("attack", True), ("btr", "btr")):
            ours = accuracy_robustness_area(model, x, labels, kind=kind, progress=False, on_late="flag")
            ref = rmse(
                reference_search(
                    model,
                    x,
                    labels,
                    eps=20.0,
                    steps=450,
                    momentum=0.9,
                    use_l2min=l2min,
                    ensure_proper_minimization=False,
                )
                - x
            )
            theirs = ara_from_distances(ref, 10)
            print(
                f"{name} {kind}: ours {ours.ara:.6f}, reference loop {theirs:.6f}, "
                f"relative difference {(ours.ara - theirs) / theirs:+.1%}; distances ours "
                f"{[round(v, 6) for v in ours.distances.tolist()]}, "
                f"reference {[round(v, 6) for v in ref.tolist()]}"
            )


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    main()
