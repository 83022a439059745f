"""Checkpoint files: atomic saves and loads that never execute code.

A checkpoint is a ``torch.save`` of a plain dict tagged with :data:`CHECKPOINT_FORMAT`. Saves: temp file in
the same folder, fsync, rename. Loads: the CRC-32 of every zip member checked (``torch.load`` does not),
then ``torch.load(weights_only=True)``, which refuses any pickle naming a function or class.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path

import torch
from torch import nn

from .checks import CheckpointError

__all__ = [
    "CHECKPOINT_FORMAT",
    "save_checkpoint",
    "write_atomic",
    "load_checkpoint",
    "load_weights",
    "load_model_state",
]

CHECKPOINT_FORMAT = "advexp-checkpoint-v1"


def save_checkpoint(path, state: dict) -> Path:
    """Write ``state`` (plus the format tag) to ``path`` atomically (:func:`write_atomic`)."""
    return write_atomic(path, lambda f: torch.save({"format": CHECKPOINT_FORMAT, **state}, f))


def write_atomic(path, write) -> Path:
    """Create or replace ``path`` atomically: ``write(f)`` fills a temp file beside it, fsync, rename.

    A failure before the rename leaves an existing file intact; the new file gets ``open()``'s permissions.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(path, *, map_location="cpu") -> dict:
    """Load a :func:`save_checkpoint` file, running no code; CheckpointError if unsafe, corrupt or foreign."""
    path = Path(path)
    state = _load_weights_only(
        path,
        "checkpoint",
        map_location,
        lambda err: f" (loading it would run code or it is corrupt): {err}",
    )
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint: {path} is not an advexp checkpoint (expected format {CHECKPOINT_FORMAT!r})"
        )
    return state


def load_weights(path, *, key: str | None = None, map_location="cpu") -> dict:
    """A state dict from a user's weights file, loaded without executing code (``weights_only=True``).

    The file holds the state dict, a dict with it under ``key`` (e.g. "state_dict"), or an advexp checkpoint.

    Raises:
        CheckpointError: a missing, corrupt or unsafe file, or no state dict where expected (lists its keys).
    """
    path = Path(path)
    obj = _load_weights_only(path, "weights", map_location, _pickled_object_hint)
    if isinstance(obj, dict) and key is None and obj.get("format") == CHECKPOINT_FORMAT:
        key = "model"
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            keys = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
            raise CheckpointError(f"weights: {path} has no key {key!r}; it holds {keys}")
        obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        keys = sorted(map(str, obj))[:8] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(
            f"weights: {path} holds no state dict of tensors here ({keys}); name the entry that holds one "
            f"(--weights-key, e.g. state_dict)"
        )
    return obj


def _load_weights_only(path: Path, name: str, map_location, refusal) -> object:
    """``torch.load(path, weights_only=True)`` after file and CRC checks; failures: CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"{name}: no file at {path}")
    _check_zip_crc(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{name}: {path} refused: it is not a plain weights file{refusal(err)}"
        ) from None
    except Exception as err:  # noqa: BLE001 - garbage bytes surface as struct/EOF/zip/runtime errors alike
        raise CheckpointError(
            f"{name}: {path} is truncated or corrupt: {type(err).__name__}: {err}"
        ) from None


def _pickled_object_hint(err) -> str:
    found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
    holds = f" (it holds {found.group(1)}, a pickled object)" if found else ""
    return f"{holds}, and loading it would run code; save model.state_dict() instead"


def load_model_state(model: nn.Module, state: dict, source) -> None:
    """Load the state dict ``state`` into ``model``, all or nothing: names and shapes are compared first.

    Raises:
        CheckpointError: another architecture or number of classes (naming ``source``); ``model`` unchanged.
    """
    own = model.state_dict()
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint: {source} holds no model state dict (got {type(state).__name__})")
    bad = sorted(set(own) ^ set(state)) + [
        k
        for k in own
        if k in state and (not isinstance(state[k], torch.Tensor) or state[k].shape != own[k].shape)
    ]
    if bad:
        raise CheckpointError(
            f"checkpoint: {source} does not fit this model (another architecture or number "
            f"of classes?): missing, unexpected or mis-shaped: {', '.join(bad[:8])}"
            + (" ..." if len(bad) > 8 else "")
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:  # shape or key mismatch: another arch / number of classes
        raise CheckpointError(f"checkpoint: {source} does not fit this model: {err}") from None


def _check_zip_crc(path: Path) -> None:
    """Verify the CRC-32 of every member of a zip-format checkpoint (``torch.load`` does not)."""
    if not zipfile.is_zipfile(path):
        return  # legacy (non-zip) format or garbage: torch.load decides
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except Exception as err:  # noqa: BLE001 - BadZipFile, zlib, EOF, struct errors on damaged files
        raise CheckpointError(
            f"checkpoint: {path} is truncated or corrupt: {type(err).__name__}: {err}"
        ) from None
    if bad is not None:
        raise CheckpointError(f"checkpoint: {path} is corrupt: its member {bad!r} fails its CRC-32 check")
