"""Faults during long work: a killed training process, a killed save, a stale cache, a failing notebook.

(a) SIGKILL a real training process mid-epoch (after its first checkpoint),
    resume in a new process: weights and history equal an uninterrupted run.
(b) Checkpoint saves are atomic: a failure or a kill inside torch.save leaves
    the previous checkpoint intact, and no loader ever takes the temp file.
(c) The zoo cache never serves a model trained with another config.
(d) A failing papermill run names the notebook and cell and keeps earlier results.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from advexp_lib import CheckpointError, recipes, zoo
from advexp_lib.checkpoints import load_checkpoint, save_checkpoint
from advexp_lib.data import TensorImageDataset
from advexp_lib.models import build_model
from advexp_lib.training import TrainConfig, train

from train_hooks import StopAt

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# A tiny but complete run: SGD with momentum and a step schedule (optimizer and scheduler state), the Woods
# regularizer with adaptive psi (hook state: the integral I) and a random input transform (RNG per epoch).
TRAIN_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import torch
    from advexp_lib.data import TensorImageDataset
    from advexp_lib.models import build_model
    from advexp_lib.regularizers import AdaptivePsi, WoodsRegularizer
    from advexp_lib.hooks import InputTransform
    from advexp_lib.training import TrainConfig, train

    checkpoint, out, stall_epoch, marker = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    torch.set_num_threads(1)

    class Noisy(InputTransform):
        def start_epoch(self, epoch, num_epochs):
            self.epoch, self.step = epoch, 0

        def __call__(self, model, x, y):
            self.step += 1
            if self.epoch == stall_epoch and self.step == 3:  # mid-epoch: tell the test, wait to be killed
                Path(marker).write_text("mid-epoch")
                time.sleep(600)
            return (x + 0.02 * torch.rand_like(x)).clamp(0, 1)

    g = torch.Generator().manual_seed(0)
    x = torch.rand(96, 1, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0.5).long()
    torch.manual_seed(0)
    model = build_model("small_cnn", num_classes=2, image_size=8, activation="half_huber")
    cfg = TrainConfig(num_epochs=4, batch_size=16, optimizer="sgd", lr=0.05, schedule="step", milestones=(2,))
    term = WoodsRegularizer(psi=AdaptivePsi(target=2.0, k_psi0=0.1))  # CE < target: I and psi grow
    history = train(model, TensorImageDataset(x, y, ("lo", "hi")), cfg, loss_term=term,
                    input_transform=Noisy(),
                    checkpoint=checkpoint, progress=False, meta={"run": "faults"})
    torch.save({"model": model.state_dict(), "history": history, "psi_integral": term.psi.integral}, out)
""")


def _run(script, *args, **kw):
    return subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _wait_for(path, proc, timeout=120):
    t0 = time.monotonic()
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"training process ended early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail("training process never reached the stall point")
        time.sleep(0.05)


def _strip(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    ckpt, marker = tmp_path / "killed.pt", tmp_path / "marker"
    victim = _run(script, ckpt, tmp_path / "never.pt", 1, marker)  # stalls in epoch 2 (index 1), step 3
    reference = _run(script, tmp_path / "ref.pt", tmp_path / "ref_out.pt", -1, tmp_path / "unused")
    _wait_for(marker, victim)
    assert load_checkpoint(ckpt)["epoch"] == 1  # the first checkpoint exists; epoch 2 is half done
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(timeout=60) == -signal.SIGKILL
    assert load_checkpoint(ckpt)["epoch"] == 1 and not (tmp_path / "never.pt").exists()

    resumed = _run(script, ckpt, tmp_path / "resumed_out.pt", -1, tmp_path / "unused")  # a new process
    for proc in (reference, resumed):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    ref = torch.load(tmp_path / "ref_out.pt", weights_only=True)
    res = torch.load(tmp_path / "resumed_out.pt", weights_only=True)
    for k, v in ref["model"].items():
        assert torch.equal(v, res["model"][k]), k
    assert _strip(res["history"]) == _strip(ref["history"])
    assert res["psi_integral"] == ref["psi_integral"]
    assert [row["epoch"] for row in res["history"]] == [1, 2, 3, 4]


# ------------------------------------------------------------------------------------------- (b) atomic saves


def _tiny_run(tmp_path, num_epochs):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 1, 8, 8, generator=g)
    data = TensorImageDataset(x, (x.mean(dim=(1, 2, 3)) > 0.5).long())
    torch.manual_seed(0)
    model = build_model("small_cnn", num_classes=2, image_size=8)
    cfg = TrainConfig(num_epochs=num_epochs, batch_size=16)
    return model, data, cfg


def _leftovers(folder, name):
    return sorted(
        p.name for p in folder.iterdir() if p.name.startswith(name + ".") and p.name.endswith(".tmp")
    )


def test_failure_inside_torch_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, data, cfg = _tiny_run(tmp_path, 1)
    path = tmp_path / "ck.pt"
    train(model, data, cfg, checkpoint=path, progress=False)
    before = path.read_bytes()
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):  # write some real bytes, then the disk "fills up"
        real_save(obj, f, *args, **kwargs)
        f.truncate(len(before) // 3)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        train(
            build_model("small_cnn", num_classes=2, image_size=8),
            data,
            replace(cfg, num_epochs=2),
            checkpoint=tmp_path / "ck2.pt",
            progress=False,
        )
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, {"model": {}, "epoch": 99})
    monkeypatch.undo()
    assert path.read_bytes() == before and load_checkpoint(path)["epoch"] == 1
    assert not (tmp_path / "ck2.pt").exists()
    assert _leftovers(tmp_path, "ck.pt") == [] and _leftovers(tmp_path, "ck2.pt") == []


KILL_SAVE_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import torch
    from advexp_lib.checkpoints import save_checkpoint

    path = sys.argv[1]
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):  # half the bytes reach the temp file, then SIGKILL
        real_save(obj, f, *args, **kwargs)
        f.flush()
        f.truncate(f.tell() // 2)
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    torch.save = dying_save
    save_checkpoint(path, {"model": {"w": torch.ones(1000)}, "epoch": 2, "history": []})
""")


def test_sigkill_inside_torch_save_leaves_the_previous_checkpoint(tmp_path):
    model, data, cfg = _tiny_run(tmp_path, 2)
    path = tmp_path / "ck.pt"
    with pytest.raises(KeyboardInterrupt):
        train(model, data, cfg, input_transform=StopAt(1), checkpoint=path, progress=False)
    before = path.read_bytes()
    script = tmp_path / "kill_save.py"
    script.write_text(KILL_SAVE_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(path)], env=ENV, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before and load_checkpoint(path)["epoch"] == 1
    (tmp,) = _leftovers(
        tmp_path, "ck.pt"
    )  # a killed process cannot clean up: the half-written temp file stays
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / tmp)  # ... and it is not a loadable checkpoint
    # resuming takes the old, complete checkpoint (never the temp file) and finishes the run
    model2, _, _ = _tiny_run(tmp_path, 2)
    history = train(
        model2, data, cfg, input_transform=StopAt(-1), checkpoint=path, resume=True, progress=False
    )
    assert [row["epoch"] for row in history] == [1, 2] and load_checkpoint(path)["epoch"] == 2


# --------------------------------------------------------------------------------------------- (c) zoo cache


@pytest.fixture
def tiny_recipe(monkeypatch, isolated_data):
    """A fast recipe (1 epoch of mnist5k, 8 steps) registered in the zoo; its version is set per test."""
    state = {"version": 1, "trained": 0}

    def make(dataset):
        return zoo.Recipe(
            "tiny_faults",
            dataset,
            "small_cnn",
            train=TrainConfig(num_epochs=1, batch_size=500, lr=2e-3),
            version=state["version"],
        )

    real = zoo.train_recipe

    def counting(*args, **kwargs):
        state["trained"] += 1
        return real(*args, **kwargs)

    monkeypatch.setitem(recipes.RECIPES, "tiny_faults", make)
    monkeypatch.setattr(zoo, "train_recipe", counting)
    return state


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.state_dict().values() if p.is_floating_point()])


def test_zoo_cache_is_keyed_by_everything_including_version(tiny_recipe):
    m1 = zoo.get_model("mnist5k", "tiny_faults", progress=False)
    assert tiny_recipe["trained"] == 1
    zoo.get_model("mnist5k", "tiny_faults", progress=False)
    assert tiny_recipe["trained"] == 1  # served from the cache
    tiny_recipe["version"] = 2  # a hook's numerics changed: same TrainConfig, other version
    zoo.get_model("mnist5k", "tiny_faults", progress=False)
    assert tiny_recipe["trained"] == 2  # not served from the version-1 file
    zoo.get_model("mnist5k", "tiny_faults", progress=False, seed=3)
    assert tiny_recipe["trained"] == 3
    files = sorted(zoo.zoo_dir().glob("mnist5k-tiny_faults-*.pt"))
    assert len(files) == 3
    hashes = {load_checkpoint(f)["meta"]["config_hash"] for f in files}
    assert hashes == {f.stem.rsplit("-", 1)[1] for f in files}  # every file holds what its name says
    tiny_recipe["version"] = 1
    assert torch.equal(_weights(zoo.get_model("mnist5k", "tiny_faults", progress=False)), _weights(m1))
    assert tiny_recipe["trained"] == 3


def test_zoo_never_serves_a_file_of_another_config_under_the_right_name(tiny_recipe):
    """A stale or copied file under the v2 cache name (v1's weights): neither served nor resumed."""
    zoo.get_model("mnist5k", "tiny_faults", progress=False)
    r1 = zoo.recipe("mnist5k", "tiny_faults")
    tiny_recipe["version"] = 2
    r2 = zoo.recipe("mnist5k", "tiny_faults")
    v1_file = zoo.zoo_dir() / f"mnist5k-tiny_faults-{zoo.config_hash(r1)}.pt"
    v2_file = zoo.zoo_dir() / f"mnist5k-tiny_faults-{zoo.config_hash(r2)}.pt"
    v2_file.write_bytes(v1_file.read_bytes())
    with pytest.raises(CheckpointError, match=r"written for another run .*config_hash"):
        zoo.get_model("mnist5k", "tiny_faults", progress=False)
    trained = tiny_recipe["trained"]
    zoo.get_model("mnist5k", "tiny_faults", progress=False, retrain=True)  # the way out: retrain
    assert tiny_recipe["trained"] == trained + 1
    assert load_checkpoint(v2_file)["meta"]["config_hash"] == zoo.config_hash(r2)


# ------------------------------------------------------------------------------------------- (d) notebooks


def _notebook(path, cells):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for i, src in enumerate(cells):
        cell = nbformat.v4.new_code_cell(src)
        if i == 0:
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return path


def test_failing_notebook_is_named_with_its_cell_and_earlier_results_stay(tmp_path, monkeypatch):
    from advexp_book.reproduce import NotebookError, load_records, run_notebooks

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    good = _notebook(
        src / "01_good.ipynb",
        [
            "value = 1",
            "from advexp_book.reproduce import record\nrecord('good', {'value': value})",
        ],
    )
    bad = _notebook(
        src / "02_bad.ipynb",
        [
            "value = 2",
            "x = value + 1",
            "raise ValueError('deliberate failure in the third cell')",
            "print('never reached')",
        ],
    )
    earlier = out / "notebooks" / "02_bad.ipynb"  # a previous successful run's executed copy
    earlier.parent.mkdir(parents=True)
    earlier.write_text('{"earlier": "result"}')
    with pytest.raises(
        NotebookError,
        match=r"notebook 02_bad.ipynb failed in cell (\d+) \(ValueError: deliberate "
        r"failure in the third cell\); partial output: .*02_bad.partial.ipynb",
    ) as info:
        run_notebooks(out, {"value": 5}, notebooks=[good, bad], log=lambda *_: None)
    # "cell N" is the execution count in the partial output (papermill's injected-parameters cell counts too):
    # there, the cell with that count is the failing one
    import re

    import nbformat

    count = int(re.search(r"cell (\d+)", str(info.value)).group(1))
    partial = nbformat.read(str(out / "notebooks" / "02_bad.partial.ipynb"), as_version=4)
    (failing,) = [c for c in partial.cells if c.cell_type == "code" and c.execution_count == count]
    assert "deliberate failure" in failing.source
    assert (out / "notebooks" / "01_good.ipynb").is_file()  # the notebook that finished stays
    assert load_records(out) == {"good": {"value": 5}}  # its recorded figures too (parameter injected)
    assert (
        earlier.read_text() == '{"earlier": "result"}'
    )  # the failing notebook's earlier result is untouched
    assert (out / "notebooks" / "02_bad.partial.ipynb").is_file()


def test_relative_data_folders_name_the_callers_folder_inside_the_kernels(tmp_path, monkeypatch):
    """Kernels run in the notebooks' folder; ADVEXP_WOODS_DIR=../shared/... must still mean the caller's."""
    from advexp_book.reproduce import load_records, run_notebooks

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ADVEXP_WOODS_DIR", "../shared/woods")
    monkeypatch.setenv("ADVEXP_DATA_DIR", "data")
    (tmp_path / "nbs").mkdir()
    nb = _notebook(
        tmp_path / "nbs" / "01_env.ipynb",
        [
            "value = 0",
            "import os\nfrom advexp_book.reproduce import record\n"
            "record('env', {k: os.environ[k] for k in ('ADVEXP_WOODS_DIR', 'ADVEXP_DATA_DIR')})",
        ],
    )
    run_notebooks(tmp_path / "out", notebooks=[nb], log=lambda *_: None)
    assert load_records(tmp_path / "out")["env"] == {
        "ADVEXP_WOODS_DIR": str(tmp_path.parent / "shared" / "woods"),
        "ADVEXP_DATA_DIR": str(tmp_path / "data"),
    }


def test_notebooks_run_two_at_once_with_the_cores_shared_and_the_report_last(tmp_path, monkeypatch):
    from advexp_book.reproduce import RUNS_LAST, load_records, run_notebooks

    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # restored after the test; the runner overrides it
    src = tmp_path / "src"
    src.mkdir()
    made = [
        _notebook(
            src / f"0{i}_part.ipynb",
            [
                "value = 0",
                f"import os\nfrom advexp_book.reproduce import record\n"
                f"record('part{i}', {{'threads': os.environ['OMP_NUM_THREADS']}})",
            ],
        )
        for i in (1, 2, 3)
    ]
    report = _notebook(  # reads the others' records: it must find all of them
        src / RUNS_LAST[0],
        [
            "value = 0",
            "from advexp_book.reproduce import load_records, record\n"
            "record('report', {'seen': sorted(load_records())})",
        ],
    )
    summary = run_notebooks(tmp_path / "out", notebooks=[report, *made], log=lambda *_: None, jobs=2)
    records = load_records(tmp_path / "out")
    assert all(records[f"part{i}"]["threads"] == "1" for i in (1, 2, 3))  # min(2 // 2 or cores // 2, 2)
    assert records["report"]["seen"] == ["part1", "part2", "part3"]
    assert list(summary["seconds"]) == [RUNS_LAST[0], *[p.name for p in made]] and summary["jobs"] == 2
    assert os.environ["OMP_NUM_THREADS"] == "2"  # the caller's setting is back


def test_with_two_at_once_a_failure_stops_the_queue_and_the_threads_come_back(tmp_path, monkeypatch):
    from advexp_book.reproduce import NotebookError, run_notebooks

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    src = tmp_path / "src"
    src.mkdir()
    # with no earlier run the last chapters start first: the failing one, then a slow one, then the queue
    bad = _notebook(src / "09_bad.ipynb", ["value = 0", "raise ValueError('deliberate')"])
    slow = _notebook(src / "08_slow.ipynb", ["value = 0", "import time\ntime.sleep(3)"])
    queued = [_notebook(src / f"0{i}_queued.ipynb", ["value = 0", "x = 1"]) for i in (1, 2, 3)]
    with pytest.raises(NotebookError, match="09_bad.ipynb failed"):
        run_notebooks(tmp_path / "out", notebooks=[bad, slow, *queued], log=lambda *_: None, jobs=2)
    ran = {p.name for p in (tmp_path / "out" / "notebooks").glob("*.ipynb")}
    assert not any("queued" in name for name in ran)  # the failure cancelled what had not started
    assert os.environ["OMP_NUM_THREADS"] == "2"


def test_two_at_once_start_with_the_longest_of_the_last_run(tmp_path):
    from advexp_book.reproduce import _longest_first

    paths = [Path(f"0{i}_x.ipynb") for i in range(4)]
    assert _longest_first(paths, tmp_path) == paths[::-1]  # no earlier run: reverse reading order
    (tmp_path / "summary.json").write_text(
        '{"seconds": {"01_x.ipynb": 9, "02_x.ipynb": 30, "03_x.ipynb": null}}'
    )
    assert [p.name for p in _longest_first(paths, tmp_path)] == [
        "02_x.ipynb",
        "01_x.ipynb",
        "00_x.ipynb",
        "03_x.ipynb",
    ]
    (tmp_path / "summary.json").write_text('{"seconds": [1, 2]}')  # not one of ours: the default order
    assert _longest_first(paths, tmp_path) == paths[::-1]


def test_records_write_non_finite_floats_as_the_library_does_and_read_them_back(tmp_path, monkeypatch):
    """One JSON encoding of inf and NaN everywhere (advexp_lib.results.to_json), valid JSON on disk."""
    import json
    import math

    from advexp_book.reproduce import load_records, record
    from advexp_lib.stats import Estimate

    monkeypatch.setenv("ADVEXP_RESULTS_DIR", str(tmp_path))
    record("k", {"est": Estimate(0.5, math.nan, math.nan, 1), "d": torch.tensor([1.0, math.inf])})
    text = (tmp_path / "records" / "k.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in the record"))
    back = load_records(tmp_path)["k"]
    assert math.isnan(back["est"]["lo"]) and back["d"] == [1.0, math.inf] and back["est"]["value"] == 0.5
