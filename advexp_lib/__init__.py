"""advexp_lib: adversarial attacks, robustness and explanations of image classifiers.

The library behind the advexp book: data, models (incl. the half-Huber ReLU),
the robust-training regularizers, one training loop, attacks, explanations and
metrics (ARA). Submodules are imported on demand: ``from advexp_lib import zoo``; the shortcuts
``advexp_lib.ara`` (:func:`~advexp_lib.metrics.accuracy_robustness_area`), ``advexp_lib.attribute``
(:func:`~advexp_lib.attributions.attribute`), ``advexp_lib.explain``
(:func:`~advexp_lib.attributions.adversarial_explanation`) and ``advexp_lib.pgd``
(:func:`~advexp_lib.attacks.projected_gradient.pgd`) reach the four most used calls.

The modules form layers (:data:`LAYERS`); a module imports only modules listed
before it, so the package has no import cycle. From the bottom:

1. base: ``errors``, ``checks`` (validation), ``protocols`` (the search's settings and the
   reference's protocols), ``results`` (result objects as JSON), ``stats`` (intervals,
   verdicts), ``data``, ``models``, ``speedups`` (faster
   equivalents of a frozen network for attacks), ``distributed``, ``checkpoints``, ``woods_import`` and
   ``boopathy_import`` (the published networks' formats), ``published`` (finding those files);
2. ``attacks`` on the prediction: ``attacks.search`` (the RMSE search of Woods
   et al., its configs and criteria), ``attacks.projected_gradient``, ``attacks.bisection``,
   ``attacks.independent`` (foolbox);
3. ``attributions``: explanation methods as classes (Captum, CAM, the adversarial explanation);
4. ``metrics``: ARA, robust accuracy, accuracy, map discrepancies, Gini, rank measures;
5. attacks on explanations: ``attacks.sneaking`` (ISA), ``attacks.topk``;
6. training hooks: ``hooks``, ``adversarial_training``, ``regularizers``;
7. ``training``: the one training loop;
8. ``recipes``: the table of every training recipe, resolved into plain specs;
9. ``zoo``: trained models, cached and loaded safely;
10. the top: ``plotting`` (the library's figures), ``widgets`` (the explorer), ``cli``.

The book's machinery (chapter experiments, claims, report tables, chapter figures,
running the notebooks) is the separate package ``advexp_book``, which imports this one.
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
