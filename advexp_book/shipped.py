"""How the repository's ``data/woods2019/`` and ``data/boopathy2020/`` were made from the authors' originals.

The originals (Woods et al.'s ``resnet44-*.pt`` and example PNGs; Boopathy et al.'s ``.pkl``
networks) are read by the library's safe importers (:mod:`advexp_lib.woods_import`,
:mod:`advexp_lib.boopathy_import`), each after its SHA-256 check, and saved as advexp
checkpoints that hold no code and name their original; :func:`advexp_lib.published.published_model`
and :func:`~advexp_lib.published.boopathy_model` load them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from advexp_lib.boopathy_import import boopathy_state_dict, read_boopathy_pickle
from advexp_lib.checkpoints import save_checkpoint, write_atomic
from advexp_lib.checks import CheckpointError
from advexp_lib.published import (
    BOOPATHY_FILES,
    BOOPATHY_NETWORKS,
    BOOPATHY_RAW_URL,
    BOOPATHY_SHA256,
    BOOPATHY_SHIPPED_DIR,
    WOODS_RAW_URL,
    WOODS_RECIPE_FILES,
    WOODS_SHA256,
    WOODS_SHIPPED_DIR,
    PublishedFileNotFound,
    boopathy_file_name,
)
from advexp_lib.woods_import import import_woods_checkpoint, read_woods_checkpoint

__all__ = ["ship_woods_networks", "ship_boopathy_networks"]


def ship_woods_networks(source, dest=WOODS_SHIPPED_DIR) -> list[Path]:
    """Convert the published files in folder ``source`` into the code-free copies ``dest`` ships.

    ``source`` holds the four ``resnet44-*.pt`` files and ``example_output/``
    (each checked against :data:`WOODS_SHA256`). Writes ``dest/<recipe>.pt``,
    advexp checkpoints holding the :class:`~advexp_lib.models.PreActResNet`
    state dict (``model``) and ``meta``: the :func:`~advexp_lib.models.build_model`
    arguments that build it (``model_kwargs``), the file's ``training_options``
    (JSON-safe: the pickled stem function becomes its name), ``original`` and
    ``original_sha256``; ``dest/training_options.json`` (the same options, by
    original file); the example PNGs, copied byte for byte; and ``dest/CONVERTED.sha256``,
    the converted files' own SHA-256. Returns the paths written.
    """
    source, dest, written, options = Path(source), Path(dest), [], {}
    for recipe, file in WOODS_RECIPE_FILES.items():
        model = import_woods_checkpoint(_checked_original(source, file, WOODS_SHA256[file], "Woods et al."))
        opts = read_woods_checkpoint(source / file)["training_options"]
        arch = list(opts["arch"])
        options[file] = {**opts, "arch": arch[:1] + ["cifar10_preprocess"] + arch[2:]}
        kwargs = {
            "arch": f"resnet{6 * len(model.stages[0]) + 2}",
            "num_classes": model.classifier.out_channels,
            "in_channels": model.stem.in_channels,
            "activation": "half_huber" if opts["robust_additions"] else "relu",
            "mean": model.normalize.mean.flatten().tolist(),
            "std": model.normalize.std.flatten().tolist(),
        }
        meta = {"model_kwargs": kwargs, "training_options": options[file]}
        written.append(_save_converted(dest / f"{recipe}.pt", model.state_dict(), meta, file, WOODS_RAW_URL))
    text = json.dumps(options, indent=2, sort_keys=True) + "\n"
    written.append(write_atomic(dest / "training_options.json", lambda f: f.write(text.encode())))
    for name, sha in WOODS_SHA256.items():
        if name.startswith("example_output/"):
            content = _checked_original(source, name, sha, "Woods et al.").read_bytes()
            written.append(write_atomic(dest / name, lambda f, c=content: f.write(c)))
    return written + [_write_digests(dest, [p for p in written if p.suffix == ".pt"])]


def ship_boopathy_networks(source, dest=BOOPATHY_SHIPPED_DIR) -> list[Path]:
    """Convert the published pickles in folder ``source`` to code-free ``dest/<dataset>/<name>.pt`` files.

    For every dataset of :data:`BOOPATHY_FILES` and name of :data:`BOOPATHY_NETWORKS`,
    each checkpoint holds the :class:`~advexp_lib.models.SmallGap` state dict
    (``model``), ``original`` (the file name) and ``original_sha256``; each
    original is checked against :data:`BOOPATHY_SHA256` first; ``dest/CONVERTED.sha256`` lists the
    converted files' own SHA-256. Returns the paths written.
    """
    written = []
    for dataset in BOOPATHY_FILES:
        for name in BOOPATHY_NETWORKS:
            file = boopathy_file_name(name, dataset)
            path = _checked_original(Path(source), file, BOOPATHY_SHA256[file], "Boopathy et al.")
            state = boopathy_state_dict(read_boopathy_pickle(path))
            kwargs = {
                "arch": "smallgap",
                "in_channels": state["features.0.weight"].shape[1],
                "num_classes": 10,
            }
            dest_file = Path(dest) / dataset / f"{name}.pt"
            written.append(
                _save_converted(dest_file, state, {"model_kwargs": kwargs}, file, BOOPATHY_RAW_URL)
            )
    return written + [_write_digests(Path(dest), written)]


def _save_converted(path: Path, state: dict, meta: dict, file: str, source: str) -> Path:
    """Write the converted copy of the published ``file``: an advexp checkpoint naming its original."""
    meta = {
        **meta,
        "original": file,
        "original_sha256": {**WOODS_SHA256, **BOOPATHY_SHA256}[file],
        "source": source,
    }
    return save_checkpoint(path, {"model": state, "meta": meta})


def _write_digests(dest: Path, files: list[Path]) -> Path:
    """``dest/CONVERTED.sha256``: the SHA-256 of each converted file (``sha256sum -c`` reads it)."""
    lines = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(dest)}\n" for p in files)
    return write_atomic(dest / "CONVERTED.sha256", lambda f: f.write(lines.encode()))


def _checked_original(folder: Path, file: str, sha: str, authors: str) -> Path:
    """``folder / file``, a published original, after its SHA-256 check."""
    path = folder / file
    if not path.is_file():
        raise PublishedFileNotFound(f"{file}: the published {authors} file is not in {folder}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha:
        raise CheckpointError(
            f"{path}: SHA-256 {digest[:16]}... is not that of the published {file}: refused"
        )
    return path
