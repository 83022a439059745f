import pytest
import torch

from advexp_lib import InputError, recipes, zoo
from advexp_lib.checkpoints import load_checkpoint


def test_config_hash_changes_with_everything_that_shapes_the_weights():
    base = zoo.recipe("mnist5k", "robust")
    assert zoo.config_hash(base) == zoo.config_hash(zoo.recipe("mnist5k", "robust"))
    from dataclasses import replace

    variants = [
        zoo.recipe("mnist5k", "robust", seed=1),
        zoo.recipe("mnist5k", "robust", lr=1e-3),
        replace(base, version=base.version + 1),
        replace(base, activation="relu"),
        replace(base, loss_term=(base.loss_term[0], {**base.loss_term[1], "target": 0.31})),
    ]
    hashes = {zoo.config_hash(v) for v in variants}
    assert len(hashes) == len(variants) and zoo.config_hash(base) not in hashes


def test_get_model_trains_once_then_serves_the_cache(isolated_data, monkeypatch):
    m1 = zoo.get_model("mnist5k", "standard", num_epochs=1, progress=False)
    assert not m1.training
    files = list(zoo.zoo_dir().glob("mnist5k-standard-*.pt"))
    assert (
        len(files) == 1 and zoo.config_hash(zoo.recipe("mnist5k", "standard", num_epochs=1)) in files[0].name
    )
    monkeypatch.setattr(zoo, "train_recipe", lambda *a, **k: pytest.fail("trained again"))
    m2 = zoo.get_model("mnist5k", "standard", num_epochs=1, progress=False)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)


def test_unknown_recipe_and_override_are_named():
    with pytest.raises(InputError, match="recipe: unknown value 'robustest'.*standard"):
        zoo.recipe("mnist5k", "robustest")
    with pytest.raises(InputError, match="overrides: unknown TrainConfig field"):
        zoo.recipe("mnist5k", "standard", epochs=3)


def _today(meta: dict):
    """The recipe a shipped file claims, rebuilt from today's table: the table's recipe, or its variant
    with the stored differences (so a version bump in the table makes a stored variant stale too)."""
    stored = meta["recipe"]
    table = zoo.recipe(stored["dataset"], stored["name"])
    now = table.describe()
    train = {k: v for k, v in stored["train"].items() if v != now["train"][k]}
    hooks = {}
    for field in ("loss_term", "input_transform"):
        if stored[field] is not None and stored[field][1] != now[field][1]:
            hooks[field] = {k: v for k, v in stored[field][1].items() if v != now[field][1].get(k)}
    return recipes.variant(table, **hooks, **train)


def test_shipped_checkpoints_match_their_recipes():
    shipped = sorted(zoo.SHIPPED_DIR.glob("*.pt"))
    for path in shipped:
        ckpt = load_checkpoint(path)
        r = _today(ckpt["meta"])
        h = zoo.config_hash(r)
        assert ckpt["meta"]["config_hash"] == h, f"{path.name} is stale: retrain it"
        table = h == zoo.config_hash(zoo.recipe(r.dataset, r.name))
        assert path.name == (f"{r.dataset}-{r.name}.pt" if table else f"{r.dataset}-{r.name}-{h}.pt")
        assert ckpt["epoch"] == r.train.num_epochs
    assert {p.stem for p in shipped} >= {f"mnist5k-{r}" for r in ("standard", "adv", "robust", "all")}


def test_variants_change_the_hash_and_the_shipped_name(isolated_data):
    base = zoo.recipe("mnist5k", "l1")
    v = recipes.variant(base, loss_term={"lambda_": 2e-3}, seed=4)
    assert v.loss_term[1]["lambda_"] == 2e-3 and v.train.seed == 4 and v.name == "l1"
    assert zoo.config_hash(v) != zoo.config_hash(base)
    assert recipes.variant(base) == base
    with pytest.raises(InputError, match="overrides: unknown TrainConfig"):
        recipes.variant(base, epochs=3)
    with pytest.raises(InputError, match="input_transform: recipe 'l1' has none"):
        recipes.variant(base, input_transform={"eps": 0.1})


def test_cache_built_for_another_architecture_is_retrained_not_served(isolated_data, monkeypatch):
    zoo.get_model("mnist5k", "standard", num_epochs=1, progress=False)
    import advexp_lib.models as models

    original = models.SmallCNN.__init__

    def wider(self, **kw):  # the class changes in code, the recipe (and hash) does not
        original(self, **kw)
        self.classifier[1] = torch.nn.Linear(self.classifier[1].in_features, 64)
        self.classifier[3] = torch.nn.Linear(64, self.classifier[3].out_features)

    monkeypatch.setattr(models.SmallCNN, "__init__", wider)
    trained = []
    real = zoo.train_recipe
    monkeypatch.setattr(zoo, "train_recipe", lambda *a, **k: trained.append(1) or real(*a, **k))
    model = zoo.get_model("mnist5k", "standard", num_epochs=1, progress=False)
    assert trained == [1] and model.classifier[1].out_features == 64


def test_train_recipe_takes_its_data_from_the_caller(isolated_data, monkeypatch):
    """train_data/test_data replace the recipe's splits (the tuning sweep's held-out protocol)."""
    from advexp_lib import data

    train_ds = data.TensorImageDataset(*data.load_tensors("mnist5k", "train", n=128, seed=0))
    test_ds = data.TensorImageDataset(torch.zeros(10, 1, 28, 28), torch.arange(10))  # blank images
    seen, real = [], zoo.train
    monkeypatch.setattr(
        zoo,
        "train",
        lambda model, ds, cfg, **kw: seen.append((ds, kw["test_data"])) or real(model, ds, cfg, **kw),
    )
    r = zoo.recipe("mnist5k", "standard", num_epochs=1)
    model, history = zoo.train_recipe(r, progress=False, train_data=train_ds, test_data=test_ds)
    assert seen == [(train_ds, test_ds)]
    assert history[-1]["test_accuracy"] == pytest.approx(0.1)  # one class for every blank image
    assert not list(zoo.zoo_dir().glob("*.pt"))  # no checkpoint asked for, none written
