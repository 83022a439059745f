"""Untrusted checkpoints: code-carrying, truncated, corrupt and foreign files, through every loading path.

A checkpoint whose pickle would run code on load (``__reduce__`` -> os.system /
exec, both creating a marker file) must be refused with a CheckpointError by
training.load_checkpoint, training.train's resume, zoo.model_from_checkpoint,
zoo.get_model's cache, the CLI ``ara`` / ``explain`` and the Woods importer,
and the marker must never appear. Damaged and foreign files give a clear
CheckpointError and leave the caller's model untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from advexp_lib import CheckpointError, zoo
from advexp_lib.checkpoints import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from advexp_lib.cli import main
from advexp_lib.data import TensorImageDataset
from advexp_lib.models import build_model
from advexp_lib.training import TrainConfig, train
from advexp_lib.woods_import import import_woods_checkpoint

MNIST_KW = dict(
    arch="small_cnn", num_classes=10, in_channels=1, activation="relu", mean=[0.5], std=[0.25], image_size=28
)


class SystemPayload:
    """Pickles as a call of os.system (a shell command creating the marker)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class ExecPayload:
    """Pickles as a call of builtins.exec (Python code creating the marker)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def _state(num_classes=10):
    torch.manual_seed(0)
    kw = {**MNIST_KW, "num_classes": num_classes}
    return {
        "format": CHECKPOINT_FORMAT,
        "model": build_model(**kw).state_dict(),
        "epoch": 1,
        "history": [],
        "meta": {"model_kwargs": kw},
    }


def _evil_file(path, payload, legacy):
    """An advexp-looking checkpoint (right format tag, real weights) with a code-running object inside."""
    state = {**_state(), "meta": {"model_kwargs": MNIST_KW, "note": payload}}
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return path


PAYLOADS = [("os.system", SystemPayload), ("exec", ExecPayload)]
FORMATS = [("zip", False), ("legacy", True)]


@pytest.fixture(params=[(p, f) for p in PAYLOADS for f in FORMATS], ids=lambda v: f"{v[0][0]}-{v[1][0]}")
def evil(request, tmp_path):
    (_, payload), (_, legacy) = request.param
    marker = tmp_path / "marker"
    path = _evil_file(tmp_path / "evil.pt", payload(marker), legacy)
    # the payload is real: an unsafe load would run it (checked once here, in a throwaway process)
    yield path, marker
    assert not marker.exists(), "a checkpoint executed code on load"


def test_the_payload_is_live_under_an_unsafe_load(tmp_path):
    """Sanity: the crafted file really runs code under an unsafe load, so the refusals below mean a thing."""
    marker = tmp_path / "marker"
    path = _evil_file(tmp_path / "evil.pt", SystemPayload(marker), legacy=False)
    code = f"import torch; torch.load({str(path)!r}, weights_only=False)"
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=120,
        capture_output=True,
    )
    assert marker.exists()


def test_load_checkpoint_refuses_code(evil):
    path, _ = evil
    with pytest.raises(CheckpointError, match=r"refused: it is not a plain weights file"):
        load_checkpoint(path)


def test_model_from_checkpoint_refuses_code(evil):
    path, _ = evil
    with pytest.raises(CheckpointError, match=r"refused"):
        zoo.model_from_checkpoint(path)


def test_train_resume_refuses_code_and_keeps_the_weights(evil):
    path, _ = evil
    torch.manual_seed(1)
    model = build_model(**MNIST_KW)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(8, 1, 28, 28)
    with pytest.raises(CheckpointError, match=r"refused"):
        train(
            model,
            TensorImageDataset(x, torch.arange(8) % 10),
            TrainConfig(num_epochs=1),
            checkpoint=path,
            progress=False,
        )
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_woods_import_refuses_code(evil):
    path, _ = evil
    with pytest.raises(CheckpointError, match=r"refused"):
        import_woods_checkpoint(path)


@pytest.mark.parametrize("command", ["ara", "explain"])
def test_cli_refuses_code(evil, command, tmp_path, capsys):
    path, _ = evil
    argv = [command, str(path), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: checkpoint:") and "refused" in err and "Traceback" not in err


def test_get_model_cache_refuses_code(isolated_data, tmp_path):
    """A planted file under the exact cache name get_model looks up: refused, not executed, not served."""
    marker = tmp_path / "marker"
    r = zoo.recipe("mnist5k", "standard", num_epochs=1)
    cached = zoo.zoo_dir() / f"{r.dataset}-{r.name}-{zoo.config_hash(r)}.pt"
    cached.parent.mkdir(parents=True)
    _evil_file(cached, SystemPayload(marker), legacy=False)
    with pytest.raises(CheckpointError, match=r"refused"):
        zoo.get_model("mnist5k", "standard", num_epochs=1, progress=False)
    with pytest.raises(CheckpointError, match=r"refused"):
        zoo.get_history("mnist5k", "standard", num_epochs=1)
    assert not marker.exists()


def test_cli_subprocess_refuses_code_without_traceback(tmp_path):
    marker = tmp_path / "marker"
    path = _evil_file(tmp_path / "evil.pt", ExecPayload(marker), legacy=True)
    proc = subprocess.run(
        [sys.executable, "-m", "advexp_lib", "ara", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=120,
    )
    assert proc.returncode == 2 and "refused" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists()


# ------------------------------------------------------------------ truncated, corrupt and foreign files


@pytest.fixture(scope="module")
def real_file(tmp_path_factory):
    return save_checkpoint(
        tmp_path_factory.mktemp("real") / "real.pt", {k: v for k, v in _state().items() if k != "format"}
    )


def _cuts(size):
    return [0, 1, 22, 64, 512, 2048, size // 4, size // 2, size - 200, size - 23, size - 1]


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_truncated_files_give_checkpoint_error_everywhere(real_file, tmp_path, legacy):
    src = real_file
    if legacy:  # the older pickle layout (that of the published Woods files) is read by the same paths
        src = tmp_path / "legacy.pt"
        torch.save(load_checkpoint(real_file), src, _use_new_zipfile_serialization=False)
    data = src.read_bytes()
    for cut in _cuts(len(data)):
        path = tmp_path / f"cut{cut}.pt"
        path.write_bytes(data[:cut])
        for load in (load_checkpoint, zoo.model_from_checkpoint, import_woods_checkpoint):
            with pytest.raises(CheckpointError, match=r"truncated or corrupt|refused|not a Woods|is corrupt"):
                load(path)


def test_flipped_bytes_anywhere_are_detected(real_file, tmp_path):
    """torch.load ignores the zip CRC-32s; load_checkpoint checks them, so bit rot in tensors is caught."""
    data = real_file.read_bytes()
    g = torch.Generator().manual_seed(0)
    offsets = sorted(set(torch.randint(0, len(data), (12,), generator=g).tolist()) | {100, len(data) // 2})
    caught = 0
    for off in offsets:
        bad = bytearray(data)
        bad[off] ^= 0x5A
        path = tmp_path / f"flip{off}.pt"
        path.write_bytes(bytes(bad))
        with pytest.raises(CheckpointError, match=r"corrupt|refused"):
            zoo.model_from_checkpoint(path)
        caught += 1
    assert caught == len(offsets)


def test_garbage_and_empty_files(tmp_path):
    for name, content in [
        ("empty.pt", b""),
        ("text.pt", b"hello, I am a checkpoint"),
        ("zipheader.pt", b"PK\x03\x04" + b"\0" * 100),
        ("random.pt", os.urandom(4096)),
    ]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError):
            load_checkpoint(tmp_path / name)
        with pytest.raises(CheckpointError):
            import_woods_checkpoint(tmp_path / name)


def test_foreign_pickles_are_not_advexp_checkpoints(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "dict.pt")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    torch.save(build_model(**MNIST_KW).state_dict(), tmp_path / "bare_state_dict.pt")
    for name in ("dict.pt", "list.pt", "bare_state_dict.pt"):
        with pytest.raises(CheckpointError, match=r"not an advexp checkpoint"):
            load_checkpoint(tmp_path / name)
        with pytest.raises(CheckpointError, match=r"not a Woods et al. checkpoint"):
            import_woods_checkpoint(tmp_path / name)


@pytest.mark.parametrize(
    ("what", "kw"),
    [
        ("classes", {"num_classes": 3}),
        ("arch", {"arch": "cam_cnn"}),
        ("channels", {"in_channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3}),
    ],
)
def test_other_architecture_or_classes_is_refused_and_nothing_is_half_loaded(tmp_path, what, kw):
    """A checkpoint of another model: CheckpointError, and the model given to train() keeps every weight.

    (torch's load_state_dict copies the tensors that do fit before raising on the rest; the library checks
    names and shapes first, so a failed load changes nothing.)
    """
    torch.manual_seed(0)
    other = {**MNIST_KW, **kw}
    cfg = TrainConfig(num_epochs=2, batch_size=4)
    x = torch.rand(8, other["in_channels"], 28, 28)
    path = tmp_path / "other.pt"
    train(
        build_model(**other),
        TensorImageDataset(x, torch.arange(8) % other["num_classes"]),
        cfg,
        checkpoint=path,
        progress=False,
    )
    torch.manual_seed(5)
    model = build_model(**MNIST_KW)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = TensorImageDataset(torch.rand(8, 1, 28, 28), torch.arange(8) % 10)
    with pytest.raises(CheckpointError, match=r"does not fit this model"):
        train(model, data, cfg, checkpoint=path, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "half-loaded"
    # a checkpoint whose description and weights disagree (tampered meta) is refused by the zoo loader too
    ckpt = load_checkpoint(path)
    ckpt["meta"] = {"model_kwargs": MNIST_KW}
    save_checkpoint(tmp_path / "mismatch.pt", {k: v for k, v in ckpt.items() if k != "format"})
    with pytest.raises(CheckpointError, match=r"does not fit this model"):
        zoo.model_from_checkpoint(tmp_path / "mismatch.pt")


def test_advexp_checkpoint_with_bad_model_description(tmp_path):
    state = {k: v for k, v in _state().items() if k != "format"}
    save_checkpoint(tmp_path / "a.pt", {**state, "meta": {"model_kwargs": {**MNIST_KW, "arch": "vgg"}}})
    with pytest.raises(CheckpointError, match=r"describes a model this library cannot build: arch: unknown"):
        zoo.model_from_checkpoint(tmp_path / "a.pt")
    save_checkpoint(tmp_path / "b.pt", {**state, "meta": {"model_kwargs": {**MNIST_KW, "colour": 1}}})
    with pytest.raises(CheckpointError, match=r"cannot build"):
        zoo.model_from_checkpoint(tmp_path / "b.pt")
    save_checkpoint(tmp_path / "c.pt", {**state, "meta": "not a dict"})
    with pytest.raises(CheckpointError, match=r"no model description"):
        zoo.model_from_checkpoint(tmp_path / "c.pt")
