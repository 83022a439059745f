"""The scale options of the training loop (autocast, compile, channels_last), checked on CPU.

Also the numbers behind the mixed-precision decision: the double-backprop
regularizer stays in float32 (``TrainConfig.amp`` refuses it).
"""

import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from advexp_lib import InputError
from advexp_lib.data import TensorImageDataset
from advexp_lib.hooks import LossTerm
from advexp_lib.models import build_model
from advexp_lib.training import TrainConfig, train

CFG = TrainConfig(num_epochs=2, batch_size=16, optimizer="sgd", lr=0.05, seed=1)


@pytest.fixture
def tiny_data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 8, 8, generator=g)
    return TensorImageDataset(x, (x.mean(dim=(1, 2, 3)) > 0.5).long())


def _tiny(activation="relu"):
    torch.manual_seed(0)
    return build_model("small_cnn", num_classes=2, image_size=8, activation=activation)


def _weights(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()])


def _resnet8():
    torch.manual_seed(0)
    model = build_model("resnet8", in_channels=3, activation="half_huber", mean=[0.5] * 3, std=[0.25] * 3)
    for m in model.modules():  # the zero-initialized residual branches would hide most layers
        if isinstance(m, torch.nn.Conv2d) and not m.weight.any():
            torch.nn.init.normal_(m.weight, std=0.05)
    return model.train()


def _param_grads(amp, which):
    """Gradient w.r.t. the parameters of CE or of the Woods input-gradient penalty, under CPU autocast."""
    from advexp_lib.regularizers import WoodsRegularizer

    model = _resnet8()
    x = torch.rand(32, 3, 32, 32, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    y = torch.randint(10, (32,), generator=torch.Generator().manual_seed(2))
    torch.manual_seed(5)  # which output each example regularizes
    with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
        logits = model(x)
        loss = (
            F.cross_entropy(logits, y) if which == "ce" else WoodsRegularizer(psi=1.0)(model, x, y, logits)[0]
        )
    # the penalty does not depend on the classifier's bias (allow_unused)
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    return torch.cat([g.float().flatten() for g in grads if g is not None])


def _rel_err(amp, which):
    ref, low = _param_grads(None, which), _param_grads(amp, which)
    return ((low - ref).norm() / ref.norm()).item()


def test_autocast_numbers_behind_the_amp_decision():
    pytest.importorskip("advexp_lib.regularizers")
    ce_bf16, pen_bf16 = _rel_err(torch.bfloat16, "ce"), _rel_err(torch.bfloat16, "penalty")
    ce_fp16, pen_fp16 = _rel_err(torch.float16, "ce"), _rel_err(torch.float16, "penalty")
    print(
        f"relative error of the parameter gradient vs float32 (ResNet-8, CPU autocast): "
        f"CE bf16 {ce_bf16:.3g}, fp16 {ce_fp16:.3g}; L_adv penalty bf16 {pen_bf16:.3g}, fp16 {pen_fp16:.3g}"
    )
    assert ce_bf16 < 0.1 and ce_fp16 < 0.1  # standard training: reduced precision is fine
    assert pen_fp16 > 0.5  # double backprop in fp16: the penalty's gradient is mostly noise
    assert pen_bf16 > 2 * ce_bf16  # in bf16 markedly worse than the CE gradient it would be added to


def test_amp_and_compile_refuse_the_double_backprop_regularizer(tiny_data):
    class InputGradTerm(LossTerm):
        requires_input_grad = True

        def __call__(self, model, x, y, logits):
            return logits.sum() * 0, {}

    with pytest.raises(InputError, match="amp: 'bf16' is refused .*float32"):
        train(_tiny(), tiny_data, TrainConfig(amp="bf16"), loss_term=InputGradTerm(), progress=False)
    with pytest.raises(InputError, match="compile"):
        train(_tiny(), tiny_data, TrainConfig(compile="eager"), loss_term=InputGradTerm(), progress=False)
    with pytest.raises(InputError, match="amp: unknown value 'fp8'"):
        TrainConfig(amp="fp8")
    with pytest.raises(InputError, match="compile"):
        TrainConfig(compile="")
    with pytest.raises(InputError, match="channels_last"):
        TrainConfig(channels_last="yes")


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_autocast_training_tracks_float32(tiny_data, amp):
    ref, low = _tiny(), _tiny()
    h_ref = train(ref, tiny_data, CFG, progress=False)
    h = train(low, tiny_data, TrainConfig(**{**CFG.__dict__, "amp": amp}), progress=False)
    assert all(p.dtype == torch.float32 for p in low.parameters())  # autocast keeps float32 master weights
    moved = (_weights(ref) - _weights(_tiny())).norm()
    assert (_weights(low) - _weights(ref)).norm() < 0.1 * moved  # same trajectory up to rounding
    assert h[-1]["loss"] == pytest.approx(h_ref[-1]["loss"], rel=0.05)


def test_amp_fp16_scaler_state_is_checkpointed(tiny_data, tmp_path):
    from advexp_lib.checkpoints import load_checkpoint

    train(
        _tiny(),
        tiny_data,
        TrainConfig(**{**CFG.__dict__, "amp": "fp16"}),
        checkpoint=tmp_path / "a.pt",
        progress=False,
    )
    assert load_checkpoint(tmp_path / "a.pt")["scaler"]["scale"] > 0
    train(_tiny(), tiny_data, CFG, checkpoint=tmp_path / "b.pt", progress=False)
    assert "scaler" not in load_checkpoint(tmp_path / "b.pt")


def test_channels_last_gives_the_same_model(tiny_data):
    ref, cl = _tiny(), _tiny()
    train(ref, tiny_data, CFG, progress=False)
    train(cl, tiny_data, TrainConfig(**{**CFG.__dict__, "channels_last": True}), progress=False)
    assert torch.allclose(_weights(ref), _weights(cl), atol=1e-5)
    assert all(p.is_contiguous() for p in cl.parameters())  # handed back in the ordinary layout


def test_compile_gives_the_same_model(tiny_data):
    ref, comp = _tiny(), _tiny()
    train(ref, tiny_data, CFG, progress=False)
    # the "eager" backend traces with dynamo but needs no C compiler: what CI can run
    train(comp, tiny_data, TrainConfig(**{**CFG.__dict__, "compile": "eager"}), progress=False)
    assert torch.allclose(_weights(ref), _weights(comp), atol=1e-5)


def test_no_hard_coded_cuda_in_the_library():
    root = Path(__file__).resolve().parents[1] / "advexp_lib"
    hits = [
        f"{p.name}:{i + 1}"
        for p in root.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines())
        if re.search(r"\.cuda\(\)", line)
    ]
    assert hits == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_training_follows_a_cuda_model(tiny_data):
    """On a CUDA model the loop trains on the GPU and, in float32, computes what it computes on the CPU."""
    cpu, gpu = _tiny(), _tiny().to("cuda")
    for model in (cpu, gpu):
        train(model, tiny_data, CFG, test_data=tiny_data, progress=False)
    assert next(gpu.parameters()).device.type == "cuda"
    torch.testing.assert_close(_weights(gpu).cpu(), _weights(cpu), rtol=1e-3, atol=1e-4)
    fast = _tiny().to("cuda")
    history = train(
        fast,
        tiny_data,
        TrainConfig(**{**CFG.__dict__, "amp": "bf16", "channels_last": True}),
        test_data=tiny_data,
        progress=False,
    )
    assert all(math.isfinite(h["loss"]) for h in history) and history[-1]["loss"] < history[0]["loss"]
