"""Import the published ResNet-44 checkpoints of Woods, Chen & Teuscher (2019), safely.

The four CIFAR-10 networks ``resnet44-{standard,adv-train,robust,all}.pt`` in ``prebuilt/`` of
wwoods/adversarial-explanations-cifar (MIT license) are old-style ``torch.save`` pickles of::

    {"model_params": <state dict>, "training_options": {"arch": [32, <__main__.cifar10_preprocess>,
        [7, 7, 7], [16, 32, 64], 10], "input_offset": [[mean x 3], [std x 3]],
        "robust_additions": bool, "adversarial_training": bool, "l2_min": bool, ...}}

They are read by ``torch.load(weights_only=True)`` with the one pickled name, ``__main__.cifar10_preprocess``,
bound (in a scoped ``safe_globals``) to an inert placeholder that refuses to be called: nothing from the file
ever runs. The weights map onto :class:`~advexp_lib.models.PreActResNet` (half-Huber if ``robust_additions``).
"""

from __future__ import annotations

import math
import pickle
import re
from pathlib import Path

import torch
from torch import nn

from .checks import CheckpointError
from .models import PreActResNet

__all__ = [
    "import_woods_checkpoint",
    "read_woods_checkpoint",
    "woods_to_advexp_name",
    "WOODS_FILES",
    "WOODS_URL",
]

WOODS_URL = "https://github.com/wwoods/adversarial-explanations-cifar/tree/master/prebuilt"
WOODS_FILES = ("resnet44-standard.pt", "resnet44-adv-train.pt", "resnet44-robust.pt", "resnet44-all.pt")
_PREPROCESS_GLOBAL = "__main__.cifar10_preprocess"


class _RefusedCall(Exception):
    """Raised by the placeholder when a file tries to call the pickled function."""


class WoodsPreprocessPlaceholder:
    """Inert stand-in for the pickled reference to ``__main__.cifar10_preprocess``; a file that calls or
    instantiates it is refused (the published files only reference it)."""

    def __new__(cls, *args, **kwargs):
        raise _RefusedCall(f"the file tries to call {_PREPROCESS_GLOBAL}")


def read_woods_checkpoint(path) -> dict:
    """The raw contents of the Woods et al. checkpoint ``path`` (``resnet44-*.pt``), loaded running no code.

    Returns:
        dict with ``model_params`` (their state dict: ``pipe.*``, ``input_offset``) and ``training_options``;
        ``arch[1]`` is :class:`WoodsPreprocessPlaceholder` instead of the pickled function.
    Raises:
        CheckpointError: missing, truncated, corrupt, foreign or code-carrying file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"path: no file at {path} (download the published checkpoints from {WOODS_URL})"
        )
    try:
        # scoped: the placeholder is allow-listed only for this one load, nothing leaks globally
        with torch.serialization.safe_globals([(WoodsPreprocessPlaceholder, _PREPROCESS_GLOBAL)]):
            state = torch.load(path, weights_only=True, map_location="cpu")
    except _RefusedCall as err:
        raise CheckpointError(
            f"path: {path} refused: {err} (a published checkpoint only references it)"
        ) from None
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"path: {path} refused: it names code other than {_PREPROCESS_GLOBAL} "
            f"or is corrupt, and loading it could run code: {err}"
        ) from None
    except Exception as err:  # noqa: BLE001 - torch's legacy reader fails in many ways on garbage (struct.error too)
        raise CheckpointError(f"path: {path} is truncated or corrupt: {type(err).__name__}: {err}") from None
    _check_layout(state, path)
    return state


def import_woods_checkpoint(path, *, device="cpu") -> nn.Module:
    """A published Woods et al. (2019) ResNet-44 as this library's ``PreActResNet``, eval mode.

    ``path``: a ``resnet44-*.pt`` file (see :data:`WOODS_URL`). Names map by :func:`woods_to_advexp_name`;
    ``input_offset`` ([[mean], [std]]) becomes the first layer, so the model takes [0, 1] pixels:
    logits = classifier(mean_hw(head(stages(stem((x - mean) / std))))).

    Returns:
        ``PreActResNet(6 n + 2, widths=arch[3], num_classes=arch[4])`` on ``device``, "half_huber" if
        ``robust_additions`` else "relu"; ``model.woods_training_options``: the options but ``arch``.
    Raises:
        CheckpointError: a file :func:`read_woods_checkpoint` refuses, or tensors that do not fit ``arch``.
    """
    state = read_woods_checkpoint(path)
    opts = state["training_options"]
    _, _, lens, widths, num_classes = opts["arch"]
    offset = state["model_params"]["input_offset"]
    model = PreActResNet(
        6 * lens[0] + 2,
        num_classes=num_classes,
        in_channels=offset.shape[1],
        activation="half_huber" if opts["robust_additions"] else "relu",
        widths=tuple(widths),
        mean=tuple(offset[0].tolist()),
        std=tuple(offset[1].tolist()),
    )
    ours = {}
    for name, tensor in state["model_params"].items():
        if name == "input_offset":
            ours["normalize.mean"] = tensor[0].reshape(1, -1, 1, 1).clone()
            ours["normalize.std"] = tensor[1].reshape(1, -1, 1, 1).clone()
            continue
        mapped = woods_to_advexp_name(name)
        if mapped is None:
            raise CheckpointError(f"path: {path} has a tensor {name!r} that a Woods ResNet does not have")
        if mapped.endswith(".delta") and not (
            tensor.numel() == 1 and math.isfinite(d := tensor.item()) and d > 0
        ):
            raise CheckpointError(f"path: {path}: half-Huber width {name!r} must be one finite value > 0")
        ours[mapped] = tensor
    try:
        model.load_state_dict(ours, strict=True)
    except RuntimeError as err:  # missing/unexpected names or shapes: options and tensors disagree
        raise CheckpointError(
            f"path: {path}: its tensors do not fit the architecture its options describe "
            f"(arch {[lens, widths, num_classes]}, robust_additions "
            f"{opts['robust_additions']}): {err}"
        ) from None
    model.woods_training_options = {k: v for k, v in opts.items() if k != "arch"}
    return model.to(device).eval()


_BLOCK = re.compile(r"pipe\.([1-9]\d*)\.(\d+)\.(pre\.0|pre\.1|main\.[0-3]|shortcut)\.(\w+)")
_TOP = {
    "pipe.0.weight": "stem.weight",
    "pipe.5.d": "head.1.delta",
    "pipe.7.weight": "classifier.weight",
    "pipe.7.bias": "classifier.bias",
}
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def woods_to_advexp_name(name: str) -> str | None:
    """Our ``PreActResNet`` state-dict name for the Woods name ``name``; None if it has none.

    ``pipe.0`` -> ``stem``, ``pipe.{s+1}.{b}.*`` -> ``stages.{s}.{b}.*`` (s < 3), ``pipe.4`` / ``pipe.5`` ->
    ``head.0`` (BN) / ``head.1``, ``pipe.7`` -> ``classifier``, half-Huber ``d`` -> ``delta``.
    """
    if name in _TOP:
        return _TOP[name]
    if name.startswith("pipe.4.") and name[len("pipe.4.") :] in _BN:  # final BN
        return "head.0." + name[len("pipe.4.") :]
    m = _BLOCK.fullmatch(name)
    if m is None or int(m.group(1)) > 3:
        return None
    stage, block, part, leaf = int(m.group(1)) - 1, m.group(2), m.group(3), m.group(4)
    if part in ("pre.1", "main.2"):  # activations: only the half-Huber width buffer
        return f"stages.{stage}.{block}.{part}.delta" if leaf == "d" else None
    if part in ("main.0", "main.3", "shortcut"):  # convolutions, no bias
        return f"stages.{stage}.{block}.{part}.weight" if leaf == "weight" else None
    return f"stages.{stage}.{block}.{part}.{leaf}" if leaf in _BN else None


def _check_layout(state, path) -> None:
    """Refuse anything that is not {model_params: tensors, training_options: Woods options}."""

    def bad(what):
        return CheckpointError(f"path: {path} is not a Woods et al. checkpoint: {what}")

    if not isinstance(state, dict) or not {"model_params", "training_options"} <= set(state):
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise bad(f"expected a dict with 'model_params' and 'training_options', got {keys}")
    params, opts = state["model_params"], state["training_options"]
    if not isinstance(params, dict) or not all(isinstance(v, torch.Tensor) for v in params.values()):
        raise bad("'model_params' is not a dict of tensors")
    if not isinstance(opts, dict) or "arch" not in opts or "robust_additions" not in opts:
        raise bad("'training_options' lacks 'arch' or 'robust_additions'")
    arch = opts["arch"]
    ok = (
        isinstance(arch, (list, tuple))
        and len(arch) == 5
        and arch[1] is WoodsPreprocessPlaceholder
        and isinstance(arch[2], (list, tuple))
        and len(arch[2]) == 3
        and len(set(arch[2])) == 1
        and all(isinstance(n, int) and n > 0 for n in arch[2])
        and isinstance(arch[3], (list, tuple))
        and len(arch[3]) == 3
        and all(isinstance(w, int) and w > 0 for w in arch[3])
        and isinstance(arch[4], int)
        and arch[4] > 1
    )
    if not ok:
        raise bad(
            f"'arch' should be [size, cifar10_preprocess, [n, n, n], [w1, w2, w3], classes], got {arch!r}"
        )
    offset = params.get("input_offset")
    if (
        offset is None
        or offset.dim() != 2
        or offset.shape[0] != 2
        or not torch.isfinite(offset).all()
        or (offset[1] <= 0).any()
    ):
        raise bad("'input_offset' should be a finite 2 x C tensor [[mean], [std > 0]]")
