"""TensorFlow's TensorBundle (the TF2 checkpoint format) read with numpy only.

A checkpoint `PREFIX` is `PREFIX.index` plus data shards `PREFIX.data-SSSSS-of-NNNNN`
(tensorflow/core/util/tensor_bundle/tensor_bundle.cc):

- `.index` is a LevelDB-style SSTable (tensorflow/core/lib/io/format.cc, block_builder.cc):
  a 48-byte footer (metaindex and index BlockHandles as varint64 pairs, zero-padded to 40
  bytes, then the magic 0xdb4775248b80fb57 little-endian); the index block maps keys to data
  blocks. Every block ends in a 5-byte trailer: compression type (TF writes 0 = none for
  bundles) and the masked crc32c of contents + type byte. Block contents are entries
  (varint32 shared key bytes, non-shared bytes, value length; key delta; value), then uint32
  restart offsets and their count. Keys are sorted; key "" is a `BundleHeaderProto`, the
  others are `BundleEntryProto`s (tensor_bundle.proto).
- Shards hold raw little-endian tensors at (offset, size); DT_STRING tensors are varint64
  lengths, a masked crc32c of the lengths (as uint32), then the bytes. Each entry carries the
  masked crc32c of its bytes, checked on every read.

Everything the index says is checked against the files' sizes when the bundle is opened, so a
bad checkpoint fails there, before any tensor is allocated. Tensors are read on demand.
"""
from __future__ import annotations

import functools
import math
import os

import numpy as np

from ..errors import NNVisError
from .protowire import I32, LEN, VARINT, as_int64, last, parse_message, read_varint

_FOOTER_SIZE = 48
_MAGIC = 0xDB4775248B80FB57
_TRAILER_SIZE = 5
_KEY_BUDGET = 16        # rebuilt key bytes per block byte; TF's keys total about one

_DT_STRING, _DT_BFLOAT16 = 7, 14
_NUMPY_DTYPES = {  # tensorflow/core/framework/types.proto -> little-endian numpy dtype
    1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 8: "<c8", 9: "<i8", 10: "?",
    17: "<u2", 18: "<c16", 19: "<f2", 22: "<u4", 23: "<u8", _DT_BFLOAT16: "<u2",
}


# --- crc32c (Castagnoli), the checksum of LevelDB blocks and bundle entries ---------------
# A CRC state is a vector over GF(2) and feeding it zero bytes is a linear map Z_n. Maps are
# kept as 4x256 tables (the image of each byte of the state), applied with 4 lookups. Feeding
# a little-endian word w is `state -> Z_4(state ^ w)` (slicing-by-4).

def _byte_table() -> np.ndarray:
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> 1) ^ np.uint32(0x82F63B78), t >> 1).astype(np.uint32)
    return t


_TABLE = _byte_table()
_TABLE_LIST = _TABLE.tolist()
_UNITS = np.uint32(1) << np.arange(32, dtype=np.uint32)


def _crc_update(state: int, data: bytes) -> int:
    for byte in data:
        state = _TABLE_LIST[(state ^ byte) & 0xFF] ^ (state >> 8)
    return state


def _map_tables(columns: np.ndarray) -> np.ndarray:
    """The 4x256 tables of the linear map taking unit vector j to columns[j]."""
    byte = np.arange(256, dtype=np.uint32)
    tables = np.zeros((4, 256), np.uint32)
    for k in range(4):
        for j in range(8):
            tables[k] ^= np.where((byte >> j) & 1, columns[8 * k + j], 0).astype(np.uint32)
    return tables


def _apply(tables: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (tables[0][v & 0xFF] ^ tables[1][(v >> 8) & 0xFF]
            ^ tables[2][(v >> 16) & 0xFF] ^ tables[3][v >> 24])


@functools.lru_cache(maxsize=None)
def _zeros_tables(log2_bytes: int) -> np.ndarray:
    """Tables of Z_n for n = 2**log2_bytes zero bytes, by squaring Z_1."""
    if log2_bytes == 0:
        return _map_tables(_TABLE[_UNITS & 0xFF] ^ (_UNITS >> 8))
    half = _zeros_tables(log2_bytes - 1)
    return _map_tables(_apply(half, _apply(half, _UNITS)))


def _shift(states: np.ndarray, nbytes: int) -> np.ndarray:
    """CRC states after feeding each `nbytes` zero bytes."""
    bit = 0
    while nbytes:
        if nbytes & 1:
            states = _apply(_zeros_tables(bit), states)
        nbytes >>= 1
        bit += 1
    return states


def crc32c(data) -> int:
    """crc32c of bytes or a uint8 array; long data runs in numpy lanes (some 200 MB/s).

    The data is cut into 2**k equal lanes whose CRCs (from state 0) advance together four
    bytes per step; CRC is linear, so lane results are combined pairwise by shifting the left
    one over the right one's length, then the initial state and the tail are folded in.
    """
    data = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray)) else data
    n = data.size
    lanes = 1 << min(14, max(0, (n // 256).bit_length() - 1))
    if lanes < 64:
        return _crc_update(0xFFFFFFFF, data.tobytes()) ^ 0xFFFFFFFF
    width = n // (4 * lanes)
    body = 4 * lanes * width
    words = data[:body].view("<u4").reshape(lanes, width)
    word_step = _zeros_tables(2)
    states = np.zeros(lanes, np.uint32)
    for start in range(0, width, 256):
        for row in np.ascontiguousarray(words[:, start:start + 256].T):
            states ^= row
            states = _apply(word_step, states)
    span = 4 * width
    while states.size > 1:
        states = _shift(states[0::2], span) ^ states[1::2]
        span *= 2
    state = _shift(np.array([0xFFFFFFFF], np.uint32), body)[0] ^ states[0]
    return _crc_update(int(state), data[body:].tobytes()) ^ 0xFFFFFFFF


def _unmask(masked: int) -> int:
    """Undo LevelDB's crc masking (rotate right 15 after adding 0xa282ead8)."""
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# --- the .index SSTable ------------------------------------------------------------------

def _read_block(data: bytes, handle, path: str, what: str) -> memoryview:
    offset, size = handle
    if offset + size + _TRAILER_SIZE > len(data) - _FOOTER_SIZE:
        raise NNVisError(f"{path}: the {what} block (offset {offset}, {size} bytes) lies "
                         f"outside the {len(data)}-byte file (truncated?)")
    view = memoryview(data)[offset:offset + size + 1]
    stored = int.from_bytes(data[offset + size + 1:offset + size + 5], "little")
    if crc32c(np.frombuffer(view, np.uint8)) != _unmask(stored):
        raise NNVisError(f"{path}: checksum mismatch in the {what} block (file corrupted)")
    kind = data[offset + size]
    if kind == 1:
        raise NNVisError(f"{path}: the {what} block is Snappy-compressed, which nnvis does not "
                         f"read (TensorFlow writes checkpoint indexes uncompressed)")
    if kind != 0:
        raise NNVisError(f"{path}: the {what} block has unknown compression type {kind}")
    return view[:size]


def _block_entries(block: memoryview, path: str, what: str) -> list[tuple[bytes, memoryview]]:
    """(key, value) pairs of one block, keys rebuilt from their shared prefixes.

    A key shares a prefix of the one before, so a few bytes can rebuild a long key again and
    again; the rebuilt keys may total at most _KEY_BUDGET times the block's size."""
    size = len(block)
    budget = _KEY_BUDGET * size + 4096
    if size < 4:
        raise NNVisError(f"{path}: the {what} block is too short ({size} bytes)")
    restarts = int.from_bytes(block[size - 4:], "little")
    end = size - 4 * (restarts + 1)
    if restarts < 1 or end < 0:
        raise NNVisError(f"{path}: the {what} block has a bad restart count {restarts}")
    entries, key, pos = [], b"", 0
    where = f"{path}: {what} block"
    while pos < end:
        shared, pos = read_varint(block, pos, where)
        unshared, pos = read_varint(block, pos, where)
        value_len, pos = read_varint(block, pos, where)
        if shared > len(key) or unshared + value_len > end - pos:
            raise NNVisError(f"{where}: an entry runs past the block end (corrupted)")
        key = key[:shared] + bytes(block[pos:pos + unshared])
        budget -= len(key)
        if budget < 0:
            raise NNVisError(f"{where}: the keys rebuilt from shared prefixes are far longer "
                             f"than the block (corrupted)")
        pos += unshared
        entries.append((key, block[pos:pos + value_len]))
        pos += value_len
    return entries


def _read_table(path: str) -> list[tuple[bytes, memoryview]]:
    """All (key, value) pairs of an SSTable file, in key order."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size < _FOOTER_SIZE:
                raise NNVisError(f"{path}: {size} bytes is too short for a checkpoint index")
            f.seek(size - 8)
            if int.from_bytes(f.read(8), "little") != _MAGIC:
                raise NNVisError(f"{path}: not a TensorFlow checkpoint index "
                                 f"(no SSTable magic number)")
            f.seek(0)
            data = f.read()
    except OSError as e:
        raise NNVisError(f"{path}: cannot read the checkpoint index ({e.strerror})") from None
    footer, handles, pos = data[-_FOOTER_SIZE:], [], 0
    for _ in range(4):                        # metaindex (offset, size), index (offset, size)
        value, pos = read_varint(footer, pos, f"{path}: footer")
        handles.append(value)
    _read_block(data, handles[:2], path, "metaindex")   # unused (no filters), but checksummed
    entries, end = [], 0
    index = _read_block(data, handles[2:], path, "index")
    for _, handle in _block_entries(index, path, "index"):
        offset, pos = read_varint(handle, 0, f"{path}: index block")
        size, _ = read_varint(handle, pos, f"{path}: index block")
        if offset < end:        # each data block once, in file order: no block is read twice
            raise NNVisError(f"{path}: data blocks overlap or are out of order (corrupted)")
        end = offset + size + _TRAILER_SIZE
        entries += _block_entries(_read_block(data, (offset, size), path, "data"), path, "data")
    for (a, _), (b, _) in zip(entries, entries[1:]):
        if a >= b:
            raise NNVisError(f"{path}: keys are not strictly sorted (corrupted index)")
    return entries


# --- the bundle ----------------------------------------------------------------------------

class _Entry:
    __slots__ = ("dtype", "shape", "shard", "offset", "size", "crc", "sliced")

    def __init__(self, raw, what: str):
        f = parse_message(raw, {1: VARINT, 2: LEN, 3: VARINT, 4: VARINT, 5: VARINT,
                                6: I32, 7: LEN}, what)
        self.dtype = last(f, 1)
        self.shape = _parse_shape(last(f, 2, b""), what)
        self.shard = as_int64(last(f, 3))
        self.offset = as_int64(last(f, 4))
        self.size = as_int64(last(f, 5))
        self.crc = last(f, 6)
        self.sliced = bool(f.get(7))


def _parse_shape(raw: bytes, what: str) -> tuple[int, ...]:
    f = parse_message(raw, {2: LEN, 3: VARINT}, what)
    if last(f, 3):
        raise NNVisError(f"{what}: the tensor has an unknown rank")
    dims = tuple(as_int64(last(parse_message(d, {1: VARINT}, what), 1)) for d in f.get(2, []))
    if any(d < 0 for d in dims):
        raise NNVisError(f"{what}: the tensor shape {dims} has a negative dimension")
    return dims


def _prefix_of(path) -> str:
    """Accept the prefix itself, its .index file or one of its data shards."""
    path = os.fspath(path)
    if path.endswith(".index"):
        return path[:-len(".index")]
    head, dot, tail = path.rpartition(".data-")
    return head if dot and "-of-" in tail else path


class TensorBundle:
    """The tensors of one checkpoint; `TensorBundle("run/ckpt-3").read(key)` -> ndarray."""

    def __init__(self, prefix):
        self.prefix = _prefix_of(prefix)
        self.index_path = self.prefix + ".index"
        if not os.path.isfile(self.index_path):
            raise NNVisError(f"{self.index_path}: checkpoint index not found")
        table = _read_table(self.index_path)
        if not table or table[0][0] != b"":
            raise NNVisError(f"{self.index_path}: the index has no bundle header (not a "
                             f"TensorFlow checkpoint)")
        self.num_shards = self._parse_header(table[0][1])
        self._entries: dict[str, _Entry] = {}
        for raw_key, value in table[1:]:
            key = raw_key.decode("utf-8", "backslashreplace")
            self._entries[key] = _Entry(value, f"{self.index_path}: entry {key!r}")
        self._shard_sizes: dict[int, int] = {}
        for key, entry in self._entries.items():
            self._check_entry(key, entry)

    def _parse_header(self, raw) -> int:
        what = f"{self.index_path}: bundle header"
        f = parse_message(raw, {1: VARINT, 2: VARINT, 3: LEN}, what)
        if last(f, 2) != 0:
            raise NNVisError(f"{self.index_path}: a big-endian checkpoint is not supported")
        min_consumer = as_int64(last(parse_message(last(f, 3, b""), {2: VARINT}, what), 2))
        if min_consumer > 1:
            raise NNVisError(f"{self.index_path}: written for bundle readers of version "
                             f"{min_consumer}+ (nnvis reads version 1)")
        num_shards = as_int64(last(f, 1))
        if num_shards < 1:
            raise NNVisError(f"{self.index_path}: the header claims {num_shards} data shards")
        return num_shards

    def shard_path(self, shard: int) -> str:
        return f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}"

    def _check_entry(self, key: str, e: _Entry):
        """Everything the entry claims must fit its dtype and the shard file it points into."""
        where = f"{self.index_path}: tensor {key!r}"
        if e.sliced:
            return                                    # refused by read(); no data of its own
        if not 0 <= e.shard < self.num_shards:
            raise NNVisError(f"{where}: shard {e.shard} of {self.num_shards} does not exist")
        count = math.prod(e.shape)
        itemsize = np.dtype(_NUMPY_DTYPES[e.dtype]).itemsize if e.dtype in _NUMPY_DTYPES else 0
        if itemsize and e.size != count * itemsize:
            raise NNVisError(f"{where}: {e.size} bytes cannot hold shape {e.shape}")
        if e.dtype == _DT_STRING and (e.size or count) and e.size < count + 4:
            raise NNVisError(f"{where}: {e.size} bytes cannot hold {count} strings")
        if e.shard not in self._shard_sizes:
            path = self.shard_path(e.shard)
            try:
                self._shard_sizes[e.shard] = os.path.getsize(path)
            except OSError:
                raise NNVisError(f"{path}: checkpoint data file missing") from None
        shard_size = self._shard_sizes[e.shard]
        if e.offset < 0 or e.size < 0 or e.offset + e.size > shard_size:
            raise NNVisError(f"{self.shard_path(e.shard)}: tensor {key!r} needs bytes "
                             f"{e.offset}..{e.offset + e.size}, the file has {shard_size} "
                             f"(truncated?)")

    def keys(self) -> list[str]:
        """Every tensor key in sorted order (the header entry "" excluded)."""
        return list(self._entries)

    def __contains__(self, key) -> bool:
        return key in self._entries

    def _entry(self, key: str) -> _Entry:
        try:
            return self._entries[key]
        except KeyError:
            raise NNVisError(f"{self.index_path}: no tensor {key!r} in the checkpoint") from None

    def shape(self, key: str) -> tuple[int, ...]:
        return self._entry(key).shape

    def dtype(self, key: str) -> np.dtype:
        """The dtype `read` returns: bfloat16 widens to float32, strings are bytes objects."""
        code = self._entry(key).dtype
        if code == _DT_STRING:
            return np.dtype(object)
        if code == _DT_BFLOAT16:
            return np.dtype(np.float32)
        if code not in _NUMPY_DTYPES:
            raise NNVisError(f"{self.index_path}: tensor {key!r} has unsupported TensorFlow "
                             f"dtype {code} (see types.proto)")
        return np.dtype(_NUMPY_DTYPES[code]).newbyteorder("=")

    def read(self, key: str) -> np.ndarray:
        """The tensor's value, checksum-verified; strings give an object array of bytes."""
        e = self._entry(key)
        if e.sliced:
            raise NNVisError(f"{self.index_path}: tensor {key!r} is partitioned into slices, "
                             f"which is not supported")
        dtype = self.dtype(key)
        raw = self._read_bytes(key, e)
        if e.dtype == _DT_STRING:
            return self._strings(key, e, raw)
        if e.dtype == _DT_BFLOAT16:
            return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32).reshape(e.shape)
        return raw.view(_NUMPY_DTYPES[e.dtype]).astype(dtype, copy=False).reshape(e.shape)

    def _read_bytes(self, key: str, e: _Entry) -> np.ndarray:
        path = self.shard_path(e.shard)
        raw = np.empty(e.size, np.uint8)
        try:
            with open(path, "rb") as f:
                f.seek(e.offset)
                got = f.readinto(raw)
        except OSError as err:
            raise NNVisError(f"{path}: cannot read tensor {key!r} ({err.strerror})") from None
        if got != e.size:
            raise NNVisError(f"{path}: tensor {key!r} is cut short ({got} of {e.size} bytes)")
        if e.dtype != _DT_STRING and crc32c(raw) != _unmask(e.crc):
            raise NNVisError(f"{path}: checksum mismatch in tensor {key!r} (file corrupted)")
        return raw

    def _strings(self, key: str, e: _Entry, raw: np.ndarray) -> np.ndarray:
        """Decode [varint64 lengths][masked crc32c of the lengths][bytes] into bytes objects."""
        where = f"{self.shard_path(e.shard)}: string tensor {key!r}"
        count = math.prod(e.shape)
        out = np.empty(count, dtype=object)
        if e.size == 0:
            return out.reshape(e.shape)
        buf = raw.tobytes()
        lengths, pos = [], 0
        for _ in range(count):
            n, pos = read_varint(buf, pos, where)
            if n > len(buf) - pos:
                raise NNVisError(f"{where}: a string claims {n} bytes, more than the tensor's "
                                 f"{len(buf)} (corrupted)")
            lengths.append(n)
        packed = b"".join(n.to_bytes(4 if n <= 0xFFFFFFFF else 8, "little") for n in lengths)
        stored = buf[pos:pos + 4]
        if crc32c(packed) != _unmask(int.from_bytes(stored, "little")):
            raise NNVisError(f"{where}: checksum mismatch in the string lengths (corrupted)")
        if crc32c(packed + stored + buf[pos + 4:]) != _unmask(e.crc):
            raise NNVisError(f"{where}: checksum mismatch (file corrupted)")
        pos += 4
        for i, n in enumerate(lengths):
            out[i] = buf[pos:pos + n]
            pos += n
        return out.reshape(e.shape)
