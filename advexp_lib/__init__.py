"""advexp_lib: adversarial attacks, robustness and explanations of image classifiers.

The library behind the advexp book: data, models (incl. the half-Huber ReLU),
the robust-training regularizers, one training loop, attacks, explanations and
metrics (ARA). Submodules are imported on demand: ``from advexp_lib import zoo``.

The modules form layers (:data:`LAYERS`); a module imports only modules listed
before it, so the package has no import cycle. From the bottom:

1. base: ``checks`` (errors, validation), ``stats`` (intervals, verdicts),
   ``claims`` (the claims the book tests), ``data``, ``models``,
   ``distributed``, ``checkpoints``, ``woods_import`` (the published networks'
   format), ``published`` (finding those files);
2. ``attacks`` on the prediction: ``attacks.search`` (the RMSE search of Woods
   et al., its configs and criteria), ``attacks.projected_gradient``, ``attacks.bisection``,
   ``attacks.independent`` (foolbox);
3. ``attributions``: explanation methods as classes (Captum, CAM, the adversarial explanation);
4. ``metrics``: ARA, robust accuracy, accuracy, map discrepancies, Gini, rank measures;
5. attacks on explanations: ``attacks.sneaking`` (ISA), ``attacks.topk``;
6. training hooks: ``hooks``, ``adversarial_training``, ``regularizers``;
7. ``experiments``: the measurements behind the claims;
8. ``training``: the one training loop;
9. ``recipes``: the table of every training recipe, resolved into plain specs;
10. ``zoo``: trained models, cached and loaded safely;
11. ``report``: tables;
12. the top: ``plotting`` (every figure), ``widgets``, ``reproduce`` (notebooks and the book), ``cli``.
"""

from .checks import AdvexpError, CheckpointError, InputError, InputTypeError

__version__ = "0.1.0"
__all__ = ["AdvexpError", "InputError", "InputTypeError", "CheckpointError", "LAYERS", "__version__"]

LAYERS = (
    (
        "checks",
        "stats",
        "claims",
        "data",
        "models",
        "distributed",
        "checkpoints",
        "woods_import",
        "published",
    ),
    ("attacks.search", "attacks.projected_gradient", "attacks.bisection", "attacks.independent", "attacks"),
    ("attributions",),
    ("metrics",),
    ("attacks.sneaking", "attacks.topk"),
    ("hooks", "adversarial_training", "regularizers"),
    ("experiments",),
    ("training",),
    ("recipes",),
    ("zoo",),
    ("report",),
    ("plotting", "widgets", "reproduce", "cli", "__main__"),
)
"""The package's modules from the bottom up: each imports only modules listed before it."""
