r"""Chalasani et al.'s one-layer experiments: logistic regression on UCI Mushroom and Spambase.

Chalasani, Chen, Chowdhury, Wu and Jha, "Concise Explanations of Neural Networks using
Adversarial Training", AISTATS 2020, train one ``Dense(1, sigmoid)`` unit three ways and
measure how sparse its Integrated Gradients are (their repository ``jfc43/advex``,
``One-layer-Experiments/``, commit 2786b0d; re-implemented here, not copied):

- model: z = w . x + b, p = sigmoid(z); w and b drawn from N(0, 0.05^2) (Keras'
  ``random_normal_initializer``);
- training: binary cross-entropy, Adam (lr 0.01), 30 epochs, batches of 32 reshuffled
  every epoch; natural, l1 (+ lambda sum_i |w_i|, kernel only: Mushroom lambda 0.01,
  Spambase 0.02), or adversarial (the exact worst case of an l-inf attack of budget eps
  on a linear model, x' = x - eps (2y - 1) sign(w), eps 0.1 on both; the first two epochs
  clean, the reference's ``clean_epochs``);
- explanation: IG of p (class 1, whatever the label), zero baseline, 20 steps, left
  Riemann sum; its Gini index per example, averaged over the first min(1000, n) test
  examples, all of them, correct or not;
- accuracy: the whole test split, p > 0.5.

Deviations from the reference, each on purpose:

- Spambase is the split the repository ships (3,450 / 1,151, standardized on the
  training split), used as is: the reference script reads an ``all.csv`` it does not ship.
- Adam, as the result files say (``AISTATS2020/*_results_ADAM.txt``), although the
  repository's ``hparams/*.yaml`` select FTRL (``adam: False``).
- Mushroom's split has the reference's proportions but is drawn by a seeded torch
  permutation (not sklearn's), and is fixed (:data:`SPLIT_SEED`) for every seed, so that runs with
  different seeds are paired test example by test example: a seed varies the initial
  weights and the batch order only. The authors report one run each.
- The reference's Gini adds 1e-7 to every |a_i| before the formula of
  :func:`advexp_lib.metrics.gini`; we do not: a shift of order n 1e-7 / sum_i |a_i|,
  below 1e-4 on every example of the six settings (seed 0), far below the differences
  between the trainings' mean Gini (0.005 and more).

The training loop is the library's (:func:`advexp_lib.training.train`), which takes images
(N, C, H, W) in [0, 1]. :class:`Logistic` therefore reads inputs u in [0, 1] of shape
(N, F, 1, 1) and uses the features x = offset + scale * u, a fixed map (buffers, not
trained) chosen by :func:`run` to hold every row: w and b act on x itself, so the gradients,
the l1 penalty and the worst-case perturbation are those of the reference (to float
rounding). Mushroom's one-hot features lie in [0, 1] already: for it the map is the identity.
"""

from __future__ import annotations

import pandas as pd
import torch
from captum.attr import IntegratedGradients
from torch import nn
from tqdm.auto import tqdm

from advexp_lib.checks import InputError, InputTypeError, check_choice, check_positive
from advexp_lib.data import UCI_DATASETS, TabularSplit, TensorImageDataset, load_uci
from advexp_lib.hooks import InputTransform, LossTerm
from advexp_lib.metrics import gini
from advexp_lib.training import TrainConfig, train

__all__ = [
    "AUTHORS",
    "SETTINGS",
    "TRAININGS",
    "Logistic",
    "KernelL1",
    "LogisticWorstCase",
    "integrated_gradients",
    "run",
    "table",
    "beside_authors",
]

TRAININGS = ("natural", "l1", "adversarial")
SETTINGS = {
    "mushroom": {"l1": 0.01, "adversarial": 0.1},  # lambda of l1, eps of adversarial training
    "spambase": {"l1": 0.02, "adversarial": 0.1},
}
"""The authors' lambda (l1) and eps (adversarial) per data set, as their result files state."""

AUTHORS = {
    "mushroom": {
        "natural": {"accuracy": 1.0, "gini": 0.91},
        "l1": {"accuracy": 0.975, "gini": 0.972},
        "adversarial": {"accuracy": 0.985, "gini": 0.977},
    },
    "spambase": {
        "natural": {"accuracy": 0.9105, "gini": 0.654},
        "l1": {"accuracy": 0.898, "gini": 0.755},
        "adversarial": {"accuracy": 0.892, "gini": 0.777},
    },
}
"""The authors' results (``One-layer-Experiments/AISTATS2020/*_results_ADAM.txt``): one run each,
Adam, at :data:`SETTINGS`; accuracy as a fraction, Gini the average over the first 1,000 test rows."""

INIT_STD = 0.05  # Keras' random_normal_initializer(), the reference's init of kernel and bias
NUM_EPOCHS = 30  # the hparams' epochs
BATCH_SIZE = 32
LR = 0.01  # the reference's Adam(learning_rate=0.01)
CLEAN_EPOCHS = 2  # `params.clean_epochs or 2`: 2 even where a yaml sets 0
IG_STEPS = 20  # the reference's n_steps, left Riemann sum (alphas 0, 1/20, ..., 19/20)
GINI_EXAMPLES = 1000  # the reference's max_examples: Gini over the first 1,000 test rows
SPLIT_SEED = 0  # Mushroom's split, the same for every training seed


class Logistic(nn.Module):
    r"""Logistic regression as two class logits: ``forward(u) = [0, z]``, z = w . x + b.

    Softmax cross-entropy on [0, z] is the binary cross-entropy of p = sigmoid(z), class 1
    being target 1. ``self.linear`` holds w (1, F) and b (1,), drawn from N(0, init_std^2).
    The model reads inputs u of any shape (N, ...) with F entries and uses the features

        x = offset + scale * u,

    a fixed map (buffers) for a training loop that accepts only [0, 1] inputs; :meth:`logit`
    takes features x directly. Shape: u (N, F) or (N, F, 1, 1); output (N, 2).

    Args:
        in_features: F.
        init_std: standard deviation of the initial w and b. Default: 0.05 (Keras' default).
        offset, scale: (F,) tensors of the map; ``scale`` > 0. Default: None (0 and 1, x = u).

    Examples:
        >>> model = Logistic(3)
        >>> model(torch.ones(2, 3)).shape, model(torch.ones(2, 3))[:, 0].tolist()
        (torch.Size([2, 2]), [0.0, 0.0])
    """

    def __init__(self, in_features: int, *, init_std: float = INIT_STD, offset=None, scale=None):
        super().__init__()
        check_positive(in_features, "in_features", integer=True)
        check_positive(init_std, "init_std", allow_zero=True)
        self.linear = nn.Linear(in_features, 1)
        nn.init.normal_(self.linear.weight, std=init_std)
        nn.init.normal_(self.linear.bias, std=init_std)
        offset = torch.zeros(in_features) if offset is None else torch.as_tensor(offset, dtype=torch.float32)
        scale = torch.ones(in_features) if scale is None else torch.as_tensor(scale, dtype=torch.float32)
        if offset.shape != (in_features,) or scale.shape != (in_features,) or not (scale > 0).all():
            raise InputError(f"offset, scale: expected ({in_features},) tensors with scale > 0")
        self.register_buffer("offset", offset)
        self.register_buffer("scale", scale)

    def logit(self, x: torch.Tensor) -> torch.Tensor:
        """z = w . x + b (N,) of features ``x`` (N, F)."""
        return self.linear(x).squeeze(1)

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """The inputs u (N, F, 1, 1) whose features are ``x`` (N, F): u = (x - offset) / scale."""
        return ((x - self.offset) / self.scale)[:, :, None, None]

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        z = self.logit(self.offset + self.scale * u.flatten(1))
        return torch.stack((torch.zeros_like(z), z), 1)


def _logistic(model, hook: str) -> Logistic:
    if not isinstance(model, Logistic):
        raise InputTypeError(f"model: {hook} needs a one_layer.Logistic, got {type(model).__name__}")
    return model


class KernelL1(LossTerm):
    r"""The l1 penalty on the kernel, ``lambda_ * sum_i |w_i|`` (not the bias), added to the batch-mean loss.

    Keras' ``kernel_regularizer=l1(lambda_)`` of the reference. Reports ``l1`` (the penalty).

    Args:
        lambda_: the weight (>= 0); the authors': Mushroom 0.01, Spambase 0.02 (:data:`SETTINGS`).

    Examples:
        >>> model = Logistic(2)
        >>> with torch.no_grad():
        ...     _ = model.linear.weight.copy_(torch.tensor([[1.0, -2.0]])), model.linear.bias.fill_(5.0)
        >>> penalty, stats = KernelL1(0.1)(model, None, None, None)
        >>> round(penalty.item(), 6)
        0.3
    """

    def __init__(self, lambda_: float):
        check_positive(lambda_, "lambda_", allow_zero=True)
        self.lambda_ = float(lambda_)

    def __call__(self, model, x, y, logits) -> tuple[torch.Tensor, dict[str, float]]:
        penalty = self.lambda_ * _logistic(model, "KernelL1").linear.weight.abs().sum()
        return penalty, {"l1": penalty.item()}


class LogisticWorstCase(InputTransform):
    r"""The worst case of an l-inf attack on a logistic model: x' = x - eps (2y - 1) sign(w).

    Distance Measure : Linf. For z = w . x + b the perturbation ||d||_inf <= eps that most
    lowers the margin (2y - 1) z is d = -eps (2y - 1) sign(w) (Chalasani et al.'s
    ``logistic_perturb``): a constant, without gradient and without clipping. The loss is
    then taken on x' alone. The first ``clean_epochs`` epochs (0-based epoch < clean_epochs)
    train on x itself. The step is taken in features x; a :class:`Logistic` whose inputs are
    u = (x - offset) / scale gets u' = u - eps (2y - 1) sign(w) / scale, the same x'.

    Args:
        eps: the budget (> 0) in feature units; the authors': 0.1 (:data:`SETTINGS`).
        clean_epochs: epochs trained clean first (>= 0). Default: 2 (the reference's).

    Examples:
        >>> model = Logistic(2)
        >>> with torch.no_grad():
        ...     _ = model.linear.weight.copy_(torch.tensor([[1.0, -2.0]]))
        >>> attack = LogisticWorstCase(0.1, clean_epochs=0)
        >>> attack(model, torch.zeros(2, 2), torch.tensor([1, 0])).mul(10).tolist()
        [[-1.0, 1.0], [1.0, -1.0]]
    """

    def __init__(self, eps: float, clean_epochs: int = CLEAN_EPOCHS):
        check_positive(eps, "eps")
        check_positive(clean_epochs, "clean_epochs", integer=True, allow_zero=True)
        self.eps, self.clean_epochs = float(eps), clean_epochs
        self.current_eps = 0.0 if clean_epochs > 0 else self.eps

    def start_epoch(self, epoch: int, num_epochs: int) -> None:
        self.current_eps = 0.0 if epoch < self.clean_epochs else self.eps  # the loop counts epochs from 0

    @torch.no_grad()
    def __call__(self, model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        model = _logistic(model, "LogisticWorstCase")
        if self.current_eps == 0.0:
            return x
        sign_y = (2 * y - 1).to(x.dtype)[:, None]
        step = self.current_eps * sign_y * torch.sign(model.linear.weight.flatten()) / model.scale
        return x - step.reshape(x.shape)


def integrated_gradients(model: Logistic, x: torch.Tensor, *, n_steps: int = IG_STEPS) -> torch.Tensor:
    r"""IG of p = sigmoid(z) (class 1, whatever the label) at features ``x`` (N, F), as the reference.

    Zero baseline, Captum's left Riemann sum with ``n_steps`` points:

        IG_i(x) = x_i * (1/n) sum_{k=0}^{n-1} dp/dx_i (k x / n) = x_i w_i (1/n) sum_k sigma'(k z_0 / n + b)

    with z_0 = w . x (the second form: :class:`Logistic` is linear). Shape: (N, F), like ``x``.

    Args:
        n_steps: n. Default: 20 (the reference's).

    Examples:
        >>> model = Logistic(3)
        >>> integrated_gradients(model, torch.ones(4, 3)).shape
        torch.Size([4, 3])
    """
    ig = IntegratedGradients(lambda v: torch.sigmoid(model.logit(v)))
    return ig.attribute(x, baselines=torch.zeros_like(x), n_steps=n_steps, method="riemann_left")


def run(
    name: str,
    training: str,
    *,
    seed: int = 0,
    lambda_: float | None = None,
    eps: float | None = None,
    num_epochs: int = NUM_EPOCHS,
) -> dict:
    """Train one logistic model on ``name`` the ``training`` way; its test accuracy and IG Gini.

    Args:
        name: "mushroom" or "spambase" (:func:`advexp_lib.data.load_uci`; Mushroom's split
            is :data:`SPLIT_SEED`'s whatever ``seed``).
        training: "natural", "l1" or "adversarial".
        seed: seeds the initial weights and the batch order. Default 0.
        lambda_, eps: the l1 weight and the adversarial budget. Default: None (:data:`SETTINGS`).
        num_epochs: Default: 30 (the reference's).
    Returns:
        dict: ``accuracy`` (float, whole test split), ``correct`` (bool (n_test,)),
        ``per_example_gini`` ((min(1000, n_test),): Gini of IG of the first test rows),
        ``gini`` (their mean), ``model`` (the trained :class:`Logistic`), ``history`` (the loop's).

    Examples:
        >>> r = run("mushroom", "natural", num_epochs=1)
        >>> r["accuracy"] > 0.9, r["per_example_gini"].shape
        (True, torch.Size([1000]))
    """
    check_choice(name, "name", UCI_DATASETS)
    check_choice(training, "training", TRAININGS)
    data = load_uci(name, seed=SPLIT_SEED)
    lambda_ = SETTINGS[name]["l1"] if lambda_ is None else lambda_
    eps = SETTINGS[name]["adversarial"] if eps is None else eps
    hooks = {
        "loss_term": KernelL1(lambda_) if training == "l1" else None,
        "input_transform": LogisticWorstCase(eps) if training == "adversarial" else None,
    }
    model, history = _fit(data, seed, num_epochs, hooks)
    with torch.no_grad():
        correct = (model.logit(data.x_test) > 0) == data.y_test.bool()  # p > 0.5: argmax of [0, z]
    per_example = gini(integrated_gradients(model, data.x_test[:GINI_EXAMPLES]).detach())
    return {
        "accuracy": correct.float().mean().item(),
        "correct": correct,
        "per_example_gini": per_example,
        "gini": per_example.mean().item(),
        "model": model,
        "history": history,
    }


def _fit(data: TabularSplit, seed: int, num_epochs: int, hooks: dict) -> tuple[Logistic, list[dict]]:
    """A :class:`Logistic` trained by the library's loop on ``data`` (inputs mapped into [0, 1])."""
    every = torch.cat([data.x_train, data.x_test])
    offset = every.min(0).values.clamp(max=0.0)  # [0, 1] features keep offset 0 and scale 1
    scale = every.max(0).values.clamp(min=1.0) - offset
    torch.manual_seed(seed)  # the initial w and b
    model = Logistic(every.shape[1], offset=offset, scale=scale)
    train_set = TensorImageDataset(model.to_input(data.x_train), data.y_train)
    test_set = TensorImageDataset(model.to_input(data.x_test), data.y_test)
    config = TrainConfig(num_epochs=num_epochs, batch_size=BATCH_SIZE, optimizer="adam", lr=LR, seed=seed)
    history = train(model, train_set, config, test_data=test_set, progress=False, **hooks)
    return model, history


def table(
    seeds=(0, 1, 2), progress: bool = True, *, num_epochs: int = NUM_EPOCHS
) -> tuple[pd.DataFrame, dict, dict]:
    """:func:`run` for both data sets, the three trainings and every seed (at :data:`SETTINGS`).

    Args:
        seeds: the training seeds. Default: (0, 1, 2).
        progress: a tqdm bar over the runs. Default True.
        num_epochs: Default: 30 (the reference's).
    Returns:
        ``(frame, per_example_gini, correct)``: ``frame`` one row per run, columns data,
        training, seed, accuracy, gini; ``per_example_gini[data][training]`` a (S, 1000)
        tensor and ``correct[data][training]`` a bool (S, n_test) tensor, one row per seed,
        the same test rows in every row (pairable across seeds and trainings).

    Examples:
        >>> frame, per_example_gini, correct = table(seeds=(0,), progress=False, num_epochs=1)
        >>> frame.shape, tuple(correct["spambase"]["l1"].shape)
        ((6, 5), (1, 1151))
    """
    rows, ginis, correct = [], {}, {}
    runs = [(d, t, s) for d in UCI_DATASETS for t in TRAININGS for s in seeds]
    for name, training, seed in tqdm(runs, desc="one-layer runs", disable=not progress):
        r = run(name, training, seed=seed, num_epochs=num_epochs)
        rows.append(
            {"data": name, "training": training, "seed": seed, "accuracy": r["accuracy"], "gini": r["gini"]}
        )
        ginis.setdefault(name, {}).setdefault(training, []).append(r["per_example_gini"])
        correct.setdefault(name, {}).setdefault(training, []).append(r["correct"])
    return pd.DataFrame(rows), _stacked(ginis), _stacked(correct)


def _stacked(per_run: dict) -> dict:
    """{data: {training: [tensor per seed]}} -> {data: {training: (S, ...) tensor}}."""
    return {name: {t: torch.stack(v) for t, v in runs.items()} for name, runs in per_run.items()}


def beside_authors(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`table`'s runs summarized per (data, training), beside the authors' reported figures.

    Columns: accuracy and Gini, the mean over seeds and the lowest and highest seed, then the
    authors' accuracy and Gini (:data:`AUTHORS`, one run each).

    Examples:
        >>> f = pd.DataFrame({"data": ["mushroom"] * 2, "training": ["natural"] * 2, "seed": [0, 1],
        ...                   "accuracy": [1.0, 0.99], "gini": [0.9, 0.92]})
        >>> beside_authors(f).loc[("mushroom", "natural"), "authors: gini"]
        0.91
    """
    g = frame.groupby(["data", "training"], sort=False)
    out = pd.concat(
        {
            f"{k}: {stat}": getattr(g[k], stat)()
            for k in ("accuracy", "gini")
            for stat in ("mean", "min", "max")
        },
        axis=1,
    )
    for k in ("accuracy", "gini"):
        out[f"authors: {k}"] = [AUTHORS[d][t][k] for d, t in out.index]
    out.insert(0, "seeds", g["seed"].count())
    return out
