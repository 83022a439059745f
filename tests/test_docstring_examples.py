"""Every public function and class of the attack, explanation, metric and experiment rooms shows how to
call it, and that example runs: the docstrings' Examples blocks are doctested here on tiny models.

The namespace every example sees: ``model`` (a small CNN on 1 x 8 x 8 images, 3 classes), ``cam_model``
(a CAM-ready CNN of the same shape), four images ``x`` and labels ``y`` (``model``'s predictions),
``torch``, ``np`` and ``dataclasses.replace``, plus the module's own names.
"""

import doctest
import importlib
import inspect
from dataclasses import replace

import numpy as np
import pytest
import torch

from advexp_lib.models import build_model

MODULES = [
    "attacks.search",
    "attacks.projected_gradient",
    "attacks.bisection",
    "attacks.independent",
    "attacks.sneaking",
    "attacks.topk",
    "attributions",
    "metrics",
    "speedups",
    "stats",
    "advexp_book.experiments",
    "advexp_book.claims",
]


def _module(name: str):
    """``advexp_lib.<name>``, or the book's module when ``name`` is fully qualified."""
    return importlib.import_module(name if name.startswith("advexp_book.") else f"advexp_lib.{name}")


def _public(mod):
    """(name, object) of the module's public functions and classes (its ``__all__``, defined there)."""
    for name in mod.__all__:
        obj = getattr(mod, name)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == mod.__name__:
            yield name, obj


def _globs(mod) -> dict:
    torch.manual_seed(0)
    model = build_model("small_cnn", num_classes=3, image_size=8).eval()
    cam_model = build_model("cam_cnn", num_classes=3).eval()
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)  # the small CNN's own predictions: it is right on every image
    return {
        **vars(mod),
        "model": model,
        "cam_model": cam_model,
        "x": x,
        "y": y,
        "torch": torch,
        "np": np,
        "replace": replace,
    }


@pytest.mark.parametrize("name", MODULES)
def test_every_public_function_and_class_has_an_example(name):
    mod = _module(name)
    missing = [n for n, obj in _public(mod) if "Examples:" not in (inspect.getdoc(obj) or "")]
    assert missing == [], f"{mod.__name__}: no Examples block in {missing}"


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_run(name):
    mod = _module(name)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(mod, globs=_globs(mod)) if t.examples]
    assert tests, f"{mod.__name__} has no examples"
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {mod.__name__} failed"


def test_a_failing_example_is_caught():
    """The runner says no: an example whose output is wrong fails."""

    def f():
        """
        Examples:
            >>> 1 + 1
            3
        """

    (t,) = doctest.DocTestFinder().find(f, "f", globs={})
    runner = doctest.DocTestRunner()
    runner.run(t, out=lambda s: None)
    assert runner.summarize(verbose=False).failed == 1
