import pytest
import torch

from advexp_lib import CheckpointError, InputError
from advexp_lib.checkpoints import load_checkpoint
from advexp_lib.data import TensorImageDataset
from advexp_lib.hooks import LossTerm
from advexp_lib.models import build_model
from advexp_lib.training import TrainConfig, evaluate, train

from train_hooks import StopAt


@pytest.fixture
def tiny_data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(96, 1, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0.5).long()
    return TensorImageDataset(x, y, ("lo", "hi"))


def tiny_model():
    torch.manual_seed(0)
    return build_model("small_cnn", num_classes=2, image_size=8)


class Noisy(StopAt):
    """An input transform drawing randomness (as adversarial training does)."""

    def __call__(self, model, x, y):
        return (x + 0.01 * torch.rand_like(x)).clamp(0, 1)


CFG = TrainConfig(num_epochs=4, batch_size=16, optimizer="sgd", lr=0.05, schedule="step", milestones=(2,))


def test_stop_and_resume_equals_uninterrupted(tiny_data, tmp_path):
    ref = tiny_model()
    h_ref = train(
        ref, tiny_data, CFG, input_transform=Noisy(at=-1), checkpoint=tmp_path / "a.pt", progress=False
    )
    model = tiny_model()
    with pytest.raises(KeyboardInterrupt):
        train(
            model, tiny_data, CFG, input_transform=Noisy(at=2), checkpoint=tmp_path / "b.pt", progress=False
        )
    assert load_checkpoint(tmp_path / "b.pt")["epoch"] == 2
    fresh = tiny_model()  # a new process would start from a freshly built model
    h = train(
        fresh, tiny_data, CFG, input_transform=Noisy(at=-1), checkpoint=tmp_path / "b.pt", progress=False
    )
    for (k, a), b in zip(ref.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k
    assert [r["loss"] for r in h] == [r["loss"] for r in h_ref]
    assert [r["lr"] for r in h] == pytest.approx([0.05, 0.05, 0.005, 0.005])


def test_same_seed_same_weights_other_seed_differs(tiny_data):
    a, b, c = tiny_model(), tiny_model(), tiny_model()
    train(a, tiny_data, CFG, progress=False)
    train(b, tiny_data, CFG, progress=False)
    train(c, tiny_data, TrainConfig(**{**CFG.__dict__, "seed": 1}), progress=False)
    wa, wb, wc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


class L2Weights(LossTerm):
    requires_input_grad = True

    def __init__(self):
        self.steps = 0

    def __call__(self, model, x, y, logits):
        assert x.requires_grad and logits.grad_fn is not None
        penalty = sum((p**2).sum() for p in model.parameters())
        return 1e-3 * penalty, {"penalty": penalty.item()}

    def observe_ce(self, ce):
        self.steps += 1

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = state["steps"]


def test_loss_term_stats_reach_history_and_checkpoint(tiny_data, tmp_path):
    term = L2Weights()
    h = train(
        tiny_model(),
        tiny_data,
        CFG,
        loss_term=term,
        test_data=tiny_data,
        checkpoint=tmp_path / "c.pt",
        progress=False,
    )
    assert term.steps == 4 * 6 and all("penalty" in r and "test_accuracy" in r for r in h)
    assert all(r["loss"] > r["ce"] for r in h)
    assert load_checkpoint(tmp_path / "c.pt")["hooks"]["loss_term"] == {"steps": 24}


def test_training_learns_a_separable_task(tiny_data):
    m = tiny_model()
    before = evaluate(m, tiny_data)["accuracy"]
    train(m, tiny_data, TrainConfig(num_epochs=15, batch_size=16, lr=3e-3), progress=False)
    assert evaluate(m, (tiny_data.x, tiny_data.y))["accuracy"] >= max(0.9, before)


def test_resume_refuses_other_config_and_foreign_model(tiny_data, tmp_path):
    train(tiny_model(), tiny_data, CFG, checkpoint=tmp_path / "d.pt", progress=False)
    with pytest.raises(CheckpointError, match="another TrainConfig"):
        train(
            tiny_model(), tiny_data, TrainConfig(num_epochs=5), checkpoint=tmp_path / "d.pt", progress=False
        )
    other = build_model("small_cnn", num_classes=3, image_size=8)
    with pytest.raises(CheckpointError, match="does not fit this model"):
        train(other, tiny_data, CFG, checkpoint=tmp_path / "d.pt", progress=False)


def test_load_checkpoint_refuses_code_and_garbage(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"format": "advexp-checkpoint-v1", "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an advexp checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_bad_config_names_the_field():
    with pytest.raises(InputError, match="optimizer: unknown value 'rmsprop'"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(InputError, match="num_epochs"):
        TrainConfig(num_epochs=0)
    with pytest.raises(InputError, match="lr"):
        TrainConfig(lr=-1.0)


def test_loop_gives_hooks_the_global_step_across_epochs_and_resume(tiny_data, tmp_path):
    """start_step sees 0, 1, ... over the whole run (96 / 16 = 6 steps an epoch), also after a resume."""

    class Steps(StopAt):
        seen: list = []

        def start_step(self, step):
            Steps.seen.append(step)

    with pytest.raises(KeyboardInterrupt):
        train(
            tiny_model(),
            tiny_data,
            CFG,
            input_transform=Steps(at=2),
            checkpoint=tmp_path / "s.pt",
            progress=False,
        )
    assert Steps.seen == list(range(12))
    Steps.seen = []
    train(
        tiny_model(),
        tiny_data,
        CFG,
        input_transform=Steps(at=-1),
        checkpoint=tmp_path / "s.pt",
        progress=False,
    )
    assert Steps.seen == list(range(12, 24))
