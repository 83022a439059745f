import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import advexp_lib
from advexp_lib.checks import InputError
from advexp_lib.cli import main
from advexp_lib.data import load_image
from advexp_lib.metrics import ara_from_distances


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "std.pt"
    assert (
        main(["train", "--dataset", "mnist5k", "--epochs", "1", "--checkpoint", str(path), "--no-progress"])
        == 0
    )
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
                "--json",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    res = json.loads(out.read_text())
    assert res["kind"] == "btr" and res["n_images"] == 20 and res["ara"] > 0 and 0 < res["accuracy"] <= 1


# a quick ARA on 8 mnist5k test images; --eps 2 is ample for a 1-epoch network at these distances
QUICK_ARA = ["--dataset", "mnist5k", "--n-images", "8", "--steps", "30", "--eps", "2"]
SETTINGS = (
    "version source weights normalize dataset images kind n_images seed steps eps momentum overshoot clip "
    "grad_floor batch_size never_met attacks world_size".split()
)
RESULTS = "num_classes accuracy ara ara_95 median_distance n_unreliable n_retried".split()
PER_IMAGE = "distances unreliable retried".split()


def _inf(d):
    """A JSON distance: "inf" is an attack's failure, an infinite distance (advexp_lib.results.to_json)."""
    return math.inf if d == "inf" else d


def test_ara_json_holds_settings_and_per_image_results(checkpoint, tmp_path, capsys):
    out = tmp_path / "new" / "folder" / "ara.json"  # parent folders are created
    assert main(["ara", str(checkpoint), *QUICK_ARA, "--batch-size", "3", "--json", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    res = json.loads(out.read_text())
    assert list(res) == SETTINGS + RESULTS + PER_IMAGE
    assert printed == {k: v for k, v in res.items() if k not in PER_IMAGE}  # stdout: the summary only
    assert res["n_images"] == 8 and res["batch_size"] == 3 and res["attacks"] is None
    assert res["world_size"] == 1 and res["never_met"] == "raise" and res["source"] == str(checkpoint)
    assert res["images"].startswith("mnist5k's test split")
    assert res["version"] == advexp_lib.__version__ and res["weights"] is None and res["normalize"] is None
    lo, hi = res["ara_95"]["lo"], res["ara_95"]["hi"]
    assert lo <= res["ara"] <= hi and res["ara_95"]["n"] == 8
    assert [len(res[k]) for k in PER_IMAGE] == [8, 8, 8]
    assert all(isinstance(f, bool) for k in ("unreliable", "retried") for f in res[k])
    assert res["n_unreliable"] == sum(res["unreliable"]) and res["n_retried"] == 0
    distances = torch.tensor(res["distances"], dtype=torch.float64)
    assert (distances > 0).sum() >= 6  # real searches: most images are classified right and then broken
    assert ara_from_distances(distances, res["num_classes"]) == pytest.approx(res["ara"], rel=1e-12)
    assert res["ara"] > 0 and res["median_distance"] == pytest.approx(float(distances.median()))
    assert not list(out.parent.glob("*.tmp"))  # the atomic write left no temp file


def test_ara_ensemble_json(checkpoint, tmp_path, capsys):
    out = tmp_path / "ens.json"
    assert main(["ara", str(checkpoint), *QUICK_ARA, "--ensemble", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    attacks = ["rmse", "ddn", "fmn"]
    assert res["attacks"] == attacks and res["never_met"] == "retry"
    assert list(res["per_attack"]) == list(res["wins"]) == list(res["failures"]) == attacks
    per = {a: [_inf(d) for d in res["per_attack_distances"][a]] for a in attacks}
    assert res["distances"] == [min(ds) for ds in zip(*per.values())]  # each image: the smallest distance
    assert ara_from_distances(
        torch.tensor(res["distances"], dtype=torch.float64), res["num_classes"]
    ) == pytest.approx(res["ara"], rel=1e-12)
    for a in attacks:  # a failure on some image (inf distance): no ARA of its own
        assert (res["per_attack"][a] == "inf") == (res["failures"][a] > 0) == (math.inf in per[a])
        assert res["ara"] <= _inf(res["per_attack"][a]) + 1e-12, a
    assert sum(v != "inf" for v in res["per_attack"].values()) >= 2  # compared with real areas
    assert sum(res["wins"].values()) >= 1 - 1e-9 and len(res["unreliable"]) == 8


def test_ara_refuses_bad_ensemble_options(checkpoint, monkeypatch, capsys):
    """Refused before any search: a bad attack name, --attacks alone, --ensemble under torchrun."""
    ara = ["ara", str(checkpoint), *QUICK_ARA]
    for extra, message in (
        (["--ensemble", "--attacks", "rmse,cw"], "error: attacks: unknown value 'cw'; valid: rmse, ddn"),
        (["--attacks", "ddn"], "error: attacks: --attacks is used only with --ensemble"),
    ):
        assert main([*ara, *extra]) == 2
        assert capsys.readouterr().err.startswith(message)
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it; refused before joining a process group
    assert main([*ara, "--ensemble"]) == 2
    assert capsys.readouterr().err.startswith("error: ensemble: --ensemble runs in one process only")


@pytest.mark.slow
def test_ara_under_torchrun_equals_one_process(checkpoint, tmp_path):
    """2 processes (gloo, CPU), each searching a contiguous half, gather what one process finds.

    Both runs search batches of 4 images (one process: 2 batches; torchrun: each rank's share):
    the search's float32 rounding depends a little on the batch, and near a step where the
    criterion flips that can move a distance by ~1e-4.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ara = ["-m", "advexp_lib", "ara", str(checkpoint), *QUICK_ARA, "--batch-size", "4"]
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    two = subprocess.run(
        [*launch, *ara, "--json", str(tmp_path / "two.json")], env=env, capture_output=True, text=True
    )
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count('"ara"') == 1  # rank 0 alone reports
    one = subprocess.run(
        [sys.executable, *ara, "--json", str(tmp_path / "one.json")], env=env, capture_output=True, text=True
    )
    assert one.returncode == 0, one.stderr[-2000:]
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("two", "one"))
    assert a["world_size"] == 2 and b["world_size"] == 1
    d2, d1 = torch.tensor(a["distances"]), torch.tensor(b["distances"])
    print(
        f"max |d_2proc - d_1proc| = {(d2 - d1).abs().max():.3g}, |ARA diff| = {abs(a['ara'] - b['ara']):.3g}"
    )
    torch.testing.assert_close(d2, d1, rtol=0, atol=1e-6)
    assert a["ara"] == pytest.approx(b["ara"], abs=1e-6) and a["accuracy"] == b["accuracy"]
    assert a["unreliable"] == b["unreliable"] and a["retried"] == b["retried"]
    assert (d1 > 0).sum() >= 6 and len(set(b["distances"])) >= 6  # real, distinct searches: order matters


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


def test_explain_opens_a_published_woods_file(tmp_path, capsys):
    """The published ResNet-44s are full pickles the advexp loader refuses: the safe importer reads them."""
    folder = Path(
        os.environ.get("ADVEXP_WOODS_DIR", Path(__file__).resolve().parents[2] / "shared" / "woods_prebuilt")
    )
    if not (folder / "resnet44-robust.pt").is_file():
        missing = f"the published files are not in {folder} (set ADVEXP_WOODS_DIR)"
        pytest.fail(missing) if os.environ.get("CI") == "true" else pytest.skip(missing)
    image = folder / "example_output" / "prebuilt_orig_0.png"
    args = ["explain", str(folder / "resnet44-robust.pt"), "--dataset", "cifar10", "--image", str(image)]
    assert main([*args, "--steps", "3", "--out", str(tmp_path)]) == 0
    assert Path(capsys.readouterr().out.strip()).read_bytes()[:4] == b"\x89PNG"
