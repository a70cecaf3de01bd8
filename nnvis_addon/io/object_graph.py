"""The checkpoint's TrackableObjectGraph, decoded with ``protowire`` (Blender has no protobuf).

The `_CHECKPOINTABLE_OBJECT_GRAPH` tensor is a serialized `tensorflow.TrackableObjectGraph`
(tensorflow/core/protobuf/trackable_object_graph.proto). Node 0 is the root (the
`tf.train.Checkpoint`). Every node lists its children by local name (attribute or list index)
and, if it is a variable, its attribute "VARIABLE_VALUE" holding the key of its tensor.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import NNVisError

from .protowire import LEN, VARINT, as_int64, last, parse_message, text


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
