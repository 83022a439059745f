"""advexp_lib: adversarial attacks, robustness and explanations of image classifiers.

The library behind the advexp book: data, models (incl. the half-Huber ReLU),
the robust-training regularizers, one training loop, attacks, explanations and
metrics (ARA). Submodules are imported on demand: ``from advexp_lib import zoo``.

The modules form layers (:data:`LAYERS`); a module imports only modules listed
before it, so the package has no import cycle. From the bottom:

1. base: ``checks`` (errors, validation), ``stats`` (confidence intervals),
   ``data``, ``models``, ``distributed``, ``checkpoints``, ``woods_import``
   (the published networks' format), ``published`` (finding those files);
2. ``attacks``: pixel-space attacks (the RMSE search of Woods et al., PGD);
3. ``attributions``: attribution maps (Captum, CAM, differentiable IG);
4. ``metrics``: ARA, accuracy, map discrepancies, Gini, rank measures;
5. ``explanation_attacks``: attacks on and experiments with explanations;
6. training hooks: ``hooks``, ``adversarial_training``, ``regularizers``;
7. ``training``: the one training loop;
8. ``recipes``: the table of every training recipe;
9. ``zoo``: trained models, cached and loaded safely;
10. the top: ``plotting`` (every figure), ``report`` (tables), ``widgets``,
    ``reproduce`` (notebooks and the book), ``cli``.
"""

from .checks import AdvexpError, CheckpointError, InputError, InputTypeError

__version__ = "0.1.0"
__all__ = ["AdvexpError", "InputError", "InputTypeError", "CheckpointError", "LAYERS", "__version__"]

LAYERS = (
    ("checks", "stats", "data", "models", "distributed", "checkpoints", "woods_import", "published"),
    ("attacks",),
    ("attributions",),
    ("metrics",),
    ("explanation_attacks",),
    ("hooks", "adversarial_training", "regularizers"),
    ("training",),
    ("recipes",),
    ("zoo",),
    ("plotting", "report", "widgets", "reproduce", "cli", "__main__"),
)
"""The package's modules from the bottom up: each imports only modules listed before it."""
