"""What a path holds: which files give the architecture and which give each epoch's weights.

Accepted: one `.keras` or `.onnx` file; one `.weights.h5` or TF2 checkpoint (`ckpt-N.index` or its
prefix) with an architecture (`.keras` or `model.to_json()` `.json`) beside it; or a folder of
per-epoch checkpoints of one of those kinds (an ONNX file is its own architecture). Epoch numbers come from the file names (the number after
"epoch", else the first number — ModelCheckpoint's `{epoch}`; `ckpt-N`'s N for TF2 checkpoints);
names without usable numbers are taken in natural order as 0, 1, 2, ...
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import NNVisError
from . import tf_checkpoint

KERAS, WEIGHTS_H5, TF2, ONNX = "keras", "weights.h5", "tf2", "onnx"


@dataclass
class EpochSource:
    epoch: int
    path: Path          # the file (for TF2: the checkpoint prefix, without .index)
    kind: str           # KERAS, WEIGHTS_H5 or TF2


@dataclass
class Discovery:
    architecture: Path
    epochs: list[EpochSource]


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def epoch_number(name: str) -> int | None:
    m = re.search(r"epoch[^0-9a-z]*(\d+)", name, re.IGNORECASE)
    if m:
        return int(m.group(1))
    m = re.search(r"(\d+)", name)
    return int(m.group(1)) if m else None


def _numbered(paths: list[Path], kind: str) -> list[EpochSource]:
    """Epochs from file names; natural order when names give no distinct numbers."""
    paths = sorted(paths, key=lambda p: _natural_key(p.name))
    numbers = [epoch_number(p.name.split(".")[0] if kind != KERAS else p.stem) for p in paths]
    if None in numbers or len(set(numbers)) != len(numbers):
        numbers = list(range(len(paths)))
    return sorted((EpochSource(n, p, kind) for n, p in zip(numbers, paths)), key=lambda s: s.epoch)


def _architecture_beside(folder: Path, exclude: set[Path] = frozenset()) -> Path:
    candidates = sorted((p for p in folder.iterdir()
                         if p.suffix in (".keras", ".json") and p not in exclude
                         and p.name not in ("manifest.json",)), key=lambda p: _natural_key(p.name))
    kerases = [p for p in candidates if p.suffix == ".keras"]
    if kerases:
        return kerases[0]
    if candidates:
        return candidates[0]
    raise NNVisError(f"{folder}: no architecture found — put the model's .keras file or its "
                     "model.to_json() .json next to the weights")


def discover(path) -> Discovery:
    path = Path(path)
    if path.is_dir():
        return _discover_folder(path)
    tf_prefix = _tf_prefix(path)
    if tf_prefix is not None:
        number = epoch_number(tf_prefix.name)
        return Discovery(_architecture_beside(tf_prefix.parent),
                         [EpochSource(number if number is not None else 0, tf_prefix, TF2)])
    if not path.exists():
        raise NNVisError(f"{path}: no such file or folder")
    if path.name.endswith(".weights.h5"):
        return Discovery(_architecture_beside(path.parent), _numbered([path], WEIGHTS_H5))
    if path.suffix == ".keras":
        return Discovery(path, _numbered([path], KERAS))
    if path.suffix == ".onnx":
        return Discovery(path, _numbered([path], ONNX))
    raise NNVisError(f"{path}: not a checkpoint nnvis reads (expected .keras, .weights.h5, .onnx, "
                     "a TF2 checkpoint ckpt-N.index, or a folder of them)")


def _tf_prefix(path: Path) -> Path | None:
    if path.suffix == ".index":
        return path.with_suffix("")
    if re.search(r"\.data-\d+-of-\d+$", path.name):
        return path.with_name(path.name.rsplit(".data-", 1)[0])
    if not path.exists() and path.with_name(path.name + ".index").exists():
        return path
    return None


def _discover_folder(folder: Path) -> Discovery:
    files = [p for p in folder.iterdir() if p.is_file()]
    if any(p.suffix == ".index" for p in files) or (folder / "checkpoint").exists():
        found = tf_checkpoint.list_checkpoints(folder)
        if found:
            return Discovery(_architecture_beside(folder),
                             [EpochSource(n, Path(prefix), TF2) for n, prefix in found])
    weights = [p for p in files if p.name.endswith(".weights.h5")]
    if weights:
        return Discovery(_architecture_beside(folder), _numbered(weights, WEIGHTS_H5))
    for suffix, kind in ((".keras", KERAS), (".onnx", ONNX)):
        found = [p for p in files if p.suffix == suffix]
        if found:
            epochs = _numbered(found, kind)
            return Discovery(epochs[0].path, epochs)
    raise NNVisError(f"{folder}: no checkpoints found (looked for .keras, .weights.h5, .onnx and "
                     "TF2 ckpt-N.index files)")
