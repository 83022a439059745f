"""FLOPs per CIFAR-10 ResNet-44 training step, counted on CPU, and the GPU-hours they imply.

    OMP_NUM_THREADS=1 python benchmarks/bench_scale_flops.py [--batch 16]

Counts with torch.utils.flop_counter.FlopCounterMode (matmul/conv FLOPs,
2 per multiply-add; element-wise ops are not counted) for one step of each
Woods et al. recipe on a batch, scales linearly to the paper's batch of 128,
and prints the ratios to the standard step and the FLOPs of a full run
(200 epochs of 50,000 images). The GPU-hours estimate in book/gpu_and_scale.md
is derived from these numbers. The counts are independent of the hardware; the
batch only sets how long counting takes (FLOPs are linear in the batch).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from advexp_lib.adversarial_training import RmseAdversarialTraining
from advexp_lib.models import build_model
from advexp_lib.regularizers import WoodsRegularizer

PAPER_BATCH, EPOCHS, TRAIN_IMAGES = 128, 200, 50_000


class _NoModules:
    """Stands in for FlopCounterMode's ModuleTracker, whose module hooks break
    ``torch.autograd.grad`` on a leaf input (the double backprop of L_adv):
    we only need the global total, which the tracker's "Global" parent holds."""

    parents = ("Global",)

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False


def _counter() -> FlopCounterMode:
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _NoModules()
    return counter


def _setup(activation, regularize, adversarial, batch):
    torch.manual_seed(0)
    model = build_model(
        "resnet44",
        in_channels=3,
        activation=activation,
        image_size=32,
        mean=[0.49, 0.48, 0.45],
        std=[0.25, 0.24, 0.26],
    ).train()
    x, y = torch.rand(batch, 3, 32, 32), torch.randint(10, (batch,))
    reg = WoodsRegularizer() if regularize else None  # paper settings: z 2, zeta 0.2, adaptive psi
    # the zoo's settings: "adv" searches l2 with eps 0.01, "all" l2min with eps 0.1; 7 steps each
    transform = (
        RmseAdversarialTraining(
            minimal=adversarial == "l2min", eps=0.01 if adversarial == "l2" else 0.1, steps=7
        )
        if adversarial
        else None
    )
    return model, x, y, reg, transform


def _step_flops(*recipe) -> float:
    """FLOPs of one training step of ``recipe`` = (activation, regularize, adversarial, batch)."""
    with _counter() as counter:
        _one_step(*_setup(*recipe))
    return counter.get_total_flops()


def _step_seconds(*recipe) -> float:
    """Best of 3 CPU wall-clock seconds of one training step (ratios only: CPU is not a GPU)."""
    best = float("inf")
    for _ in range(3):
        args = _setup(*recipe)
        t0 = time.perf_counter()
        _one_step(*args)
        best = min(best, time.perf_counter() - t0)
    return best


def _one_step(model, x, y, reg, transform) -> None:
    """What train() does per step: transform, forward, CE (+ L_adv), backward."""
    if transform is not None:
        x = transform(model, x, y).detach()
        model.train()
    if reg is not None:
        x = x.clone().requires_grad_(True)
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    if reg is not None:
        loss = loss + reg(model, x, y, logits)[0]
    loss.backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="counting batch (scaled to 128)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scale = PAPER_BATCH / args.batch
    steps = EPOCHS * -(-TRAIN_IMAGES // PAPER_BATCH)
    recipes = {
        "standard": ("relu", False, None),
        "adv": ("relu", False, "l2"),
        "robust": ("half_huber", True, None),
        "all": ("half_huber", True, "l2min"),
    }
    out = {}
    for name, (act, reg, adv) in recipes.items():
        flops = _step_flops(act, reg, adv, args.batch) * scale
        seconds = _step_seconds(act, reg, adv, args.batch)
        out[name] = {
            "gflop_per_step_b128": flops / 1e9,
            "pflop_per_run": flops * steps / 1e15,
            "cpu_seconds_per_step": seconds,
        }
    for name in out:  # element-wise work (uncounted) makes the time ratio exceed the FLOP ratio
        out[name]["flop_ratio_to_standard"] = (
            out[name]["gflop_per_step_b128"] / out["standard"]["gflop_per_step_b128"]
        )
        out[name]["cpu_time_ratio_to_standard"] = (
            out[name]["cpu_seconds_per_step"] / out["standard"]["cpu_seconds_per_step"]
        )
    print(json.dumps({"steps_per_run": steps, "recipes": out}, indent=1))


if __name__ == "__main__":
    main()
