"""What a path holds: which files give the architecture and which give each epoch's weights.

Accepted (docs/user-guide.md has the table): a `.keras` file or a legacy full-model `.h5`; a
weights file (`.weights.h5`, a weights-only `.h5`, a TF checkpoint prefix) with an architecture
beside it; a SavedModel directory (or its `saved_model.pb` / `variables/variables.index`); or a
folder of per-epoch checkpoints of one of those kinds, SavedModels included. An ONNX file
(`.onnx`, or a folder of per-epoch ones) is architecture and weights in one.

Epoch numbers come from epoch-like parts of the names only: the number after `epoch`/`ep`/`e`,
TF's `<name>-N` / `cp-N.ckpt`, else the first number standing alone between separators
(`weights.03-0.42` → 3, `model_07` → 7), else a zero-padded number glued to letters (`w03`,
`cp0007`: ModelCheckpoint's `{epoch:02d}`). Other digits glued to letters are a model's name, not
an epoch (`ResNet50.keras`, `VGG16`) — unless they are the one part that differs between a
folder's files (`w1.h5`, `w2.h5`); names without usable numbers are taken in natural order as 0,
1, ...
The architecture beside weights is whichever `.json`, `.keras` or full `.h5` *is* a model config
(sniffed; a history or label JSON is ignored); several different ones are an error naming them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import NNVisError
from . import keras_files, saved_model, tf_checkpoint

KERAS, WEIGHTS_H5, TF2, ONNX = "keras", "weights.h5", "tf2", "onnx"
_SUFFIXES = (".weights.h5", ".h5", ".hdf5", ".keras", ".index", ".ckpt")
_H5 = (".h5", ".hdf5")
_TORCH = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")


@dataclass
class EpochSource:
    epoch: int
    path: Path          # the file (for TF2: the checkpoint prefix, without .index)
    kind: str           # KERAS (architecture and weights), WEIGHTS_H5 (HDF5 weights) or TF2


@dataclass
class Discovery:
    architecture: Path
    epochs: list[EpochSource]


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _stem(name: str) -> str:
    name = re.sub(r"\.data-\d+-of-\d+$", "", name)
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if name.lower().endswith(suffix) and len(name) > len(suffix):
                name, changed = name[:-len(suffix)], True
    return name


def epoch_number(name: str) -> int | None:
    """The epoch a file or checkpoint name states, or None (see the module docstring)."""
    stem = _stem(name)
    for pattern in (r"(?:^|[^a-z])(?:epoch|ep|e)[^0-9a-z]*(\d+)(?![0-9a-z])",
                    r"-(\d+)$",
                    r"(?:^|[^0-9a-z])(\d+)(?![0-9a-z])",
                    r"[a-z](0\d+)(?![0-9a-z])"):
        m = re.search(pattern, stem, re.IGNORECASE)
        if m:
            return int(m.group(1))
    return None


def _numbered(paths: list[Path], kind: str) -> list[EpochSource]:
    """Epochs from the names; natural order when the names give no distinct numbers."""
    paths = sorted(paths, key=lambda p: _natural_key(p.name))
    numbers = [epoch_number(p.name) for p in paths]
    if None in numbers or len(set(numbers)) != len(numbers):
        numbers = _differing_number([p.name for p in paths]) or list(range(len(paths)))
    return sorted((EpochSource(n, p, kind) for n, p in zip(numbers, paths)), key=lambda s: s.epoch)


def _differing_number(names: list[str]) -> list[int] | None:
    """Each name's number at the one place where the names differ (`w1`, `w2`, `w3` → 1, 2, 3),
    or None: names that differ elsewhere too, or in no number, or repeat one."""
    parts = [re.split(r"(\d+)", _stem(n)) for n in names]
    if len(names) < 2 or len({len(p) for p in parts}) != 1:
        return None
    differing = [k for k in range(len(parts[0])) if len({p[k] for p in parts}) > 1]
    if len(differing) != 1 or differing[0] % 2 == 0:           # odd places hold the numbers
        return None
    numbers = [int(p[differing[0]]) for p in parts]
    return numbers if len(set(numbers)) == len(numbers) else None


def _single(path: Path, kind: str, weights: Path | None = None) -> EpochSource:
    """One checkpoint: the epoch its name states, else 0. A lone file's number may as well be
    its model's (`resnet_18.onnx`, `squeezenet1_1.onnx`, `model-224.keras`): alone it counts only
    as an epoch word's, ModelCheckpoint's zero padding (`w03`, `weights.03-0.42`), TF's
    checkpoint counter (`ckpt-12`) or the whole name (`05.keras`)."""
    stem = _stem(path.name).removesuffix(".onnx")
    says = re.search(r"(?:^|[^a-z])(?:epoch|ep|e)[^0-9a-z]*\d|(?:^|[^0-9])0\d|"
                     r"(?:^|[^a-z])(?:ckpt|cp)-\d+$|^\d+$", stem, re.IGNORECASE)
    number = epoch_number(path.name) if says else None
    return EpochSource(0 if number is None else number, weights or path, kind)


def _is_architecture(path: Path) -> bool:
    if path.suffix.lower() in _H5:
        return keras_files.is_full_h5(path)
    try:
        return keras_files.is_model_config(keras_files.read_architecture(path))
    except NNVisError:
        return False


def _architecture_beside(folder: Path, exclude: frozenset = frozenset()) -> Path:
    candidates = sorted((p for p in folder.iterdir() if p.is_file() and p not in exclude
                         and p.suffix.lower() in (".json", ".keras", *_H5)
                         and not p.name.endswith(".weights.h5") and _is_architecture(p)),
                        key=lambda p: (p.suffix != ".keras", _natural_key(p.name)))
    if not candidates:
        raise NNVisError(f"{folder}: no architecture found — put the model's .keras file, its "
                         "model.to_json() .json or its model.save('m.h5') file next to the "
                         "weights")
    graphs = {_layer_list(p) for p in candidates}
    if len(graphs) > 1:
        raise NNVisError(f"{folder}: several different model architectures "
                         f"({', '.join(p.name for p in candidates)}); keep only the one the "
                         "weights belong to")
    return candidates[0]


def _layer_list(path: Path) -> str:
    """The (class, name) of every layer entry, to tell different architectures apart; entries of
    any shape are only compared here (the config reader names what is wrong with them)."""
    def name(entry: dict):
        inner = entry.get("config")
        return entry.get("name") or (inner.get("name") if isinstance(inner, dict) else None)
    layers = keras_files.read_architecture(path)["config"]["layers"]
    return repr([(e.get("class_name"), name(e)) for e in layers if isinstance(e, dict)])


def discover(path) -> Discovery:
    path = Path(path)
    folder = saved_model.saved_model_dir(path)
    if folder is not None:
        return Discovery(folder, [_single(folder, TF2, saved_model.weights_prefix(folder))])
    if path.is_dir():
        return _discover_folder(path)
    tf_prefix = _tf_prefix(path)
    if tf_prefix is not None:
        return Discovery(_architecture_beside(tf_prefix.parent), [_single(tf_prefix, TF2)])
    if not path.exists():
        raise NNVisError(f"{path}: no such file or folder")
    if path.name.endswith(".weights.h5"):
        return Discovery(_architecture_beside(path.parent), [_single(path, WEIGHTS_H5)])
    if path.suffix == ".keras" or path.suffix.lower() in _H5 and keras_files.is_full_h5(path):
        return Discovery(path, [_single(path, KERAS)])
    if path.suffix == ".onnx":
        return Discovery(path, [_single(path, ONNX)])
    if path.suffix.lower() in _H5:
        if not keras_files.is_hdf5(path):
            raise NNVisError(f"{path}: not an HDF5 file, so not a Keras .h5 (damaged, or "
                             "another program's file?)")
        return Discovery(_architecture_beside(path.parent, frozenset({path})),
                         [_single(path, WEIGHTS_H5)])
    if path.suffix.lower() in _TORCH:
        raise NNVisError(f"{path}: a PyTorch file; a state dict has no layer graph and nnvis "
                         "never unpickles: export the model with torch.onnx.export and import the "
                         ".onnx, or record the training with nnvis_addon.record.torch.Recorder")
    raise NNVisError(f"{path}: not a checkpoint nnvis reads (expected .keras, .h5, .weights.h5, "
                     "a TF checkpoint's .index, a SavedModel, .onnx, or a folder of them)")


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
    models = [p for p in folder.iterdir() if p.is_dir() and saved_model.saved_model_dir(p)]
    if models:
        epochs = _numbered(models, TF2)
        return Discovery(epochs[0].path, [EpochSource(e.epoch, saved_model.weights_prefix(e.path),
                                                      TF2) for e in epochs])
    indexes = [p for p in files if p.suffix == ".index"]
    if indexes or (folder / "checkpoint").exists():
        found = tf_checkpoint.list_checkpoints(folder)
        if not found and len(indexes) == 1:           # save_weights("dir/w"): one unnumbered
            found = [(0, str(indexes[0].with_suffix("")))]
        elif not found and indexes:
            raise NNVisError(f"{folder}: several unnumbered TF checkpoints "
                             f"({', '.join(sorted(p.stem for p in indexes))}); pick one's .index")
        if found:
            return Discovery(_architecture_beside(folder),
                             [EpochSource(n, Path(prefix), TF2) for n, prefix in found])
    h5s = [p for p in files if p.suffix.lower() in _H5]
    full = [p for p in h5s if not p.name.endswith(".weights.h5") and keras_files.is_full_h5(p)]
    weights = [p for p in h5s if p not in full]
    if weights:
        return Discovery(_architecture_beside(folder, frozenset(weights)),
                         _numbered(weights, WEIGHTS_H5))
    kerases = [p for p in files if p.suffix == ".keras"] + full
    onnxes = [p for p in files if p.suffix == ".onnx"]
    for found, kind in ((kerases, KERAS), (onnxes, ONNX)):
        if found:
            epochs = _numbered(found, kind)
            return Discovery(epochs[0].path, epochs)
    raise NNVisError(f"{folder}: no checkpoints found (looked for .keras, .h5, .weights.h5, TF "
                     "checkpoint .index files, SavedModel folders and .onnx files)")
