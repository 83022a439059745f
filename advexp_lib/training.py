"""One training loop for every recipe, with resumable atomic checkpoints.

Recipes plug in through :mod:`advexp_lib.hooks`: a ``loss_term`` (extra per-batch loss added to
cross-entropy) or an ``input_transform`` (replaces each batch's inputs). The global RNG is reseeded
every epoch from (seed, epoch) and a checkpoint written atomically after every epoch, so a resumed
run replays an unfinished epoch exactly. Under ``torchrun`` the loop runs DistributedDataParallel:
each rank takes its contiguous share of the same global batches, loss-weighted so that W processes
give one process's result (to float tolerance; BatchNorm statistics per rank); rank 0 writes checkpoints.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from . import distributed
from .checkpoints import load_checkpoint, load_model_state, save_checkpoint
from .checks import (
    CheckpointError,
    InputError,
    check_choice,
    check_images,
    check_labels,
    check_logits,
    check_positive,
)
from .data import TensorImageDataset
from .hooks import InputTransform, LossTerm

__all__ = ["TrainConfig", "train", "evaluate"]

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "step", "cosine")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class TrainConfig:
    """Settings of the training loop (the model and hooks are configured elsewhere).

    Args:
        num_epochs: passes over the training data. Default 10.
        batch_size: examples per step. Default 64.
        optimizer: "adam" (default) or "sgd" (momentum without Nesterov).
        lr, momentum, weight_decay: optimizer settings (momentum: SGD only).
        schedule: "constant" (default), "step" (lr *= gamma at each epoch in ``milestones``) or
            "cosine" (decay to 0 over ``num_epochs``).
        seed: seeds batch order, augmentation and hooks (initialization is the caller's).
        amp: None (float32, default), "bf16" or "fp16": ``torch.autocast`` on the forward pass and
            cross-entropy, fp16 with a GradScaler. Refused with a double-backprop loss term.
        compile: a ``torch.compile`` backend name or None (default); refused with a double-backprop term.
        channels_last: NHWC conv weights and inputs. Default False.
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
    amp: str | None = None
    compile: str | None = None
    channels_last: bool = False

    def __post_init__(self):
        check_positive(self.num_epochs, "num_epochs", integer=True)
        check_positive(self.batch_size, "batch_size", integer=True)
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        check_choice(self.schedule, "schedule", SCHEDULES)
        check_positive(self.lr, "lr")
        check_positive(self.weight_decay, "weight_decay", allow_zero=True)
        if self.amp is not None:
            check_choice(self.amp, "amp", AMP_DTYPES)
        if self.compile is not None and not (isinstance(self.compile, str) and self.compile):
            raise InputError(f"compile: expected a torch.compile backend name or None, got {self.compile!r}")
        if not isinstance(self.channels_last, bool):
            raise InputError(f"channels_last: expected True or False, got {self.channels_last!r}")
        object.__setattr__(self, "milestones", tuple(self.milestones))


def train(
    model: nn.Module,
    train_data: Dataset,
    config: TrainConfig = TrainConfig(),
    *,
    test_data: Dataset | None = None,
    loss_term: LossTerm | None = None,
    input_transform: InputTransform | None = None,
    device=None,
    checkpoint=None,
    resume: bool = True,
    progress: bool = True,
    meta: dict | None = None,
) -> list[dict]:
    r"""Train ``model`` in place on ``train_data``; return the per-epoch history.

    Per step: x' = input_transform(model, x, y) (or x); loss = CE(model(x'), y) + loss_term(...),
    after ``observe_ce(CE)`` on both hooks; one optimizer step.

    Args:
        train_data, test_data: Datasets of (image in [0, 1], label).
        device: where to train; default the device of the model's parameters.
        checkpoint: path written atomically after every epoch; ``resume=True`` continues an existing one.
        meta: JSON-like facts stored in the checkpoint (e.g. model kwargs, recipe); must match on resume.
    Returns:
        one dict per epoch: epoch, loss, ce, train_accuracy, test_accuracy / test_loss (with
        ``test_data``), lr, seconds, and the epoch means of the loss term's stats.
    """
    if not isinstance(config, TrainConfig):
        raise InputError(f"config: expected a TrainConfig, got {type(config).__name__}")
    _refuse_double_backprop(config, loss_term)
    if len(train_data) == 0:
        raise InputError("train_data: expected at least one training example, got an empty dataset")
    world = distributed.world_size()
    _check_shards(len(train_data), config.batch_size, world, isinstance(train_data, TensorImageDataset))
    device = torch.device(device) if device is not None else _model_device(model)
    run = _Run.start(model, config, device, world, loss_term, input_transform)
    history: list[dict] = []
    start = 0
    if checkpoint is not None and resume and Path(checkpoint).exists():
        history, start = run.resume(checkpoint, meta)
    steps_per_epoch = math.ceil(len(train_data) / config.batch_size)
    bar = _progress(
        progress and distributed.is_main_process(), total=(config.num_epochs - start) * steps_per_epoch
    )
    for epoch in range(start, config.num_epochs):
        t0 = time.perf_counter()
        row = run.epoch(train_data, epoch, check_first=epoch == start, bar=bar)
        run.sched.step()
        if test_data is not None:
            row.update(
                {f"test_{k}": v for k, v in _evaluate(model, test_data, 500, device, shard=world > 1).items()}
            )
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if checkpoint is not None:
            if distributed.is_main_process():
                save_checkpoint(checkpoint, run.state(history, epoch + 1, meta))
            distributed.barrier()  # no rank runs ahead of (or reads) a half-written checkpoint
    if bar is not None:
        bar.close()
    if config.channels_last:
        model.to(memory_format=torch.contiguous_format)  # hand back an ordinary model
    model.eval()
    return history


def _refuse_double_backprop(config: TrainConfig, loss_term) -> None:
    """amp and torch.compile cannot serve a loss term that differentiates the input gradient."""
    if loss_term is None or not loss_term.requires_input_grad:
        return
    if config.amp is not None:
        raise InputError(
            f"amp: {config.amp!r} is refused with a double-backprop loss term "
            f"({type(loss_term).__name__}): its input-gradient penalty must run in float32 "
            f"(reduced precision distorts its gradient). Use amp=None"
        )
    if config.compile is not None:
        raise InputError(
            f"compile: torch.compile cannot differentiate twice through a compiled graph, which "
            f"{type(loss_term).__name__} needs; use compile=None"
        )


@dataclass
class _Run:
    """The moving parts of one :func:`train` call; ``net`` is ``model`` DDP- or compile-wrapped."""

    model: nn.Module
    net: nn.Module
    config: TrainConfig
    device: torch.device
    world: int
    opt: torch.optim.Optimizer
    sched: object
    scaler: torch.amp.GradScaler
    hooks: dict
    loss_term: LossTerm | None
    input_transform: InputTransform | None
    amp_dtype: torch.dtype | None
    double_backprop: bool

    @classmethod
    def start(cls, model, config, device, world, loss_term, input_transform) -> _Run:
        model.to(device)
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        net = model
        if world > 1:
            net = nn.parallel.DistributedDataParallel(
                model, device_ids=[device] if device.type == "cuda" else None
            )
        if config.compile is not None:
            net = torch.compile(net, backend=config.compile)
        scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")  # fp16 gradients underflow
        hooks = {k: h for k, h in (("loss_term", loss_term), ("input_transform", input_transform)) if h}
        opt = _optimizer(model, config)
        sched = _scheduler(opt, config)
        return cls(
            model=model,
            net=net,
            config=config,
            device=device,
            world=world,
            opt=opt,
            sched=sched,
            scaler=scaler,
            hooks=hooks,
            loss_term=loss_term,
            input_transform=input_transform,
            amp_dtype=AMP_DTYPES.get(config.amp),
            double_backprop=loss_term is not None and loss_term.requires_input_grad,
        )

    def resume(self, checkpoint, meta) -> tuple[list[dict], int]:
        """Load the state :meth:`state` saved in ``checkpoint``; return (history, epochs done)."""
        ckpt = load_checkpoint(checkpoint)
        if ckpt.get("train_config") != asdict(self.config):
            raise CheckpointError(
                f"checkpoint: {checkpoint} was written with another TrainConfig; "
                f"delete it or pass resume=False"
            )
        if meta is not None and ckpt.get("meta") != meta:  # e.g. another recipe (zoo: config hash)
            raise CheckpointError(
                f"checkpoint: {checkpoint} was written for another run (its meta differs: "
                f"{_meta_diff(ckpt.get('meta'), meta)}); delete it or pass resume=False"
            )
        load_model_state(self.model, ckpt.get("model"), checkpoint)
        self.opt.load_state_dict(ckpt["optimizer"])
        self.sched.load_state_dict(ckpt["scheduler"])
        if "scaler" in ckpt:
            self.scaler.load_state_dict(ckpt["scaler"])
        for k, h in self.hooks.items():
            h.load_state_dict(ckpt["hooks"].get(k, {}))
        return list(ckpt["history"]), int(ckpt["epoch"])

    def state(self, history: list[dict], epochs_done: int, meta) -> dict:
        """Everything :meth:`resume` needs to continue after ``epochs_done`` epochs."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "hooks": {k: h.state_dict() for k, h in self.hooks.items()},
            "history": history,
            "epoch": epochs_done,
            "train_config": asdict(self.config),
            "meta": meta or {},
            **({"scaler": self.scaler.state_dict()} if self.scaler.is_enabled() else {}),
        }

    def epoch(self, data, epoch: int, *, check_first: bool, bar) -> dict:
        """One pass over ``data``; the history row (global means over ranks), without test scores."""
        c = self.config
        seed = _epoch_seed(c.seed, epoch)
        torch.manual_seed(seed)  # same on every rank: same global batches
        for h in self.hooks.values():
            h.start_epoch(epoch, c.num_epochs)
        self.model.train()
        sums, n_seen, correct = {}, 0, 0
        batches = _batches(data, c.batch_size, self.device, epoch_seed=seed, shard=self.world > 1)
        first_step = epoch * math.ceil(len(data) / c.batch_size)  # global steps: the same on every rank
        for i, (x, y, n_global) in enumerate(batches):
            for h in self.hooks.values():
                h.start_step(first_step + i)
            if check_first and n_seen == 0:  # a Dataset's pixels: checked once, on the run's first batch
                check_images(x, "train_data (first batch)")
            logits, stats = self.step(x, y, n_global)
            b = y.shape[0]
            n_seen += b
            correct += (logits.detach().argmax(1) == y).sum().item()
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + float(v) * b
            if bar is not None:
                bar.update(1)
                bar.set_postfix(
                    epoch=epoch + 1, loss=f"{sums['loss'] / n_seen:.3f}", acc=f"{correct / n_seen:.3f}"
                )
        if self.world > 1:  # epoch means over the global data, identical on every rank
            keys = sorted(sums)
            total = distributed.all_reduce_sum(
                torch.tensor(
                    [n_seen, correct, *(sums[k] for k in keys)], dtype=torch.float64, device=self.device
                )
            ).tolist()
            n_seen, correct, sums = total[0], total[1], dict(zip(keys, total[2:]))
        return {
            "epoch": epoch + 1,
            **{k: v / n_seen for k, v in sums.items()},
            "train_accuracy": correct / n_seen,
            "lr": self.opt.param_groups[0]["lr"],
        }

    def step(self, x, y, n_global: int) -> tuple[torch.Tensor, dict]:
        """One optimizer step on the local batch (x, y); its logits and stats (loss, ce, the term's)."""
        if self.input_transform is not None:
            x = self.input_transform(self.model, x, y).detach()
            self.model.train()
        if self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.double_backprop:
            x = x.clone().requires_grad_(True)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            logits = self.net(x)
            check_logits(logits, y.shape[0])
            check_labels(y, y.shape[0], logits.shape[1], "train_data labels")
            ce = F.cross_entropy(logits, y)
        ce_value = ce.item()
        b = y.shape[0]
        if self.world > 1:  # hooks (adaptive psi) must see the global batch's CE on every rank
            total = distributed.all_reduce_sum(
                torch.tensor([ce_value * b, b], dtype=torch.float64, device=self.device)
            )
            ce_value = (total[0] / total[1]).item()
        for h in self.hooks.values():
            h.observe_ce(ce_value)
        loss, stats = ce, {}
        if self.loss_term is not None:
            extra, stats = self.loss_term(self.model, x, y, logits)
            loss = loss + extra
        # DDP averages gradients over ranks; weighting by the share b / (n_global / W)
        # makes that average the gradient of the global batch's mean loss
        step_loss = loss * (b * self.world / n_global) if self.world > 1 else loss
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(step_loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        return logits, {"loss": loss.item(), "ce": ce.item(), **stats}


@torch.no_grad()
def evaluate(model: nn.Module, data, *, batch_size: int = 500, device=None) -> dict[str, float]:
    """Mean cross-entropy and top-1 accuracy of ``model`` (eval mode) on a Dataset or (x, y)."""
    device = torch.device(device) if device is not None else _model_device(model)
    return _evaluate(model, data, batch_size, device, shard=False)


@torch.no_grad()
def _evaluate(model, data, batch_size, device, *, shard: bool) -> dict[str, float]:
    """:func:`evaluate`; with ``shard`` each rank scores its contiguous share and the sums are reduced."""
    was_training = model.training
    model.eval()
    if isinstance(data, (tuple, list)):
        data = TensorImageDataset(data[0], data[1], ())
    if shard:
        rows = range(len(data))[distributed.split_for_rank(len(data))]
        data = (
            TensorImageDataset(data.x[rows.start : rows.stop], data.y[rows.start : rows.stop])
            if isinstance(data, TensorImageDataset) and len(rows)
            else Subset(data, rows)
        )
    if len(data) == 0 and not shard:
        raise InputError("data: expected at least one example to evaluate on, got an empty dataset")
    loss, correct, n = 0.0, 0, 0
    for x, y, _ in _batches(data, batch_size, device, epoch_seed=None):
        logits = check_logits(model(x), y.shape[0])
        check_labels(y, y.shape[0], logits.shape[1], "data labels")
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        n += y.shape[0]
    model.train(was_training)
    if shard:
        loss, correct, n = distributed.all_reduce_sum(
            torch.tensor([loss, correct, n], dtype=torch.float64, device=device)
        ).tolist()
    return {"loss": loss / n, "accuracy": correct / n}


def _meta_diff(old, new) -> str:
    if not isinstance(old, dict):
        return f"got {type(old).__name__}"
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r:.60} != {new.get(k)!r:.60}" for k in keys[:3])


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


def _batches(
    data: Dataset, batch_size: int, device: torch.device, *, epoch_seed: int | None, shard: bool = False
):
    """Yield (x, y, n_global) on ``device`` (shuffled by ``epoch_seed`` if set; ``shard``: own rows only)."""
    gen = torch.Generator().manual_seed(epoch_seed) if epoch_seed is not None else None
    world = distributed.world_size() if shard else 1
    if isinstance(data, TensorImageDataset):  # in memory: slicing beats a DataLoader by far
        n = len(data)
        order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            n_global = idx.numel()
            if world > 1:
                idx = idx[distributed.split_for_rank(n_global)]
            yield data.x[idx].to(device), data.y[idx].to(device), n_global
        return
    cuda = device.type == "cuda"
    sampler = None
    if world > 1:
        sampler = DistributedSampler(
            data,
            num_replicas=world,
            rank=distributed.rank(),
            shuffle=gen is not None,
            seed=epoch_seed or 0,
            drop_last=False,
        )
    loader = DataLoader(
        data,
        batch_size=batch_size // world,
        shuffle=sampler is None and gen is not None,
        generator=gen if sampler is None else None,
        sampler=sampler,
        num_workers=4 if cuda else 0,
        pin_memory=cuda,
    )
    for x, y in loader:
        # the sampler gives every rank as many examples, so the global batch is W local ones
        yield (
            x.to(device, non_blocking=cuda),
            torch.as_tensor(y).to(device, non_blocking=cuda),
            y.shape[0] * world,
        )


def _check_shards(n: int, batch_size: int, world: int, in_memory: bool) -> None:
    """Refuse a global batch a rank would get no rows of (its step would have no loss to average)."""
    if world == 1:
        return
    if not in_memory and batch_size % world:
        raise InputError(
            f"batch_size: {batch_size} does not split evenly over {world} processes; "
            f"use a multiple of {world}"
        )
    smallest = min(batch_size, n % batch_size or batch_size)
    if smallest < world:
        raise InputError(
            f"batch_size: with {n} examples the last global batch has {smallest} rows, fewer "
            f"than the {world} processes; choose a batch_size leaving at least {world}"
        )


def _progress(enabled: bool, total: int):
    if not enabled or total <= 0:
        return None
    return tqdm(total=total, desc="train", unit="step", leave=False)
