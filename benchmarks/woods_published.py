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
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from woods_reference import reference_search  # noqa: E402

from advexp_lib.attacks import rmse  # noqa: E402
from advexp_lib.explanation_attacks import adversarial_explanation  # noqa: E402
from advexp_lib.metrics import accuracy_robustness_area, ara_from_distances  # noqa: E402
from advexp_lib.woods_import import import_woods_checkpoint  # noqa: E402

NETWORKS = ("resnet44-standard.pt", "resnet44-adv-train.pt", "resnet44-all.pt", "resnet44-robust.pt")
LABELS = torch.tensor([8, 6, 3, 1])


def png(path):
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)


def saved(x):
    return x.mul(255).add(0.5).clamp(0, 255).to(torch.uint8).double()


def compare(a, b, x8):
    """(max |a - b|, mean |a - b|, corr of a - x and b - x) per image; a, b, x8 in 0 .. 255."""
    diff = (a - b).abs().flatten(1)
    da, db = (a - x8).flatten(1), (b - x8).flatten(1)
    corr = [torch.corrcoef(torch.stack([u, v]))[0, 1].item() for u, v in zip(da, db)]
    return diff.max(1).values.tolist(), diff.mean(1).tolist(), corr


def row(label, stats):
    mx, mean, corr = stats
    cells = " | ".join(f"{m:.0f} / {a:.2f} / {c:.3f}" for m, a, c in zip(mx, mean, corr))
    return f"| {label} | {cells} |"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("ADVEXP_WOODS_DIR", ROOT.parent / "shared" / "woods_prebuilt")
    p.add_argument("--folder", default=default)
    p.add_argument("--ara", action="store_true", help="also compare ARA with the reference loop (slow)")
    a = p.parse_args()
    folder = Path(a.folder)
    x8 = torch.stack([png(folder / "example_output" / f"prebuilt_orig_{j}.png") for j in range(4)]).double()
    x = x8.float().div(255)
    print(
        "max / mean pixel difference (of 255) / correlation of the changes, per image (ship, frog, cat, car)"
    )
    print("| network, comparison | image 0 | image 1 | image 2 | image 3 |\n|---|---|---|---|---|")
    g = torch.Generator().manual_seed(0)
    for i, name in enumerate(NETWORKS):
        model = import_woods_checkpoint(folder / name)
        ref = torch.stack(
            [png(folder / "example_output" / f"prebuilt_{i}_{j}.png") for j in range(4)]
        ).double()
        ours = saved(adversarial_explanation(model, x, LABELS, on_late="flag"))
        print(row(f"{name}: ours vs reference PNG", compare(ours, ref, x8)))
        nudged = (x + 1e-6 * torch.randn(x.shape, generator=g)).clamp(0, 1)
        print(
            row(
                f"{name}: ours, input moved 1e-6",
                compare(saved(adversarial_explanation(model, nudged, LABELS, on_late="flag")), ours, x8),
            )
        )
        f64 = saved(adversarial_explanation(model.double(), x.double(), LABELS, on_late="flag"))
        print(row(f"{name}: ours in float64", compare(f64, ours, x8)))
    if not a.ara:
        return
    print("\nARA on the 4 images (450 steps, eps 20, momentum 0.9): ours vs the reference loop")
    for name in ("resnet44-standard.pt", "resnet44-robust.pt"):
        model = import_woods_checkpoint(folder / name)
        for kind, l2min in (("attack", True), ("btr", "btr")):
            ours = accuracy_robustness_area(model, x, LABELS, kind=kind, progress=False, on_late="flag")
            ref = rmse(
                reference_search(
                    model,
                    x,
                    LABELS,
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
