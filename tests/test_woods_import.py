"""The published Woods et al. ResNet-44 files load into our PreActResNet, safely."""

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from advexp_lib import CheckpointError
from advexp_lib.models import HalfHuberReLU, PreActResNet
from advexp_lib.woods_import import WOODS_FILES, import_woods_checkpoint, woods_to_advexp_name

# CI clones the repository with shared/ beside it; the files are never committed (MIT, third party)
PREBUILT = Path(__file__).resolve().parents[2] / "shared" / "woods_prebuilt"


def _raw(path):
    """The file's tensors and options, read independently of the importer (same safe mechanism)."""

    class Stub:
        pass

    with torch.serialization.safe_globals([(Stub, "__main__.cifar10_preprocess")]):
        state = torch.load(path, weights_only=True, map_location="cpu")
    return state["model_params"], state["training_options"]


def _reference_forward(p, opts, x):
    """The Woods network written out from its own tensors with torch.nn.functional (eval mode)."""

    def bn(prefix, h):
        return F.batch_norm(
            h,
            p[prefix + "running_mean"],
            p[prefix + "running_var"],
            p[prefix + "weight"],
            p[prefix + "bias"],
            training=False,
            eps=1e-5,
        )

    def act(prefix, h):
        if not opts["robust_additions"]:
            return F.relu(h)
        d = p[prefix + "d"]  # half-Huber: 0 | h^2 / (2d) | h - d/2
        return torch.where(h <= 0, torch.zeros_like(h), torch.where(h <= d, h * h / (2 * d), h - d / 2))

    off = p["input_offset"]
    h = (x - off[0].view(1, -1, 1, 1)) / off[1].view(1, -1, 1, 1)
    h = F.conv2d(h, p["pipe.0.weight"], padding=1)
    for s in (1, 2, 3):
        for b in range(opts["arch"][2][s - 1]):
            k = f"pipe.{s}.{b}."
            stride = 2 if (s > 1 and b == 0) else 1
            pre = act(k + "pre.1.", bn(k + "pre.0.", h))
            main = F.conv2d(pre, p[k + "main.0.weight"], stride=stride, padding=1)
            main = act(k + "main.2.", bn(k + "main.1.", main))
            main = F.conv2d(main, p[k + "main.3.weight"], padding=1)
            short = (
                F.conv2d(pre, p[k + "shortcut.weight"], stride=stride, padding=1)
                if k + "shortcut.weight" in p
                else h
            )
            h = main + short
    h = act("pipe.5.", bn("pipe.4.", h))
    h = F.avg_pool2d(h, h.shape[-1])  # AvgPool2d(8) on 32 x 32 inputs
    return F.conv2d(h, p["pipe.7.weight"], p["pipe.7.bias"])[:, :, 0, 0]


@pytest.mark.parametrize("name", WOODS_FILES)
def test_published_file_matches_reference_forward(name):
    path = PREBUILT / name
    if not path.is_file():
        pytest.skip(
            f"published checkpoint {path} absent (download it from "
            f"github.com/wwoods/adversarial-explanations-cifar, folder prebuilt/)"
        )
    model = import_woods_checkpoint(path)
    params, opts = _raw(path)
    assert isinstance(model, PreActResNet) and not model.training
    hh = [m for m in model.modules() if isinstance(m, HalfHuberReLU)]
    assert len(hh) == (43 if opts["robust_additions"] else 0)
    assert all(m.delta.item() == 0.5 for m in hh)
    x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, ref = model(x), _reference_forward(params, opts, x)
    diff = (ours - ref).abs().max().item()
    print(f"{name}: max |logits ours - reference| = {diff:.3g} (logit scale {ref.abs().max().item():.3g})")
    assert diff < 1e-4
    assert ref.std().item() > 0.1  # the comparison is not between two constant outputs


def test_name_map_is_explicit():
    assert woods_to_advexp_name("pipe.0.weight") == "stem.weight"
    assert woods_to_advexp_name("pipe.2.0.shortcut.weight") == "stages.1.0.shortcut.weight"
    assert woods_to_advexp_name("pipe.1.3.main.2.d") == "stages.0.3.main.2.delta"
    assert (
        woods_to_advexp_name("pipe.3.6.pre.0.num_batches_tracked") == "stages.2.6.pre.0.num_batches_tracked"
    )
    assert woods_to_advexp_name("pipe.4.running_var") == "head.0.running_var"
    assert woods_to_advexp_name("pipe.5.d") == "head.1.delta"
    assert woods_to_advexp_name("pipe.7.bias") == "classifier.bias"
    assert (
        woods_to_advexp_name("pipe.6.weight") is None
        and woods_to_advexp_name("pipe.4.0.pre.0.weight") is None
    )


# --- a small checkpoint in the same legacy format, written by the test itself ---------------------


def _to_woods(model: PreActResNet) -> dict:
    """Our model's state dict under Woods' names (the inverse of the importer's map)."""
    sd = model.state_dict()
    out = {"input_offset": torch.stack([sd["normalize.mean"].flatten(), sd["normalize.std"].flatten()])}
    inverse = {}
    for s in (1, 2, 3):
        for b in range(len(model.stages[0])):
            for part in ("pre.0", "pre.1", "main.0", "main.1", "main.2", "main.3", "shortcut"):
                for leaf in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked", "d"):
                    theirs = f"pipe.{s}.{b}.{part}.{leaf}"
                    if woods_to_advexp_name(theirs):
                        inverse[woods_to_advexp_name(theirs)] = theirs
    for leaf in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        inverse[f"head.0.{leaf}"] = f"pipe.4.{leaf}"
    inverse.update(
        {
            "stem.weight": "pipe.0.weight",
            "head.1.delta": "pipe.5.d",
            "classifier.weight": "pipe.7.weight",
            "classifier.bias": "pipe.7.bias",
        }
    )
    for k, v in sd.items():
        if not k.startswith("normalize."):
            out[inverse[k]] = v.clone()
    return out


def _cifar10_preprocess(marker):
    """What the file's pickle names; creates ``marker`` if anything ever calls it."""
    Path(marker).write_text("code ran")


class _CallsPreprocess:
    """Pickles as a *call* of __main__.cifar10_preprocess(marker): what a malicious file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_cifar10_preprocess, (str(self.marker),))


@pytest.fixture
def main_function(monkeypatch):
    """Make the pickler write the global as ``__main__.cifar10_preprocess``, as the reference script did."""
    monkeypatch.setattr(_cifar10_preprocess, "__module__", "__main__")
    monkeypatch.setattr(_cifar10_preprocess, "__qualname__", "cifar10_preprocess")
    monkeypatch.setattr(sys.modules["__main__"], "cifar10_preprocess", _cifar10_preprocess, raising=False)
    return _cifar10_preprocess


def _legacy_save(obj, path):
    with open(path, "wb") as f:
        torch.save(obj, f, _use_new_zipfile_serialization=False)
    return path


def _small_woods(robust: bool):
    torch.manual_seed(3)
    model = PreActResNet(
        8, activation="half_huber" if robust else "relu", mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3)
    )
    for m in model.modules():  # non-trivial BN statistics and residual branches
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=0.2)
    return model.eval()


@pytest.mark.parametrize("robust", [False, True])
def test_legacy_file_with_main_reference_loads_without_running_code(tmp_path, main_function, robust):
    marker = tmp_path / "marker"
    ours = _small_woods(robust)
    opts = {
        "arch": [32, main_function, [1, 1, 1], [16, 32, 64], 10],
        "robust_additions": robust,
        "adversarial_training": False,
        "l2_min": False,
        "input_offset": [[0.4, 0.5, 0.6], [0.2, 0.25, 0.3]],
    }
    path = _legacy_save({"model_params": _to_woods(ours), "training_options": opts}, tmp_path / "small.pt")
    assert b"__main__" in path.read_bytes() and b"cifar10_preprocess" in path.read_bytes()
    unsafe = torch.load(path, weights_only=False)  # what a plain load does: binds __main__'s function
    assert unsafe["training_options"]["arch"][1] is main_function

    model = import_woods_checkpoint(path)
    assert not marker.exists()
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), ours(x), atol=1e-6)
    assert model.woods_training_options["robust_additions"] is robust
    assert "cifar10_preprocess" not in repr(model.woods_training_options)


def test_file_that_calls_the_main_function_is_refused_and_nothing_runs(tmp_path, main_function):
    marker = tmp_path / "marker"
    evil = {
        "model_params": _to_woods(_small_woods(False)),
        "training_options": {
            "arch": [32, main_function, [1, 1, 1], [16, 32, 64], 10],
            "robust_additions": False,
            "payload": _CallsPreprocess(marker),
        },
    }
    path = _legacy_save(evil, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused"):
        import_woods_checkpoint(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the danger is real: an unsafe load runs the code
    assert marker.read_text() == "code ran"


def test_file_naming_other_code_is_refused(tmp_path):
    marker = tmp_path / "marker"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = _legacy_save({"model_params": {}, "training_options": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused"):
        import_woods_checkpoint(path)
    assert not marker.exists()


def test_corrupt_foreign_and_misfit_files_raise_checkpoint_error(tmp_path, main_function):
    (tmp_path / "junk.pt").write_bytes(b"\x80\x02garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        import_woods_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="no file"):
        import_woods_checkpoint(tmp_path / "absent.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a Woods et al. checkpoint"):
        import_woods_checkpoint(tmp_path / "foreign.pt")
    good = {
        "model_params": _to_woods(_small_woods(False)),
        "training_options": {
            "arch": [32, main_function, [1, 1, 1], [16, 32, 64], 10],
            "robust_additions": False,
        },
    }
    data = _legacy_save(good, tmp_path / "good.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        import_woods_checkpoint(tmp_path / "truncated.pt")
    good["training_options"]["robust_additions"] = True  # options say half-Huber, tensors have no d
    with pytest.raises(CheckpointError, match="do not fit"):
        import_woods_checkpoint(_legacy_save(good, tmp_path / "misfit.pt"))
    good["training_options"]["robust_additions"] = False
    good["model_params"]["pipe.9.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="pipe.9.weight"):
        import_woods_checkpoint(_legacy_save(good, tmp_path / "extra.pt"))
