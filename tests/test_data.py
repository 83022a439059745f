import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from advexp_lib import InputError
from advexp_lib.data import (
    DatasetNotFoundError,
    TensorImageDataset,
    dataset_info,
    load_dataset,
    load_tensors,
    stratified_split,
)


def test_mnist5k_split_is_stratified_disjoint_and_fixed():
    tr, te = load_dataset("mnist5k", "train"), load_dataset("mnist5k", "test")
    assert (len(tr), len(te)) == (4000, 1000)
    assert tr.y.bincount().tolist() == [400] * 10 and te.y.bincount().tolist() == [100] * 10
    assert tr.x.dtype == torch.float32 and tr.x.shape[1:] == (1, 28, 28)
    assert 0.0 <= tr.x.min() and tr.x.max() == 1.0
    # no test image appears in the training split
    train_rows = {r.numpy().tobytes() for r in tr.x.flatten(1)}
    assert not any(r.numpy().tobytes() in train_rows for r in te.x.flatten(1))
    assert tr.classes == tuple(str(i) for i in range(10))


def test_load_tensors_seeded_subset():
    x1, y1 = load_tensors("mnist5k", "test", n=50, seed=1776)
    x2, y2 = load_tensors("mnist5k", "test", n=50, seed=1776)
    x3, _ = load_tensors("mnist5k", "test", n=50, seed=1)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
    assert y1.dtype == torch.int64 and x1.shape == (50, 1, 28, 28)
    with pytest.raises(InputError, match="n: asked for 1001"):
        load_tensors("mnist5k", "test", n=1001)


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(InputError, match="dataset: unknown value 'mnist6k'.*mnist5k.*cifar10"):
        load_dataset("mnist6k")
    with pytest.raises(InputError, match="split"):
        load_dataset("mnist5k", "val")


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.full((2, 1, 4, 4), 1.5), r"x: pixels must lie in \[0, 1\]"),
        (torch.full((2, 1, 4, 4), float("nan")), "x: contains NaN"),
        (torch.zeros(2, 4, 4), "x: expected shape N x C x H x W"),
        (torch.zeros(2, 1, 4, 4, dtype=torch.uint8), "x: expected a floating-point"),
    ],
)
def test_tensor_dataset_rejects_bad_images(bad, match):
    with pytest.raises((InputError, TypeError), match=match):
        TensorImageDataset(bad, torch.zeros(bad.shape[0], dtype=torch.int64), ("a", "b"))


def test_tensor_dataset_rejects_bad_labels():
    x = torch.zeros(3, 1, 4, 4)
    with pytest.raises(InputError, match=r"y: labels must lie in \[0, 1\]"):
        TensorImageDataset(x, torch.tensor([0, 1, 2]), ("a", "b"))
    with pytest.raises(InputError, match=r"y: expected shape \(3,\)"):
        TensorImageDataset(x, torch.tensor([0, 1]), ("a", "b"))


def _write_idx(path, array, gz=False):
    magic = {3: 0x0803, 1: 0x0801}[array.ndim]
    payload = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    (gzip.open if gz else open)(str(path) + (".gz" if gz else ""), "wb").write(payload)


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_torchvision_mnist_formats_from_idx_files(tmp_path, name, folder):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 4)):
        _write_idx(
            tmp_path / folder / "raw" / f"{prefix}-images-idx3-ubyte",
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        )
        _write_idx(
            tmp_path / folder / "raw" / f"{prefix}-labels-idx1-ubyte",
            rng.integers(0, 10, (n,), dtype=np.uint8),
        )
    x, y = load_tensors(name, "test", root=tmp_path, download=False)
    assert x.shape == (4, 1, 28, 28) and y.dtype == torch.int64 and 0 <= x.min() and x.max() <= 1
    assert len(load_dataset(name, "train", root=tmp_path, download=False)) == 6
    assert load_dataset(name, "train", root=tmp_path, download=False).classes == dataset_info(name).classes


def test_torchvision_cifar10_format_from_pickled_batches(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar.CIFAR10, "_check_integrity", lambda self: True)  # md5 of the real files
    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8), "labels": [1, 2, 9]}
        (base / name).write_bytes(pickle.dumps(batch))
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": list(dataset_info("cifar10").classes)}))
    x, y = load_tensors("cifar10", "train", root=tmp_path, download=False)
    assert x.shape == (15, 3, 32, 32) and y.tolist()[:3] == [1, 2, 9]
    aug = load_dataset("cifar10", "train", root=tmp_path, download=False, augment=True)
    assert aug[0][0].shape == (3, 32, 32)


def test_offline_absent_dataset_names_expected_location(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"cifar-10-batches-py"):
        load_dataset("cifar10", "train", root=tmp_path, download=False)
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "MNIST" / "raw")):
        load_dataset("mnist", "test", root=tmp_path, download=False)


def test_imagefolder(tmp_path):
    from PIL import Image

    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            d = tmp_path / split / cls
            d.mkdir(parents=True)
            for i in range(2):
                Image.fromarray(np.full((8, 8, 3), 40 * i, dtype=np.uint8)).save(d / f"{i}.png")
    ds = load_dataset(f"imagefolder:{tmp_path}", "test")
    assert ds.classes == ["cat", "dog"] and len(ds) == 4
    info = dataset_info(f"imagefolder:{tmp_path}")
    assert (info.channels, info.size, info.num_classes) == (3, 8, 2)
    with pytest.raises(InputError, match="not a directory"):
        load_dataset(f"imagefolder:{tmp_path / 'nope'}")


def test_stratified_split_picks_per_class_and_keeps_the_rest():
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0, 1])
    picked, rest = stratified_split(y, 2, 3, torch.Generator().manual_seed(0))
    assert torch.bincount(y[picked], minlength=3).tolist() == [2, 2, 2]
    assert sorted(torch.cat([picked, rest]).tolist()) == list(range(len(y)))  # disjoint, nothing lost
    again = stratified_split(y, 2, 3, torch.Generator().manual_seed(0))
    assert torch.equal(picked, again[0]) and torch.equal(rest, again[1])  # the generator decides
