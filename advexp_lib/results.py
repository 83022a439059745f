"""Result objects as JSON: ``to_dict()`` / ``from_dict()`` for the library's result dataclasses."""

from __future__ import annotations

import dataclasses
import math

import torch

__all__ = ["Result", "to_json", "from_json"]

_SPECIAL = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


class Result:
    """Mix-in: ``to_dict()`` and ``from_dict()`` for a dataclass of tensors, numbers, strings and dicts.

    Examples:
        >>> from advexp_lib.metrics import AraResult
        >>> d, late = torch.tensor([0.2, float("inf")]), torch.tensor([False, True])
        >>> r = AraResult(0.1, d, 1.0, "attack", 10, late)
        >>> back = AraResult.from_dict(r.to_dict())
        >>> back.distances.tolist(), back.kind
        ([0.20000000298023224, inf], 'attack')
    """

    def to_dict(self) -> dict:
        """The result as JSON-safe data (:func:`to_json`)."""
        return {f.name: to_json(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict):
        """The result :meth:`to_dict` gave, rebuilt (tensors on the CPU)."""
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        return cls(**{k: from_json(v) for k, v in data.items() if k in names})


def to_json(value):
    """``value`` as data ``json.dumps(..., allow_nan=False)`` accepts: tensors {"tensor": lists, "dtype"},
    non-finite floats "inf", "-inf", "nan", results and Estimates their dicts, containers converted.
    """
    if isinstance(value, torch.Tensor):
        return {
            "tensor": to_json(value.detach().cpu().tolist()),
            "dtype": str(value.dtype).removeprefix("torch."),
        }
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def from_json(value):
    """The inverse of :func:`to_json` for tensors and non-finite floats (other dicts stay dicts)."""
    if isinstance(value, dict) and set(value) == {"tensor", "dtype"}:
        return torch.tensor(from_json(value["tensor"]), dtype=getattr(torch, value["dtype"]))
    if isinstance(value, str) and value in _SPECIAL:
        return _SPECIAL[value]
    if isinstance(value, dict):
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value
