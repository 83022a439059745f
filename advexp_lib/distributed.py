"""Multi-process helpers: process-group setup under torchrun, batch sharding, gathering.

``python -m advexp_lib train ...`` under ``torchrun --nproc_per_node N`` trains with DistributedDataParallel
(gloo on CPU, nccl on CUDA). Every function also works in one process (rank 0 of 1). Sharding: of ``n``
rows rank r of W takes [r n / W, (r + 1) n / W) (integer division), so rank order keeps the row order.
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
    """Join the process group torchrun describes (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).

    Returns this rank's device: ``device`` ("cpu" (default), "cuda" or a torch.device) unchanged when
    WORLD_SIZE is absent or 1; on CUDA GPU ``LOCAL_RANK``. Backend: nccl for CUDA, gloo for CPU.
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
    """This rank's contiguous share of ``n`` >= 0 rows: ``slice(r * n // W, (r + 1) * n // W)``.

    ``rank_``, ``world``: r and W, default this process's. Shares differ by at most one row.
    """
    check_positive(n, "n", integer=True, allow_zero=True)
    r = rank() if rank_ is None else rank_
    w = world_size() if world is None else world
    check_positive(w, "world", integer=True)
    if not (isinstance(r, int) and 0 <= r < w):
        raise InputError(f"rank_: expected an integer in [0, {w}), got {r!r}")
    return slice(r * n // w, (r + 1) * n // w)


def gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along dim 0 in rank order, on every rank (one process: ``tensor``).

    First dimensions may differ, the rest and the dtype must agree; with nccl it must be on this rank's GPU.
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
    """``draw(n W)`` for the global batch, keeping this rank's ``n`` rows (one process: ``draw(n)``).

    W processes thus draw per-example random choices as one would; assumes equal shards.
    """
    w = world_size()
    if w == 1:
        return draw(n)
    r = rank()
    return draw(n * w)[r * n : (r + 1) * n]
