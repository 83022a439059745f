"""What the repository ships under data/: the real test images and the authors' networks, offline.

Every shipped file matches its SHA256SUMS line; the MNIST test set and the
CIFAR-10 JPEG copies load with no ``ADVEXP_*`` variable and no network; where
the originals are beside the project (``../shared``, as in CI), the shipped
copies are byte for byte or tensor for tensor what the originals hold.
"""

import hashlib
import os
from pathlib import Path

import pytest
import torch

from advexp_book import shipped
from advexp_lib import data, published
from advexp_lib.checks import CheckpointError
from advexp_lib.woods_import import import_woods_checkpoint

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
WOODS_ORIGINALS = Path(os.environ.get("ADVEXP_WOODS_DIR", SHARED / "woods_prebuilt"))
DATASETS = SHARED / "datasets"


def _need(path: Path):
    """Skip when an original is absent, except in CI, where its absence is a failure."""
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs {path}")
        pytest.skip(f"{path} is not here")


@pytest.fixture
def offline(monkeypatch, isolated_data):
    """No ADVEXP_* folder variable, the download cache in a temp folder, and no network."""
    for var in ("ADVEXP_DATA_PATH", "ADVEXP_WOODS_DIR", "ADVEXP_BOOPATHY_DIR"):
        monkeypatch.delenv(var, raising=False)

    def refuse(*args, **kwargs):
        raise AssertionError("a shipped file was downloaded")

    monkeypatch.setattr(published.urllib.request, "urlopen", refuse)
    return isolated_data


@pytest.mark.parametrize("folder", ["testsets", "woods2019", "boopathy2020"])
def test_every_shipped_file_matches_its_checksum(folder):
    base = REPO / "data" / folder
    sums = (base / "SHA256SUMS").read_text().splitlines()
    assert sums
    for line in sums:
        digest, name = line.split(maxsplit=1)
        if folder == "testsets" or name.startswith("example_output/"):  # shipped as they are
            assert hashlib.sha256((base / name).read_bytes()).hexdigest() == digest, name
        else:  # an original: the library pins the same digest, which its converted copy names
            assert (published.WOODS_SHA256 | published.BOOPATHY_SHA256)[name] == digest, name
    if folder != "testsets":  # the converted copies' own digests, and every copy listed
        listed = dict(
            reversed(line.split(maxsplit=1)) for line in (base / "CONVERTED.sha256").read_text().splitlines()
        )
        assert sorted(listed) == sorted(str(p.relative_to(base)) for p in base.rglob("*.pt"))
        for name, digest in listed.items():
            assert hashlib.sha256((base / name).read_bytes()).hexdigest() == digest, name


def test_the_mnist_test_set_loads_offline_and_is_the_original(offline):
    x, y, source = data.load_tensors("mnist", "test", download=False, return_source=True)
    assert x.shape == (10000, 1, 28, 28) and y.bincount().tolist()[:2] == [980, 1135]
    assert "MNIST test set" in source and "data/testsets" in source
    _need(DATASETS / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz")
    for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert (data.TESTSETS_DIR / "MNIST" / "raw" / f).read_bytes() == (
            DATASETS / "MNIST" / "raw" / f
        ).read_bytes()


def test_cifar10_falls_back_to_the_shipped_jpeg_copies_and_says_so(offline):
    x, y, source = data.load_tensors("cifar10", "test", download=False, return_source=True)
    assert x.shape == (1000, 3, 32, 32) and y.bincount().tolist() == [100] * 10
    assert "JPEG copies" in source and "1,000" in source
    x5, y5 = data.load_tensors("cifar10", "test", n=5, seed=1776, download=False)
    index = torch.randperm(1000, generator=torch.Generator().manual_seed(1776))[:5]
    assert torch.equal(x5, x[index]) and torch.equal(y5, y[index])
    _need(DATASETS / "cifar10_test_jpg")
    for path in sorted((data.TESTSETS_DIR / data.CIFAR10_COPIES).rglob("*.jpg"))[::97]:
        twin = DATASETS / data.CIFAR10_COPIES / path.parent.name / path.name
        assert path.read_bytes() == twin.read_bytes()  # kept as they are, not re-encoded


def test_the_full_cifar10_wins_over_the_copies(offline, tmp_path, monkeypatch):
    import pickle

    import numpy as np
    import torchvision.datasets.cifar as cifar

    present = lambda self: (Path(self.root) / "cifar-10-batches-py" / "test_batch").is_file()  # noqa: E731
    monkeypatch.setattr(cifar.CIFAR10, "_check_integrity", present)  # not the real files' MD5
    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: Path(path).is_file())
    base = tmp_path / "full" / "cifar-10-batches-py"
    base.mkdir(parents=True)
    batch = {"data": np.zeros((3, 3072), dtype=np.uint8), "labels": [1, 2, 9]}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (base / name).write_bytes(pickle.dumps(batch))
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": list(data.CIFAR10_CLASSES)}))
    monkeypatch.setenv("ADVEXP_DATA_PATH", str(tmp_path / "full"))
    x, y, source = data.load_tensors("cifar10", "test", download=False, return_source=True)
    assert x.shape == (3, 3, 32, 32) and "CIFAR-10 test set" in source and "JPEG" not in source


def test_a_failed_download_falls_back_to_the_copies_and_says_so(offline, monkeypatch):
    import torchvision.datasets.cifar as cifar

    def refuse(self):
        raise OSError("no network")  # what an offline download does

    monkeypatch.setattr(cifar.CIFAR10, "download", refuse)
    x, y, source = data.load_tensors("cifar10", "test", n=4, seed=0, download=True, return_source=True)
    assert x.shape == (4, 3, 32, 32) and "JPEG copies" in source
    with pytest.raises(data.DatasetNotFoundError, match="Download failed"):
        data.load_dataset("cifar10", "train", download=True)  # no copies of the training split


def test_copies_in_foreign_class_folders_are_refused(tmp_path):
    (tmp_path / data.CIFAR10_COPIES / "cats").mkdir(parents=True)
    with pytest.raises(data.DatasetNotFoundError, match="one folder per CIFAR-10 class"):
        data.load_dataset("cifar10", "test", root=tmp_path, download=False)


@pytest.mark.parametrize("recipe", list(published.WOODS_RECIPE_FILES))
def test_the_shipped_woods_networks_compute_exactly_what_the_originals_do(recipe, offline):
    shipped = published.published_model(recipe, download=False)  # data/woods2019, no network
    original_file = WOODS_ORIGINALS / published.WOODS_RECIPE_FILES[recipe]
    _need(original_file)
    original = import_woods_checkpoint(original_file)
    x = torch.rand(6, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(shipped(x), original(x))
    assert shipped.woods_training_options == original.woods_training_options
    for a, b in zip(shipped.state_dict().values(), original.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_the_example_images_ship_byte_for_byte(offline):
    ex = published.example_images(download=False)
    assert ex["x"].shape == (4, 3, 32, 32) and set(ex["reference"]) == set(published.WOODS_RECIPE_FILES)
    _need(WOODS_ORIGINALS / "example_output")
    for name in published.WOODS_SHA256:
        if name.startswith("example_output/"):
            assert (published.WOODS_SHIPPED_DIR / name).read_bytes() == (WOODS_ORIGINALS / name).read_bytes()


def test_shipped_files_are_found_wherever_the_download_cache_moves(offline, tmp_path, monkeypatch):
    monkeypatch.setenv("ADVEXP_DATA_DIR", str(tmp_path / "elsewhere" / "datasets"))
    assert published.published_model("robust", download=False) is not None
    assert published.boopathy_model("int", "cifar10", download=False) is not None
    assert len(data.load_dataset("mnist", "test", download=False)) == 10000


def test_a_converted_woods_file_not_made_from_its_original_is_refused(offline, tmp_path, monkeypatch):
    import shutil

    shutil.copy(published.WOODS_SHIPPED_DIR / "adv.pt", tmp_path / "robust.pt")
    monkeypatch.setattr(published, "WOODS_SHIPPED_DIR", tmp_path)
    with pytest.raises(
        published.CheckpointError, match="not converted from the published resnet44-robust.pt"
    ):
        published.published_model("robust", download=False)


def test_shipping_the_originals_again_gives_data_byte_for_byte(tmp_path):
    """``advexp_book.shipped`` made data/woods2019 and data/boopathy2020: run on the originals again, it
    writes the same converted files (their CONVERTED.sha256), options and example PNGs."""
    boopathy_originals = Path(os.environ.get("ADVEXP_BOOPATHY_DIR", SHARED / "boopathy_prebuilt"))
    _need(WOODS_ORIGINALS)
    _need(boopathy_originals)
    written = shipped.ship_woods_networks(WOODS_ORIGINALS, tmp_path / "woods2019")
    written += shipped.ship_boopathy_networks(boopathy_originals, tmp_path / "boopathy2020")
    for folder in ("woods2019", "boopathy2020"):
        assert (tmp_path / folder / "CONVERTED.sha256").read_bytes() == (
            REPO / "data" / folder / "CONVERTED.sha256"
        ).read_bytes()
    for path in written:
        if path.suffix in (".png", ".json"):
            assert path.read_bytes() == (REPO / "data" / path.relative_to(tmp_path)).read_bytes(), path


def test_shipping_refuses_an_original_that_is_not_the_published_file(tmp_path):
    """One changed byte in the first original: refused by its SHA-256, and nothing is written."""
    first = published.boopathy_file_name(published.BOOPATHY_NETWORKS[0], "mnist")
    original = Path(os.environ.get("ADVEXP_BOOPATHY_DIR", SHARED / "boopathy_prebuilt")) / first
    _need(original)
    content = bytearray(original.read_bytes())
    content[-1] ^= 1
    (tmp_path / "originals").mkdir()
    (tmp_path / "originals" / first).write_bytes(bytes(content))
    with pytest.raises(CheckpointError, match="SHA-256 .* is not that of the published"):
        shipped.ship_boopathy_networks(tmp_path / "originals", tmp_path / "out")
    assert not (tmp_path / "out").exists()
