"""Protocol-buffer wire format, decoded by hand, and the checkpoint's TrackableObjectGraph.

Blender has no protobuf package, and a TF2 checkpoint needs only a few small messages, so
this decodes the wire format directly (protobuf.dev/programming-guides/encoding): varints,
fixed32/fixed64 and length-delimited fields; fields it doesn't ask for are skipped.

The `_CHECKPOINTABLE_OBJECT_GRAPH` tensor is a serialized `tensorflow.TrackableObjectGraph`
(tensorflow/core/protobuf/trackable_object_graph.proto). Node 0 is the root (the
`tf.train.Checkpoint`). Every node lists its children by local name (attribute or list index)
and, if it is a variable, its attribute "VARIABLE_VALUE" holding the key of its tensor.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import NNVisError

VARINT, I64, LEN, I32 = 0, 1, 2, 5   # wire types; 3/4 (groups) are unused by TensorFlow
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


def parse_message(buf, schema: dict[int, int], what: str) -> dict[int, list]:
    """Field number -> values in file order, for the fields of `schema` (number -> wire type).

    Varints and fixed fields give ints, length-delimited fields give bytes. Other fields are
    skipped; a field of `schema` with another wire type means the bytes are not this message.
    """
    fields: dict[int, list] = {}
    pos, end = 0, len(buf)
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
            value, pos = bytes(buf[pos:pos + size]), pos + size
        elif wire in _FIXED_SIZE:
            size = _FIXED_SIZE[wire]
            if size > end - pos:
                raise NNVisError(f"{what}: truncated fixed-size field {number}")
            value, pos = int.from_bytes(buf[pos:pos + size], "little"), pos + size
        else:
            raise NNVisError(f"{what}: unsupported protobuf wire type {wire} (field {number})")
        if number in schema:
            if schema[number] != wire:
                raise NNVisError(f"{what}: field {number} has wire type {wire}, "
                                 f"expected {schema[number]}")
            fields.setdefault(number, []).append(value)
    return fields


def last(fields: dict[int, list], number: int, default=0):
    """A singular field's value: the last occurrence wins (protobuf merge rule)."""
    values = fields.get(number)
    return values[-1] if values else default


def text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NNVisError(f"{what}: a string field is not UTF-8") from None


@dataclass(frozen=True)
class Child:
    node_id: int
    local_name: str


@dataclass(frozen=True)
class SerializedTensor:
    name: str            # "VARIABLE_VALUE" for a variable's value
    full_name: str       # the variable's TF name, often empty for Keras 3
    checkpoint_key: str  # key of the tensor in the TensorBundle


@dataclass(frozen=True)
class SlotVariable:
    original_variable_node_id: int
    slot_name: str
    slot_variable_node_id: int


@dataclass(frozen=True)
class TrackableObject:
    children: tuple[Child, ...]
    attributes: tuple[SerializedTensor, ...]
    slot_variables: tuple[SlotVariable, ...]

    def child(self, local_name: str) -> int | None:
        """Node id of the first child called `local_name`, or None."""
        for c in self.children:
            if c.local_name == local_name:
                return c.node_id
        return None

    @property
    def variable_key(self) -> str | None:
        """The checkpoint key of this node's value if it is a variable, else None."""
        for a in self.attributes:
            if a.name == "VARIABLE_VALUE":
                return a.checkpoint_key
        return None


def parse_object_graph(buf: bytes, what: str) -> list[TrackableObject]:
    """The nodes of a serialized TrackableObjectGraph; every node id is checked to exist."""
    raw_nodes = parse_message(buf, {1: LEN}, what).get(1, [])
    if not raw_nodes:
        raise NNVisError(f"{what}: the object graph has no nodes")
    nodes = [_parse_node(raw, f"{what} node {i}") for i, raw in enumerate(raw_nodes)]
    for i, node in enumerate(nodes):
        ids = [c.node_id for c in node.children]
        for s in node.slot_variables:
            ids += [s.original_variable_node_id, s.slot_variable_node_id]
        bad = [n for n in ids if not 0 <= n < len(nodes)]
        if bad:
            raise NNVisError(f"{what}: node {i} refers to node {bad[0]}, "
                             f"but there are only {len(nodes)} nodes")
    return nodes


def _parse_node(buf: bytes, what: str) -> TrackableObject:
    f = parse_message(buf, {1: LEN, 2: LEN, 3: LEN}, what)
    children = []
    for raw in f.get(1, []):
        c = parse_message(raw, {1: VARINT, 2: LEN}, what)
        children.append(Child(as_int64(last(c, 1)), text(last(c, 2, b""), what)))
    attributes = []
    for raw in f.get(2, []):
        a = parse_message(raw, {1: LEN, 2: LEN, 3: LEN}, what)
        attributes.append(SerializedTensor(*(text(last(a, n, b""), what) for n in (1, 2, 3))))
    slots = []
    for raw in f.get(3, []):
        s = parse_message(raw, {1: VARINT, 2: LEN, 3: VARINT}, what)
        slots.append(SlotVariable(as_int64(last(s, 1)), text(last(s, 2, b""), what),
                                  as_int64(last(s, 3))))
    return TrackableObject(tuple(children), tuple(attributes), tuple(slots))
