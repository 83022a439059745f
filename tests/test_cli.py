import json
import subprocess
import sys

import pytest

from advexp_lib.cli import main


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
