"""The recording format: what a Keras training run leaves behind for nnvis, read with numpy alone.

A recording is a folder (spec: docs/recording-format.md): ``manifest.json`` (the index, and the
only file ever rewritten), ``architecture.json`` (``model.to_json()``), ``probes.npy`` /
``labels.npy`` and one ``epochs/epoch_NNNNNN/`` folder of ``.npy`` files per recorded epoch. Crash
safety comes from the write order: an epoch is written into a temporary folder, fsynced and renamed
into place, and only then does the manifest (temp file + ``os.replace``) list it. A reader trusts
the manifest alone, so a process killed at any instant leaves every epoch it finished.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ..errors import NNVisError

FORMAT_NAME = "nnvis-recording"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARCHITECTURE = "architecture.json"
PROBES = "probes.npy"
LABELS = "labels.npy"
EPOCHS_DIR = "epochs"
PREDICTIONS = "predictions.npy"
_MAX_JSON_BYTES = 256 * 1024 * 1024     # a manifest/architecture bigger than this is not ours
_NUMERIC_KINDS = "fiub"                  # float, int, uint, bool: never object/structured arrays


def epoch_dir_name(epoch: int) -> str:
    return f"epoch_{epoch:06d}"


def weight_file_name(layer_index: int, k: int) -> str:
    return f"layer_{layer_index:04d}_w{k}.npy"


def activation_file_name(layer_index: int) -> str:
    return f"layer_{layer_index:04d}_act.npy"


# ----------------------------------------------------------------------------------------- writing

def _fsync_dir(path: str) -> None:
    """Make a rename/creation inside ``path`` durable (POSIX only; Windows cannot open folders)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def _atomic_write(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path) or ".")


def _spec(array: np.ndarray) -> dict:
    return {"shape": list(array.shape), "dtype": array.dtype.str}


def _as_stored(array, what: str, dtype=None) -> np.ndarray:
    """C-contiguous little-endian numeric copy of ``array``, the only kind of array we store."""
    a = np.asarray(array) if dtype is None else np.asarray(array, dtype=dtype)
    if a.dtype.kind not in _NUMERIC_KINDS or a.dtype.fields is not None:
        raise NNVisError(f"recording: {what} has dtype {a.dtype}; only numeric arrays are stored")
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))


class RecordingWriter:
    """Writes a recording folder, one epoch at a time; every call leaves a loadable recording.

    The first ``write_epoch`` fixes each layer's weight and activation shapes; later epochs must
    match them (a recording is one model). Epochs are written once, in any order.
    """

    def __init__(self, path, architecture: str | dict, layer_names: Sequence[str], probes,
                 labels=None, class_names: Sequence[str] | None = None, model_name: str = ""):
        self.path = os.fspath(path)
        if os.path.exists(self.path) and (not os.path.isdir(self.path) or os.listdir(self.path)):
            raise NNVisError(f"{self.path}: already exists and is not an empty folder; "
                             "record into a new folder")
        names = [str(n) for n in layer_names]
        if len(set(names)) != len(names):
            raise NNVisError(f"{self.path}: layer names are not unique: {names}")
        self._probes = _as_stored(probes, "probes", np.float32)
        if self._probes.ndim < 2 or len(self._probes) == 0:
            raise NNVisError(f"{self.path}: probes must be an array (P, ...) with P >= 1, "
                             f"got shape {self._probes.shape}")
        p = len(self._probes)
        self._labels = None if labels is None else _as_stored(labels, "labels")
        if self._labels is not None and (self._labels.ndim == 0 or len(self._labels) != p):
            raise NNVisError(f"{self.path}: {p} probes but labels of shape {self._labels.shape}")
        if isinstance(architecture, str):
            try:
                json.loads(architecture)
            except ValueError as e:
                raise NNVisError(f"{self.path}: the architecture is not JSON ({e})") from None
            arch_text = architecture
        else:
            arch_text = json.dumps(architecture)

        os.makedirs(os.path.join(self.path, EPOCHS_DIR), exist_ok=True)
        _atomic_write(os.path.join(self.path, ARCHITECTURE), arch_text.encode("utf-8"))
        _save_npy(os.path.join(self.path, PROBES), self._probes)
        if self._labels is not None:
            _save_npy(os.path.join(self.path, LABELS), self._labels)
        _fsync_dir(self.path)
        self._manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "model_name": str(model_name),
            "probes": {"file": PROBES, **_spec(self._probes)},
            "labels": None if self._labels is None else {"file": LABELS, **_spec(self._labels)},
            "class_names": None if class_names is None else [str(c) for c in class_names],
            "layers": [{"index": i, "name": n, "weights": None, "activation": None}
                       for i, n in enumerate(names)],
            "predictions": None,
            "epochs": [],
            "metrics": {},
        }
        self._write_manifest()

    @property
    def epochs(self) -> list[int]:
        """The epochs written so far (listed in the manifest), ascending."""
        return list(self._manifest["epochs"])

    def write_metrics(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Record an epoch's logs (for epochs trained but not snapshotted, too)."""
        self._manifest["metrics"][str(int(epoch))] = {str(k): float(v) for k, v in metrics.items()}
        self._write_manifest()

    def write_epoch(self, epoch: int, weights: Mapping[str, Sequence], activations: Mapping,
                    predictions, metrics: Mapping[str, float] | None = None) -> None:
        """Write one epoch: weights (per layer, Keras get_weights() order; layers without weights
        may be left out), every layer's activations (P, ...) and the predictions (P, ...)."""
        epoch = int(epoch)
        if epoch < 0 or epoch in self._manifest["epochs"]:
            raise NNVisError(f"{self.path}: epoch {epoch} is negative or already recorded")
        layers = self._manifest["layers"]
        names = [layer["name"] for layer in layers]
        unknown = (set(weights) | set(activations)) - set(names)
        if unknown or set(activations) != set(names):
            raise NNVisError(f"{self.path}: epoch {epoch}: activations must cover exactly the "
                             f"layers {names}; got activations for {list(activations)} and "
                             f"weights for {list(weights)}")
        files, fixed = {}, []
        for layer in layers:
            name, i = layer["name"], layer["index"]
            ws = [_as_stored(w, f"layer '{name}' weight {k}")
                  for k, w in enumerate(weights.get(name, []))]
            act = _as_stored(activations[name], f"layer '{name}' activations", np.float32)
            fixed += [self._checked(layer, "weights", [_spec(w) for w in ws], epoch),
                      self._checked(layer, "activation", _spec(act), epoch)]
            files.update({weight_file_name(i, k): w for k, w in enumerate(ws)})
            files[activation_file_name(i)] = act
        preds = _as_stored(predictions, "predictions", np.float32)
        fixed.append(self._checked(self._manifest, "predictions", _spec(preds), epoch))
        files[PREDICTIONS] = preds

        epochs_dir = os.path.join(self.path, EPOCHS_DIR)
        final = os.path.join(epochs_dir, epoch_dir_name(epoch))
        tmp = os.path.join(epochs_dir, ".tmp-" + epoch_dir_name(epoch))
        for leftover in (tmp, final):   # from an earlier failed (e.g. disk full) attempt
            shutil.rmtree(leftover, ignore_errors=True)
        os.makedirs(tmp)
        for file_name, array in files.items():
            _save_npy(os.path.join(tmp, file_name), array)
        _fsync_dir(tmp)
        os.rename(tmp, final)
        _fsync_dir(epochs_dir)

        for holder, key, spec in fixed:
            holder[key] = spec
        self._manifest["epochs"] = sorted(self._manifest["epochs"] + [epoch])
        if metrics is not None:
            self._manifest["metrics"][str(epoch)] = {str(k): float(v) for k, v in metrics.items()}
        self._write_manifest()

    def _checked(self, holder: dict, key: str, spec, epoch: int) -> tuple[dict, str, object]:
        """Check ``spec`` against the one the first epoch fixed; returns what to fix if none yet."""
        p = len(self._probes)
        what = f"layer '{holder['name']}' {key}" if "name" in holder else key
        if key != "weights" and spec["shape"][:1] != [p]:
            raise NNVisError(f"{self.path}: epoch {epoch}: {what} has shape {spec['shape']}, "
                             f"expected {p} probes first")
        if holder[key] is None:
            if key == "predictions":
                self._check_class_names(spec["shape"])
        elif holder[key] != spec:
            raise NNVisError(f"{self.path}: epoch {epoch}: {what} {spec} differs from the "
                             f"earlier epochs' {holder[key]}")
        return holder, key, spec

    def _check_class_names(self, shape: list[int]) -> None:
        names = self._manifest["class_names"]
        if names is not None and (len(shape) != 2 or shape[1] != len(names)):
            raise NNVisError(f"{self.path}: {len(names)} class names but predictions of shape "
                             f"{tuple(shape)}")

    def _write_manifest(self) -> None:
        text = json.dumps(self._manifest, indent=1)
        _atomic_write(os.path.join(self.path, MANIFEST), text.encode("utf-8"))


# ----------------------------------------------------------------------------------------- reading

@dataclass
class _Spec:
    shape: tuple
    dtype: np.dtype


@dataclass
class Recording:
    """A loaded recording. Arrays are read-only memory maps of the files: cheap until touched."""
    path: str
    architecture: dict = field(repr=False)     # the Keras config, as from model.to_json()
    model_name: str
    layer_names: list[str]             # Keras model.layers order (files are named by this index)
    epochs: list[int]                  # snapshot epochs that load, ascending (0 = before training)
    metrics: dict[int, dict[str, float]] = field(repr=False)  # every epoch, not just snapshots
    probes: np.ndarray = field(repr=False)          # (P, ...) float32
    labels: np.ndarray | None = field(repr=False)   # (P, ...) as given, e.g. class indices
    class_names: list[str] | None
    warnings: list[str]                # one line per epoch left out, naming it and the problem
    _layers: list[dict] = field(repr=False)
    _predictions: _Spec = field(repr=False)

    def weights(self, epoch: int) -> dict[str, list[np.ndarray]]:
        d = self._epoch_dir(epoch)
        return {layer["name"]: [_load(os.path.join(d, weight_file_name(layer["index"], k)), s)
                                for k, s in enumerate(layer["weights"])]
                for layer in self._layers}

    def activations(self, epoch: int) -> dict[str, np.ndarray]:
        d = self._epoch_dir(epoch)
        return {layer["name"]: _load(os.path.join(d, activation_file_name(layer["index"])),
                                     layer["activation"])
                for layer in self._layers}

    def predictions(self, epoch: int) -> np.ndarray:
        return _load(os.path.join(self._epoch_dir(epoch), PREDICTIONS), self._predictions)

    def _epoch_dir(self, epoch: int) -> str:
        if epoch not in self.epochs:
            raise NNVisError(f"{self.path}: epoch {epoch} is not in the recording "
                             f"(epochs: {self.epochs})")
        return os.path.join(self.path, EPOCHS_DIR, epoch_dir_name(epoch))


def _npy_problem(path: str, spec: _Spec) -> str | None:
    """Why the .npy file at ``path`` is not the array ``spec`` promises (None if it is).

    Reads only the header and the file size, so checking a whole recording stays cheap. The
    header's length field is checked against the file first: numpy would reserve that many bytes
    (up to 4 GB) before finding out the file is shorter."""
    readers = {(1, 0): (2, np.lib.format.read_array_header_1_0),
               (2, 0): (4, np.lib.format.read_array_header_2_0)}
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version not in readers:
                return f"unsupported .npy version {version}"
            width, read_header = readers[version]
            header_length = int.from_bytes(f.read(width), "little")
            if f.tell() + header_length > size:
                return f"its header claims {header_length} bytes, past the end of the file"
            f.seek(-width, os.SEEK_CUR)
            shape, fortran, dtype = read_header(f)
            offset = f.tell()
    except FileNotFoundError:
        return "missing"
    except Exception as e:      # noqa: BLE001 - numpy's header parser raises ValueError,
        return f"not a valid .npy file ({type(e).__name__}: {e})"   # TokenError... on garbage
    if shape != spec.shape or dtype != spec.dtype or fortran:
        return f"holds {dtype} {shape}, expected {spec.dtype} {spec.shape}"
    expected = offset + math.prod(shape) * dtype.itemsize    # Python ints: no overflow
    if size != expected:
        return f"is {size} bytes, expected {expected}"
    return None


def _load(path: str, spec: _Spec) -> np.ndarray:
    problem = _npy_problem(path, spec)
    if problem:
        raise NNVisError(f"{path}: {problem}")
    if math.prod(spec.shape) == 0:          # mmap cannot map zero bytes
        return np.load(path, allow_pickle=False)
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _read_json(path: str, what: str):
    try:
        if os.path.getsize(path) > _MAX_JSON_BYTES:
            raise NNVisError(f"{path}: {what} is larger than {_MAX_JSON_BYTES} bytes")
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as e:     # RecursionError: [[[[...]]]]
        raise NNVisError(f"{path}: cannot read the {what} ({e!r})") from None


def _spec_from(entry, where: str) -> _Spec:
    """A shape/dtype spec from the manifest, refusing anything but plain numeric arrays."""
    try:
        shape = tuple(int(d) for d in entry["shape"])
        dtype = np.dtype(str(entry["dtype"]))
    except (TypeError, KeyError, ValueError, OverflowError) as e:
        raise NNVisError(f"{where}: bad array spec {entry!r} ({e})") from None
    if any(d < 0 for d in shape) or dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None:
        raise NNVisError(f"{where}: bad array spec {entry!r}")
    return _Spec(shape, dtype)


def _epoch_problem(root: str, epoch: int, layers: list[dict], predictions: _Spec) -> str | None:
    d = os.path.join(root, EPOCHS_DIR, epoch_dir_name(epoch))
    checks = [(os.path.join(d, PREDICTIONS), predictions, "predictions")]
    for layer in layers:
        i, name = layer["index"], layer["name"]
        checks += [(os.path.join(d, weight_file_name(i, k)), s, f"layer {name!r} weight {k}")
                   for k, s in enumerate(layer["weights"])]
        checks.append((os.path.join(d, activation_file_name(i)), layer["activation"],
                       f"layer {name!r} activations"))
    for path, spec, what in checks:
        problem = _npy_problem(path, spec)
        if problem:
            return f"{what} ({os.path.relpath(path, root)}) {problem}"
    return None


def listed_epochs(path) -> list[int]:
    """The epochs manifest.json lists, no file checked: what a live refresh looks at first."""
    manifest_path = os.path.join(os.fspath(path), MANIFEST)
    m = _read_json(manifest_path, "recording manifest")
    try:
        return sorted({int(e) for e in m["epochs"]})
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise NNVisError(f"{manifest_path}: garbled recording manifest ({e!r})") from None


def probe_count(path) -> int | None:
    """How many probes the recording at `path` (its folder or manifest.json) holds, from its
    manifest alone; None when `path` is no readable recording (the import dialog asks this as
    the user browses, to bound Recorded Probe)."""
    path = os.fspath(path)
    root = os.path.dirname(path) if os.path.basename(path) == MANIFEST else path
    manifest_path = os.path.join(root, MANIFEST)
    if not os.path.isfile(manifest_path):
        return None
    try:
        return _spec_from(_read_json(manifest_path, "recording manifest")["probes"],
                          manifest_path).shape[0]
    except (NNVisError, KeyError, TypeError, IndexError):
        return None


def read_recording(path, epochs=None) -> Recording:
    """Load the recording folder at ``path``: every listed epoch whose files check out (of
    ``epochs`` only, when given: a live refresh checks just the new ones).

    Raises NNVisError if ``path`` is not a recording, was written by a newer nnvis, or has no usable
    epoch; an epoch with a missing or damaged file is left out and named in ``.warnings``."""
    root = os.fspath(path)
    manifest_path = os.path.join(root, MANIFEST)
    if not os.path.isfile(manifest_path):
        raise NNVisError(f"{root}: not an nnvis recording (no {MANIFEST})")
    m = _read_json(manifest_path, "recording manifest")
    if not isinstance(m, dict) or m.get("format") != FORMAT_NAME:
        raise NNVisError(f"{manifest_path}: not an nnvis recording manifest")
    version = m.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise NNVisError(f"{manifest_path}: bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise NNVisError(f"{root}: recording format_version {version} is newer than this nnvis "
                         f"reads (up to {FORMAT_VERSION}); update nnvis to load it")
    try:
        layers = []
        for i, layer in enumerate(m["layers"]):
            if layer["index"] != i:
                raise ValueError(f"layer {i} has index {layer['index']}")
            if layer["activation"] is None:      # no epoch written yet: shapes unknown
                layers = None
                break
            layers.append({"index": i, "name": str(layer["name"]),
                           "weights": [_spec_from(w, manifest_path) for w in layer["weights"]],
                           "activation": _spec_from(layer["activation"], manifest_path)})
        listed = sorted({int(e) for e in m["epochs"]})
        metrics = {int(e): {str(k): float(v) for k, v in logs.items()}
                   for e, logs in m["metrics"].items()}
        class_names = None if m["class_names"] is None else [str(c) for c in m["class_names"]]
        probes_spec, labels_spec = m["probes"], m["labels"]
        predictions_entry = m["predictions"]
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise NNVisError(f"{manifest_path}: garbled recording manifest ({e!r})") from None
    if layers is None or not listed or predictions_entry is None:
        raise NNVisError(f"{root}: the recording has no usable epoch (none was completed)")
    predictions = _spec_from(predictions_entry, manifest_path)

    probes = _load(os.path.join(root, PROBES), _spec_from(probes_spec, manifest_path))
    labels = (None if labels_spec is None
              else _load(os.path.join(root, LABELS), _spec_from(labels_spec, manifest_path)))
    architecture = _read_json(os.path.join(root, ARCHITECTURE), "architecture")
    if not isinstance(architecture, dict):
        raise NNVisError(f"{os.path.join(root, ARCHITECTURE)}: not a Keras model config")

    good, warnings = [], []
    for epoch in listed if epochs is None else [e for e in listed if e in epochs]:
        problem = _epoch_problem(root, epoch, layers, predictions)
        if problem:
            warnings.append(f"{root}: epoch {epoch} left out: {problem}")
        else:
            good.append(epoch)
    if not good:
        raise NNVisError(f"{root}: the recording has no usable epoch: " + "; ".join(warnings))
    return Recording(path=root, architecture=architecture, model_name=str(m.get("model_name", "")),
                     layer_names=[layer["name"] for layer in layers], epochs=good,
                     metrics=metrics, probes=probes, labels=labels, class_names=class_names,
                     warnings=warnings, _layers=layers, _predictions=predictions)
