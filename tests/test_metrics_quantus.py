"""The Gini index checked by a second library: Quantus's Sparseness is Chalasani et al.'s Gini.

Quantus adds 1e-7 to every |attribution| before its formula, so it equals
``gini(|a| + 1e-7)`` to float rounding, and ``gini(a)`` to within 1e-6 on
dense attributions of unit scale, 1e-5 on sparse ones (the offset weighs on
zeros), and more on tiny ones.
"""

import numpy as np
import pytest
import quantus
import torch

from advexp_lib.metrics import gini


def _sparseness(a: torch.Tensor) -> np.ndarray:
    metric = quantus.Sparseness(normalise=False, abs=True, disable_warnings=True)
    a64 = a.double().numpy().copy()
    return np.asarray(
        metric(model=None, x_batch=a64.copy(), y_batch=np.zeros(len(a64), dtype=int), a_batch=a64)
    )


@pytest.mark.parametrize("kind", ["dense", "sparse", "one-hot"])
def test_quantus_sparseness_is_our_gini(kind):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 1, 28, 28, generator=g, dtype=torch.float64)
    if kind == "sparse":
        a = a * (torch.rand(a.shape, generator=g, dtype=torch.float64) < 0.1)
    elif kind == "one-hot":
        a = torch.zeros_like(a)
        a[:, 0, 3, 5] = torch.arange(1.0, 7.0, dtype=torch.float64)
    ours = gini(a).numpy()
    theirs = _sparseness(a)
    assert np.allclose(theirs, gini(a.abs() + 1e-7).numpy(), rtol=0, atol=1e-12)
    assert np.allclose(theirs, ours, rtol=0, atol={"dense": 1e-6, "sparse": 1e-5, "one-hot": 1e-4}[kind])
    assert not np.allclose(_sparseness(a * 1e-6), ours, atol=1e-3)  # the offset shows on tiny attributions
