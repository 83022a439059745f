"""advexp_lib: adversarial attacks, robustness and explanations of image classifiers.

The library behind the advexp book: data, models (incl. the half-Huber ReLU),
the robust-training regularizer, one training loop, attacks, explanations and
metrics (ARA). Submodules are imported on demand: ``from advexp_lib import zoo``.
"""
from .checks import AdvexpError, CheckpointError, InputError, InputTypeError

__version__ = "0.1.0"
__all__ = ["AdvexpError", "InputError", "InputTypeError", "CheckpointError", "__version__"]
