"""The published Woods et al. files: found locally, downloaded when online, hash-checked, imported safely."""

import hashlib
import io
import os
import urllib.error
from pathlib import Path

import pytest
import torch

from advexp_lib import CheckpointError, InputError, published, zoo
from advexp_lib.models import HalfHuberReLU, PreActResNet

SHARED = Path(
    os.environ.get("ADVEXP_WOODS_DIR", Path(__file__).resolve().parents[2] / "shared" / "woods_prebuilt")
)
needs_shared = pytest.mark.skipif(
    not (SHARED / "example_output").is_dir(), reason=f"the published Woods et al. files are not at {SHARED}"
)


@pytest.fixture
def fake(monkeypatch, isolated_data):
    """A published 'file' of known bytes, and urlopen replaced by a recorder (no network in tests)."""
    content = b"published bytes"
    monkeypatch.setitem(published.WOODS_SHA256, "fake.pt", hashlib.sha256(content).hexdigest())
    monkeypatch.delenv("ADVEXP_WOODS_DIR", raising=False)
    served, urls = {"bytes": content}, []

    def urlopen(url, timeout):
        urls.append(url)
        if served["bytes"] is None:
            raise urllib.error.URLError("offline")
        return io.BytesIO(served["bytes"])

    monkeypatch.setattr(published.urllib.request, "urlopen", urlopen)
    return content, served, urls


def test_download_is_verified_then_cached_and_reused(fake):
    content, _, urls = fake
    path = published.woods_file("fake.pt")
    assert path.read_bytes() == content and path.parent.name == "woods2019"
    assert urls == [f"{published.WOODS_RAW_URL}/prebuilt/fake.pt"]
    assert published.woods_file("fake.pt") == path and len(urls) == 1  # from the cache now


def test_a_wrong_download_is_refused_and_not_kept(fake):
    _, served, _ = fake
    served["bytes"] = b"something else"
    with pytest.raises(CheckpointError, match="SHA-256 .* not that of the published fake.pt"):
        published.woods_file("fake.pt")
    assert not any(p.name.startswith("fake.pt") for p in published.woods_folders()[-1].glob("*"))


def test_offline_and_absent_names_the_url_and_the_folder(fake):
    _, served, _ = fake
    served["bytes"] = None
    with pytest.raises(published.PublishedFileNotFound) as info:
        published.woods_file("fake.pt")
    message = str(info.value)
    assert f"{published.WOODS_RAW_URL}/prebuilt/fake.pt" in message and "woods2019" in message
    assert "ADVEXP_WOODS_DIR" in message
    with pytest.raises(published.PublishedFileNotFound, match="downloads are off"):
        published.woods_file("fake.pt", download=False)


def test_a_damaged_local_file_is_refused(fake, tmp_path, monkeypatch):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "fake.pt").write_bytes(b"published bytez")
    monkeypatch.setenv("ADVEXP_WOODS_DIR", str(folder))
    with pytest.raises(CheckpointError, match="SHA-256"):
        published.woods_file("fake.pt")
    with pytest.raises(InputError, match="name: unknown value"):
        published.woods_file("resnet56.pt")


@needs_shared
def test_the_published_networks_and_example_images(monkeypatch, isolated_data):
    monkeypatch.setenv("ADVEXP_WOODS_DIR", str(SHARED))
    ex = published.example_images(download=False)
    assert ex["x"].shape == (4, 3, 32, 32) and ex["y"].tolist() == [8, 6, 3, 1]
    assert torch.equal((ex["x"] * 255).round() / 255, ex["x"])  # exact 8-bit pixels
    assert set(ex["reference"]) == {"standard", "adv", "robust", "all"}
    robust = zoo.get_model("cifar10", "robust")  # "auto": the published network, no training
    assert isinstance(robust, PreActResNet) and any(isinstance(m, HalfHuberReLU) for m in robust.modules())
    standard = zoo.get_model("cifar10", "standard", source="woods2019")
    assert torch.equal(standard(ex["x"]).argmax(1), ex["y"])
    with pytest.raises(InputError, match="source: 'woods2019'"):
        zoo.get_model("mnist5k", "standard", source="woods2019")
    with pytest.raises(InputError, match="source: 'woods2019'"):
        zoo.get_model("cifar10", "standard", source="woods2019", num_epochs=1)
