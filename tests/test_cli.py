import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from advexp_lib.checks import InputError
from advexp_lib.cli import main
from advexp_lib.data import load_image


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "std.pt"
    assert main(["train", "--dataset", "mnist5k", "--epochs", "1", "--out", str(path), "--no-progress"]) == 0
    return path


def test_train_writes_a_loadable_checkpoint(checkpoint):
    from advexp_lib.zoo import model_from_checkpoint

    model = model_from_checkpoint(checkpoint)
    assert not model.training


def test_ara_command(checkpoint, tmp_path, capsys):
    out = tmp_path / "ara.json"
    assert (
        main(
            [
                "ara",
                str(checkpoint),
                "--n-images",
                "20",
                "--steps",
                "30",
                "--eps",
                "2",
                "--kind",
                "btr",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    res = json.loads(out.read_text())
    assert res["kind"] == "btr" and res["n_images"] == 20 and res["ara"] > 0 and 0 < res["accuracy"] <= 1


def test_explain_command_writes_png(checkpoint, tmp_path):
    assert main(["explain", str(checkpoint), "--index", "3", "--steps", "5", "--out", str(tmp_path)]) == 0
    png = next(tmp_path.glob("*.png"))
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_bad_input_prints_message_without_traceback(tmp_path):
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"junk")
    proc = subprocess.run(
        [sys.executable, "-m", "advexp_lib", "ara", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: checkpoint:") and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "advexp_lib", "train", "--dataset", "nope", "--out", str(tmp_path / "x.pt")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "valid: mnist5k" in proc.stderr and "Traceback" not in proc.stderr


def test_help_shows_choices_and_costly_defaults(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    top = capsys.readouterr().out
    assert exit_.value.code == 0 and "``" not in top and ":func:" not in top  # plain text, not RST
    assert "1,000 images x 450 steps" in top and "--image" in top
    with pytest.raises(SystemExit):
        main(["ara", "--help"])
    ara = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    for shown in (
        "(default: 1000)",
        "(default: 450)",
        "(default: 20.0)",
        "{attack,btr}",
        "imagefolder:<path>",
    ):
        assert shown in ara, shown
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    train = " ".join(capsys.readouterr().out.split())
    assert "one of standard, adv, robust, all," in train and "(default: standard)" in train


def _png(path, channels, h, w):
    from torchvision.transforms.functional import to_pil_image

    torch.manual_seed(0)
    to_pil_image(torch.rand(channels, h, w)).save(path)
    return path


def test_load_image_converts_and_resizes(tmp_path):
    x, original = load_image(_png(tmp_path / "rgb.png", 3, 50, 40), channels=1, size=28)
    assert x.shape == (1, 1, 28, 28) and original == (50, 40)
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    x, _ = load_image(_png(tmp_path / "gray.png", 1, 7, 9), channels=3, size=32)
    assert x.shape == (1, 3, 32, 32) and torch.equal(x[:, 0], x[:, 2])  # gray to RGB: equal channels
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="image: cannot read"):
        load_image(tmp_path / "junk.png", channels=1, size=28)
    with pytest.raises(InputError, match="image: .* is not a file"):
        load_image(tmp_path / "missing.png", channels=1, size=28)


def test_explain_a_users_image(checkpoint, tmp_path, capsys):
    image = _png(tmp_path / "digit.png", 3, 56, 48)
    args = ["explain", str(checkpoint), "--image", str(image), "--steps", "4", "--out", str(tmp_path)]
    assert main([*args, "--target", "3"]) == 0
    out, err = capsys.readouterr()
    assert "56x48 image converted to 1 channel(s) and resized to 28x28" in err
    png = Path(out.strip())
    assert png.name == "std-mnist5k-digit.png" and png.read_bytes()[:4] == b"\x89PNG"
    assert main(args) == 0  # no --target: the runner-up of the prediction


def test_explain_refuses_a_bad_image_or_target(checkpoint, tmp_path):
    (tmp_path / "junk.png").write_bytes(b"junk")
    for extra, message in (
        (["--image", str(tmp_path / "junk.png")], "error: image: cannot read"),
        (["--image", str(_png(tmp_path / "ok.png", 1, 28, 28)), "--target", "10"], "error: target:"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "advexp_lib", "explain", str(checkpoint), *extra, "--out", str(tmp_path)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(message), proc.stderr
        assert "Traceback" not in proc.stderr
