"""Protocol-buffer wire format, decoded by hand (protobuf.dev/programming-guides/encoding).

Blender has no protobuf package, and nnvis reads only a few messages (a TF2 checkpoint's
TrackableObjectGraph and TensorBundle entries, an ONNX ModelProto), so this decodes the wire format
directly: varints, fixed32/fixed64 and length-delimited fields; fields a caller doesn't ask for are
skipped. Every length is checked against the bytes left, so a damaged file raises NNVisError.
"""
from __future__ import annotations

import numpy as np

from ..errors import NNVisError

VARINT, I64, LEN, I32 = 0, 1, 2, 5   # wire types; 3/4 (groups) are used by neither format
_FIXED_SIZE = {I64: 8, I32: 4}


def read_varint(buf, pos: int, what: str) -> tuple[int, int]:
    """(value, position after it) of the varint at `pos`; at most 10 bytes holding 64 bits."""
    value = shift = 0
    end = len(buf)
    while pos < end and shift < 70:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >> 64:
                break
            return value, pos
        shift += 7
    raise NNVisError(f"{what}: truncated varint, or one over 64 bits")


def as_int64(value: int) -> int:
    """A varint-encoded int32/int64 field: negative numbers are 10-byte two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


def parse_message(buf, schema: dict[int, int | tuple], what: str) -> dict[int, list]:
    """Field number -> values in file order, for the fields of `schema` (number -> wire type, or
    a tuple of the wire types allowed: a repeated number may come packed (LEN) or one by one).

    Varints and fixed fields give ints, length-delimited fields give bytes (a zero-copy
    memoryview slice when `buf` is a memoryview). Other fields are skipped; a field of `schema`
    with another wire type means the bytes are not this message.
    """
    fields: dict[int, list] = {}
    pos, end = 0, len(buf)
    view = isinstance(buf, memoryview)
    while pos < end:
        tag, pos = read_varint(buf, pos, what)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise NNVisError(f"{what}: not a protobuf message (field number 0)")
        if wire == VARINT:
            value, pos = read_varint(buf, pos, what)
        elif wire == LEN:
            size, pos = read_varint(buf, pos, what)
            if size > end - pos:
                raise NNVisError(f"{what}: field {number} claims {size} bytes, "
                                 f"only {end - pos} left")
            value = buf[pos:pos + size] if view else bytes(buf[pos:pos + size])
            pos += size
        elif wire in _FIXED_SIZE:
            size = _FIXED_SIZE[wire]
            if size > end - pos:
                raise NNVisError(f"{what}: truncated fixed-size field {number}")
            value, pos = int.from_bytes(buf[pos:pos + size], "little"), pos + size
        else:
            raise NNVisError(f"{what}: unsupported protobuf wire type {wire} (field {number})")
        if number in schema:
            allowed = schema[number]
            if wire != allowed and not (isinstance(allowed, tuple) and wire in allowed):
                raise NNVisError(f"{what}: field {number} has wire type {wire}, "
                                 f"expected {allowed}")
            fields.setdefault(number, []).append((wire, value) if isinstance(allowed, tuple)
                                                 else value)
    return fields


def last(fields: dict[int, list], number: int, default=0):
    """A singular field's value: the last occurrence wins (protobuf merge rule)."""
    values = fields.get(number)
    return values[-1] if values else default


def text(raw, what: str) -> str:
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise NNVisError(f"{what}: a string field is not UTF-8") from None


def repeated_ints(values: list, what: str, signed: bool = True) -> list[int]:
    """A repeated varint field parsed with schema (VARINT, LEN): packed runs and single values."""
    out = []
    for wire, value in values:
        if wire == VARINT:
            out.append(value)
            continue
        pos = 0
        while pos < len(value):
            v, pos = read_varint(value, pos, what)
            out.append(v)
    return [as_int64(v) for v in out] if signed else out


def repeated_fixed(values: list, dtype: str, what: str) -> np.ndarray:
    """A repeated fixed32/fixed64 field (float, double) parsed with schema (I32|I64, LEN)."""
    dt = np.dtype(dtype)
    parts = []
    for wire, value in values:
        if wire == LEN:
            if len(value) % dt.itemsize:
                raise NNVisError(f"{what}: packed {dt.name} field of {len(value)} bytes")
            parts.append(np.frombuffer(value, dt))
        else:
            parts.append(np.frombuffer(int(value).to_bytes(dt.itemsize, "little"), dt))
    return np.concatenate(parts) if parts else np.zeros(0, dt)
