"""advexp_lib: adversarial attacks, robustness and explanations of image classifiers.

The library behind the advexp book (whose machinery is the separate package ``advexp_book``).
Submodules load on demand (``from advexp_lib import zoo``); shortcuts to the most used calls:
``ara`` = :func:`~advexp_lib.metrics.accuracy_robustness_area`, ``attribute`` =
:func:`~advexp_lib.attributions.attribute`, ``pgd`` = :func:`~advexp_lib.attacks.projected_gradient.pgd`,
``explain`` = :func:`~advexp_lib.attributions.adversarial_explanation`.

Modules form layers (:data:`LAYERS`), each importing only those before it: base (errors, checks,
protocols, results, stats, data, models, speedups, distributed, checkpoints, the published networks);
attacks on the prediction; ``attributions``; ``metrics``; attacks on explanations; training hooks;
``training``; ``recipes``; ``zoo``; the top (``plotting``, ``widgets``, ``cli``).
"""

from .errors import AdvexpError, CheckpointError, InputError, InputTypeError

__version__ = "0.1.0"
__all__ = [
    "ara",
    "attribute",
    "explain",
    "pgd",
    "AdvexpError",
    "InputError",
    "InputTypeError",
    "CheckpointError",
    "LAYERS",
    "__version__",
]

# The four calls most work starts with, at the top: ``advexp_lib.ara(model, x, y)``. They are looked up
# when first used, so ``import advexp_lib`` (and the command line's --help) loads no torch.
_SHORTCUTS = {
    "ara": ("metrics", "accuracy_robustness_area"),
    "attribute": ("attributions", "attribute"),
    "explain": ("attributions", "adversarial_explanation"),
    "pgd": ("attacks", "pgd"),
}


def __getattr__(name):
    if name in _SHORTCUTS:
        import importlib

        module, attr = _SHORTCUTS[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


LAYERS = (
    (
        "errors",
        "checks",
        "protocols",
        "results",
        "stats",
        "data",
        "models",
        "speedups",
        "distributed",
        "checkpoints",
        "woods_import",
        "boopathy_import",
        "published",
    ),
    ("attacks.search", "attacks.projected_gradient", "attacks.bisection", "attacks.independent", "attacks"),
    ("attributions",),
    ("metrics",),
    ("attacks.sneaking", "attacks.topk"),
    ("hooks", "adversarial_training", "regularizers"),
    ("training",),
    ("recipes",),
    ("zoo",),
    ("plotting", "widgets", "cli", "__main__"),
)
"""The package's modules from the bottom up: each imports only modules listed before it."""
