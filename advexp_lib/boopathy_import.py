"""Import the published MNIST and CIFAR-10 networks of Boopathy et al. (2020), safely.

AkhilanB/Proper-Interpretability (MIT license) publishes in ``networks/`` its "Small" GAP CNNs: pickles
(protocol 2) of tuples of float32 arrays in TensorFlow layouts, C = 1 (MNIST) or 3 (CIFAR-10)::

    [(W1 (4, 4, C, 16) HWIO, b1 (16,)), (W2 (4, 4, 16, 32), b2 (32,)),
     (W3 (7, 7, 32, 100), b3 (100,)), (W (1, 1, 100, 10),)]

A restricted unpickler resolves only numpy's array globals (``numpy[._]core.multiarray._reconstruct``,
``numpy.ndarray``, ``numpy.dtype``) and refuses any other (:class:`~advexp_lib.checks.CheckpointError`): no
pickled code runs. Arrays load, as OIHW, into :class:`~advexp_lib.models.SmallGap` (TensorFlow SAME padding).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checks import CheckpointError
from .models import SmallGap

__all__ = ["read_boopathy_pickle", "boopathy_state_dict", "import_boopathy_network", "BOOPATHY_LAYOUT"]

# name -> expected TF shape of each array, in the file's order (MNIST; CIFAR-10 has 3 input channels)
BOOPATHY_LAYOUT = (
    ("features.0.weight", (4, 4, 1, 16)),
    ("features.0.bias", (16,)),
    ("features.2.weight", (4, 4, 16, 32)),
    ("features.2.bias", (32,)),
    ("features.4.weight", (7, 7, 32, 100)),
    ("features.4.bias", (100,)),
    ("classifier.weight", (1, 1, 100, 10)),
)
_RECONSTRUCT = (np._core if hasattr(np, "_core") else np.core).multiarray._reconstruct
_ALLOWED = {  # numpy 1 pickles name numpy.core, numpy 2 pickles numpy._core: the same function
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _NumpyArraysOnly(pickle.Unpickler):
    """An unpickler that resolves only the globals a numpy array needs; anything else is refused."""

    def find_class(self, module, name):
        found = _ALLOWED.get((module, name))
        if found is None:
            raise CheckpointError(
                f"the file names {module}.{name}, which a Boopathy et al. network file never does; "
                f"refused (unpickling it could run code)"
            )
        return found


def read_boopathy_pickle(path) -> list:
    """The raw list of tuples of float32 arrays in a published ``networks/*.pkl`` file, without running code.

    Raises:
        CheckpointError: absent, corrupt or foreign file, or one naming a global beyond numpy's arrays."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"path: no file at {path}")
    try:
        params = _NumpyArraysOnly(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except CheckpointError as err:
        raise CheckpointError(f"path: {path}: {err}") from None
    except Exception as err:  # noqa: BLE001 - garbage surfaces as UnpicklingError, EOF, struct errors alike
        raise CheckpointError(f"path: {path} is truncated or corrupt: {type(err).__name__}: {err}") from None
    arrays = [a for layer in params for a in layer] if isinstance(params, list) else None
    shapes = [getattr(a, "shape", None) for a in arrays] if arrays is not None else None
    layouts = [_layout(c) for c in (1, 3)]
    if shapes not in layouts or not all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in arrays):
        raise CheckpointError(
            f"path: {path} is not a Boopathy et al. Small GAP network: expected float32 arrays shaped "
            f"{layouts[0]} (MNIST) or {layouts[1]} (CIFAR-10), got "
            f"{shapes if shapes is not None else type(params)}"
        )
    return params


def _layout(channels: int) -> list:
    """The arrays' TF shapes for ``channels`` input channels, in the file's order."""
    first = BOOPATHY_LAYOUT[0][1]
    return [first[:2] + (channels,) + first[3:]] + [s for _, s in BOOPATHY_LAYOUT[1:]]


def boopathy_state_dict(params: list) -> dict:
    """:class:`~advexp_lib.models.SmallGap` state dict from the file's arrays (TF HWIO -> torch OIHW), exact
    copies: kernels (kh, kw, cin, cout) -> (cout, cin, kh, kw), the CAM head (1, 1, 100, 10) -> (10, 100)."""
    arrays = [a for layer in params for a in layer]
    state = {}
    for (name, _), a in zip(BOOPATHY_LAYOUT, arrays):
        t = torch.from_numpy(np.ascontiguousarray(a))
        if name == "classifier.weight":
            t = t[0, 0].T
        elif t.dim() == 4:
            t = t.permute(3, 2, 0, 1)
        state[name] = t.contiguous().clone()
    return state


def import_boopathy_network(path, *, device="cpu") -> nn.Module:
    """A published Boopathy et al. network (``networks/{mnist,cifar}_smallgap_*.pkl``) as a ``SmallGap``.

    Eval mode, on (N, C, H, W) pixels in [0, 1] like the reference (its loaders' x / 255 - 0.5, plus 0.5)."""
    state = boopathy_state_dict(read_boopathy_pickle(path))
    model = SmallGap(in_channels=state["features.0.weight"].shape[1])
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()
