"""Woods et al. costs, as ratios measured within one run (absolute times on shared machines mislead).

    .venv/bin/python benchmarks/bench_woods.py [--quick]

Prints:
- robust step / standard step and `all` step / standard step (one optimizer step
  of the training loop's work: forward, loss, backward, update) at the recipes'
  batch sizes: the small CNN (mnist5k, batch 64) and ResNet-44 (CIFAR-10 shape,
  batch 128, the paper's); for the small CNN also its robust step with the
  activation before each max-pool (the modules' stored order) / with
  ``models.PoolFirst`` (pool first, the library's default);
- ARA throughput in image-steps per second: the batched search as
  ``accuracy_robustness_area`` runs it by default, every image in one batch
  (1,000 for the small CNN, 128 for ResNet-44), vs a per-image loop of the
  same search (batch of one),
  and their ratio; and two speed-ups of the batched search (throughput ratios):
  the NHWC copy ``rmse_search`` feeds the model on CPU vs plain NCHW, and
  chunks of 256 images (``batch_size=256``) vs one batch;
- a roofline for that ratio: the search's FLOP rate (forward + input gradient,
  convolution and matmul FLOPs counted by ``torch.utils.flop_counter``) batched and per image, against this
  run's 2048 x 2048 float32 matmul rate. Batched / per-image cannot exceed
  matmul rate / per-image rate, so a model whose batched search already runs
  near the matmul rate has no 10x left to win by batching.
Timings are medians over interleaved rounds of back-to-back calls (see ``median_times``).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from advexp_lib.adversarial_training import RmseAdversarialTraining
from advexp_lib.attacks import ARA_PAPER, rmse_search
from advexp_lib.attacks import search as search_module
from advexp_lib.models import PoolFirst, build_model
from advexp_lib.regularizers import AdaptivePsi, WoodsRegularizer


def step_fn(model, x, y, *, regularizer=None, transform=None):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        xb = transform(model, x, y) if transform else x
        model.train()
        if regularizer:
            xb = xb.clone().requires_grad_(True)
        logits = model(xb)
        loss = F.cross_entropy(logits, y)
        if regularizer:
            loss = loss + regularizer(model, xb, y, logits)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def median_times(fns: dict, repeats: int, inner: int = 3) -> dict:
    """Median seconds per call. Rounds visit every variant in turn (so load drift hits all alike);
    within a round a variant runs one untimed call, then ``inner`` timed calls back to back, as
    steps follow each other in training (timing single calls right after another variant's
    measured that variant's memory and cache churn: a robust small-CNN step read ~2x slower)."""
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            fn()
            for _ in range(inner):
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def training_ratios(arch, shape, batch, repeats):
    torch.manual_seed(0)
    x, y = torch.rand(batch, *shape), torch.randint(10, (batch,))
    kw = dict(num_classes=10, in_channels=shape[0], image_size=shape[1])
    std, rob, al = (build_model(arch, activation=a, **kw) for a in ("relu", "half_huber", "half_huber"))
    reg = lambda: WoodsRegularizer(psi=AdaptivePsi(target=0.3, k_psi0=1.0))  # noqa: E731
    fns = {
        "standard": step_fn(std, x, y),
        "robust": step_fn(rob, x, y, regularizer=reg()),
        "all": step_fn(al, x, y, regularizer=reg(), transform=RmseAdversarialTraining(minimal=True, eps=0.1)),
    }
    if isinstance(getattr(rob, "features", None), PoolFirst):  # the same robust step, activation before pool
        stored = copy.deepcopy(rob)
        stored.features = nn.Sequential(*stored.features)
        fns["robust_stored_order"] = step_fn(stored, x, y, regularizer=reg())
    t = median_times(fns, repeats)
    print(
        f"{arch:10s} batch {batch:3d}: standard step {t['standard'] * 1e3:7.1f} ms | "
        f"robust / standard = {t['robust'] / t['standard']:.2f} | "
        f"all / standard = {t['all'] / t['standard']:.2f}"
    )
    if "robust_stored_order" in t:
        print(
            f"{'':10s} robust step, activation before pool (stored order) / PoolFirst = "
            f"{t['robust_stored_order'] / t['robust']:.2f}x"
        )


_A, _B = torch.rand(2048, 2048), torch.rand(2048, 2048)
MATMUL_FLOPS = 2 * 2048**3


def matmul():  # the machine's float32 GEMM rate, timed in the same rounds as the searches
    torch.mm(_A, _B)


def search_step_flops(model, x, y) -> float:
    """FLOPs of one search step on one image: the forward and the cross-entropy input gradient."""
    from torch.utils.flop_counter import FlopCounterMode

    d = torch.zeros_like(x, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        torch.autograd.grad(F.cross_entropy(model(x + d), y), d)
    return float(counter.get_total_flops())


def ara_throughput(arch, shape, n, n_single, steps, repeats):
    torch.manual_seed(0)
    model = build_model(arch, num_classes=10, in_channels=shape[0], image_size=shape[1]).eval()
    x, y = torch.rand(n, *shape), torch.randint(10, (n,))
    config = replace(ARA_PAPER, steps=steps)  # eps 20, momentum 0.9

    def batched():  # what accuracy_robustness_area does by default: every image in one batch
        rmse_search(model, x, y, criterion="attack", config=config)

    def per_image():  # the baseline: the same search, one image at a time (on a subset; cost is per image)
        for i in range(n_single):
            rmse_search(model, x[i : i + 1], y[i : i + 1], criterion="attack", config=config)

    def batched_nchw():  # the same batched search with the model fed NCHW (attacks.search.nhwc_copy bypassed)
        saved = search_module.nhwc_copy
        search_module.nhwc_copy = lambda v: v
        try:
            batched()
        finally:
            search_module.nhwc_copy = saved

    def chunks():  # batch_size=256
        for i in range(0, n, 256):
            rmse_search(model, x[i : i + 256], y[i : i + 256], criterion="attack", config=config)

    t = median_times(
        {
            "batched": batched,
            "per_image": per_image,
            "batched_nchw": batched_nchw,
            "chunks": chunks,
            "matmul": matmul,
        },
        repeats,
        inner=1,
    )
    b, p = n * steps / t["batched"], n_single * steps / t["per_image"]
    flops, peak = search_step_flops(model, x[:1], y[:1]), MATMUL_FLOPS / t["matmul"]
    print(
        f"{arch:10s} ARA search, {steps} steps: batched ({n} images) {b:9.0f} img-steps/s | "
        f"per-image loop ({n_single} images) {p:7.0f} img-steps/s | batched / per-image = {b / p:.1f}x\n"
        f"{'':10s} batched with NHWC feed / NCHW feed = {t['batched_nchw'] / t['batched']:.2f}x | "
        f"chunks of 256 / one batch of {n} = {t['batched'] / t['chunks']:.2f}x\n"
        f"{'':10s} roofline: {flops / 1e6:.2f} MFLOP per image-step; batched {b * flops / 1e9:.1f} GFLOP/s = "
        f"{b * flops / peak:.0%} of the matmul rate ({peak / 1e9:.0f} GFLOP/s); per-image "
        f"{p * flops / 1e9:.1f} GFLOP/s, so batched / per-image <= {peak / (p * flops):.1f}x"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    a = ap.parse_args()
    r = 3 if a.quick else 10
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    training_ratios("small_cnn", (1, 28, 28), 64, r)  # the mnist5k recipes' batch
    training_ratios("resnet44", (3, 32, 32), 32 if a.quick else 128, max(2, r // 3))  # the paper's batch: 128
    ara_throughput("small_cnn", (1, 28, 28), 1000, 50, 20, max(2, r // 3))  # ARA: 1,000 test images
    ara_throughput("resnet44", (3, 32, 32), 128 if not a.quick else 32, 8, 5, 2)


if __name__ == "__main__":
    main()
