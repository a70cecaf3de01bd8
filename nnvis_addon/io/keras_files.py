"""Keras files without Keras: architecture (`.keras`, `.json`, legacy `.h5`), weights (`.keras`,
`.weights.h5`, legacy `.h5`), as written by Keras 3 and by Keras 2 (tf.keras ≤ 2.15).

HDF5 is read with pyfive through `hdf5` (whole files from memory, every claimed size checked).
Keras stores a layer's variables under
its object path, `layers/<snake_case(class)>[_<n>]/vars/<i>`, counting per class in `model.layers`
order (saving_lib._save_container_state) — not under the user's layer names; see `weight_groups`.
Keras 2.13–2.15 write `.keras`/`.weights.h5` the same way.

The legacy HDF5 format keys weights by layer name instead (`legacy_h5`); a full legacy model's
`model_config` attribute is its architecture. Every architecture dict carries the `keras_version` of its file, which
tells `model.keras2` whether to read it as Keras 2.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import NNVisError
from ..model.keras_config import block_path, network_from_config, unsupported_reason
from ..model.kinds import INPUT, OP_PREFIX, SHARED_KEY
from ..model.network import Network, snake_case
from . import hdf5, legacy_h5, saved_model

CONFIG_MEMBER = "config.json"
METADATA_MEMBER = "metadata.json"
WEIGHTS_MEMBER = "model.weights.h5"
MAX_CONFIG_BYTES = 64 << 20          # VGG16's config is 21 kB
MAX_WEIGHTS_BYTES = 8 << 30
MAX_INFLATION = 100                  # a zip member's size / its compressed size

_ZIP_MAGIC = b"PK\x03\x04"


def read_architecture(path) -> dict:
    """The model config dict of a `.keras` zip (its config.json), a `model.to_json()` file or a
    legacy full-model `.h5` (its `model_config`) or a SavedModel directory (its Keras metadata),
    with the file's `keras_version` filled in."""
    path = Path(path)
    folder = saved_model.saved_model_dir(path)
    if folder is not None:
        return saved_model.read_architecture(folder)
    version = None
    if _is_zip(path):
        data = _zip_member(path, CONFIG_MEMBER, MAX_CONFIG_BYTES)
        version = _json_field(_zip_member(path, METADATA_MEMBER, MAX_CONFIG_BYTES, optional=True),
                              "keras_version")
    elif is_hdf5(path):
        h5 = hdf5.open_bytes(_read_capped(path, MAX_WEIGHTS_BYTES), path)
        data, version = hdf5.attribute(h5, "model_config"), hdf5.attribute(h5, "keras_version")
        if data is None:
            raise NNVisError(f"{path}: an HDF5 file with weights only (no model_config): put the "
                             "model's model.to_json() .json or .keras file next to it")
        data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    else:
        data = _read_capped(path, MAX_CONFIG_BYTES)
    try:
        config = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise NNVisError(f"{path}: not a Keras architecture (a .keras zip or model.to_json() "
                         f"file): {e}") from e
    if not isinstance(config, dict):
        raise NNVisError(f"{path}: the architecture is not a JSON object")
    if isinstance(version, str) and "keras_version" not in config:
        config = {**config, "keras_version": version}
    return config


def is_model_config(config) -> bool:
    """True for a dict that is a Keras model's architecture (not a history, a label list, ...)."""
    body = config.get("config") if isinstance(config, dict) else None
    return isinstance(body, dict) and isinstance(body.get("layers"), list) \
        and isinstance(config.get("class_name"), str)


def is_full_h5(path) -> bool:
    """True for a legacy HDF5 file that holds its architecture (`model.save("m.h5")`)."""
    return hdf5.has_attribute(Path(path), "model_config")


def read_network(path) -> Network:
    """The Network described by a `.keras` zip, a `model.to_json()` file or a full-model `.h5`."""
    return network_from_config(read_architecture(path), str(path))


def read_weights(path, network: Network) -> dict[str, list[np.ndarray]]:
    """Layer name -> arrays in Keras `get_weights()` order, for the layers that have weights.

    `path` is a `.keras` zip, a `.weights.h5` file (model.save_weights, ModelCheckpoint) or a
    legacy `.h5` (full model or weights only); every array is checked against the network's
    weight shapes; weights the network lacks are an error.
    """
    path = Path(path)
    if _is_zip(path):
        data = _zip_member(path, WEIGHTS_MEMBER, MAX_WEIGHTS_BYTES)
        start = _stored_member_start(path, WEIGHTS_MEMBER)
        in_file = None if start is None else (path, start)
    else:
        data, in_file = hdf5.map_file(path, MAX_WEIGHTS_BYTES), (path, 0)
    if bytes(data[:len(hdf5.MAGIC)]) != hdf5.MAGIC:
        raise NNVisError(f"{path}: not a Keras weights file (neither a .keras zip nor HDF5)")
    h5 = hdf5.open_bytes(data, path)
    try:
        if legacy_h5.is_legacy(h5):
            return legacy_h5.read_weights(h5, network, path, len(data))
        return _read_h5_weights(h5, network, path, len(data), in_file)
    except NNVisError:
        raise
    except Exception as e:       # pyfive raises anything (struct.error, KeyError, ...) on bad bytes
        raise NNVisError(f"{path}: unreadable HDF5 weights (truncated or damaged?): "
                         f"{type(e).__name__}: {e}") from e


def _json_field(data: bytes | None, key: str):
    try:
        value = json.loads(data.decode("utf-8")) if data else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value.get(key) if isinstance(value, dict) else None


def weight_groups(network: Network) -> dict[str, str]:
    """Layer name -> the HDF5 group Keras saves its variables in (`layers/conv2d_1`).

    Keras counts per snake-cased class name over `model.layers`; a Sequential leaves its InputLayer
    out of that list and a Functional model includes it, but an InputLayer only consumes an
    `input_layer*` name, so skipping InputLayers gives the same names for both. A nested model is
    one entry of its container's list (`layers/functional`) holding its own layers' groups
    (`layers/functional/layers/conv2d`), counted apart.
    """
    used: dict[tuple, dict[str, int]] = {}
    blocks: dict[tuple, str] = {(): "layers"}

    def name_in(container: tuple, kind: str) -> str:
        counts = used.setdefault(container, {})
        base = snake_case(kind)
        counts[base] = counts.get(base, -1) + 1
        return f"{blocks[container]}/{base}" + (f"_{counts[base]}" if counts[base] else "")

    groups = {}
    for layer in network.layers:
        if layer.kind == INPUT or SHARED_KEY in layer.config or \
                layer.kind.startswith(OP_PREFIX):          # an op is no layer: not in the list
            continue
        path = ()
        for block in block_path(layer):
            inner = path + (block[0],)
            if inner not in blocks:
                blocks[inner] = name_in(path, block[1]) + "/layers"
            path = inner
        groups[layer.name] = name_in(path, layer.kind)
    return groups


def _read_h5_weights(h5, network: Network, path: Path, file_size: int, in_file=None
                     ) -> dict[str, list[np.ndarray]]:
    opened: dict = {}
    stored = _node(h5, "layers", opened)
    if stored is None:
        raise NNVisError(f"{path}: no 'layers' group: not a Keras 3 weights file")
    groups = weight_groups(network)
    weights = {}
    for layer in network.layers:
        if not layer.weight_shapes:
            continue
        group = groups[layer.name]
        variables = _vars(h5, group, opened)
        if variables is None:
            raise NNVisError(f"{path}: no weights for layer {layer.name!r} (expected group "
                             f"{group}/vars): saved from a different architecture?")
        if len(variables) != len(layer.weight_shapes):
            raise NNVisError(f"{path}: layer {layer.name!r} ({group}) has {len(variables)} "
                             f"weight arrays, expected {len(layer.weight_shapes)}")
        arrays = []
        for i, expected in enumerate(layer.weight_shapes):
            try:        # not `in`: a pyfive group opens the member to test it
                dataset = variables[str(i)]
            except KeyError:
                dataset = None
            if dataset is None:
                raise NNVisError(f"{path}: layer {layer.name!r} ({group}) lacks weight {i}")
            got = tuple(int(d) for d in dataset.shape)
            if got != tuple(expected):
                raise NNVisError(f"{path}: layer {layer.name!r} ({group}) weight {i} has shape "
                                 f"{got}, expected {tuple(expected)}")
            arrays.append(hdf5.array(dataset, got, f"{path}: layer {layer.name!r} ({group}) weight "
                                 f"{i}", file_size, in_file))
        weights[layer.name] = arrays
    # a layer nnvis cannot compute (custom kind) may have variables: they are not "extra"
    wanted = {groups[layer.name] for layer in network.layers
              if layer.weight_shapes or (unsupported_reason(layer) and layer.name in groups)}
    extra = sorted(f"layers/{key}" for key in stored.keys()
                   if f"layers/{key}" not in wanted and _vars(h5, f"layers/{key}", opened))
    if extra:
        raise NNVisError(f"{path}: holds weights for {', '.join(extra)}, which the architecture "
                         "does not have: saved from a different architecture?")
    return weights


def _vars(h5, group: str, opened: dict | None = None):
    """The `vars` group of the stored layer `group` (`layers/functional/layers/conv2d`), or None.
    `opened` keeps the groups walked so far: pyfive reads a group's whole link table each time it
    opens it, so a file of hundreds of layers is walked once, not once per layer."""
    return _node(h5, f"{group}/vars", {} if opened is None else opened)


def _node(h5, path: str, opened: dict):
    if path not in opened:
        head, _, name = path.rpartition("/")
        parent = _node(h5, head, opened) if head else h5
        try:        # not `name in parent`: a pyfive Mapping opens the member to test it
            opened[path] = None if parent is None or not hasattr(parent, "keys") else parent[name]
        except KeyError:
            opened[path] = None
    return opened[path]


def is_hdf5(path: Path) -> bool:
    return _read_capped(path, len(hdf5.MAGIC), whole=False) == hdf5.MAGIC


def _is_zip(path: Path) -> bool:
    return _read_capped(path, len(_ZIP_MAGIC), whole=False) == _ZIP_MAGIC


def _read_capped(path: Path, cap: int, whole: bool = True) -> bytes:
    """The file's bytes (its first `cap` bytes unless `whole`); a file above `cap` is an error.

    The size is checked before reading: `read(n)` reserves n bytes up front, whatever the file
    holds.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if whole and size > cap:
                raise NNVisError(f"{path}: {size} bytes, more than the {cap} expected of this file")
            return f.read(min(size, cap))
    except OSError as e:
        raise NNVisError(f"{path}: cannot read: {e.strerror or e}") from e


def _zip_member(path: Path, member: str, cap: int, optional: bool = False) -> bytes | None:
    """One member of a zip, read in memory (never extracted), its claimed sizes checked first.

    Only `member` is opened. Its compressed size must fit in the archive and its size may be at
    most MAX_INFLATION times that (deflate reaches ~1000x on the zeros of a zip bomb; Keras stores
    members uncompressed, and deflated configs shrink some 45x); zipfile then stops at the
    claimed size and checks the CRC, so memory stays within the claim.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                info = archive.getinfo(member)
            except KeyError:
                if optional:
                    return None
                raise NNVisError(f"{path}: no {member} inside: not a Keras 3 .keras file") from None
            _check_claims(path, info, os.path.getsize(path), cap)
            with archive.open(info) as f:
                data = f.read(info.file_size + 1)
    except NNVisError:
        raise
    except Exception as e:      # noqa: BLE001 - BadZipFile, zlib.error, EOFError, OSError, ...
        raise NNVisError(f"{path}: damaged or truncated .keras zip: {type(e).__name__}: "
                         f"{e}") from e
    if len(data) != info.file_size:
        raise NNVisError(f"{path}: {member} holds {len(data)} bytes, its header says "
                         f"{info.file_size}")
    return data


def _stored_member_start(path: Path, member: str) -> int | None:
    """Where `member`'s bytes start in the zip when it is stored uncompressed (Keras' way), so its
    large arrays can be read from the zip in place; None when it is deflated."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with open(path, "rb") as f:
            f.seek(info.header_offset)
            header = f.read(30)
    except (OSError, KeyError, zipfile.BadZipFile):
        return None
    if len(header) < 30 or header[:4] != _ZIP_MAGIC:
        return None
    name, extra = int.from_bytes(header[26:28], "little"), int.from_bytes(header[28:30], "little")
    return info.header_offset + 30 + name + extra


def _check_claims(path: Path, info: zipfile.ZipInfo, archive_size: int, cap: int) -> None:
    """Refuse a member by what its central-directory entry claims, before reading any of it."""
    name = info.filename
    if info.flag_bits & 1:
        raise NNVisError(f"{path}: {name} is encrypted, which Keras never does")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise NNVisError(f"{path}: {name} uses zip compression method {info.compress_type}; "
                         f"Keras stores members uncompressed (nnvis also reads deflate)")
    if info.header_offset + info.compress_size > archive_size:
        raise NNVisError(f"{path}: {name} claims {info.compress_size} compressed bytes at offset "
                         f"{info.header_offset}, beyond the {archive_size}-byte file (truncated?)")
    limit = min(cap, MAX_INFLATION * info.compress_size + (1 << 10))
    if info.file_size > limit:
        raise NNVisError(f"{path}: {name} claims {info.file_size} bytes from "
                         f"{info.compress_size} compressed, more than the {limit} allowed "
                         f"(a zip bomb?)")
