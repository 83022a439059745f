"""Multi-process helpers: process-group setup under torchrun, batch sharding, gathering.

Launch ``python -m advexp_lib train ...`` with ``torchrun --nproc_per_node N``
and the training loop runs DistributedDataParallel (gloo on CPU, nccl on
CUDA). Every function here also works without torch.distributed (one process:
rank 0 of a world of size 1), so library code calls them unconditionally.

Sharding rule, used by the training loop and available to metrics: of ``n``
rows (a global batch, or ARA's test images) rank r of W takes the contiguous
rows [r n / W, (r + 1) n / W) (integer division), so concatenating the ranks'
results in rank order restores the original order.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from .checks import InputError, check_positive

__all__ = [
    "is_initialized",
    "rank",
    "world_size",
    "is_main_process",
    "init_from_env",
    "shutdown",
    "split_for_rank",
    "gather_cat",
    "all_reduce_sum",
    "barrier",
    "global_draw",
]


def is_initialized() -> bool:
    """True when a torch.distributed process group is up."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if is_initialized() else 1


def is_main_process() -> bool:
    """Rank 0: the process that writes checkpoints and prints."""
    return rank() == 0


def init_from_env(device="cpu") -> torch.device:
    """Join the process group torchrun describes in the environment; return this rank's device.

    Reads WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT (set by
    ``torchrun``). With WORLD_SIZE absent or 1 nothing happens and ``device``
    comes back unchanged. Backend: nccl for CUDA, gloo for CPU. On CUDA each
    process takes GPU ``LOCAL_RANK`` (so ``--device cuda`` needs no index).

    Args:
        device: "cpu", "cuda" or a torch.device. Default "cpu".
    """
    device = torch.device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    if device.type not in ("cpu", "cuda"):
        raise InputError(
            f"device: multi-process training supports 'cpu' (gloo) and 'cuda' (nccl), got {device}"
        )
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device.index is None or device.index != local:
            device = torch.device("cuda", local)  # one GPU per process
        torch.cuda.set_device(device)
    if not is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", init_method="env://")
    return device


def shutdown() -> None:
    """Leave the process group (if any)."""
    if is_initialized():
        dist.destroy_process_group()


def split_for_rank(n: int, rank_: int | None = None, world: int | None = None) -> slice:
    """This rank's contiguous share of ``n`` rows: ``slice(r * n // W, (r + 1) * n // W)``.

    Args:
        n: number of rows (>= 0).
        rank_, world: rank r and world size W; default: this process's.
    Shares differ by at most one row; for n < W some ranks get none.
    """
    check_positive(n, "n", integer=True, allow_zero=True)
    r = rank() if rank_ is None else rank_
    w = world_size() if world is None else world
    check_positive(w, "world", integer=True)
    if not (isinstance(r, int) and 0 <= r < w):
        raise InputError(f"rank_: expected an integer in [0, {w}), got {r!r}")
    return slice(r * n // w, (r + 1) * n // w)


def gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along dim 0, in rank order; every rank gets the result.

    The ranks' first dimensions may differ (e.g. shares from :func:`split_for_rank`),
    the other dimensions and the dtype must agree. Without a process group this
    returns ``tensor`` itself. With nccl the tensor must be on this rank's GPU.
    """
    if not isinstance(tensor, torch.Tensor) or tensor.dim() == 0:
        raise InputError(f"tensor: expected a tensor with at least one dimension, got {tensor!r}")
    if world_size() == 1:
        return tensor
    w = world_size()
    sizes = [torch.zeros(1, dtype=torch.int64, device=tensor.device) for _ in range(w)]
    dist.all_gather(sizes, torch.tensor([tensor.shape[0]], dtype=torch.int64, device=tensor.device))
    sizes = [int(s.item()) for s in sizes]
    longest = max(sizes)
    # all_gather needs equal shapes: pad every share to the longest, then cut the padding off
    padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(w)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:s] for p, s in zip(parts, sizes)])


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum of ``tensor`` over ranks (a new tensor; ``tensor`` itself without a process group)."""
    if world_size() == 1:
        return tensor
    out = tensor.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if world_size() > 1:
        dist.barrier()


def global_draw(draw, n: int) -> torch.Tensor:
    """``draw(m)`` for the global batch, keeping this rank's contiguous slice of ``n`` rows.

    Random choices made per example (which output L_adv regularizes, which
    half of a batch is perturbed) are drawn for the whole global batch, so W
    processes draw what one process would. Without torch.distributed (or with
    one process) this is ``draw(n)``. Assumes equal shards, as the training
    loop makes them.
    """
    w = world_size()
    if w == 1:
        return draw(n)
    r = rank()
    return draw(n * w)[r * n : (r + 1) * n]
