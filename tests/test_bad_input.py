"""Bad input at every public entry point: one table of (entry point, bad argument, exception, message).

Each row calls one public function (or the CLI) with exactly one thing wrong and
checks the exception class (a subclass of AdvexpError, so the CLI prints it
without a traceback) and that the message names the argument and what was
expected or what came. Models and data are tiny and built in memory.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from advexp_book import experiments, figures, reproduce
from advexp_lib import (
    AdvexpError,
    CheckpointError,
    InputError,
    InputTypeError,
    adversarial_training,
    attacks,
    attributions,
    checkpoints,
    data,
    metrics,
    models,
    plotting,
    regularizers,
    training,
    widgets,
    zoo,
)
from advexp_lib.attacks import AE_PAPER, ARA_PAPER, SearchConfig, sneaking, topk
from advexp_lib.cli import main
from advexp_lib.woods_import import import_woods_checkpoint

C = 3  # classes of the tiny models


def _small():
    torch.manual_seed(0)
    return models.build_model("small_cnn", num_classes=C, image_size=8).eval()


def _cam():
    torch.manual_seed(0)
    return models.build_model("cam_cnn", num_classes=C).eval()


class Flat(nn.Module):
    """Returns a 1-d output: the wrong shape for logits."""

    def forward(self, x):
        return x.flatten(1).sum(1)


class ListData(Dataset):
    """A plain (not in-memory) Dataset of given items."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


X = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
Y = torch.tensor([0, 1, 2, 0])
T = torch.tensor([1, 2, 0, 1])  # targets != Y
DS = data.TensorImageDataset(X, Y, ("a", "b", "c"))
CFG = training.TrainConfig(num_epochs=1, batch_size=4)


def _with(**kw):
    """X with one defect."""
    x = X.clone()
    if "value" in kw:
        x[0, 0, 0, 0] = kw["value"]
    return x


def _ckpt(tmp_path, *, in_channels=1, keep_model=True, meta=True):
    """A small untrained advexp checkpoint for mnist5k-shaped input (28 x 28, 10 classes)."""
    kw = dict(
        arch="small_cnn",
        num_classes=10,
        in_channels=in_channels,
        activation="relu",
        mean=[0.5] * in_channels,
        std=[0.25] * in_channels,
        image_size=28,
    )
    torch.manual_seed(0)
    state = {"epoch": 1, "history": []}
    if keep_model:
        state["model"] = models.build_model(**kw).state_dict()
    if meta:
        state["meta"] = {"model_kwargs": kw}
    return checkpoints.save_checkpoint(tmp_path / f"c{in_channels}{keep_model}{meta}.pt", state)


# (id, call(tmp_path), expected exception, message regex[, mark])
CASES = [
    # ---- data
    (
        "data.load_dataset/name",
        lambda t: data.load_dataset("mnist6k"),
        InputError,
        r"dataset: unknown value 'mnist6k'; valid: mnist5k, mnist, fashion_mnist, cifar10",
    ),
    (
        "data.load_dataset/split",
        lambda t: data.load_dataset("mnist5k", "val"),
        InputError,
        r"split: unknown value 'val'; valid: train, test",
    ),
    (
        "data.load_dataset/imagefolder",
        lambda t: data.load_dataset(f"imagefolder:{t}/none"),
        InputError,
        r"dataset: imagefolder path .* is not a directory",
    ),
    (
        "data.load_tensors/n=0",
        lambda t: data.load_tensors(n=0),
        InputError,
        r"n: expected a finite value > 0, got 0",
    ),
    (
        "data.load_tensors/n-float",
        lambda t: data.load_tensors(n=2.5),
        InputTypeError,
        r"n: expected an integer",
    ),
    (
        "data.load_tensors/n-too-big",
        lambda t: data.load_tensors(n=10**6),
        InputError,
        r"n: asked for 1000000",
    ),
    (
        "data.dataset_info/name",
        lambda t: data.dataset_info("cifar100"),
        InputError,
        r"dataset: unknown value 'cifar100'; valid: .*imagefolder:<path>",
    ),
    (
        "data.TensorImageDataset/x>1",
        lambda t: data.TensorImageDataset(X * 255, Y),
        InputError,
        r"x: pixels must lie in \[0, 1\], got values in",
    ),
    (
        "data.TensorImageDataset/x<0",
        lambda t: data.TensorImageDataset(X - 0.5, Y),
        InputError,
        r"x: pixels must lie",
    ),
    (
        "data.TensorImageDataset/nan",
        lambda t: data.TensorImageDataset(_with(value=float("nan")), Y),
        InputError,
        r"x: contains NaN or inf",
    ),
    (
        "data.TensorImageDataset/inf",
        lambda t: data.TensorImageDataset(_with(value=float("inf")), Y),
        InputError,
        r"x: contains NaN or inf",
    ),
    (
        "data.TensorImageDataset/uint8",
        lambda t: data.TensorImageDataset((X * 255).to(torch.uint8), Y),
        InputTypeError,
        r"x: expected a floating-point tensor .* got dtype torch.uint8",
    ),
    (
        "data.TensorImageDataset/rank3",
        lambda t: data.TensorImageDataset(X[:, 0], Y),
        InputError,
        r"x: expected shape N x C x H x W \(4 dims\), got \(4, 8, 8\)",
    ),
    (
        "data.TensorImageDataset/empty",
        lambda t: data.TensorImageDataset(X[:0], Y[:0]),
        InputError,
        r"x: expected at least one image, got an empty batch",
    ),
    (
        "data.TensorImageDataset/numpy",
        lambda t: data.TensorImageDataset(X.numpy(), Y),
        InputTypeError,
        r"x: expected a torch.Tensor of images, got ndarray",
    ),
    (
        "data.TensorImageDataset/y-length",
        lambda t: data.TensorImageDataset(X, Y[:3]),
        InputError,
        r"y: expected shape \(4,\) to match the images, got \(3,\)",
    ),
    (
        "data.TensorImageDataset/y-range",
        lambda t: data.TensorImageDataset(X, Y + 1, ("a", "b", "c")),
        InputError,
        r"y: labels must lie in \[0, 2\], got values in \[1, 3\]",
    ),
    (
        "data.TensorImageDataset/y-float",
        lambda t: data.TensorImageDataset(X, Y.float()),
        InputTypeError,
        r"y: expected an integer tensor, got dtype torch.float32",
    ),
    # ---- models
    (
        "models.build_model/arch",
        lambda t: models.build_model("vgg16"),
        InputError,
        r"arch: unknown value 'vgg16'; valid: linear, small_cnn, cam_cnn, smallgap, resnet<6n\+2>",
    ),
    (
        "models.build_model/depth",
        lambda t: models.build_model("resnet45", in_channels=3),
        InputError,
        r"depth: expected 6n \+ 2 .* got 45",
    ),
    (
        "models.build_model/num_classes",
        lambda t: models.build_model(num_classes=0),
        InputError,
        r"num_classes: expected a finite value > 0, got 0",
    ),
    (
        "models.build_model/in_channels",
        lambda t: models.build_model(in_channels=1.0),
        InputTypeError,
        r"in_channels: expected an integer, got 1.0",
    ),
    (
        "models.build_model/activation",
        lambda t: models.build_model(activation="gelu"),
        InputError,
        r"activation: unknown value 'gelu'; valid: relu, half_huber",
    ),
    (
        "models.build_model/activation-width",
        lambda t: models.build_model(activation="half_huber(0)"),
        InputError,
        r"activation: the half-Huber width d in 'half_huber\(0\)' must be a finite number > 0",
    ),
    (
        "models.build_model/mean",
        lambda t: models.build_model(in_channels=3, mean=(0.5,)),
        InputError,
        r"mean/std: expected 3 value\(s\) each",
    ),
    (
        "models.HalfHuberReLU/delta",
        lambda t: models.HalfHuberReLU(0.0),
        InputError,
        r"delta: expected a finite",
    ),
    (
        "models.forward/channels",
        lambda t: _small()(torch.rand(2, 3, 8, 8)),
        InputError,
        r"x: the model expects N x 1 x H x W images \(1 channel\(s\)\), got shape \(2, 3, 8, 8\)",
    ),
    (
        "models.forward/rank",
        lambda t: _cam()(torch.rand(1, 8, 8)),
        InputError,
        r"x: the model expects N x 1 x H x W",
    ),
    # ---- training
    (
        "training.TrainConfig/num_epochs",
        lambda t: training.TrainConfig(num_epochs=0),
        InputError,
        r"num_epochs",
    ),
    (
        "training.TrainConfig/batch_size",
        lambda t: training.TrainConfig(batch_size=-1),
        InputError,
        r"batch_size",
    ),
    (
        "training.TrainConfig/lr-nan",
        lambda t: training.TrainConfig(lr=float("nan")),
        InputError,
        r"lr: expected a finite value > 0, got nan",
    ),
    (
        "training.TrainConfig/optimizer",
        lambda t: training.TrainConfig(optimizer="rmsprop"),
        InputError,
        r"optimizer: unknown value 'rmsprop'; valid: sgd, adam",
    ),
    (
        "training.TrainConfig/schedule",
        lambda t: training.TrainConfig(schedule="linear"),
        InputError,
        r"schedule: unknown value 'linear'; valid: constant, step, cosine",
    ),
    (
        "training.TrainConfig/amp",
        lambda t: training.TrainConfig(amp="fp8"),
        InputError,
        r"amp: unknown value 'fp8'",
    ),
    (
        "training.train/config",
        lambda t: training.train(_small(), DS, {"num_epochs": 1}, progress=False),
        InputError,
        r"config: expected a TrainConfig, got dict",
    ),
    (
        "training.train/empty",
        lambda t: training.train(_small(), ListData([]), CFG, progress=False),
        InputError,
        r"train_data: expected at least one training example",
    ),
    (
        "training.train/pixels",
        lambda t: training.train(
            _small(), ListData([(X[i] * 255, int(Y[i])) for i in range(4)]), CFG, progress=False
        ),
        InputError,
        r"train_data \(first batch\): pixels must lie in \[0, 1\]",
    ),
    (
        "training.train/labels",
        lambda t: training.train(_small(), ListData([(X[i], 7) for i in range(4)]), CFG, progress=False),
        InputError,
        r"train_data labels: labels must lie in \[0, 2\], got values in \[7, 7\]",
    ),
    (
        "training.train/model-shape",
        lambda t: training.train(
            nn.Sequential(nn.Flatten(), nn.Linear(64, 1), Flat()), DS, CFG, progress=False
        ),
        InputError,
        r"model: expected the model to return logits of shape \(4, num_classes\), got \(4,\)",
    ),
    (
        "training.evaluate/y-length",
        lambda t: training.evaluate(_small(), (X, Y[:2])),
        InputError,
        r"y: expected shape \(4,\)",
    ),
    (
        "training.evaluate/y-range",
        lambda t: training.evaluate(_small(), ListData([(X[0], 5)])),
        InputError,
        r"data labels: labels must lie in \[0, 2\]",
    ),
    (
        "training.evaluate/empty",
        lambda t: training.evaluate(_small(), ListData([])),
        InputError,
        r"data: expected at least one example",
    ),
    (
        "checkpoints.load_checkpoint/missing",
        lambda t: checkpoints.load_checkpoint(t / "none.pt"),
        CheckpointError,
        r"checkpoint: no file at",
    ),
    # ---- attacks: the RMSE search
    (
        "attacks.rmse_search/criterion",
        lambda t: attacks.rmse_search(_small(), X, Y, criterion="l3", config=SearchConfig(steps=2, eps=1.0)),
        InputError,
        r"criterion: unknown value 'l3'; valid: budget, attack, btr, explain",
    ),
    (
        "attacks.rmse_search/eps=0",
        lambda t: attacks.rmse_search(
            _small(), X, Y, criterion="budget", config=SearchConfig(steps=2, eps=0.0)
        ),
        InputError,
        r"eps: expected a finite value > 0, got 0.0",
    ),
    (
        "attacks.rmse_search/eps<0",
        lambda t: attacks.rmse_search(
            _small(), X, Y, criterion="budget", config=SearchConfig(steps=2, eps=-1.0)
        ),
        InputError,
        r"eps: expected a finite value > 0, got -1.0",
    ),
    (
        "attacks.rmse_search/eps-inf",
        lambda t: attacks.rmse_search(
            _small(), X, Y, criterion="budget", config=SearchConfig(steps=2, eps=float("inf"))
        ),
        InputError,
        r"eps: expected a finite",
    ),
    (
        "attacks.rmse_search/steps=0",
        lambda t: attacks.rmse_search(
            _small(), X, Y, criterion="budget", config=SearchConfig(steps=0, eps=1.0)
        ),
        InputError,
        r"steps: expected a finite value > 0, got 0",
    ),
    (
        "attacks.rmse_search/steps-float",
        lambda t: attacks.rmse_search(
            _small(), X, Y, criterion="budget", config=SearchConfig(steps=2.5, eps=1.0)
        ),
        InputTypeError,
        r"steps: expected an integer, got 2.5",
    ),
    (
        "attacks.rmse_search/overshoot",
        lambda t: attacks.rmse_search(
            _small(), X, Y, criterion="budget", config=SearchConfig(steps=2, eps=1.0, overshoot=0.0)
        ),
        InputError,
        r"overshoot",
    ),
    (
        "attacks.rmse_search/momentum",
        lambda t: attacks.rmse_search(
            _small(), X, Y, criterion="budget", config=SearchConfig(steps=2, eps=1.0, momentum=1.0)
        ),
        InputError,
        r"momentum: expected a value in \[0, 1\), got 1.0",
    ),
    (
        "attacks.rmse_search/on_late",
        lambda t: attacks.rmse_search(
            _small(), X, Y, criterion="budget", config=SearchConfig(steps=2, eps=1.0), on_late="ignore"
        ),
        InputError,
        r"on_late: unknown value 'ignore'; valid: flag, warn, raise",
    ),
    (
        "attacks.rmse_search/mask",
        lambda t: attacks.rmse_search(
            _small(),
            X,
            Y,
            criterion="budget",
            config=SearchConfig(steps=2, eps=1.0),
            mask=torch.ones(3, dtype=torch.bool),
        ),
        InputError,
        r"mask: expected a bool tensor of shape \(4,\), one flag per image, got \(3,\)",
    ),
    (
        "attacks.rmse_search/x>1",
        lambda t: attacks.rmse_search(
            _small(), X + 1, Y, criterion="budget", config=SearchConfig(steps=2, eps=1.0)
        ),
        InputError,
        r"x: pixels must lie in \[0, 1\]",
    ),
    (
        "attacks.rmse_search/x-nan",
        lambda t: attacks.rmse_search(
            _small(), _with(value=float("nan")), Y, criterion="budget", config=SearchConfig(steps=2, eps=1.0)
        ),
        InputError,
        r"x: contains NaN",
    ),
    (
        "attacks.rmse_search/x-empty",
        lambda t: attacks.rmse_search(
            _small(), X[:0], Y[:0], criterion="budget", config=SearchConfig(steps=2, eps=1.0)
        ),
        InputError,
        r"x: expected at least one",
    ),
    (
        "attacks.rmse_search/x-double-rank",
        lambda t: attacks.rmse_search(
            _small(), X[None], Y, criterion="budget", config=SearchConfig(steps=2, eps=1.0)
        ),
        InputError,
        r"x: expected shape N",
    ),
    (
        "attacks.rmse_search/x-channels",
        lambda t: attacks.rmse_search(
            _small(), X.expand(4, 3, 8, 8), Y, criterion="budget", config=SearchConfig(steps=2, eps=1.0)
        ),
        InputError,
        r"x: the model expects N x 1 x H x W",
    ),
    (
        "attacks.rmse_search/labels-range",
        lambda t: attacks.rmse_search(
            _small(), X, Y + 3, criterion="attack", config=SearchConfig(steps=2, eps=1.0)
        ),
        InputError,
        r"y: labels must lie in \[0, 2\], got values in \[3, 5\]",
    ),
    (
        "attacks.rmse_search/labels-length",
        lambda t: attacks.rmse_search(
            _small(), X, Y[:2], criterion="attack", config=SearchConfig(steps=2, eps=1.0)
        ),
        InputError,
        r"y: expected shape \(4,\) to match the images, got \(2,\)",
    ),
    (
        "attacks.rmse_search/labels-float",
        lambda t: attacks.rmse_search(
            _small(), X, Y.float(), criterion="budget", config=SearchConfig(steps=2, eps=1.0)
        ),
        InputTypeError,
        r"y: expected an integer tensor",
    ),
    (
        "attacks.rmse_search/model-shape",
        lambda t: attacks.rmse_search(
            Flat(), X, Y, criterion="budget", config=SearchConfig(steps=2, eps=1.0)
        ),
        InputError,
        r"model: expected the model to return logits of shape \(4, num_classes\), got \(4,\)",
    ),
    # ---- attacks: PGD, ISA, top-k, training transforms
    (
        "attacks.pgd/eps<0",
        lambda t: attacks.pgd(_small(), X, Y, eps=-0.1),
        InputError,
        r"eps: expected a finite "
        r"value >= 0, got -0.1",
    ),
    ("attacks.pgd/steps<0", lambda t: attacks.pgd(_small(), X, Y, eps=0.1, steps=-1), InputError, r"steps"),
    (
        "attacks.pgd/step_size",
        lambda t: attacks.pgd(_small(), X, Y, eps=0.1, step_size=0.0),
        InputError,
        r"step_size: expected a finite value > 0",
    ),
    (
        "attacks.pgd/norm",
        lambda t: attacks.pgd(_small(), X, Y, eps=0.1, norm="l1"),
        InputError,
        r"norm: unknown value 'l1'; valid: linf, l2",
    ),
    (
        "attacks.pgd/no-labels",
        lambda t: attacks.pgd(_small(), X, eps=0.1),
        InputError,
        r"y/targets: pass exactly one",
    ),
    (
        "attacks.pgd/targets-range",
        lambda t: attacks.pgd(_small(), X, eps=0.1, steps=1, targets=T + 5),
        InputError,
        r"targets: labels must lie in \[0, 2\]",
    ),
    (
        "attacks.pgd/y-length",
        lambda t: attacks.pgd(_small(), X, Y[:1], eps=0.1, steps=1),
        InputError,
        r"y: expected shape \(4,\)",
    ),
    (
        "adversarial_training.RmseAdversarialTraining/steps",
        lambda t: adversarial_training.RmseAdversarialTraining(steps=2.5),
        InputTypeError,
        r"steps: expected an integer, got 2.5",
    ),
    (
        "adversarial_training.RmseAdversarialTraining/eps",
        lambda t: adversarial_training.RmseAdversarialTraining(eps=0.0),
        InputError,
        r"eps",
    ),
    (
        "adversarial_training.PgdAdversarialTraining/eps",
        lambda t: adversarial_training.PgdAdversarialTraining(eps=0.0),
        InputError,
        r"eps",
    ),
    (
        "adversarial_training.PgdAdversarialTraining/norm",
        lambda t: adversarial_training.PgdAdversarialTraining(norm="linf2"),
        InputError,
        r"norm: unknown value 'linf2'",
    ),
    (
        "attacks.sneaking.isa/targets==y",
        lambda t: sneaking.interpretability_sneaking_attack(_cam(), X, Y, Y, steps=1),
        InputError,
        r"targets: every target must differ from the true class y",
    ),
    (
        "attacks.sneaking.isa/measures",
        lambda t: sneaking.interpretability_sneaking_attack(_cam(), X, Y, T, measures=("three",)),
        InputError,
        r"measures: unknown value 'three'; valid: one, two",
    ),
    (
        "attacks.sneaking.isa/eps_max",
        lambda t: sneaking.interpretability_sneaking_attack(_cam(), X, Y, T, eps_max=0.0),
        InputError,
        r"eps_max: expected a finite value > 0",
    ),
    (
        "attacks.sneaking.isa/multiples",
        lambda t: sneaking.interpretability_sneaking_attack(_cam(), X, Y, T, multiples=(0.5, 2.0)),
        InputError,
        r"multiples: expected budgets as multiples >= 1 of the minimal eps",
    ),
    (
        "attacks.sneaking.isa/targets-range",
        lambda t: sneaking.interpretability_sneaking_attack(_cam(), X, Y, T + 3),
        InputError,
        r"targets: labels must lie in \[0, 2\]",
    ),
    (
        "attacks.topk/k=0",
        lambda t: topk.topk_attribution_attack(
            _cam(), X, eps=0.1, k=0, steps=1, explainer=attributions.Saliency()
        ),
        InputError,
        r"k: expected",
    ),
    (
        "attacks.topk/k-too-big",
        lambda t: topk.topk_attribution_attack(
            _cam(), X, eps=0.1, k=65, steps=1, explainer=attributions.Saliency()
        ),
        InputError,
        r"k: expected at most the 64 entries of a map, got 65",
    ),
    (
        "attacks.topk/eps",
        lambda t: topk.topk_attribution_attack(_cam(), X, eps=0.0, k=3),
        InputError,
        r"eps",
    ),
    # ---- ARA and metrics
    (
        "metrics.ara/kind",
        lambda t: metrics.accuracy_robustness_area(_small(), X, Y, kind="random"),
        InputError,
        r"kind: unknown value 'random'; valid: attack, btr",
    ),
    (
        "metrics.ara/steps",
        lambda t: metrics.accuracy_robustness_area(
            _small(), X, Y, config=replace(ARA_PAPER, steps=0), progress=False
        ),
        InputError,
        r"steps: expected a finite value > 0",
    ),
    (
        "metrics.ara/eps",
        lambda t: metrics.accuracy_robustness_area(
            _small(), X, Y, config=replace(ARA_PAPER, eps=-2.0), progress=False
        ),
        InputError,
        r"eps: expected a finite value > 0",
    ),
    (
        "metrics.ara/batch_size",
        lambda t: metrics.accuracy_robustness_area(_small(), X, Y, batch_size=0, progress=False),
        InputError,
        r"batch_size",
    ),
    (
        "metrics.ara/y-longer",
        lambda t: metrics.accuracy_robustness_area(
            _small(), X, torch.cat([Y, Y]), config=replace(ARA_PAPER, steps=2), progress=False
        ),
        InputError,
        r"y: expected shape \(4,\) to match the images, got \(8,\)",
    ),
    (
        "metrics.ara/y-range",
        lambda t: metrics.accuracy_robustness_area(
            _small(), X, Y - 1, config=replace(ARA_PAPER, steps=2), progress=False
        ),
        InputError,
        r"y: labels must lie in \[0, 2\], got values in \[-1, 1\]",
    ),
    (
        "metrics.ara/never-met",
        lambda t: metrics.accuracy_robustness_area(
            _small(), X, Y, config=replace(ARA_PAPER, steps=2, eps=1e-6), progress=False, on_late="flag"
        ),
        InputError,
        r"eps/steps: \d of 4 image\(s\) never met the 'attack' criterion .* raise eps or steps",
    ),
    (
        "metrics.ara_from_distances/negative",
        lambda t: metrics.ara_from_distances(torch.tensor([0.1, -0.2]), 10),
        InputError,
        r"distances: expected a non-empty tensor of finite values >= 0",
    ),
    (
        "metrics.ara_from_distances/nan",
        lambda t: metrics.ara_from_distances(torch.tensor([float("nan")]), 10),
        InputError,
        r"distances: expected .* finite",
    ),
    (
        "metrics.ara_from_distances/empty",
        lambda t: metrics.ara_from_distances(torch.zeros(0), 10),
        InputError,
        r"distances: expected a non-empty tensor",
    ),
    (
        "metrics.ara_from_distances/list",
        lambda t: metrics.ara_from_distances([0.1, 0.2], 10),
        InputTypeError,
        r"distances: expected a torch.Tensor, got list",
    ),
    (
        "metrics.ara_from_distances/classes",
        lambda t: metrics.ara_from_distances(torch.ones(3), 0),
        InputError,
        r"num_classes: expected a finite value > 0, got 0",
    ),
    (
        "metrics.predict/model-shape",
        lambda t: metrics.predict(Flat(), X),
        InputError,
        r"model: expected the model",
    ),
    ("metrics.predict/x", lambda t: metrics.predict(_small(), X * 2), InputError, r"x: pixels must lie"),
    (
        "metrics.accuracy/y-length",
        lambda t: metrics.accuracy(_small(), X, Y[:3]),
        InputError,
        r"y: expected shape",
    ),
    (
        "metrics.map_discrepancy/shape",
        lambda t: metrics.map_discrepancy(X, X[:, :, :4]),
        InputError,
        r"maps_adv: expected the shape of maps \(4, 1, 8, 8\), got \(4, 1, 4, 8\)",
    ),
    (
        "metrics.map_discrepancy/norm",
        lambda t: metrics.map_discrepancy(X, X, norm="linf"),
        InputError,
        r"norm: unknown value 'linf'; valid: l1, l2",
    ),
    (
        "metrics.discrepancy/measure",
        lambda t: metrics.discrepancy(_cam(), X, X, Y, measure="three"),
        InputError,
        r"measure: unknown value 'three'; valid: one, two, all",
    ),
    (
        "metrics.discrepancy/no-targets",
        lambda t: metrics.discrepancy(_cam(), X, X, Y, measure="two"),
        InputError,
        r"targets: measure='two' needs",
    ),
    (
        "metrics.discrepancy/x_adv",
        lambda t: metrics.discrepancy(_cam(), X, X[:2], Y),
        InputError,
        r"x_adv: expected the shape of x",
    ),
    (
        "metrics.kendall_tau/empty",
        lambda t: metrics.kendall_tau(X[:0], X[:0]),
        InputError,
        r"maps: expected an N x \.\.\. tensor of maps with N >= 1",
    ),
    (
        "metrics.top_k_intersection/k",
        lambda t: metrics.top_k_intersection(X, X, 100),
        InputError,
        r"k: expected at most the 64 entries of a map, got 100",
    ),
    (
        "metrics.gini/1d",
        lambda t: metrics.gini(torch.rand(5)),
        InputError,
        r"attributions: expected an N x \.\.\. tensor with N >= 1, got \(5,\)",
    ),
    (
        "metrics.gini/nan",
        lambda t: metrics.gini(_with(value=float("nan"))),
        InputError,
        r"attributions: contains NaN",
    ),
    (
        "metrics.robust_accuracy_curve/eps_grid",
        lambda t: metrics.robust_accuracy_curve(_small(), X, Y, [0.1, -0.1]),
        InputError,
        r"eps_grid: expected a non-empty list of finite budgets >= 0",
    ),
    (
        "metrics.robust_accuracy_curve/norm",
        lambda t: metrics.robust_accuracy_curve(_small(), X, Y, [0.1], norm="l0"),
        InputError,
        r"norm: unknown value 'l0'",
    ),
    # ---- explanations
    (
        "attributions.attribute/method",
        lambda t: attributions.attribute(_cam(), X, 0, method="lime"),
        InputError,
        r"method: unknown value 'lime'; valid: saliency, integrated_gradients, smoothgrad, grad_cam, "
        r"guided_grad_cam, cam, ae",
    ),
    (
        "attributions.attribute/option",
        lambda t: attributions.attribute(_cam(), X, 0, method="saliency", n_steps=3),
        InputError,
        r"options: unknown option\(s\) \['n_steps'\] for method 'saliency'",
    ),
    (
        "attributions.attribute/differentiable",
        lambda t: attributions.attribute(_cam(), X, 0, method="smoothgrad", differentiable=True),
        InputError,
        r"differentiable: method 'smoothgrad' cannot keep the autograd graph",
    ),
    (
        "attributions.attribute/target-int",
        lambda t: attributions.attribute(_cam(), X, 3, method="saliency"),
        InputError,
        r"targets?: class index must lie in \[0, 2\], got 3",
    ),
    (
        "attributions.attribute/target-length",
        lambda t: attributions.attribute(_cam(), X, Y[:2], method="saliency"),
        InputError,
        r"targets?: expected shape \(4,\)",
    ),
    (
        "attributions.attribute/target-bool",
        lambda t: attributions.attribute(_cam(), X, True, method="saliency"),
        InputTypeError,
        r"targets?: expected class indices, got True",
    ),
    (
        "attributions.attribute/x",
        lambda t: attributions.attribute(_cam(), X - 1, 0, method="saliency"),
        InputError,
        r"x: pixels must lie in \[0, 1\]",
    ),
    (
        "attributions.attribute/cam-arch",
        lambda t: attributions.attribute(_small(), X, 0, method="cam"),
        InputError,
        r"model: CAM needs conv features -> global average pooling -> a linear classifier, but SmallCNN",
    ),
    (
        "attributions.attribute/model-shape",
        lambda t: attributions.attribute(Flat(), X, 0, method="saliency"),
        InputError,
        r"model: expected the model to return logits",
    ),
    (
        "attributions.attribute/ig-steps",
        lambda t: attributions.attribute(_cam(), X, 0, method="integrated_gradients", n_steps=0),
        InputError,
        r"n_steps",
    ),
    (
        "attributions.class_activation_maps/x",
        lambda t: attributions.class_activation_maps(_cam(), X.double() * 3),
        InputError,
        r"x: pixels must lie",
    ),
    (
        "attributions.adversarial_explanation/rho",
        lambda t: attributions.adversarial_explanation(_small(), X, T, config=replace(AE_PAPER, eps=0.0)),
        InputError,
        r"eps: expected a finite value > 0, got 0.0",
    ),
    (
        "attributions.adversarial_explanation/targets",
        lambda t: attributions.adversarial_explanation(_small(), X, T + 3),
        InputError,
        r"targets: labels must lie in \[0, 2\]",
    ),
    (
        "attributions.adversarial_explanation/steps",
        lambda t: attributions.adversarial_explanation(_small(), X, T, config=replace(AE_PAPER, steps=0)),
        InputError,
        r"steps: expected a finite value > 0",
    ),
    (
        "plotting.adversarial_explanation_panel/y",
        lambda t: plotting.adversarial_explanation_panel(_small(), X[0], 5),
        InputError,
        r"y: expected a class in \[0, 2\], got 5",
    ),
    (
        "experiments.explanation_shift/attack",
        lambda t: experiments.explanation_shift(_cam(), X, Y, eps=0.1, attack="cw"),
        InputError,
        r"attack: unknown value 'cw'; valid: rmse, linf",
    ),
    (
        "experiments.explanation_shift/eps",
        lambda t: experiments.explanation_shift(_cam(), X, Y, eps=0.0),
        InputError,
        r"eps: expected a finite value > 0",
    ),
    (
        "experiments.explanation_shift/targets",
        lambda t: experiments.explanation_shift(_cam(), X, Y, eps=0.1, targets=Y),
        InputError,
        r"targets: every target must differ",
    ),
    (
        "widgets.explorer_views/rho",
        lambda t: widgets.explorer_views(_small(), X[:1], 0, rho=-1.0),
        InputError,
        r"rho: expected a finite value > 0",
    ),
    (
        "figures.image_grid/x",
        lambda t: figures.image_grid(X * 255),
        InputError,
        r"x: pixels must lie in \[0, 1\]",
    ),
    (
        "figures.image_grid/y",
        lambda t: figures.image_grid(X, Y + 1, ("a", "b", "c")),
        InputError,
        r"y: labels must lie in \[0, 2\]",
    ),
    (
        "figures.image_grid/nrow",
        lambda t: figures.image_grid(X, nrow=0),
        InputError,
        r"nrow: expected a finite",
    ),
    # ---- regularizers
    (
        "regularizers.AdaptivePsi/target",
        lambda t: regularizers.AdaptivePsi(target=0.0),
        InputError,
        r"target: expected a finite value > 0",
    ),
    (
        "regularizers.WoodsRegularizer/zeta",
        lambda t: regularizers.WoodsRegularizer(zeta=1.5),
        InputError,
        r"zeta: expected a probability in \[0, 1\], got 1.5",
    ),
    (
        "regularizers.InterpretabilityRegularizer/eps",
        lambda t: regularizers.InterpretabilityRegularizer(eps=0.0),
        InputError,
        r"eps: expected a finite value > 0",
    ),
    # ---- zoo
    (
        "zoo.recipe/name",
        lambda t: zoo.recipe("mnist5k", "robustest"),
        InputError,
        r"recipe: unknown value 'robustest'; valid: standard, adv, robust, all",
    ),
    (
        "zoo.recipe/dataset",
        lambda t: zoo.recipe("mnist9k", "standard"),
        InputError,
        r"dataset: unknown value 'mnist9k'; valid: mnist5k",
    ),
    (
        "zoo.recipe/override",
        lambda t: zoo.recipe("mnist5k", "standard", epochs=3),
        InputError,
        r"overrides: unknown TrainConfig field\(s\) \['epochs'\]; valid: .*num_epochs",
    ),
    (
        "zoo.recipe/override-value",
        lambda t: zoo.recipe("mnist5k", "standard", num_epochs=0),
        InputError,
        r"num_epochs: expected a finite value > 0, got 0",
    ),
    (
        "zoo.get_model/recipe",
        lambda t: zoo.get_model("mnist5k", "nope", progress=False),
        InputError,
        r"recipe: unknown value 'nope'",
    ),
    (
        "zoo.train_recipe/type",
        lambda t: zoo.train_recipe("standard"),
        InputTypeError,
        r"r: expected a zoo.Recipe .* got str",
    ),
    (
        "zoo.model_from_checkpoint/missing",
        lambda t: zoo.model_from_checkpoint(t / "none.pt"),
        CheckpointError,
        r"checkpoint: no file at",
    ),
    (
        "zoo.model_from_checkpoint/no-meta",
        lambda t: zoo.model_from_checkpoint(_ckpt(t, meta=False)),
        CheckpointError,
        r"has no model description \(meta.model_kwargs\)",
    ),
    (
        "zoo.model_from_checkpoint/no-model",
        lambda t: zoo.model_from_checkpoint(_ckpt(t, keep_model=False)),
        CheckpointError,
        r"holds no model state dict \(got NoneType\)",
    ),
    (
        "woods_import/missing",
        lambda t: import_woods_checkpoint(t / "resnet44-standard.pt"),
        CheckpointError,
        r"path: no file at .*download the published checkpoints",
    ),
    # ---- reproduce
    (
        "reproduce.run_notebooks/missing",
        lambda t: reproduce.run_notebooks(t / "out", notebooks=[t / "none.ipynb"]),
        InputError,
        r"notebooks: expected paths of .ipynb files, these do not exist: .*none.ipynb",
    ),
]


def _params(cases, width):
    """pytest params from table rows (id, *values[, mark]): the optional last item marks that row."""
    return [pytest.param(*c[1 : 1 + width], marks=c[1 + width :], id=c[0]) for c in cases]


@pytest.mark.parametrize(("call", "exc", "pattern"), _params(CASES, 3))
def test_bad_input_raises_a_clear_error(call, exc, pattern, tmp_path):
    with pytest.raises(exc, match=pattern) as info:
        call(tmp_path)
    assert isinstance(info.value, AdvexpError)  # so the CLI prints it without a traceback


def test_a_valid_call_of_each_kind_passes(tmp_path):
    """The table's baseline: the same calls with nothing wrong do not raise."""
    attacks.rmse_search(_small(), X, Y, criterion="attack", config=SearchConfig(steps=2, eps=1.0))
    attacks.pgd(_small(), X, Y, eps=0.1, steps=1)
    attributions.attribute(_cam(), X, 0, method="cam")
    attributions.adversarial_explanation(_small(), X, T, config=replace(AE_PAPER, steps=2))
    training.train(_small(), DS, CFG, progress=False)
    training.evaluate(_small(), ListData([(X[0], 2)]))
    metrics.ara_from_distances(torch.tensor([0.0, 0.1]), 10)
    assert not zoo.model_from_checkpoint(_ckpt(tmp_path)).training


# (id, argv(tmp_path), message regex[, mark]): the CLI prints "error: <message>", no traceback, exit status 2
CLI_CASES = [
    ("ara/junk-file", lambda t: ["ara", str(_junk(t))], r"^error: checkpoint: .* truncated or corrupt"),
    (
        "ara/n-images",
        lambda t: ["ara", str(_ckpt(t)), "--n-images", "0"],
        r"^error: n: expected a finite value > 0",
    ),
    (
        "ara/steps",
        lambda t: ["ara", str(_ckpt(t)), "--n-images", "2", "--steps", "0"],
        r"^error: steps: expected",
    ),
    ("ara/eps", lambda t: ["ara", str(_ckpt(t)), "--n-images", "2", "--eps", "-1"], r"^error: eps: expected"),
    (
        "ara/dataset",
        lambda t: ["ara", str(_ckpt(t)), "--dataset", "svhn"],
        r"^error: dataset: unknown value 'svhn'; valid: mnist5k",
    ),
    (
        "ara/wrong-channels",
        lambda t: ["ara", str(_ckpt(t, in_channels=3)), "--n-images", "2", "--steps", "2"],
        r"^error: x: the model expects N x 3 x H x W images",
    ),
    (
        "explain/index",
        lambda t: ["explain", str(_ckpt(t)), "--index", "5000"],
        r"^error: index: expected 0 <= index < 1000, got 5000",
    ),
    (
        "explain/rho",
        lambda t: ["explain", str(_ckpt(t)), "--rho", "0", "--out", str(t)],
        r"^error: rho: expected a finite value > 0",
    ),
    (
        "train/recipe",
        lambda t: ["train", "--recipe", "nope", "--out", str(t / "x.pt")],
        r"^error: recipe: unknown value 'nope'; valid: standard",
    ),
    (
        "train/epochs",
        lambda t: ["train", "--epochs", "0", "--out", str(t / "x.pt")],
        r"^error: num_epochs: expected a finite value > 0, got 0",
    ),
    (
        "train/arch",
        lambda t: ["train", "--arch", "vgg", "--epochs", "1", "--out", str(t / "x.pt"), "--no-progress"],
        r"^error: arch: unknown value 'vgg'",
    ),
]


def test_the_book_cli_prints_the_message_and_exits_2(tmp_path, capsys):
    from advexp_book.cli import main as book_main

    argv = ["reproduce", "--out", str(tmp_path / "r"), "--notebook", str(tmp_path / "none.ipynb")]
    assert book_main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("error: notebooks: expected paths of .ipynb files"), err


def _junk(t):
    (t / "junk.pt").write_bytes(b"PK\x03\x04 not really a zip")
    return t / "junk.pt"


@pytest.mark.parametrize(("argv", "pattern"), _params(CLI_CASES, 2))
def test_cli_prints_the_message_and_exits_2(argv, pattern, tmp_path, capsys):
    assert main(argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err  # one line: the message
    import re

    assert re.search(pattern, err), err


def test_cli_subprocess_bad_input_has_no_traceback(tmp_path):
    """The real entry point (python -m advexp_lib): status 2, one line on stderr."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "advexp_lib",
            "ara",
            str(_ckpt(tmp_path)),
            "--kind",
            "attack",
            "--n-images",
            "-3",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr == "error: n: expected a finite value > 0, got -3\n"
