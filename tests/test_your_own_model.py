"""A researcher's own networks, not ours: a normalized torchvision resnet18 (random weights, 32 x 32) and a
small ``nn.Sequential`` built by a module on ``PYTHONPATH``, from Python and from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models import resnet18
from torchvision.transforms.functional import to_pil_image

import advexp_lib
from advexp_lib import InputError, attributions, metrics, models, plotting, widgets
from advexp_lib.attacks import AE_PAPER, SearchConfig, pgd, rmse
from advexp_lib.attributions import GradCamResolutionWarning, UnreachedTargetWarning
from advexp_lib.cli import main

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # CIFAR-10's, as a user would pass them
QUICK = SearchConfig(steps=12, eps=2.0)  # a short ARA search, ample for random weights

USERNETS = '''
import torch
from torch import nn
from torchvision.models import resnet18


def build():
    """A digit classifier: 1 x 28 x 28 -> 10 logits."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 5, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 12 * 12, 10))


def wide():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 16, 5, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 12 * 12, 10))


def resnet():
    torch.manual_seed(0)
    return resnet18(num_classes=3)


def not_a_network():
    return 42
'''


def _resnet() -> nn.Module:
    torch.manual_seed(0)
    return models.with_normalization(resnet18(num_classes=10), MEAN, STD).eval()


@pytest.fixture(scope="module")
def resnet():
    return _resnet()


@pytest.fixture(scope="module")
def pixels():
    g = torch.Generator().manual_seed(1)
    return torch.rand(4, 3, 32, 32, generator=g)


@pytest.fixture(scope="module")
def usernets(tmp_path_factory):
    """A folder on sys.path (and on PYTHONPATH for subprocesses) holding ``usernets.py`` and weights files."""
    folder = tmp_path_factory.mktemp("usernets")
    (folder / "usernets.py").write_text(USERNETS)
    sys.path.insert(0, str(folder))
    import usernets  # noqa: F401 - the module the CLI will import by name

    net = usernets.build()
    torch.save(net.state_dict(), folder / "plain.pt")
    torch.save({"state_dict": net.state_dict(), "epoch": 3}, folder / "keyed.pt")
    torch.save(net, folder / "pickled.pt")  # a whole pickled module: loading it would run code
    yield folder
    sys.path.remove(str(folder))
    sys.modules.pop("usernets", None)


def _cli(folder, *args):
    """``python -m advexp_lib ARGS`` in a subprocess with ``folder`` on PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(
        [sys.executable, "-m", "advexp_lib", *map(str, args)], env=env, capture_output=True, text=True
    )


# ---- normalization ------------------------------------------------------------------------------------


def test_with_normalization_computes_the_network_on_normalized_pixels(resnet, pixels):
    mean, std = torch.tensor(MEAN)[:, None, None], torch.tensor(STD)[:, None, None]
    with torch.no_grad():
        torch.testing.assert_close(resnet(pixels), resnet.net((pixels - mean) / std), rtol=0, atol=0)
    grey = models.with_normalization(nn.Identity(), 0.5, 0.25)  # one number: a 1-channel model
    assert torch.equal(grey(torch.ones(1, 1, 2, 2)), torch.full((1, 1, 2, 2), 2.0))
    with pytest.raises(InputError, match="std: expected values > 0"):
        models.with_normalization(nn.Identity(), MEAN, (0.2, 0.0, 0.2))


def test_normalized_input_is_refused_with_the_way_out_named(resnet, pixels):
    mean, std = torch.tensor(MEAN)[:, None, None], torch.tensor(STD)[:, None, None]
    with pytest.raises(InputError, match=r"x: pixels must lie in \[0, 1\].*with_normalization"):
        advexp_lib.ara(resnet.net, (pixels - mean) / std, torch.zeros(4, dtype=torch.long), progress=False)


# ---- results ------------------------------------------------------------------------------------------


def test_ara_of_a_normalized_resnet_is_a_json_safe_result(resnet, pixels):
    with torch.no_grad():
        y = resnet(pixels).argmax(1)  # every image correct: a distance > 0 each
    res = advexp_lib.ara(resnet, pixels, y, config=QUICK, progress=False)
    assert res.accuracy == 1.0 and bool((res.distances > 0).all()) and res.ara > 0
    data = json.loads(json.dumps(res.to_dict(), allow_nan=False))  # JSON-safe: no tensors, no bare inf
    back = type(res).from_dict(data)
    assert torch.equal(back.distances, res.distances.cpu()) and back.ara == res.ara and back.kind == res.kind
    est = res.interval()
    assert est.lo <= res.ara <= est.hi and est.n == 4


def test_adversarial_explanation_reports_reached_probability_and_rmse(resnet, pixels):
    targets = [1, 2, 3, 4]  # a list of labels
    res = attributions.adversarial_explanation(resnet, pixels, targets, on_miss="flag", progress=False)
    with torch.no_grad():
        p = resnet(res.x_adv).softmax(1)
    assert torch.equal(res.targets, torch.tensor(targets))
    assert torch.equal(res.reached, p.argmax(1) == res.targets)
    torch.testing.assert_close(res.p_target, p[torch.arange(4), res.targets])
    torch.testing.assert_close(res.rmse, rmse(res.x_adv - pixels))
    assert res.rho == AE_PAPER.eps and res.steps == AE_PAPER.steps
    assert 0 <= float(res.x_adv.min()) and float(res.x_adv.max()) <= 1  # AE_PAPER clips: x' is an image
    attributions.attribute(resnet, res.x_adv, targets, method="saliency")  # ... which attribute accepts
    back = type(res).from_dict(json.loads(json.dumps(res.to_dict())))
    assert torch.equal(back.reached, res.reached) and torch.equal(back.x_adv, res.x_adv)


def test_a_missed_target_warns_naming_rho(resnet, pixels):
    tiny = replace(AE_PAPER, eps=1e-4, steps=3)  # far too small a budget to flip a class
    with pytest.warns(UnreachedTargetWarning, match=r"did not reach their target class within rho 0.0001"):
        res = attributions.adversarial_explanation(resnet, pixels, 1, config=tiny, progress=False)
    assert not bool(res.reached.all())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreachedTargetWarning)
        attributions.adversarial_explanation(resnet, pixels, 1, config=tiny, on_miss="flag", progress=False)
    with pytest.raises(InputError, match="on_miss"):
        attributions.adversarial_explanation(resnet, pixels, 1, config=tiny, on_miss="ignore")


# ---- checks that save an afternoon ----------------------------------------------------------------------


def test_device_and_dtype_mismatches_name_both(resnet, pixels):
    wide = _resnet().double()
    for call in (
        lambda: advexp_lib.ara(wide, pixels, 0, config=QUICK, progress=False),
        lambda: advexp_lib.attribute(wide, pixels, 0, method="saliency"),
        lambda: advexp_lib.pgd(wide, pixels, torch.zeros(4, dtype=torch.long), eps=0.03, steps=2),
        lambda: advexp_lib.explain(wide, pixels, 0, progress=False),
    ):
        with pytest.raises(InputError, match=r"x: on cpu as torch.float32, but the model's .* torch.float64"):
            call()


class _NaNNet(nn.Module):
    def forward(self, x):
        return torch.full((x.shape[0], 3), float("nan")) + 0 * x.sum()


def test_nan_logits_raise_a_clear_error_not_search_advice(pixels):
    y = torch.zeros(4, dtype=torch.long)
    with pytest.raises(InputError, match="returned NaN or inf logits") as info:
        advexp_lib.ara(_NaNNet(), pixels, y, config=QUICK, progress=False)
    assert "raise eps" not in str(info.value)
    with pytest.raises(InputError, match="returned NaN or inf logits"):
        advexp_lib.attribute(_NaNNet(), pixels, y, method="saliency")


def test_cam_on_resnet18_is_the_class_weighted_last_features(resnet, pixels):
    feats = {}
    hook = resnet.net.layer4.register_forward_hook(lambda m, i, out: feats.__setitem__("a", out))
    with torch.no_grad():
        resnet(pixels)
    hook.remove()
    y = torch.tensor([0, 3, 5, 9])
    by_hand = torch.einsum("nk,nkhw->nhw", resnet.net.fc.weight[y], feats["a"])[:, None]
    ours = attributions.Cam(upsample=False).attribute(resnet, pixels, y)
    torch.testing.assert_close(ours, by_hand)


def test_cam_refuses_other_networks_with_the_reason(pixels):
    flat = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 32 * 32, 3))
    with pytest.raises(InputError, match=r"CAM needs .* Sequential has no nn.AdaptiveAvgPool2d; use GradCam"):
        advexp_lib.attribute(flat, pixels, 0, method="cam")
    scaled = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3), nn.Tanh()
    )
    with pytest.raises(InputError, match="changes them between its pooling and its classifier"):
        advexp_lib.attribute(scaled, pixels, 0, method="cam")


def test_grad_cam_warns_on_a_1x1_layer_and_names_a_better_one(resnet, pixels):
    with pytest.warns(GradCamResolutionWarning, match=r"1 x 1 map .* GradCam\(layer='net.layer3'\)"):
        flat = attributions.GradCam().attribute(resnet, pixels, 0)
    assert float(flat.flatten(1).std(1).max()) < 1e-6  # the warning is right: the map is constant
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradCamResolutionWarning)
        better = attributions.GradCam(layer="net.layer3", relu=False).attribute(resnet, pixels, 0)
    assert float(better.flatten(1).std(1).min()) > 0
    zeroed = nn.Sequential(
        nn.Conv2d(3, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)
    )
    with torch.no_grad():
        zeroed[0].weight.zero_()  # a constant 32 x 32 feature map: its Grad-CAM is constant too
    with pytest.warns(GradCamResolutionWarning, match=r"32 x 32 map is constant .* try relu=False"):
        attributions.GradCam().attribute(zeroed, pixels, 0)


def test_pgd_warns_on_an_linf_eps_above_one(resnet, pixels):
    y = torch.zeros(4, dtype=torch.long)
    with pytest.warns(
        UserWarning,
        match=r"eps: an l-inf budget of 8 exceeds the pixel range \[0, 1\] \(did you mean 8/255\?\)",
    ):
        advexp_lib.pgd(resnet, pixels, y, eps=8, steps=1, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        advexp_lib.pgd(resnet, pixels, y, eps=8 / 255, steps=1, progress=False)


def test_labels_as_int_list_or_tensor_and_captums_target_keyword(resnet, pixels):
    y = torch.tensor([2, 2, 2, 2])
    ref = advexp_lib.attribute(resnet, pixels, y, method="saliency")
    for same in (
        advexp_lib.attribute(resnet, pixels, 2, method="saliency"),
        advexp_lib.attribute(resnet, pixels, [2, 2, 2, 2], method="saliency"),
        advexp_lib.attribute(resnet, pixels, target=y, method="saliency"),
    ):
        assert torch.equal(same, ref)
    with pytest.raises(InputError, match="give the classes once"):
        advexp_lib.attribute(resnet, pixels, y, target=y, method="saliency")


def test_the_shortcuts_are_the_library_functions():
    assert advexp_lib.ara is metrics.accuracy_robustness_area
    assert advexp_lib.attribute is attributions.attribute
    assert advexp_lib.explain is attributions.adversarial_explanation
    assert advexp_lib.pgd is pgd
    assert {"ara", "attribute", "explain", "pgd"} <= set(advexp_lib.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        advexp_lib.nope  # noqa: B018


# ---- progress and figures -------------------------------------------------------------------------------


def test_long_loops_show_progress_unless_asked_not_to(resnet, pixels, capsys):
    y = torch.zeros(4, dtype=torch.long)
    calls = {
        "pgd": lambda p: pgd(resnet, pixels, y, eps=0.01, steps=3, progress=p),
        "explanation": lambda p: attributions.adversarial_explanation(
            resnet, pixels, 1, config=replace(AE_PAPER, steps=3), on_miss="flag", progress=p
        ),
        "curve": lambda p: metrics.robust_accuracy_curve(resnet, pixels, y, [0.01], steps=2, progress=p),
    }
    for name, call in calls.items():
        call(True)
        assert "%|" in capsys.readouterr().err, name  # a tqdm bar on stderr
        call(False)
        assert capsys.readouterr().err == "", name


def test_the_explain_panel_is_a_readable_grid(resnet, pixels):
    fig = plotting.adversarial_explanation_panel(
        resnet, pixels[0], 0, config=replace(AE_PAPER, steps=3), title="resnet18"
    )
    images = [ax for ax in fig.axes if ax.get_visible() and ax.images and ax.get_label() != "<colorbar>"]
    titles = [ax.get_title() for ax in images if ax.get_title()]
    columns = {ax.get_subplotspec().colspan.start for ax in images}
    assert len(columns) <= 6 and len(titles) == 1 + 10  # the input, then every class once
    assert len(set(titles)) == len(titles) and all("RMSE" in t for t in titles[1:])
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)
    assert fig._suptitle.get_text().startswith("resnet18: adversarial explanations, rho 0.1")
    plotting.plt.close(fig)


def test_the_views_figure_says_prediction_and_target_probability_apart(resnet, pixels):
    views = widgets.explorer_views(resnet, pixels[:1], 4, config=replace(AE_PAPER, steps=3))
    fig = plotting.plot_views(views, title="resnet18")
    first, ae = fig.axes[0].get_title(), fig.axes[2].get_title()
    assert f"prediction {views['pred']} (p {views['p_pred']:.2f})" in first
    assert f"p(target 4) {views['p_target']:.2f}" in first
    assert f"RMSE {views['rmse']:.3f} of rho 0.1" in ae and fig._suptitle.get_text() == "resnet18"
    plotting.plt.close(fig)


def test_the_explorer_prints_nothing_outside_a_notebook(resnet, pixels, capsys):
    box = widgets.explorer({"resnet": resnet}, pixels, torch.zeros(4, dtype=torch.long))
    assert box.explorer.updates == 1 and capsys.readouterr().out == ""


# ---- the command line -------------------------------------------------------------------------------------


def test_cli_scores_a_users_network_from_a_plain_state_dict(usernets, tmp_path, capsys):
    out = tmp_path / "ara.json"
    args = ["ara", "--model", "usernets:build", "--weights", usernets / "plain.pt", "-q", "--json", out]
    assert main([*map(str, args), "--n-images", "6", "--steps", "8", "--eps", "3"]) == 0
    printed, err = capsys.readouterr()
    assert err == ""  # -q: no progress, no notes
    res = json.loads(out.read_text())
    assert res["source"] == "usernets:build" and res["weights"] == str(usernets / "plain.pt")
    assert res["version"] == advexp_lib.__version__ and res["n_images"] == 6
    assert json.loads(printed)["ara"] == res["ara"] and res["ara_95"]["n"] == 6


def test_cli_reads_a_state_dict_under_a_named_key(usernets, tmp_path, capsys):
    args = ["explain", "--model", "usernets:build", "--weights", usernets / "keyed.pt", "--weights-key"]
    js = tmp_path / "e.json"
    assert (
        main([*map(str, args), "state_dict", "--steps", "3", "--target", "2", "--json", str(js), "-q"]) == 0
    )
    png = Path(capsys.readouterr().out.strip())
    rec = json.loads(js.read_text())
    assert (
        rec["png"] == str(png) and png.read_bytes()[:4] == b"\x89PNG" and png.parent == Path("data/results")
    )
    assert rec["version"] == advexp_lib.__version__ and rec["target"] == 2
    assert {"prediction", "p_prediction", "reached", "p_target", "p_target_ae", "rmse"} <= set(rec)
    png.unlink()


def test_cli_explains_a_normalized_resnet_on_an_image_folder(usernets, tmp_path, capsys):
    folder = tmp_path / "images"
    g = torch.Generator().manual_seed(0)
    for c in ("cat", "dog", "frog"):
        (folder / c).mkdir(parents=True)
        to_pil_image(torch.rand(3, 32, 32, generator=g)).save(folder / c / "0.png")
    js, png = tmp_path / "r.json", tmp_path / "r.png"
    args = [
        "explain",
        "--model",
        "usernets:resnet",
        "--normalize",
        "0.5,0.25",
        "--dataset",
        f"imagefolder:{folder}",
    ]
    assert main([*args, "--index", "1", "--steps", "3", "--json", str(js), "--png", str(png), "-q"]) == 0
    rec = json.loads(js.read_text())
    import usernets

    net = models.with_normalization(usernets.resnet(), [0.5] * 3, [0.25] * 3).eval()  # what 0.5,0.25 means
    x = advexp_lib.data.load_dataset(f"imagefolder:{folder}", "test")[1][0][None]
    with torch.no_grad():
        p = net(x).softmax(1)[0]
    assert rec["prediction"] == int(p.argmax()) and rec["p_prediction"] == pytest.approx(float(p.max()))
    assert rec["targets"] == "every class" and png.read_bytes()[:4] == b"\x89PNG"
    assert main([*args, "--index", "1", "--steps", "3", "--out", str(tmp_path), "-q"]) == 0
    assert Path(capsys.readouterr().out.split()[-1]).name == "usernets-resnet-imagefolder-images-1.png"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nosuchmodule:build"], "error: model: cannot import 'nosuchmodule'"),
        (["--model", "usernets"], "error: model: expected MODULE:CALLABLE"),
        (["--model", "usernets:missing"], "error: model: 'usernets' has no callable 'missing'"),
        (["--model", "usernets:not_a_network"], "error: model: usernets:not_a_network() returned a int"),
        (
            ["--model", "usernets:wide", "--weights", "{d}/plain.pt"],
            "error: checkpoint: {d}/plain.pt does not",
        ),
        (["--model", "usernets:build", "--weights", "{d}/keyed.pt", "--weights-key", "model"], "has no key"),
        (
            ["--model", "usernets:build", "--weights", "{d}/pickled.pt"],
            "error: weights: {d}/pickled.pt refused",
        ),
        (["--model", "usernets:build", "--weights", "{d}/none.pt"], "error: weights: no file at"),
        (["--model", "usernets:build", "--normalize", "0.1,0.2,0.3"], "error: normalize: expected MEAN,STD"),
        (
            ["--model", "usernets:build", "--device", "cuda"],
            "error: device: 'cuda' asked for, but this machine",
        ),
        (["{d}/plain.pt"], "error: checkpoint:"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(usernets, args, message):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    proc = _cli(usernets, "ara", *(a.format(d=usernets) for a in args), "--n-images", "2", "--steps", "2")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert (
        lines[0].startswith(message.format(d=usernets).split(" {")[0])
        or message.format(d=usernets) in lines[0]
    )


def test_cli_version():
    proc = subprocess.run([sys.executable, "-m", "advexp_lib", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"advexp_lib {advexp_lib.__version__}"
