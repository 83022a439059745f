"""The explorer widget, driven through the ipywidgets Python API (no browser, no kernel)."""

import pytest
import torch
from torch import nn

pytest.importorskip("ipywidgets")

from advexp_lib import widgets  # noqa: E402
from advexp_lib.checks import InputError  # noqa: E402


def _tiny_model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)
    ).eval()


@pytest.fixture
def setup():
    x = torch.rand(4, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 0])
    models = {"a": _tiny_model(0), "b": _tiny_model(1)}
    return models, x, y


def test_explorer_updates_when_a_control_changes(setup):
    models, x, y = setup
    box = widgets.explorer(models, x, y, ("zero", "one", "two"), steps=5)
    ex = box.explorer
    before = ex.views
    assert ex.updates == 1 and before["target"] == 0
    ex.controls["target"].value = 2  # as a user moving the slider
    after = ex.views
    assert ex.updates == 2 and after["target"] == 2
    assert not torch.equal(before["x_ae"], after["x_ae"])
    ex.controls["index"].value = 1
    assert not torch.equal(after["x"], ex.views["x"])
    ex.controls["model"].value = "b"
    assert ex.settings()["model"] == "b" and ex.updates == 4


def test_rho_bounds_the_adversarial_explanation(setup):
    models, x, y = setup
    ex = widgets.Explorer(models, x, y, steps=5)
    for rho in (0.04, 0.2):
        ex.controls["rho"].value = rho
        change = ex.views["x_ae"] - ex.views["x"]
        # the search path is rho * overshoot long, but the push stops at RMSE rho (+ one ramp step)
        assert change.pow(2).mean().sqrt() <= rho * 5 + 1e-6
    assert ex.views["rho"] == pytest.approx(0.2)


def test_method_changes_the_map(setup):
    models, x, y = setup
    ex = widgets.Explorer(models, x, y, methods=("saliency", "integrated_gradients"), steps=3)
    sal = ex.views["map"]
    ex.controls["method"].value = "integrated_gradients"
    assert ex.views["method"] == "integrated_gradients" and not torch.equal(sal, ex.views["map"])


def test_static_grid_and_errors(setup):
    models, x, y = setup
    fig = widgets.explorer_grid(
        models,
        x,
        y,
        settings=[
            dict(model="a", index=0, target=1, method="saliency", rho=0.1),
            dict(model="b", index=2, target=0, method="grad_cam", rho=0.1),
        ],
        steps=3,
    )
    assert len(fig.axes) == 8
    with pytest.raises(InputError, match="settings.model"):
        widgets.explorer_grid(
            models, x, y, settings=[dict(model="c", index=0, target=0, method="saliency", rho=0.1)]
        )
    with pytest.raises(InputError, match="method"):
        widgets.explorer_views(models["a"], x[:1], 0, method="lime")
    with pytest.raises(InputError, match="one image"):
        widgets.explorer_views(models["a"], x[:2], 0)
