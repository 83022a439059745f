"""One training loop for every recipe, with resumable atomic checkpoints.

Recipes plug in through two extension points, both :class:`BatchHook` s:

- ``loss_term``: an extra per-batch loss added to cross-entropy (regularizers);
- ``input_transform``: replaces each training batch's inputs (adversarial training).

Determinism: the global RNG is reseeded at the start of every epoch from
(seed, epoch), so batch order, augmentation and every hook's randomness depend
only on them. A checkpoint is written atomically after every epoch; resuming
from it (after a crash mid-epoch, say) replays the unfinished epoch exactly as
an uninterrupted run would.
"""
from __future__ import annotations

import math
import os
import pickle
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .checks import CheckpointError, InputError, check_choice, check_positive
from .data import TensorImageDataset

__all__ = ["TrainConfig", "BatchHook", "LossTerm", "InputTransform", "train", "evaluate",
           "save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "advexp-checkpoint-v1"
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "step", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of the training loop (the model and hooks are configured elsewhere).

    Args:
        num_epochs: passes over the training data. Default 10.
        batch_size: examples per step. Default 64.
        optimizer: "adam" or "sgd" (Nesterov-free momentum). Default "adam".
        lr, momentum, weight_decay: optimizer settings (momentum: SGD only).
        schedule: "constant", "step" (lr *= gamma at each epoch in ``milestones``)
            or "cosine" (cosine decay to 0 over ``num_epochs``). Default "constant".
        seed: the run's one seed (init is the caller's; order/augment/hooks here).
    """

    num_epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    seed: int = 0

    def __post_init__(self):
        check_positive(self.num_epochs, "num_epochs", integer=True)
        check_positive(self.batch_size, "batch_size", integer=True)
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        check_choice(self.schedule, "schedule", SCHEDULES)
        check_positive(self.lr, "lr")
        check_positive(self.weight_decay, "weight_decay", allow_zero=True)
        object.__setattr__(self, "milestones", tuple(self.milestones))


class BatchHook:
    """Base of the loop's extension points: optional per-epoch and per-step calls, and state.

    ``state_dict`` must hold only tensors, numbers, strings, lists and dicts
    (it goes into a ``weights_only`` checkpoint).
    """

    def start_epoch(self, epoch: int, num_epochs: int) -> None:
        """Called before each epoch (e.g. eps warm-up)."""

    def after_step(self, ce: float) -> None:
        """Called after each optimizer step with the batch's cross-entropy (e.g. adaptive psi)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""


class LossTerm(BatchHook):
    """An extra loss: ``term(model, x, y, logits) -> (loss, stats)``.

    Set ``requires_input_grad = True`` to receive ``x`` with ``requires_grad``
    and ``logits = model(x)`` built on it (input-gradient regularizers).
    ``stats`` (name -> float) are averaged per epoch into the history.
    """

    requires_input_grad = False

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 logits: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError


class InputTransform(BatchHook):
    """Replaces a batch's inputs: ``transform(model, x, y) -> x'`` (same shape)."""

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def train(model: nn.Module, train_data: Dataset, config: TrainConfig = TrainConfig(), *,
          test_data: Dataset | None = None, loss_term: LossTerm | None = None,
          input_transform: InputTransform | None = None, device=None, checkpoint=None,
          resume: bool = True, progress: bool = True, meta: dict | None = None) -> list[dict]:
    r"""Train ``model`` in place on ``train_data``; return the per-epoch history.

    Per step: x' = input_transform(model, x, y) (or x); loss = CE(model(x'), y)
    + loss_term(...); one optimizer step; ``after_step(CE)`` on both hooks.

    Args:
        train_data, test_data: Datasets of (image in [0, 1], label); a
            :class:`~advexp_lib.data.TensorImageDataset` is batched straight
            from memory, anything else through a DataLoader (workers and
            pinned memory on CUDA).
        device: where to train; default: the device of the model's parameters.
        checkpoint: path written atomically after every epoch (model,
            optimizer, scheduler, hooks, history, config, ``meta``); with
            ``resume=True`` an existing file there is continued.
        meta: JSON-like facts stored in the checkpoint (e.g. model kwargs, recipe).
    Returns:
        list of dicts, one per epoch: epoch, loss, ce, train_accuracy,
        test_accuracy / test_loss (if ``test_data``), lr, seconds, and the
        epoch means of every stat the loss term reports.
    """
    if not isinstance(config, TrainConfig):
        raise InputError(f"config: expected a TrainConfig, got {type(config).__name__}")
    device = torch.device(device) if device is not None else _model_device(model)
    model.to(device)
    hooks = {k: h for k, h in (("loss_term", loss_term), ("input_transform", input_transform)) if h}
    opt = _optimizer(model, config)
    sched = _scheduler(opt, config)
    history: list[dict] = []
    start = 0
    if checkpoint is not None and resume and Path(checkpoint).exists():
        ckpt = load_checkpoint(checkpoint)
        if ckpt["train_config"] != asdict(config):
            raise CheckpointError(f"checkpoint: {checkpoint} was written with another TrainConfig; "
                                  f"delete it or pass resume=False")
        _load_model_state(model, ckpt["model"], checkpoint)
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        for k, h in hooks.items():
            h.load_state_dict(ckpt["hooks"].get(k, {}))
        history, start = list(ckpt["history"]), int(ckpt["epoch"])
    steps_per_epoch = math.ceil(len(train_data) / config.batch_size)
    bar = _progress(progress, total=(config.num_epochs - start) * steps_per_epoch)
    for epoch in range(start, config.num_epochs):
        torch.manual_seed(_epoch_seed(config.seed, epoch))
        for h in hooks.values():
            h.start_epoch(epoch, config.num_epochs)
        model.train()
        t0, sums, n_seen, correct = time.perf_counter(), {}, 0, 0
        for x, y in _batches(train_data, config.batch_size, device, epoch_seed=_epoch_seed(config.seed, epoch)):
            if input_transform is not None:
                x = input_transform(model, x, y).detach()
                model.train()
            if loss_term is not None and loss_term.requires_input_grad:
                x = x.clone().requires_grad_(True)
            logits = model(x)
            ce = F.cross_entropy(logits, y)
            loss, stats = ce, {}
            if loss_term is not None:
                extra, stats = loss_term(model, x, y, logits)
                loss = loss + extra
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ce_value = ce.item()
            for h in hooks.values():
                h.after_step(ce_value)
            b = y.shape[0]
            n_seen += b
            correct += (logits.detach().argmax(1) == y).sum().item()
            for k, v in {"loss": loss.item(), "ce": ce_value, **stats}.items():
                sums[k] = sums.get(k, 0.0) + float(v) * b
            if bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{sums['loss'] / n_seen:.3f}",
                                acc=f"{correct / n_seen:.3f}")
        row = {"epoch": epoch + 1, **{k: v / n_seen for k, v in sums.items()},
               "train_accuracy": correct / n_seen, "lr": opt.param_groups[0]["lr"]}
        sched.step()
        if test_data is not None:
            row.update({f"test_{k}": v for k, v in evaluate(model, test_data, device=device).items()})
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if checkpoint is not None:
            save_checkpoint(checkpoint, {
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "hooks": {k: h.state_dict() for k, h in hooks.items()},
                "history": history, "epoch": epoch + 1, "train_config": asdict(config),
                "meta": meta or {},
            })
    if bar is not None:
        bar.close()
    model.eval()
    return history


@torch.no_grad()
def evaluate(model: nn.Module, data, *, batch_size: int = 500, device=None) -> dict[str, float]:
    """Mean cross-entropy and top-1 accuracy of ``model`` (eval mode) on a Dataset or (x, y)."""
    device = torch.device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    if isinstance(data, (tuple, list)):
        data = TensorImageDataset(data[0], data[1], ())
    loss, correct, n = 0.0, 0, 0
    for x, y in _batches(data, batch_size, device, epoch_seed=None):
        logits = model(x)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        n += y.shape[0]
    model.train(was_training)
    return {"loss": loss / n, "accuracy": correct / n}


def save_checkpoint(path, state: dict) -> Path:
    """Write ``state`` (plus the format tag) to ``path`` atomically: temp file, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": CHECKPOINT_FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(path, *, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` without executing code.

    Uses ``torch.load(weights_only=True)``: a pickle naming any function or
    class outside tensors and plain containers is refused. Raises
    CheckpointError for unsafe, truncated, corrupt or foreign files.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint: no file at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"checkpoint: {path} refused: it is not a plain weights file "
                              f"(loading it would run code or it is corrupt): {err}") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as err:
        raise CheckpointError(f"checkpoint: {path} is truncated or corrupt: {err}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint: {path} is not an advexp checkpoint "
                              f"(expected format {CHECKPOINT_FORMAT!r})")
    return state


def _load_model_state(model: nn.Module, state: dict, source) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:  # shape or key mismatch: another arch / number of classes
        raise CheckpointError(f"checkpoint: {source} does not fit this model: {err}") from None


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def _optimizer(model: nn.Module, c: TrainConfig) -> torch.optim.Optimizer:
    if c.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)


def _scheduler(opt, c: TrainConfig):
    if c.schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(opt, list(c.milestones), gamma=c.gamma)
    if c.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=c.num_epochs)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def _batches(data: Dataset, batch_size: int, device: torch.device, *, epoch_seed: int | None):
    """Yield (x, y) on ``device``; shuffled by ``epoch_seed`` (None: stored order)."""
    gen = torch.Generator().manual_seed(epoch_seed) if epoch_seed is not None else None
    if isinstance(data, TensorImageDataset):  # in memory: slicing beats a DataLoader by far
        n = len(data)
        order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            yield data.x[idx].to(device), data.y[idx].to(device)
        return
    cuda = device.type == "cuda"
    loader = DataLoader(data, batch_size=batch_size, shuffle=gen is not None, generator=gen,
                        num_workers=4 if cuda else 0, pin_memory=cuda)
    for x, y in loader:
        yield x.to(device, non_blocking=cuda), torch.as_tensor(y).to(device, non_blocking=cuda)


def _progress(enabled: bool, total: int):
    if not enabled or total <= 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="train", unit="step", leave=False)
