"""Input mutators for the reader fuzzer, driven by any `random.Random`-like object.

Generic byte edits (bit flips, byte replacement, splices, length-field edits, truncation, random
bytes) plus structure-aware ones: JSON values, protobuf fields, and writers for the containers that
guard their contents with checksums or offsets (LevelDB tables, zips), so an edit can reach the
parser behind the checksum instead of always failing at it. `hypothesis.strategies.randoms()` can
drive every function here, which lets hypothesis shrink a failing input.
"""
from __future__ import annotations

import json
import struct
import zlib

import numpy as np

from ...errors import NNVisError
from ...io.protowire import read_varint
from ...io.tensorbundle import crc32c

INTERESTING = (0, 1, 2, 3, 7, 8, 15, 16, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF,
               0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, (1 << 40) + 3,
               (1 << 63) - 1, 1 << 63, (1 << 64) - 1)


def interesting_int(rng, hint: int = 0) -> int:
    """An integer likely to break a length, count, offset or index field (hint: a real size)."""
    r = rng.random()
    if r < 0.2:
        return max(0, hint + rng.choice((-1, 0, 1, 2, -8, 8)))
    if r < 0.3:
        return rng.getrandbits(rng.choice((8, 16, 32, 64)))
    return rng.choice(INTERESTING)


# --- bytes ------------------------------------------------------------------------------------

def flip_bits(rng, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return bytes(b)


def set_bytes(rng, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        b[rng.randrange(len(b))] = rng.choice((0, 0xFF, 0x7F, 0x80, 1, rng.randrange(256)))
    return bytes(b)


def write_int(rng, data: bytes) -> bytes:
    """Overwrite a fixed-width integer (a length, offset or count field, LE or BE)."""
    width = rng.choice((1, 2, 4, 8))
    if len(data) < width:
        return data
    value = interesting_int(rng, len(data)) & ((1 << 8 * width) - 1)
    pos = rng.randrange(len(data) - width + 1)
    raw = value.to_bytes(width, rng.choice(("little", "big")))
    return data[:pos] + raw + data[pos + width:]


def write_varint(rng, data: bytes) -> bytes:
    """Overwrite or insert a varint (protobuf / LevelDB length fields)."""
    raw = varint(interesting_int(rng, len(data)))
    pos = rng.randrange(len(data) + 1)
    cut = pos + (len(raw) if rng.random() < 0.7 else rng.randint(0, 10))
    return data[:pos] + raw + data[cut:]


def rewire(rng, data: bytes) -> bytes:
    """Point an address field elsewhere: a 64-bit little-endian word whose value lies inside the
    file (an HDF5 address, most likely) gets another such word's value, its own position (a
    loop) or a neighbour of its value."""
    if len(data) < 16:
        return data
    words = np.zeros(len(data) - 7, np.uint64)
    raw = np.frombuffer(data, np.uint8).astype(np.uint64)
    for k in range(8):
        words |= raw[k:len(data) - 7 + k] << np.uint64(8 * k)
    spots = np.flatnonzero((words >= 8) & (words < len(data)))
    if not spots.size:
        return write_int(rng, data)
    pos = int(spots[rng.randrange(spots.size)])
    r = rng.random()
    if r < 0.4:
        value = int(words[spots[rng.randrange(spots.size)]])
    elif r < 0.6:
        value = pos
    else:
        value = int(words[pos]) + rng.choice((-16, -8, -1, 1, 8, 16))
    return data[:pos] + (value % (1 << 64)).to_bytes(8, "little") + data[pos + 8:]


def splice(rng, data: bytes, donors=()) -> bytes:
    """Copy a chunk of this input or a donor over, or into, a random place."""
    donor = rng.choice([data, *donors])
    if not donor:
        return data
    start = rng.randrange(len(donor))
    chunk = donor[start:start + rng.randint(1, 256)]
    pos = rng.randrange(len(data) + 1)
    cut = pos + len(chunk) if rng.random() < 0.5 else pos
    return data[:pos] + chunk + data[cut:]


def erase(rng, data: bytes) -> bytes:
    pos = rng.randrange(len(data))
    return data[:pos] + data[pos + rng.randint(1, 64):]


def insert(rng, data: bytes) -> bytes:
    pos = rng.randrange(len(data) + 1)
    chunk = rng.randbytes(rng.randint(1, 16)) * rng.choice((1, 1, 4, 64))
    return data[:pos] + chunk + data[pos:]


def truncate(rng, data: bytes) -> bytes:
    if not data:
        return data
    r = rng.random()
    if r < 0.3:
        return data[:rng.randrange(min(len(data), 64))]
    if r < 0.6:
        return data[:len(data) - rng.randint(1, min(len(data), 64))]
    return data[:rng.randrange(len(data))]


def random_bytes(rng, data: bytes) -> bytes:
    """Noise of about the input's size, sometimes behind the input's own first bytes (magic)."""
    noise = rng.randbytes(rng.randrange(2 * len(data) + 64))
    return data[:rng.choice((0, 4, 8, 16))] + noise


_EDITS = (flip_bits, set_bytes, write_int, write_int, write_varint, rewire, splice, erase,
          insert)


def mutate_bytes(rng, data: bytes, donors=()) -> bytes:
    """One to four random edits, or a truncation, or noise."""
    r = rng.random()
    if not data or r < 0.05:
        return random_bytes(rng, data)
    if r < 0.15:
        return truncate(rng, data)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        if not data:
            break
        edit = rng.choice(_EDITS)
        data = edit(rng, data, donors) if edit is splice else edit(rng, data)
    if rng.random() < 0.1:
        data = truncate(rng, data)
    return data


def mutate_header(rng, data: bytes, length: int = 256) -> bytes:
    """Edits confined to the first `length` bytes, where the headers and length fields are."""
    head = mutate_bytes(rng, data[:length])
    return head + data[length:]


# --- JSON -------------------------------------------------------------------------------------

_DEEP = "\x01deep{}\x01"      # stands for [[[...]]] nested {} deep, spliced in as text


def _nested(rng) -> str:
    return _DEEP.format(rng.choice((8, 200, 5000, 100_000)))


def _dumps(value) -> bytes:
    """JSON text of `value`, the deep-nesting markers expanded (json.dumps itself would recurse)."""
    text = json.dumps(value)
    for depth in (8, 200, 5000, 100_000):
        marker = json.dumps(_DEEP.format(depth))
        text = text.replace(marker, "[" * depth + "]" * depth)
    return text.encode("utf-8", "surrogatepass")


def _interesting_json(rng):
    return rng.choice((
        None, True, False, 0, -1, 1, 3, 2 ** 31, 2 ** 40, 2 ** 63, -(2 ** 63), 10 ** 30, 1e308,
        -1.5, float("nan"), float("inf"), "", "x", "0", "O", "|O", "<U8", "V8", ">f4", "<f8",
        "bfloat16", "float64", "../../escape", "\x00", "\udcff", "é" * 3, [], {}, [None], [-1],
        [0, 0], [2 ** 40, 2 ** 40, 2 ** 40], [[1, 2], [3]], {"class_name": "Lambda"},
        {"shape": [2 ** 62, 2 ** 62], "dtype": "<f4"}, {"module": "os", "class_name": "system"},
        _nested(rng)))


def _slots(value, out: list) -> list:
    """(container, key) of every value inside `value`, depth first."""
    items = (value.items() if isinstance(value, dict)
             else enumerate(value) if isinstance(value, list) else ())
    for key, child in items:
        out.append((value, key))
        _slots(child, out)
    return out


def mutate_json_value(rng, value):
    """The value with one of its parts replaced, deleted, duplicated, wrapped or re-typed."""
    slots = _slots(value, [])
    if not slots or rng.random() < 0.03:
        return _interesting_json(rng)
    container, key = rng.choice(slots)
    old = container[key]
    action = rng.random()
    if action < 0.45:
        container[key] = _interesting_json(rng)
    elif action < 0.6:
        del container[key]
    elif action < 0.7 and isinstance(container, list):
        container.insert(key, old)
    elif action < 0.8:
        container[key] = [old] if rng.random() < 0.5 else {"value": old}
    elif isinstance(old, bool) or not isinstance(old, (int, float)):
        container[key] = str(old) if rng.random() < 0.5 else len(str(old))
    else:
        container[key] = rng.choice((-old, old + 1, old * 1000003, str(old), float(old) + 0.5))
    return value


_SHAPES = (None, True, 0, 7, -1, 2 ** 40, 1.5, "", "x", [], [None], [1, 2], [[]], {}, {"name": 3})


def mutate_json_shape(rng, value):
    """The value with one of its objects or lists (a layer entry, its `config`, a node list)
    replaced by a value of another shape — a number, a string, None, a list or an object: what a
    reader that indexes or `.get`s a part before checking its type trips on. Half the time a
    sibling key goes too, so that readers' fallbacks (`entry.get("name") or entry["config"]…`)
    reach the replaced part."""
    slots = [(c, k) for c, k in _slots(value, []) if isinstance(c[k], (dict, list))]
    if not slots:
        return mutate_json_value(rng, value)
    container, key = rng.choice(slots)
    container[key] = rng.choice([v for v in _SHAPES if type(v) is not type(container[key])])
    siblings = [k for k in container if k != key] if isinstance(container, dict) else []
    if siblings and rng.random() < 0.5:
        del container[rng.choice(siblings)]
    return value


def mutate_json(rng, text: bytes) -> bytes:
    """A JSON document with one structural edit (or, now and then, a raw byte edit); a third of
    the edits change a part's shape (`mutate_json_shape`)."""
    if rng.random() < 0.2:
        return mutate_bytes(rng, text)
    try:
        value = json.loads(text)
    except ValueError:
        return mutate_bytes(rng, text)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        edit = mutate_json_shape if rng.random() < 0.35 else mutate_json_value
        value = edit(rng, value)
    return _dumps(value)


# --- protobuf ---------------------------------------------------------------------------------

def varint(value: int) -> bytes:
    value &= (1 << 64) - 1                       # negative int64: ten-byte two's complement
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_fields(buf: bytes) -> list[list] | None:
    """[number, wire type, value] of every field, in order; None if `buf` is not a message."""
    fields, pos = [], 0
    try:
        while pos < len(buf):
            tag, pos = read_varint(buf, pos, "")
            number, wire = tag >> 3, tag & 7
            if wire == 0:
                value, pos = read_varint(buf, pos, "")
            elif wire == 2:
                size, pos = read_varint(buf, pos, "")
                if size > len(buf) - pos:
                    return None
                value, pos = bytes(buf[pos:pos + size]), pos + size
            elif wire in (1, 5):
                size = 8 if wire == 1 else 4
                if size > len(buf) - pos:
                    return None
                value, pos = int.from_bytes(buf[pos:pos + size], "little"), pos + size
            else:
                return None
            fields.append([number, wire, value])
    except NNVisError:
        return None
    return fields


def encode_fields(fields) -> bytes:
    out = bytearray()
    for number, wire, value in fields:
        out += varint(number << 3 | wire)
        if wire == 0:
            out += varint(value)
        elif wire == 2:
            out += varint(len(value)) + value
        else:
            size = 8 if wire == 1 else 4
            out += (value & ((1 << 8 * size) - 1)).to_bytes(size, "little")
    return bytes(out)


def mutate_proto(rng, buf: bytes, depth: int = 0) -> bytes:
    """A message with one field edited: a number set to an interesting value, a nested message
    edited recursively, a field dropped, repeated or added."""
    fields = decode_fields(buf)
    if not fields or depth > 6 or rng.random() < 0.15:
        return mutate_bytes(rng, buf)
    i = rng.randrange(len(fields))
    number, wire, value = fields[i]
    action = rng.random()
    if action < 0.55:
        if wire == 2:
            fields[i][2] = mutate_proto(rng, value, depth + 1)
        else:
            fields[i][2] = interesting_int(rng, value) if rng.random() < 0.8 else value ^ 1
    elif action < 0.7:
        del fields[i]
    elif action < 0.85:
        fields.insert(i, list(fields[i]))
    else:
        wire = rng.choice((0, 1, 2, 5))
        new = rng.randbytes(rng.randint(0, 8)) if wire == 2 else interesting_int(rng)
        fields.insert(i, [rng.choice((number, rng.randint(1, 20))), wire, new])
    return encode_fields(fields)


# --- LevelDB table (a TensorBundle .index) ----------------------------------------------------

TABLE_MAGIC = 0xDB4775248B80FB57


def mask_crc(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _block(entries, restart_interval: int = 16) -> bytes:
    """LevelDB block contents: prefix-compressed entries, restart offsets, their count."""
    out, restarts, last = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_interval == 0:
            restarts.append(len(out))
        else:
            shared = _common_prefix(key, last)
        out += varint(shared) + varint(len(key) - shared) + varint(len(value))
        out += key[shared:] + value
        last = key
    restarts = restarts or [0]
    return bytes(out) + b"".join(struct.pack("<I", r) for r in restarts) + \
        struct.pack("<I", len(restarts))


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the common prefix, by bisection on slice comparisons (keys may be long)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def _trailer(contents: bytes, kind: int = 0) -> bytes:
    return bytes([kind]) + struct.pack("<I", mask_crc(crc32c(contents + bytes([kind]))))


def table(entries, edit=None, restart_interval: int = 16) -> bytes:
    """A LevelDB table file (one data block) holding `entries` ((key, value) bytes pairs, in the
    order given); `edit(block) -> block` alters the data block's contents before its checksum is
    computed."""
    data = _block(entries, restart_interval)
    if edit is not None:
        data = edit(data)
    meta = _block([])
    out = bytearray(data + _trailer(data))
    meta_at = len(out)
    out += meta + _trailer(meta)
    handle = varint(0) + varint(len(data))
    index = _block([(entries[-1][0] if entries else b"", handle)])
    index_at = len(out)
    out += index + _trailer(index)
    footer = varint(meta_at) + varint(len(meta)) + varint(index_at) + varint(len(index))
    return bytes(out + footer.ljust(40, b"\0") + struct.pack("<Q", TABLE_MAGIC))


def string_tensor(value: bytes) -> tuple[bytes, int]:
    """A scalar DT_STRING tensor's bytes in a TensorBundle data file, and its masked crc."""
    length = varint(len(value))
    packed = struct.pack("<I", len(value)) if len(value) <= 0xFFFFFFFF else \
        struct.pack("<Q", len(value))
    lengths_crc = struct.pack("<I", mask_crc(crc32c(packed)))
    return length + lengths_crc + value, mask_crc(crc32c(packed + lengths_crc + value))


# --- zip --------------------------------------------------------------------------------------

def zip_member(name: str, data: bytes, method: int = 0, **claims) -> dict:
    """A zip member: STORED (0) or DEFLATED (8) `data`; `claims` override header fields (crc,
    compress_size, file_size, flags, name_in_header)."""
    raw = data if method == 0 else _deflate(data)
    member = {"name": name.encode("utf-8", "surrogatepass"), "raw": raw, "method": method,
              "crc": zlib.crc32(data), "compress_size": len(raw), "file_size": len(data),
              "flags": 0}
    member.update(claims)
    return member


def _deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def zeros_deflated(size: int) -> bytes:
    """A raw deflate stream inflating to `size` zero bytes (size a multiple of 1 MiB), made in
    milliseconds: a fully flushed block of 1 MiB of zeros is the same bytes every time."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    return block * (size >> 20) + c.flush()


def zip_bytes(members) -> bytes:
    """A zip archive of `zip_member`s, written field by field so any field may lie."""
    out, central = bytearray(), bytearray()
    for m in members:
        name = m.get("name_in_header", m["name"])
        offset = len(out)
        sizes = (m["crc"] & 0xFFFFFFFF, m["compress_size"] & 0xFFFFFFFF,
                 m["file_size"] & 0xFFFFFFFF)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, m["flags"], m["method"], 0, 0x21,
                           *sizes, len(name), 0) + name + m["raw"]
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, m["flags"],
                               m["method"], 0, 0x21, *sizes, len(m["name"]), 0, 0, 0, 0, 0,
                               offset) + m["name"]
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central),
                      len(out), 0)
    return bytes(out + central + end)
