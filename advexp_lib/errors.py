"""The errors this library raises on purpose; importing them loads nothing else (no torch)."""

from __future__ import annotations

__all__ = ["AdvexpError", "InputError", "InputTypeError", "CheckpointError"]


class AdvexpError(Exception):
    """Base class of every error this library raises on purpose."""


class InputError(AdvexpError, ValueError):
    """An argument has the wrong value (range, shape, name ...)."""


class InputTypeError(AdvexpError, TypeError):
    """An argument has the wrong type or dtype."""


class CheckpointError(AdvexpError, ValueError):
    """A checkpoint is corrupt, foreign, unsafe or does not fit the model."""
