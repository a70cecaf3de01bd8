"""Keras files without Keras: architecture (`.keras`, `.json`, legacy `.h5`), weights (`.keras`,
`.weights.h5`, legacy `.h5`), as written by Keras 3 and by Keras 2 (tf.keras ≤ 2.15).

HDF5 is read with pyfive (pure Python, bundled into Blender), always from an in-memory copy so a
truncated file fails on a short read instead of a memory map. Keras stores a layer's variables under
its object path, `layers/<snake_case(class)>[_<n>]/vars/<i>`, counting per class in `model.layers`
order (saving_lib._save_container_state) — not under the user's layer names; see `weight_groups`.
Keras 2.13–2.15 write `.keras`/`.weights.h5` the same way.

The legacy HDF5 format (`model.save("m.h5")`, `save_weights("w.h5")`, Keras 2's default and still
written by Keras 3 for a `.h5` name) keys weights by layer name instead: a group per layer, listed
in the `layer_names` attribute (under `model_weights/` in a full model, whose `model_config`
attribute is the architecture), each with a `weight_names` attribute giving its datasets in
`get_weights()` order. Every architecture dict carries the `keras_version` of its file, which
tells `model.keras2` whether to read it as Keras 2.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pyfive

from ..errors import NNVisError
from ..model.keras_config import (INPUT_KIND, SHARED_KEY, block_path, network_from_config,
                                  unsupported_reason)
from ..model.network import Network
from . import saved_model

CONFIG_MEMBER = "config.json"
METADATA_MEMBER = "metadata.json"
WEIGHTS_MEMBER = "model.weights.h5"
MAX_CONFIG_BYTES = 64 << 20          # VGG16's config is 21 kB
MAX_WEIGHTS_BYTES = 8 << 30
MAX_INFLATION = 100                  # a zip member's size / its compressed size

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# superblock version -> byte offsets of its base address and end-of-file address (8-byte offsets)
_SUPERBLOCK_BASE_EOF = {0: (24, 40), 2: (12, 28), 3: (12, 28)}


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
        h5 = _open_h5(path, MAX_WEIGHTS_BYTES)
        data, version = _attr(h5, "model_config"), _attr(h5, "keras_version")
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
    try:
        return is_hdf5(Path(path)) and _attr(_open_h5(Path(path), MAX_WEIGHTS_BYTES),
                                             "model_config") is not None
    except NNVisError:
        return False


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
    else:
        data = _read_capped(path, MAX_WEIGHTS_BYTES)
    if not data.startswith(_HDF5_MAGIC):
        raise NNVisError(f"{path}: not a Keras weights file (neither a .keras zip nor HDF5)")
    _check_complete(data, path)
    try:
        h5 = pyfive.File(io.BytesIO(data))
        if "layers" not in h5 and (_attr(h5, "layer_names") is not None or "model_weights" in h5):
            return _read_legacy_weights(h5, network, path, len(data))
        return _read_h5_weights(h5, network, path, len(data))
    except NNVisError:
        raise
    except Exception as e:       # pyfive raises anything (struct.error, KeyError, ...) on bad bytes
        raise NNVisError(f"{path}: unreadable HDF5 weights (truncated or damaged?): "
                         f"{type(e).__name__}: {e}") from e


def _open_h5(path: Path, cap: int):
    data = _read_capped(path, cap)
    _check_complete(data, path)
    try:
        return pyfive.File(io.BytesIO(data))
    except Exception as e:       # noqa: BLE001 - pyfive raises anything on bad bytes
        raise NNVisError(f"{path}: unreadable HDF5 file (truncated or damaged?): "
                         f"{type(e).__name__}: {e}") from e


def _attr(node, name: str):
    """An HDF5 attribute as str / list of str / array, or None if absent or unreadable.

    Keras splits an attribute over 64 kB into `name0`, `name1`, ... (legacy saving); those are
    joined. Every attribute's claimed size is checked against its message first (`_attributes`).
    """
    attrs = _attributes(node)
    if name not in attrs and f"{name}0" in attrs:
        parts, i = [], 0
        while f"{name}{i}" in attrs:
            part = _attr_value(attrs[f"{name}{i}"])
            if not isinstance(part, list):
                return None
            parts, i = parts + part, i + 1
        return parts
    return _attr_value(attrs.get(name))


def _attr_value(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                for v in value.ravel()]
    return value


_ATTRIBUTE_MSG, _ATTRIBUTE_INFO_MSG = 0x000C, 0x0015
_ATTR_HEADER = {1: ("<BBHHH", 8, 8), 3: ("<BBHHHB", 9, 1)}  # version: layout, size, padding


def _attributes(node) -> dict:
    """pyfive's attributes of a group, after checking what each attribute message claims.

    pyfive sizes an attribute's array by its dataspace before reading it, so a damaged count
    would allocate terabytes: every attribute must fit in its object header (variable-length
    strings and references store 16 / 8 bytes per item there). Keras files keep attributes
    compact, never in dense (fractal heap) storage, which is refused.
    """
    try:
        objects = node._dataobjects
        buffer = objects.msg_data
        if objects.find_msg_type(_ATTRIBUTE_INFO_MSG):
            return {}
        for msg in objects.find_msg_type(_ATTRIBUTE_MSG):
            if not _attribute_fits(buffer, msg["offset_to_message"]):
                return {}
        return node.attrs
    except Exception:            # noqa: BLE001 - pyfive raises anything on damaged headers
        return {}


def _attribute_fits(buffer, offset: int) -> bool:
    from pyfive.dataobjects import DatatypeMessage, determine_data_shape
    layout = _ATTR_HEADER.get(buffer[offset])
    if layout is None:
        return False
    fmt, size, pad = layout
    _, _, name_size, type_size, space_size, *_ = struct.unpack_from(fmt, buffer, offset)
    padded = lambda n: -(-n // pad) * pad  # noqa: E731
    type_offset = offset + size + padded(name_size)
    dtype = DatatypeMessage(buffer, type_offset).dtype
    shape, _ = determine_data_shape(buffer, type_offset + padded(type_size))
    if shape is None:
        return True
    item = 16 if isinstance(dtype, tuple) else np.dtype(dtype).itemsize
    data_offset = type_offset + padded(type_size) + padded(space_size)
    return math.prod(shape) * max(item, 1) <= len(buffer) - data_offset


def _json_field(data: bytes | None, key: str):
    try:
        value = json.loads(data.decode("utf-8")) if data else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value.get(key) if isinstance(value, dict) else None


def _read_legacy_weights(h5, network: Network, path: Path, file_size: int
                         ) -> dict[str, list[np.ndarray]]:
    """Legacy HDF5 weights: per stored layer group, its `weight_names` datasets in order.

    A group named like a network layer is that layer's; a nested model's group holds its inner
    layers' weights, each named `<inner layer>/<variable>:0`. If names do not place every
    array, they are handed out in order, as Keras 2's own `load_weights` does; shapes are
    checked either way.
    """
    root = h5["model_weights"] if "model_weights" in h5 else h5
    names = _attr(root, "layer_names")
    if not isinstance(names, list):
        raise NNVisError(f"{path}: no 'layer_names' attribute: not a Keras weights file")
    wanted = [layer for layer in network.layers if layer.weight_shapes]
    by_name = {layer.name: [] for layer in wanted}
    flat, placed = [], True
    for name in names:
        for weight_name, array in _legacy_group(root, name, path, file_size):
            flat.append(array)
            owner = name if name in by_name else next(
                (p for p in reversed(weight_name.split("/")[:-1]) if p in by_name), None)
            if owner is None:
                placed = False
            else:
                by_name[owner].append(array)
    if not placed or any(len(by_name[layer.name]) != len(layer.weight_shapes)
                         for layer in wanted):
        need = sum(len(layer.weight_shapes) for layer in wanted)
        if len(flat) != need:
            raise NNVisError(f"{path}: holds {len(flat)} weight arrays in layers "
                             f"{', '.join(names)}; the architecture needs {need}: saved from a "
                             "different architecture?")
        start = 0
        for layer in wanted:
            by_name[layer.name] = flat[start:start + len(layer.weight_shapes)]
            start += len(layer.weight_shapes)
    for layer in wanted:
        got = [tuple(a.shape) for a in by_name[layer.name]]
        if got != [tuple(s) for s in layer.weight_shapes]:
            raise NNVisError(f"{path}: layer {layer.name!r} ({layer.kind}) has weights of shapes "
                             f"{got}, expected {[tuple(s) for s in layer.weight_shapes]}")
    return by_name


def _legacy_group(root, name: str, path: Path, file_size: int) -> list[tuple[str, np.ndarray]]:
    if name not in root:
        raise NNVisError(f"{path}: layer group {name!r} listed in layer_names is missing")
    weight_names = _attr(root[name], "weight_names")
    found = []
    for weight_name in weight_names if isinstance(weight_names, list) else []:
        try:
            dataset = root[name][weight_name]
        except (KeyError, ValueError):
            raise NNVisError(f"{path}: layer {name!r} lacks its weight {weight_name!r}") from None
        where = f"{path}: layer {name!r} weight {weight_name!r}"
        found.append((weight_name, _array(dataset, tuple(int(d) for d in dataset.shape), where,
                                          file_size)))
    return found


def _check_complete(data: bytes, path: Path) -> None:
    """Reject a truncated HDF5 file by the length its superblock records.

    pyfive reads only what it is asked for, so without this a file cut inside the optimizer
    variables (stored after the layers) would still read.
    """
    fields = _SUPERBLOCK_BASE_EOF.get(data[8] if len(data) > 8 else None)
    if fields is None or len(data) < max(fields) + 8:
        return                   # an unknown superblock: pyfive reports it
    base, end = (struct.unpack_from("<Q", data, offset)[0] for offset in fields)
    if len(data) < base + end:
        raise NNVisError(f"{path}: truncated HDF5 file ({len(data)} of {base + end} bytes)")


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
        base = _snake_case(kind)
        counts[base] = counts.get(base, -1) + 1
        return f"{blocks[container]}/{base}" + (f"_{counts[base]}" if counts[base] else "")

    groups = {}
    for layer in network.layers:
        if layer.kind == INPUT_KIND or SHARED_KEY in layer.config:
            continue
        path = ()
        for block in block_path(layer):
            inner = path + (block[0],)
            if inner not in blocks:
                blocks[inner] = name_in(path, block[1]) + "/layers"
            path = inner
        groups[layer.name] = name_in(path, layer.kind)
    return groups


def _snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _read_h5_weights(h5, network: Network, path: Path, file_size: int
                     ) -> dict[str, list[np.ndarray]]:
    if "layers" not in h5:
        raise NNVisError(f"{path}: no 'layers' group: not a Keras 3 weights file")
    stored = h5["layers"]
    groups = weight_groups(network)
    weights = {}
    for layer in network.layers:
        if not layer.weight_shapes:
            continue
        group = groups[layer.name]
        variables = _vars(h5, group)
        if variables is None:
            raise NNVisError(f"{path}: no weights for layer {layer.name!r} (expected group "
                             f"{group}/vars): saved from a different architecture?")
        if len(variables) != len(layer.weight_shapes):
            raise NNVisError(f"{path}: layer {layer.name!r} ({group}) has {len(variables)} "
                             f"weight arrays, expected {len(layer.weight_shapes)}")
        arrays = []
        for i, expected in enumerate(layer.weight_shapes):
            if str(i) not in variables:
                raise NNVisError(f"{path}: layer {layer.name!r} ({group}) lacks weight {i}")
            dataset = variables[str(i)]
            got = tuple(int(d) for d in dataset.shape)
            if got != tuple(expected):
                raise NNVisError(f"{path}: layer {layer.name!r} ({group}) weight {i} has shape "
                                 f"{got}, expected {tuple(expected)}")
            arrays.append(_array(dataset, got, f"{path}: layer {layer.name!r} ({group}) weight "
                                 f"{i}", file_size))
        weights[layer.name] = arrays
    # a layer nnvis cannot compute (custom kind) may have variables: they are not "extra"
    wanted = {groups[layer.name] for layer in network.layers
              if layer.weight_shapes or (unsupported_reason(layer) and layer.name in groups)}
    extra = sorted(f"layers/{key}" for key in stored.keys()
                   if f"layers/{key}" not in wanted and _vars(h5, f"layers/{key}"))
    if extra:
        raise NNVisError(f"{path}: holds weights for {', '.join(extra)}, which the architecture "
                         "does not have: saved from a different architecture?")
    return weights


def _array(dataset, shape: tuple, where: str, file_size: int) -> np.ndarray:
    """A stored variable; Keras writes bfloat16 as 2-byte opaque data tagged dtype=bfloat16,
    returned here as float32 (exact) since Blender's numpy has no bfloat16.

    What Keras writes is checked before reading, so no field of the file sizes an allocation:
    a plain number type, no compression filters (Keras writes none), and bytes that fit in the file.
    """
    dtype = dataset.dtype
    if not isinstance(dtype, np.dtype) or dtype.kind not in "fiubV" or dtype.itemsize > 8 \
            or dtype.fields is not None:
        raise NNVisError(f"{where} has HDF5 type {dtype!r}, not a number type Keras writes")
    if dataset.compression or dataset.shuffle or dataset.fletcher32 or dataset.scaleoffset:
        raise NNVisError(f"{where} is stored with HDF5 filters (compression), which Keras never "
                         "writes")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > file_size:
        raise NNVisError(f"{where} claims {nbytes} bytes, more than the {file_size}-byte file")
    array = np.asarray(dataset[()])     # pyfive returns a fresh array: no second copy
    if dataset.attrs.get("dtype") in ("bfloat16", b"bfloat16"):
        high = np.frombuffer(array.tobytes(), dtype="<u2").astype(np.uint32) << 16
        array = high.view(np.float32)
    return array.reshape(shape)


def _vars(h5, group: str):
    """The `vars` group of the stored layer `group` (`layers/functional/layers/conv2d`), or None."""
    node = h5
    for part in group.split("/") + ["vars"]:
        if part not in node:
            return None
        node = node[part]
    return node


def is_hdf5(path: Path) -> bool:
    return _read_capped(path, len(_HDF5_MAGIC), whole=False) == _HDF5_MAGIC


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
