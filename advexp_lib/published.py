"""The networks the papers' authors published: Woods et al.'s ResNet-44s, Boopathy et al.'s small CNNs.

- Woods et al. (2019), wwoods/adversarial-explanations-cifar (MIT license): ``prebuilt/resnet44-*.pt``, one
  ResNet-44 per recipe (a local folder holds them at its top), and ``example_output/``: 8-bit PNGs of CIFAR-10
  test images 2, 5, 8, 9 and of the reference's explanations (``attacks.AE_PAPER``) toward their true classes.
- Boopathy et al. (2020), AkhilanB/Proper-Interpretability (MIT license): the "Small" GAP networks
  ``networks/{mnist_smallgap_<name>_100,cifar_smallgap_<name>_200}.pkl``, names in :data:`BOOPATHY_NETWORKS`.

From ``$ADVEXP_WOODS_DIR`` / ``$ADVEXP_BOOPATHY_DIR`` (originals), else the shipped code-free copies in
:data:`WOODS_SHIPPED_DIR` / :data:`BOOPATHY_SHIPPED_DIR` (with the LICENSE, originals' SHA-256, Woods' PNGs),
else the download cache by the dataset folder, else :data:`WOODS_RAW_URL` / :data:`BOOPATHY_RAW_URL`.
Originals must match their pinned SHA-256; restricted importers never run their pickled code.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from .boopathy_import import import_boopathy_network
from .checkpoints import load_checkpoint, load_model_state, write_atomic
from .checks import AdvexpError, CheckpointError, check_choice
from .data import data_root
from .models import build_model
from .woods_import import import_woods_checkpoint

__all__ = [
    "WOODS_RAW_URL",
    "WOODS_SHA256",
    "WOODS_RECIPE_FILES",
    "WOODS_PUBLISHED_CIFAR10",
    "EXAMPLE_TEST_INDICES",
    "EXAMPLE_LABELS",
    "EXAMPLE_NETWORK_ORDER",
    "WOODS_SHIPPED_DIR",
    "PublishedFileNotFound",
    "woods_folders",
    "woods_file",
    "published_model",
    "published_models",
    "example_images",
    "BOOPATHY_RAW_URL",
    "BOOPATHY_NETWORKS",
    "BOOPATHY_FILES",
    "BOOPATHY_SHA256",
    "BOOPATHY_SHIPPED_DIR",
    "boopathy_file_name",
    "boopathy_model",
    "boopathy_models",
]

WOODS_RAW_URL = "https://github.com/wwoods/adversarial-explanations-cifar/raw/master"
WOODS_RECIPE_FILES = {
    "standard": "resnet44-standard.pt",
    "adv": "resnet44-adv-train.pt",
    "robust": "resnet44-robust.pt",
    "all": "resnet44-all.pt",
}
# The statistics that the README of the reference repository gives for its four published CIFAR-10
# ResNet-44 files, keyed by our recipe names: test accuracy, Attack ARA, BTR ARA. The README says these
# networks "correspond with, but are not the same as" the paper's N1-N4, so they are the published
# networks' figures, not the paper's table.
WOODS_PUBLISHED_CIFAR10 = {
    "standard": {"file": "resnet44-standard.pt", "accuracy": 0.938, "attack_ara": 0.0013, "btr_ara": 0.0015},
    "adv": {"file": "resnet44-adv-train.pt", "accuracy": 0.864, "attack_ara": 0.0100, "btr_ara": 0.0157},
    "robust": {"file": "resnet44-robust.pt", "accuracy": 0.676, "attack_ara": 0.0142, "btr_ara": 0.0395},
    "all": {"file": "resnet44-all.pt", "accuracy": 0.679, "attack_ara": 0.0188, "btr_ara": 0.0414},
}
EXAMPLE_TEST_INDICES = (2, 5, 8, 9)  # CIFAR-10 test images behind example_output/prebuilt_orig_<j>.png
EXAMPLE_LABELS = (8, 6, 3, 1)  # ship, frog, cat, automobile
EXAMPLE_NETWORK_ORDER = ("standard", "adv", "all", "robust")  # i in example_output/prebuilt_<i>_<j>.png
WOODS_SHA256 = {
    "resnet44-standard.pt": "cdf4b3ba2bb7495f957c8fe01ee3ac4e37ebb24532344ccf4413b19645fa7d21",
    "resnet44-adv-train.pt": "31f9b73ff60392c917fb61b591c1a75e0ea53c66859b3ced41eefce3b2512852",
    "resnet44-robust.pt": "432592630184de6acb35765a2949f46cca8e0ed3f29b7e337e98c8671072ff43",
    "resnet44-all.pt": "ff8609712e0cfe96f75b7bac4483d2103b18b86d61c70d51b959bc680b52a55f",
    "example_output/prebuilt_orig_0.png": "3873d7fb73cd351df3244c6a16cd52eef264700093746e9ac7f8831b3ce6d2e3",
    "example_output/prebuilt_orig_1.png": "d31b1901b24199172f2f652d0b5d6661a4e346a8c1d6b436e77784e93a1d9ad7",
    "example_output/prebuilt_orig_2.png": "d77efc76eaf52c5f4f9b76e1e313f462e7426bfebb212e431b5e10fdf7e91128",
    "example_output/prebuilt_orig_3.png": "5da75a70e31bfb9e28e6e5d82a4f1045227da16a82e359e27bd5a53f74a49d8d",
    "example_output/prebuilt_0_0.png": "95cf659559334d2751b1e1d1f2c8796a4af5bbc7f2520112d9e66fffa28a2d4c",
    "example_output/prebuilt_0_1.png": "7033cd05c7cf54a53cf3271427a81b8c2fc831560aeaba315a8e3094df155491",
    "example_output/prebuilt_0_2.png": "1de29470d474186ff3fd45b45029581e602bbb070dce559d902dff59e400b50e",
    "example_output/prebuilt_0_3.png": "738c46bd1d0b4834eaae6014dd62711357d03572f2e25477bd0e20952e47e32d",
    "example_output/prebuilt_1_0.png": "c0239ead86f372647ab01e98c51b27453f4b8351fe203ec2e0e7b824ee98d638",
    "example_output/prebuilt_1_1.png": "9862527fb9e55293f71f862590fa3880c1ac6e2f99829c9121db4e764704dc24",
    "example_output/prebuilt_1_2.png": "d7014adee84e719c3836f5c8da271c119e21f157635c12ff5f19ce5436b2104e",
    "example_output/prebuilt_1_3.png": "c5e2547b7d60b80d5f7bf508577d32925d4fdf3f1699170ba257e1dbfc5c55b9",
    "example_output/prebuilt_2_0.png": "ea3c2fa7446613c8bb66c357a503ec4cf9e21bb37ca069c5872581cdc8570c18",
    "example_output/prebuilt_2_1.png": "dfba49d6915fcc1e417250f4520218cd53453122cf9062ab366d7e8c025578fc",
    "example_output/prebuilt_2_2.png": "9a12a98b9de141b7bfb72b3a8c0caa973eeae7f8482b9a552a65ec9a048efda4",
    "example_output/prebuilt_2_3.png": "fd2078784450dd4304ce377e894abd67d27861051c58f350d69a7e6819b7f115",
    "example_output/prebuilt_3_0.png": "ffff9b9c4605b2864397ee441e49e74c7f5b1076411d0f4df1751e8769e00723",
    "example_output/prebuilt_3_1.png": "7ca85b5ac7a51ae549e00dd05051a9facb1f287c83348d00250481cce976dbc8",
    "example_output/prebuilt_3_2.png": "89b70a7885a6ecae8a9e5b6dfa76a1f60528a73904cb5156e96b45e64a01b97a",
    "example_output/prebuilt_3_3.png": "c4684a513e47f4a197a857ebbe52ed4d7d9856c94d3b0355914e1b1c778b8626",
}


WOODS_SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "woods2019"  # tracked in git

BOOPATHY_RAW_URL = "https://github.com/AkhilanB/Proper-Interpretability/raw/master/networks"
BOOPATHY_NETWORKS = ("normal", "adv", "trades", "int", "int2", "intone", "intadv", "int2adv", "ig", "igsum")
BOOPATHY_FILES = {"mnist": "mnist_smallgap_{}_100.pkl", "cifar10": "cifar_smallgap_{}_200.pkl"}
BOOPATHY_SHA256 = {
    "mnist_smallgap_normal_100.pkl": "fe935d6dfd93798b5fac071c4c21de2e74a9fb36d0af18315dbf600ea7b31fcf",
    "mnist_smallgap_adv_100.pkl": "e657ccbfff6800ad8484b10c3edf7fbe736d69e5e4b4838ea8368e99c0ef1382",
    "mnist_smallgap_trades_100.pkl": "6e89bc11e599eba197f53182d5c0f5bfc8ad1fe2eb242029be41b2a172a53206",
    "mnist_smallgap_int_100.pkl": "b568fd30a8c573a621a57827030699700849da4f177fa5ee51ea47e4952f609a",
    "mnist_smallgap_int2_100.pkl": "24d501a427c62588ca564aa5fc93699a9da47f5fb0dfa0a32ea97362eca16e8a",
    "mnist_smallgap_intone_100.pkl": "b2833829f6e9d511dfe0a91244610d49769bca0d994fe96581a837e261648dff",
    "mnist_smallgap_intadv_100.pkl": "b11c053e9c6cb4d9f0c5d7607a0db7b3d4642d31b0ff3ffe38f6376407c7d51a",
    "mnist_smallgap_int2adv_100.pkl": "2e969d57ea2f2234d007ab044049e3d224968a929db461708f578eb2eb367528",
    "mnist_smallgap_ig_100.pkl": "ae2b53694e01edc0a45423b40fb2b9b17636fa07b3ae292d3ce72da883c6d323",
    "mnist_smallgap_igsum_100.pkl": "ded72f60aa12b8ff776e635b7c2d965422690761ba09825371c93aa27051fea4",
    "cifar_smallgap_normal_200.pkl": "84a9be39fbb33e55496331e622317a494f5985d82a04d98810de8260c08d4b6f",
    "cifar_smallgap_adv_200.pkl": "7f66b584ffc3112701f36501a50600fea012727c468528b54fb704bf156733fb",
    "cifar_smallgap_trades_200.pkl": "a375f0293c6de162d0c407fe906e96039b451d777f2160d05e75c24ca32e8d22",
    "cifar_smallgap_int_200.pkl": "9d50422f114ca1fcbe2d9e36bad8ece2df325483112d11b8e0d75fcba3172da0",
    "cifar_smallgap_int2_200.pkl": "23329eef54448d04e916d48beaab04da5528d243a732df4328ead9efb356dbb7",
    "cifar_smallgap_intone_200.pkl": "ee55a58b4669e0070489311b5dc95ab8b7086db2a85328d53028d15f5d040006",
    "cifar_smallgap_intadv_200.pkl": "b0edfbfdf2393250905223a155c8aef23687b36d53d07005cbdbb4e84bcad405",
    "cifar_smallgap_int2adv_200.pkl": "abc1c7cbdb3f1cce3c6065edf245ae009540c36c2202adab30a65dd81cca9ff5",
    "cifar_smallgap_ig_200.pkl": "9176a7aec5b21b3bb8787ea990098fb10d568e0c2a942f1b581d81aa11d2968e",
    "cifar_smallgap_igsum_200.pkl": "0bd37610ee64c2a0551bd9cc17b342013fbcd18997645fa990943d716d08f45a",
}
BOOPATHY_SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "boopathy2020"  # tracked in git


class PublishedFileNotFound(AdvexpError, FileNotFoundError):
    """A published file is absent locally and could not be downloaded."""


def woods_folders() -> list[Path]:
    """Where :func:`woods_file` looks, in order: ``$ADVEXP_WOODS_DIR``, :data:`WOODS_SHIPPED_DIR`, cache."""
    env = os.environ.get("ADVEXP_WOODS_DIR")
    cache = data_root().parent / "woods2019"
    return list(dict.fromkeys(([Path(env).expanduser()] if env else []) + [WOODS_SHIPPED_DIR, cache]))


def woods_file(name: str, *, download: bool = True) -> Path:
    """Local path of the published file ``name`` (a key of :data:`WOODS_SHA256`), checked by its SHA-256.

    Looks in :func:`woods_folders`; else, with ``download``, fetches ``<WOODS_RAW_URL>/prebuilt/<name>``
    (networks) or ``<WOODS_RAW_URL>/<name>`` (PNGs) into the cache, verifying the hash before keeping it.

    Raises:
        PublishedFileNotFound: absent and not downloadable; the message names the URL and the folders.
        CheckpointError: a file whose SHA-256 is not the published one.
    """
    check_choice(name, "name", WOODS_SHA256)
    url = f"{WOODS_RAW_URL}/{name}" if "/" in name else f"{WOODS_RAW_URL}/prebuilt/{name}"
    return _fetch(
        name, WOODS_SHA256[name], woods_folders(), url, "Woods et al.", "ADVEXP_WOODS_DIR", download
    )


def _fetch(name, sha, folders, url, authors, env, download) -> Path:
    """``name`` from the first of ``folders`` holding it, else downloaded from ``url`` into the last one."""
    for folder in folders:
        path = folder / name
        if path.is_file():
            _check_sha(path.read_bytes(), sha, name, path)
            return path
    where = " or ".join(str(f) for f in folders)

    def missing(why):
        return (
            f"{name}: the published {authors} file is not here ({why}). Download {url} "
            f"into {where} (or set {env} to a folder holding it)."
        )

    if not download:
        raise PublishedFileNotFound(missing("downloads are off"))
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            content = response.read()
    except (urllib.error.URLError, OSError) as err:
        raise PublishedFileNotFound(missing(f"download failed: {err}")) from None
    _check_sha(content, sha, name, url)
    cache = folders[-1] / name
    write_atomic(cache, lambda f: f.write(content))
    return cache


def published_model(recipe: str, *, device="cpu", download: bool = True) -> nn.Module:
    """Woods et al.'s published CIFAR-10 ResNet-44 for ``recipe`` (standard, adv, robust, all), eval mode.

    A :class:`~advexp_lib.models.PreActResNet` on [0, 1] pixels; ``model.woods_training_options``: options.

    Raises:
        PublishedFileNotFound: nowhere here and not downloadable.
        CheckpointError: another SHA-256, or a converted file not made from the published original.
    """
    check_choice(recipe, "recipe", WOODS_RECIPE_FILES)
    file = WOODS_RECIPE_FILES[recipe]
    env = os.environ.get("ADVEXP_WOODS_DIR")
    shipped = WOODS_SHIPPED_DIR / f"{recipe}.pt"
    if (not env or not (Path(env).expanduser() / file).is_file()) and shipped.is_file():
        model, meta = _shipped_model(shipped, file, WOODS_SHA256[file], device)
        model.woods_training_options = {k: v for k, v in meta["training_options"].items() if k != "arch"}
        return model
    return import_woods_checkpoint(woods_file(file, download=download), device=device)


def published_models(*, device="cpu", download: bool = True) -> dict:
    """{recipe: :func:`published_model`} for the four recipes, in :data:`EXAMPLE_NETWORK_ORDER`."""
    return {r: published_model(r, device=device, download=download) for r in EXAMPLE_NETWORK_ORDER}


def example_images(*, download: bool = True) -> dict:
    """The reference's example images and its own explanations of them.

    Returns:
        dict: ``x`` the four CIFAR-10 test images (4, 3, 32, 32) in [0, 1] (exact), ``y`` their classes,
        ``indices`` their test indices, ``reference`` {recipe: (4, 3, 32, 32) explanations} (8-bit, as saved).
    """

    def read(name):
        with Image.open(woods_file(name, download=download)) as image:
            return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).float().div(255)

    x = torch.stack([read(f"example_output/prebuilt_orig_{j}.png") for j in range(4)])
    reference = {
        recipe: torch.stack([read(f"example_output/prebuilt_{i}_{j}.png") for j in range(4)])
        for i, recipe in enumerate(EXAMPLE_NETWORK_ORDER)
    }
    return {
        "x": x,
        "y": torch.tensor(EXAMPLE_LABELS),
        "indices": EXAMPLE_TEST_INDICES,
        "reference": reference,
    }


def _shipped_model(path: Path, file: str, sha: str, device) -> tuple[nn.Module, dict]:
    """(model in eval mode, meta) of the converted copy at ``path``; refused unless made from ``file``."""
    ckpt = load_checkpoint(path)
    meta = ckpt.get("meta") if isinstance(ckpt.get("meta"), dict) else {}
    if meta.get("original") != file or meta.get("original_sha256") != sha:
        raise CheckpointError(f"checkpoint: {path} was not converted from the published {file}")
    model = build_model(**meta["model_kwargs"])
    load_model_state(model, ckpt.get("model"), path)
    return model.to(device).eval(), meta


def _original(folder: Path, file: str, sha: str, authors: str) -> Path:
    """``folder / file``, a published original, after its SHA-256 check."""
    path = folder / file
    if not path.is_file():
        raise PublishedFileNotFound(f"{file}: the published {authors} file is not in {folder}")
    _check_sha(path.read_bytes(), sha, file, path)
    return path


def _check_sha(content: bytes, sha: str, name: str, where) -> None:
    digest = hashlib.sha256(content).hexdigest()
    if digest != sha:
        raise CheckpointError(
            f"{where}: SHA-256 {digest[:16]}... is not that of the published {name} "
            f"({sha[:16]}...): refused (damaged, or another file)"
        )


# ------------------------------------------------------------------ Boopathy et al. (2020)


def boopathy_file_name(name: str, dataset: str = "mnist") -> str:
    """The published file of ``name`` (:data:`BOOPATHY_NETWORKS`) for ``dataset`` ("mnist" or "cifar10").

    Examples:
        >>> boopathy_file_name("int"), boopathy_file_name("int", "cifar10")
        ('mnist_smallgap_int_100.pkl', 'cifar_smallgap_int_200.pkl')
    """
    check_choice(name, "name", BOOPATHY_NETWORKS)
    check_choice(dataset, "dataset", BOOPATHY_FILES)
    return BOOPATHY_FILES[dataset].format(name)


def boopathy_model(name: str, dataset: str = "mnist", *, device="cpu", download: bool = True) -> nn.Module:
    """Boopathy et al.'s published network ``name`` for ``dataset``: a :class:`~advexp_lib.models.SmallGap`.

    Takes (N, 1, 28, 28) MNIST or (N, 3, 32, 32) CIFAR-10 pixels in [0, 1] (as the reference did); eval
    mode. Found as the module says; the shipped copy is :data:`BOOPATHY_SHIPPED_DIR` ``/<dataset>/<name>.pt``.

    Raises:
        PublishedFileNotFound: nowhere here and not downloadable.
        CheckpointError: another SHA-256, or a converted file not made from the published original.
    """
    file = boopathy_file_name(name, dataset)
    env = os.environ.get("ADVEXP_BOOPATHY_DIR")
    if env and (Path(env).expanduser() / file).is_file():
        path = _original(Path(env).expanduser(), file, BOOPATHY_SHA256[file], "Boopathy et al.")
        return import_boopathy_network(path, device=device)
    shipped = BOOPATHY_SHIPPED_DIR / dataset / f"{name}.pt"
    if shipped.is_file():
        return _shipped_model(shipped, file, BOOPATHY_SHA256[file], device)[0]
    cache = data_root().parent / "boopathy2020"
    url = f"{BOOPATHY_RAW_URL}/{file}"
    path = _fetch(
        file, BOOPATHY_SHA256[file], [cache], url, "Boopathy et al.", "ADVEXP_BOOPATHY_DIR", download
    )
    return import_boopathy_network(path, device=device)


def boopathy_models(
    names=BOOPATHY_NETWORKS, dataset: str = "mnist", *, device="cpu", download: bool = True
) -> dict:
    """{name: :func:`boopathy_model`} for ``names`` (default all of :data:`BOOPATHY_NETWORKS`)."""
    return {n: boopathy_model(n, dataset, device=device, download=download) for n in names}
