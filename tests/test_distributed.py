"""Two CPU processes (gloo) train what one process trains with the same global batch."""

import os
import socket
from dataclasses import replace

import pytest
import torch
import torch.multiprocessing as mp

from advexp_lib import InputError, zoo
from advexp_lib.attacks import ARA_PAPER
from advexp_lib.checkpoints import load_checkpoint
from advexp_lib.data import TensorImageDataset, load_tensors
from advexp_lib.distributed import gather_cat, split_for_rank, world_size
from advexp_lib.hooks import BatchHook
from advexp_lib.metrics import accuracy_robustness_area
from advexp_lib.models import build_model
from advexp_lib.training import TrainConfig, _check_shards, train

CFG = TrainConfig(
    num_epochs=3,
    batch_size=16,
    optimizer="sgd",
    lr=0.1,
    momentum=0.9,
    seed=7,
    schedule="step",
    milestones=(2,),
)
ROBUST_CFG = TrainConfig(num_epochs=2, batch_size=16, optimizer="adam", lr=3e-3, seed=3)


def _data(n):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 8, 8, generator=g)
    return TensorImageDataset(x, (x[:, 0, :4].mean(dim=(1, 2)) > x[:, 0, 4:].mean(dim=(1, 2))).long())


def _model(activation="relu"):
    torch.manual_seed(0)
    return build_model("small_cnn", num_classes=2, image_size=8, activation=activation)


def _regularizer():
    from advexp_lib.regularizers import AdaptivePsi, WoodsRegularizer

    # CE of this 2-class task stays below the target, so the integrator (and psi) grows every step
    return WoodsRegularizer(psi=AdaptivePsi(target=1.0, k_psi0=0.5, k_psi=0.1))


class _Stop(BatchHook):
    """An identity input transform that raises at the start of epoch ``at``: a crash mid-run."""

    def __init__(self, at):
        self.at = at

    def __call__(self, model, x, y):
        return x

    def start_epoch(self, epoch, num_epochs):
        if epoch == self.at:
            raise RuntimeError("simulated crash")


def _run(kind, data, ckpt, stop_at=None):
    model = _model("half_huber" if kind == "robust" else "relu")
    term = _regularizer() if kind == "robust" else None
    config = ROBUST_CFG if kind == "robust" else CFG
    transform = _Stop(stop_at) if stop_at is not None else None
    history = train(
        model,
        data,
        config,
        loss_term=term,
        input_transform=transform,
        test_data=data,
        checkpoint=ckpt,
        progress=False,
    )
    return model, history, term


def _worker(rank, world, port, kind, n, out, stop_at):
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        result = {}
        if kind == "helpers":  # uneven shares: 7 rows over 2 ranks -> 3 + 4
            rows = torch.arange(7.0)[split_for_rank(7)]
            result = {"gathered": gather_cat(rows[:, None].repeat(1, 2)), "world": world_size()}
        elif kind == "ara":
            result = {"ara": _ara(n)}
        elif stop_at is not None:
            try:
                _run(kind, _data(n), out / "ckpt.pt", stop_at)
            except RuntimeError:
                pass  # the crash; rank 0 has written the checkpoint of the finished epochs
        else:
            model, history, term = _run(kind, _data(n), out / "ckpt.pt")
            result = {
                "state": model.state_dict(),
                "history": history,
                "hook": term.state_dict() if term is not None else {},
            }
        torch.save(result, out / f"rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def _ara(n):
    """Attack ARA of the shipped mnist5k standard network on n test images, 60 steps (sharded or not)."""
    model = zoo.get_model("mnist5k", "standard", progress=False)
    x, y = load_tensors("mnist5k", "test", n=n, seed=1776)
    res = accuracy_robustness_area(
        model,
        x,
        y,
        config=replace(ARA_PAPER, steps=60, eps=5.0),
        progress=False,
        on_late="flag",
        never_met="retry",
    )
    return {"distances": res.distances, "ara": res.ara, "accuracy": res.accuracy, "retried": res.retried}


def _spawn(kind, n, out, stop_at=None, world=2):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the children
    mp.spawn(_worker, args=(world, port, kind, n, out, stop_at), nprocs=world, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(world)]


def _max_weight_diff(a, b):
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def test_split_for_rank_covers_rows_contiguously():
    for n in (0, 1, 7, 16, 91):
        for w in (1, 2, 3, 5):
            parts = [split_for_rank(n, r, w) for r in range(w)]
            assert [i for p in parts for i in range(n)[p]] == list(range(n))
            assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1
    assert split_for_rank(11, 0, 2) == slice(0, 5) and split_for_rank(11, 1, 2) == slice(5, 11)
    assert split_for_rank(5) == slice(0, 5)  # one process: everything
    with pytest.raises(InputError, match="rank_"):
        split_for_rank(10, 2, 2)
    with pytest.raises(InputError, match="n"):
        split_for_rank(-1, 0, 2)
    x = torch.arange(3)
    assert gather_cat(x) is x


def test_batches_too_small_for_the_world_are_refused():
    _check_shards(91, 16, 2, True)  # last batch 11 rows: fine
    with pytest.raises(InputError, match="batch_size.*last global batch has 1 rows"):
        _check_shards(91, 15, 2, True)
    with pytest.raises(InputError, match="batch_size: 15 does not split evenly"):
        _check_shards(90, 15, 2, False)


def test_gather_cat_two_ranks_uneven_shares(tmp_path):
    results = _spawn("helpers", 0, tmp_path)
    expected = torch.arange(7.0)[:, None].repeat(1, 2)
    for r in results:
        assert r["world"] == 2 and torch.equal(r["gathered"], expected)


def test_ara_under_two_processes_equals_one_process(tmp_path):
    """Contiguous shards (7 + 8 of 15 images), gathered: the same distances and ARA on every rank."""
    torch.set_num_threads(1)
    single = _ara(15)
    for r in _spawn("ara", 15, tmp_path):
        got = r["ara"]
        torch.testing.assert_close(got["distances"], single["distances"], rtol=0, atol=1e-6)
        assert got["ara"] == pytest.approx(single["ara"], abs=1e-6) and got["accuracy"] == single["accuracy"]
        assert torch.equal(got["retried"], single["retried"])
    assert (single["distances"] > 0).sum() >= 10  # real searches, not a trivial equality


def test_standard_two_processes_match_one_and_resume(tmp_path):
    # 91 examples, batch 16: the last global batch (11 rows) splits unevenly 5 / 6 over the ranks
    data = _data(91)
    (tmp_path / "ddp").mkdir()
    _spawn("standard", 91, tmp_path / "ddp", stop_at=2)  # crash at the start of epoch 3 ...
    assert load_checkpoint(tmp_path / "ddp" / "ckpt.pt")["epoch"] == 2
    ranks = _spawn("standard", 91, tmp_path / "ddp")  # ... and a fresh launch resumes
    model, history, _ = _run("standard", data, tmp_path / "single.pt")
    ref = model.state_dict()
    diff = _max_weight_diff(ranks[0]["state"], ref)
    print(f"standard: max |w_2proc - w_1proc| = {diff:.3g}")
    assert diff < 1e-5
    assert _max_weight_diff(ranks[0]["state"], ranks[1]["state"]) == 0.0  # DDP keeps replicas equal
    saved = load_checkpoint(tmp_path / "ddp" / "ckpt.pt")
    assert saved["epoch"] == 3 and _max_weight_diff(saved["model"], ref) < 1e-5
    for a, b in zip(ranks[0]["history"], history):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["train_accuracy"] == pytest.approx(b["train_accuracy"])
        assert a["test_accuracy"] == pytest.approx(b["test_accuracy"])
    untrained = _model().state_dict()
    assert _max_weight_diff(ref, untrained) > 1e-2  # training moved the weights: the match is not trivial


def test_robust_two_processes_match_one(tmp_path):
    data = _data(96)
    ranks = _spawn("robust", 96, tmp_path)
    model, history, term = _run("robust", data, tmp_path / "single.pt")
    diff = _max_weight_diff(ranks[0]["state"], model.state_dict())
    print(f"robust: max |w_2proc - w_1proc| = {diff:.3g}; psi integral {term.state_dict()}")
    assert diff < 1e-5
    for r in ranks:  # the adaptive psi integrator saw the global CE on both ranks
        assert r["hook"]["psi_integral"] == pytest.approx(term.state_dict()["psi_integral"], rel=1e-6)
    assert term.state_dict()["psi_integral"] > 0
    for a, b in zip(ranks[0]["history"], history):
        for k in ("loss", "ce", "grad_penalty", "psi"):
            assert a[k] == pytest.approx(b[k], rel=1e-5), k


@pytest.mark.slow
def test_cli_under_torchrun_matches_one_process(tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        "-m",
        "advexp_lib",
        "train",
        "--dataset",
        "mnist5k",
        "--epochs",
        "1",
        "--seed",
        "2",
        "--no-progress",
    ]
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            *cmd,
            "--checkpoint",
            str(tmp_path / "two.pt"),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count('"test_accuracy"') == 1  # rank 0 alone reports
    one = subprocess.run(
        [sys.executable, *cmd, "--checkpoint", str(tmp_path / "one.pt")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert one.returncode == 0, one.stderr[-2000:]
    diff = _max_weight_diff(
        load_checkpoint(tmp_path / "two.pt")["model"], load_checkpoint(tmp_path / "one.pt")["model"]
    )
    assert diff < 1e-4  # 63 Adam steps on mnist5k
