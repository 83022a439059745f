"""The explorer widget, driven through the ipywidgets Python API (no browser, no kernel)."""

from dataclasses import replace

import pytest
import torch
from torch import nn

pytest.importorskip("ipywidgets")

from advexp_lib import plotting, widgets  # noqa: E402
from advexp_lib.attacks import AE_PAPER  # noqa: E402
from advexp_lib.attributions import adversarial_explanation  # noqa: E402
from advexp_lib.checks import InputError  # noqa: E402
from advexp_lib.models import runner_up  # noqa: E402


def _cfg(steps):
    """The explorer's search with fewer steps (tests stay fast)."""
    return replace(AE_PAPER, steps=steps)


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
    box = widgets.explorer(models, x, y, ("zero", "one", "two"), config=_cfg(5))
    ex = box.explorer
    before = ex.views
    # the first view aims at the runner-up class of image 0, never at its own class y[0] = 0
    with torch.no_grad():
        second = int(runner_up(models["a"](x[:1]), y[:1])[0])
    assert ex.updates == 1 and before["target"] == second != 0
    other = 3 - second  # the class that is neither y[0] = 0 nor the runner-up
    ex.controls["target"].value = other  # as a user moving the slider
    after = ex.views
    assert ex.updates == 2 and after["target"] == other
    assert not torch.equal(before["x_ae"], after["x_ae"])
    ex.controls["index"].value = 1
    assert not torch.equal(after["x"], ex.views["x"])
    ex.controls["model"].value = "b"
    assert ex.settings()["model"] == "b" and ex.updates == 4


def test_rho_bounds_the_adversarial_explanation(setup):
    models, x, y = setup
    ex = widgets.Explorer(models, x, y, config=_cfg(5))
    for rho in (0.04, 0.2):
        ex.controls["rho"].value = rho
        change = ex.views["x_ae"] - ex.views["x"]
        # the search path is rho * overshoot long, but the push stops at RMSE rho (+ one ramp step)
        assert change.pow(2).mean().sqrt() <= rho * 5 + 1e-6
    assert ex.views["rho"] == pytest.approx(0.2)


def test_method_changes_the_map(setup):
    models, x, y = setup
    ex = widgets.Explorer(models, x, y, methods=("saliency", "integrated_gradients"), config=_cfg(3))
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
        config=_cfg(3),
    )
    assert len(fig.axes) == 12  # 2 rows x (4 panels + 2 colorbars)
    with pytest.raises(InputError, match="settings.model"):
        widgets.explorer_grid(
            models, x, y, settings=[dict(model="c", index=0, target=0, method="saliency", rho=0.1)]
        )
    with pytest.raises(InputError, match="method"):
        widgets.explorer_views(models["a"], x[:1], 0, method="lime")
    with pytest.raises(InputError, match="one image"):
        widgets.explorer_views(models["a"], x[:2], 0)


def test_first_view_maximizes_the_cosine_distance_of_the_two_changes(setup):
    models, x, y = setup
    y = models["a"](x).argmax(1)  # every image counts as correctly classified by "a"
    models["b"] = models["a"]  # ... and by "b" when it is the same network
    same = widgets.first_view({"a": models["a"], "b": models["b"]}, x, y, config=_cfg(5))
    assert same["distance"].abs().max() < 1e-5  # the same network makes the same edit: distance 0
    other = _tiny_model(1)
    fv = widgets.first_view({"a": models["a"], "c": other}, x, y, config=_cfg(5))
    targets = runner_up(models["a"](x), y)
    d = [
        adversarial_explanation(m, x, targets, config=_cfg(5), on_late="flag", on_miss="flag").x_adv - x
        for m in (models["a"], other)
    ]
    cos = torch.nn.functional.cosine_similarity(d[0].flatten(1), d[1].flatten(1), dim=1)
    assert torch.allclose(fv["distance"], 1 - cos, atol=1e-5)
    correct = other(x).argmax(1) == y
    expected = int((1 - cos).masked_fill(~correct, -1).argmax()) if correct.any() else int((1 - cos).argmax())
    assert fv["index"] == expected and fv["target"] == int(targets[expected])
    assert fv["compare"] == ("a", "c")
    with pytest.raises(InputError, match="compare"):
        widgets.first_view(models, x, y, compare=("a", "z"))


def test_menus_show_plain_labels_and_keep_the_names(setup):
    models, x, y = setup
    ex = widgets.Explorer(
        {"standard": models["a"], "all": models["b"]}, x, y, config=_cfg(2), index=1, target=2
    )
    labels = dict(ex.controls["model"].options)
    assert labels["robust (half-Huber + L_adv + adv. training)"] == "all"
    assert dict(ex.controls["method"].options)["Grad-CAM"] == "grad_cam"
    ex.controls["model"].value = "all"
    assert ex.settings()["model"] == "all" and ex.views["target"] == 2 and ex.settings()["index"] == 1
    with pytest.raises(InputError, match="index"):
        widgets.Explorer(models, x, y, index=4)
    with pytest.raises(InputError, match="target"):
        widgets.Explorer(models, x, y, target=3)


class _Unreachable(nn.Module):
    """Scores class 2 at -100 whatever the image: no explanation can reach it."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))

    def forward(self, x):
        return torch.cat([self.linear(x), torch.full((x.shape[0], 1), -100.0)], 1)


def test_a_missed_target_says_so_and_suggests_a_larger_rho(setup):
    models, x, y = setup
    torch.manual_seed(0)
    ex = widgets.Explorer({"u": _Unreachable().eval()}, x, y, target=2, config=_cfg(3))
    assert not ex.views["reached"]
    assert "did not reach class 2" in ex.note.value and "raise rho" in ex.note.value
    fig = plotting.plot_views(ex.views)
    titles = [ax.get_title() for ax in fig.axes]
    assert any("missed 2" in t and "larger rho" in t for t in titles)
    ex.controls["target"].value = int(ex.views["pred"])  # the class it already predicts: reached
    assert ex.views["reached"] and ex.note.value == ""


def test_figure_has_colorbars_and_readable_method_names(setup):
    models, x, y = setup
    views = widgets.explorer_views(models["a"], x[:1], 1, method="integrated_gradients", config=_cfg(2))
    fig = plotting.plot_views(views)
    assert len(fig.axes) == 6  # four panels, a colorbar beside the map and beside the change
    titles = " ".join(ax.get_title() for ax in fig.axes)
    assert "integrated gradients for 1" in titles and "integrated_gradients" not in titles
    assert "red brighter, blue darker" in titles
