"""HDF5 read with pyfive, defensively: whole files from memory, every size checked first.

Weights files are memory-mapped (`map_file`), not read: pyfive touches only the metadata, and
large contiguous datasets are handed out as `stored.StoredArray`s read when used.

pyfive (pure Python, bundled into Blender) trusts what a file claims: a damaged dataspace makes it
allocate whatever the file says. Everything here checks a claim against the bytes that back it
before pyfive acts on it: the file's recorded length (`check_complete`), a dataset's size
(`array`) and each attribute's size (`attribute`).
"""
from __future__ import annotations

import io
import math
import mmap
import os
import struct
from pathlib import Path

import numpy as np
import pyfive

from ..errors import NNVisError
from .stored import LAZY_BYTES, StoredArray

MAGIC = b"\x89HDF\r\n\x1a\n"
# superblock version -> byte offsets of its base address and end-of-file address (8-byte offsets)
_SUPERBLOCK_BASE_EOF = {0: (24, 40), 2: (12, 28), 3: (12, 28)}


def map_file(path: Path, cap: int) -> mmap.mmap:
    """The file's bytes, memory-mapped read-only (pages are read as they are touched); a file
    above `cap` bytes is an error."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > cap:
                raise NNVisError(f"{path}: {size} bytes, more than the {cap} expected of this file")
            if size == 0:
                raise NNVisError(f"{path}: not an HDF5 file (empty)")
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as e:
        raise NNVisError(f"{path}: cannot read: {e.strerror or e}") from e


def open_bytes(data, path: Path):
    """A pyfive File over `data` (the whole file, complete: bytes or a `map_file` mapping), or
    NNVisError naming `path`."""
    if bytes(data[:len(MAGIC)]) != MAGIC:
        raise NNVisError(f"{path}: not an HDF5 file")
    check_complete(data, path)
    try:
        return pyfive.File(data if isinstance(data, mmap.mmap) else io.BytesIO(data))
    except Exception as e:       # noqa: BLE001 - pyfive raises anything on bad bytes
        raise NNVisError(f"{path}: unreadable HDF5 file (truncated or damaged?): "
                         f"{type(e).__name__}: {e}") from e


def has_attribute(path: Path, name: str) -> bool:
    """Whether the file's root group has attribute `name`, read lazily from disk (a sniff that
    never loads a whole weights file; readers open it with `open_bytes`)."""
    try:
        with open(path, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                return False
            f.seek(0)
            return attribute(pyfive.File(f), name) is not None
    except Exception:            # noqa: BLE001 - a damaged file is simply not one
        return False


def check_complete(data: bytes, path: Path) -> None:
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


def array(dataset, shape: tuple, where: str, file_size: int, in_file=None):
    """A stored variable; Keras writes bfloat16 as 2-byte opaque data tagged dtype=bfloat16,
    returned here as float32 (exact) since Blender's numpy has no bfloat16.

    `in_file` = (path, offset of the HDF5 file's first byte in it): a large contiguous dataset is
    returned as a `StoredArray` there, read when used, instead of an array.

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
    bfloat16 = dataset.attrs.get("dtype") in ("bfloat16", b"bfloat16")
    if in_file is not None and nbytes >= LAZY_BYTES and not bfloat16 and \
            dataset.id.layout_class == 1:                                  # contiguous
        offset = dataset.id.data_offset
        if offset + nbytes > file_size:
            raise NNVisError(f"{where} claims {nbytes} bytes at offset {offset}, beyond the "
                             f"{file_size}-byte file (truncated?)")
        return StoredArray(in_file[0], in_file[1] + offset, dtype, shape)
    array = np.asarray(dataset[()])     # pyfive returns a fresh array: no second copy
    if bfloat16:
        high = np.frombuffer(array.tobytes(), dtype="<u2").astype(np.uint32) << 16
        array = high.view(np.float32)
    return array.reshape(shape)


def attribute(node, name: str):
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
