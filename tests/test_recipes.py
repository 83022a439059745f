"""The recipe table: the CIFAR-10 Woods et al. recipes pinned to the reference implementation.

Each expected value is transcribed from wwoods/adversarial-explanations-cifar
(``main.py``: the ``train`` command, ``_get_dataset``, ``_model_train_batch``
and the ``ROBUST_*`` constants), not from our own code.
"""

import pytest
from torchvision import transforms

from advexp_lib import recipes
from advexp_lib.attacks import ATTACK
from advexp_lib.data import augmentation

REFERENCE_TRAINING = dict(  # SGD(lr 0.1, momentum 0.9, weight decay 1e-4 on every parameter), batch 128
    optimizer="sgd",
    lr=0.1,
    momentum=0.9,
    weight_decay=1e-4,
    batch_size=128,
    num_epochs=200,
    schedule="step",
    milestones=(170, 195),
    gamma=0.1,  # TRAIN_EPOCHS = [170, 195, 200]
)
REFERENCE_PSI = dict(  # ROBUST_ADAPT_L_TARGET, ROBUST_ADAPT_PSI_0, ROBUST_ADAPT_PSI, ROBUST_ADAPT_EPS_POS/NEG
    target=1.5,
    k_psi0=220.0,
    k_psi=0.02,
    eps_better=1.0,
    eps_worse=0.01,
    z=2.0,
    zeta=0.2,
)
# --adversarial-training: eps 0.01 (0.1 with --l2-min), 7 steps; half-and-half only with --robust-additions
REFERENCE_RECIPES = {
    "standard": dict(activation="relu", psi=False, adversarial=None),
    "adv": dict(activation="relu", psi=False, adversarial=dict(minimal=False, eps=0.01, steps=7, half=False)),
    "robust": dict(activation="half_huber", psi=True, adversarial=None),
    "all": dict(
        activation="half_huber", psi=True, adversarial=dict(minimal=True, eps=0.1, steps=7, half=True)
    ),
}


@pytest.mark.parametrize("name", list(REFERENCE_RECIPES))
def test_cifar10_woods_recipes_are_the_reference_settings(name):
    r = recipes.recipe("cifar10", name)
    want = REFERENCE_RECIPES[name]
    assert r.arch == "resnet44" and r.activation == want["activation"]
    assert {k: getattr(r.train, k) for k in REFERENCE_TRAINING} == REFERENCE_TRAINING
    if want["psi"]:
        hook, kwargs = r.loss_term
        assert hook == "woods_ladv" and kwargs == REFERENCE_PSI
    else:
        assert r.loss_term is None
    if want["adversarial"] is None:
        assert r.input_transform is None
    else:
        hook, kwargs = r.input_transform
        assert hook == "rmse_adv"
        assert {**dict(half=False), **kwargs} == want["adversarial"]  # half defaults to False
        transform = r.make_input_transform()
        minimal = transform.criterion is ATTACK
        assert (minimal, transform.config.eps, transform.config.steps, transform.half) == tuple(
            want["adversarial"][k] for k in ("minimal", "eps", "steps", "half")
        )
        assert (transform.config.momentum, transform.config.overshoot) == (0.0, 1.0)


def test_cifar10_augmentation_is_the_references():
    """_get_dataset: ToTensor, replicate pad 4, ToPILImage, RandomHorizontalFlip, RandomCrop(32), ToTensor."""
    steps = augmentation("cifar10").transforms
    assert [type(t) for t in steps] == [
        transforms.Pad,
        transforms.RandomHorizontalFlip,
        transforms.RandomCrop,
        transforms.ToTensor,
    ]
    pad, flip, crop = steps[:3]
    assert (pad.padding, pad.padding_mode, flip.p, tuple(crop.size), crop.padding) == (
        4,
        "edge",
        0.5,
        (32, 32),
        None,
    )
    assert isinstance(augmentation("mnist"), transforms.ToTensor)


def test_cli_help_lists_every_recipe_and_dataset(capsys):
    """The command line's choices are the registries' own names (no second list to drift)."""
    from advexp_lib import cli, data, recipes

    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert all(name in shown for name in (*recipes.recipe_names(), *data.DATASETS))


def test_smallgap_recipes_share_boopathy_inner_attack_and_budget():
    """Every arm: 40 x 0.01 at eps 0.3, the same ramp, batch 50, the same epochs; lambda 0.01; on the full
    MNIST the reference's own budget (100 epochs, lr 1e-4, ramp 2,000 -> 10,000 steps)."""
    from advexp_lib import recipes

    for dataset, ramp, epochs, lr in (("mnist5k", (160, 400), 8, 3e-3), ("mnist", (2000, 10000), 100, 1e-4)):
        rs = {n: recipes.recipe(dataset, n) for n in ("smallgap_adv", "smallgap_int", "smallgap_int2")}
        hooks = [r.input_transform or r.loss_term for r in rs.values()]
        for r, (_, kw) in zip(rs.values(), hooks):
            assert r.arch == "smallgap" and r.train.batch_size == 50
            assert (r.train.num_epochs, r.train.lr) == (epochs, lr)
            assert (kw["eps"], kw["steps"], kw["step_size"], tuple(kw["ramp_steps"])) == (0.3, 40, 0.01, ramp)
        assert [kw.get("variant") for _, kw in hooks] == [None, "int", "int2"]
        assert all(kw["lambda_"] == 0.01 for _, kw in hooks[1:])
        assert recipes.recipe(dataset, "smallgap_normal").train == rs["smallgap_adv"].train
