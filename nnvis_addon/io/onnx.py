"""ONNX model files without the onnx package: the graph (nodes, attributes, initializers, inputs)
as a `model.onnx_model.OnnxModel`, and an epoch's file as a Network and weights
(`read_onnx_epoch`, through `model.onnx_graph`).

Blender has no onnx or protobuf package, so the ModelProto is decoded with ``protowire``
(field numbers from onnx/onnx.proto). Tensors come from ``raw_data`` (little-endian, zero-copy
views of the file bytes), the typed ``*_data`` fields, or external data files (``data_location =
EXTERNAL``: torch's dynamo exporter writes ``model.onnx.data`` beside the model by default), which
must lie in the model's own folder. Subgraphs (If/Loop bodies) are not decoded; such nodes import as unsupported blocks.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import NNVisError
from ..model.network import Network
from ..model.onnx_graph import network_from_onnx
from ..model.onnx_model import OnnxInput, OnnxModel, OnnxNode
from .protowire import (I32, I64, LEN, VARINT, as_int64, last, parse_message, repeated_fixed,
                        repeated_ints, text)

MAX_FILE_BYTES = 2 << 30            # protobuf's own limit; bigger models use external data

# TensorProto.DataType -> numpy dtype (little-endian), and the typed field that holds it
_DTYPES = {1: "<f4", 2: "u1", 3: "i1", 4: "<u2", 5: "<i2", 6: "<i4", 7: "<i8", 9: "?",
           10: "<f2", 11: "<f8", 12: "<u4", 13: "<u8"}
_INT32_FIELD_TYPES = {2, 3, 4, 5, 6, 9, 10}      # int32_data (float16 as its bits)
_FIELD = {"dims": 1, "data_type": 2, "segment": 3, "float_data": 4, "int32_data": 5,
          "int64_data": 7, "name": 8, "raw_data": 9, "double_data": 10, "uint64_data": 11,
          "external_data": 13, "data_location": 14}
_TENSOR_SCHEMA = {1: (VARINT, LEN), 2: VARINT, 3: LEN, 4: (I32, LEN), 5: (VARINT, LEN),
                  7: (VARINT, LEN), 8: LEN, 9: LEN, 10: (I64, LEN), 11: (VARINT, LEN), 13: LEN,
                  14: VARINT}
# AttributeProto.AttributeType
_FLOAT, _INT, _STRING, _TENSOR, _GRAPH, _FLOATS, _INTS, _STRINGS = 1, 2, 3, 4, 5, 6, 7, 8


def read_onnx(path) -> OnnxModel:
    """Parse an ONNX file; NNVisError naming the file for anything that is not a usable model."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise NNVisError(f"{path}: {size} bytes is over ONNX's 2 GB limit for one file")
        data = memoryview(path.read_bytes())
    except OSError as exc:
        raise NNVisError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return parse_model(data, str(path), path.parent)
    except NNVisError as exc:
        message = str(exc)
        raise NNVisError(message if message.startswith(str(path)) else
                         f"{path}: not a usable ONNX model ({message})") from None


def read_onnx_epoch(path) -> tuple[Network, dict[str, list[np.ndarray]]]:
    """The Network and weights of one ONNX file; every error names the file."""
    try:
        return network_from_onnx(read_onnx(path))
    except NNVisError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise NNVisError(f"{path}: {exc}") from None


def read_onnx_weights(path, network: Network) -> dict[str, list[np.ndarray]]:
    """Another epoch's weights, checked to be the same graph as `network` (the first epoch)."""
    other, weights = read_onnx_epoch(path)
    mine = [(l.name, l.kind, tuple(l.output_shape), l.weight_shapes, l.config)
            for l in network.layers]
    theirs = [(l.name, l.kind, tuple(l.output_shape), l.weight_shapes, l.config)
              for l in other.layers]
    if mine != theirs:
        diff = next((b for a, b in zip(mine, theirs) if a != b), None) or \
            f"{len(theirs)} layers instead of {len(mine)}"
        raise NNVisError(f"{path}: not the same network as the first epoch's file (first "
                         f"difference: {diff})")
    return weights


def parse_model(data, source: str, folder: Path | None = None) -> OnnxModel:
    """An OnnxModel from ModelProto bytes (a memoryview keeps tensors zero-copy); external data
    files are looked up in `folder` (None: refused)."""
    if not len(data):
        raise NNVisError(f"{source}: empty file")
    m = parse_message(data, {1: VARINT, 7: LEN, 8: LEN}, "ModelProto")
    if 7 not in m or not last(m, 1):
        raise NNVisError(f"{source}: not an ONNX model (no ir_version and graph)")
    opset = None
    for raw in m.get(8, []):
        o = parse_message(raw, {1: LEN, 2: VARINT}, "opset_import")
        if text(last(o, 1, b""), "opset_import domain") in ("", "ai.onnx"):
            opset = as_int64(last(o, 2))
    g = parse_message(last(m, 7), {1: LEN, 2: LEN, 5: LEN, 11: LEN, 12: LEN, 15: LEN}, "graph")
    if g.get(15):
        raise NNVisError(f"{source}: sparse initializers are not supported")
    initializers = {}
    for raw in g.get(5, []):
        name, array = _tensor(raw, source, folder)
        initializers[name] = array
    inputs = [i for i in (_value_info(raw) for raw in g.get(11, []))
              if i.name not in initializers]
    outputs = [_value_info(raw).name for raw in g.get(12, [])]
    nodes, seen = [], set()
    for k, raw in enumerate(g.get(1, [])):
        node = _node(raw, k, source)
        while node.name in seen:
            node.name += "_"
        seen.add(node.name)
        nodes.append(node)
    if not nodes:
        raise NNVisError(f"{source}: the graph has no nodes")
    return OnnxModel(source, text(last(g, 2, b""), "graph name"), opset or 1, inputs, outputs,
                     nodes, initializers)


def _tensor(raw, source: str, folder: Path | None = None) -> tuple[str, np.ndarray]:
    t = parse_message(raw, _TENSOR_SCHEMA, "TensorProto")
    name = text(last(t, _FIELD["name"], b""), "tensor name")
    where = f"{source}: tensor {name!r}"
    if t.get(_FIELD["segment"]):
        raise NNVisError(f"{where} is segmented; not supported")
    dims = tuple(repeated_ints(t.get(_FIELD["dims"], []), where))
    if any(d < 0 for d in dims):
        raise NNVisError(f"{where} has negative dimensions {dims}")
    data_type = last(t, _FIELD["data_type"])
    if data_type not in _DTYPES:
        raise NNVisError(f"{where} has data type {data_type}, which nnvis does not read")
    dtype = np.dtype(_DTYPES[data_type])
    count = math.prod(dims)
    if last(t, _FIELD["data_location"]) == 1 or t.get(_FIELD["external_data"]):
        raw_data = _external(t.get(_FIELD["external_data"], []), count * dtype.itemsize, folder,
                             where)
    else:
        raw_data = last(t, _FIELD["raw_data"]) if _FIELD["raw_data"] in t else None
    if raw_data is not None:
        if len(raw_data) != count * dtype.itemsize:
            raise NNVisError(f"{where}: {len(raw_data)} bytes of data for shape {dims} of "
                             f"{dtype.name}")
        return name, np.frombuffer(raw_data, dtype).reshape(dims)
    if data_type == 1:
        values = repeated_fixed(t.get(_FIELD["float_data"], []), "<f4", where)
    elif data_type == 11:
        values = repeated_fixed(t.get(_FIELD["double_data"], []), "<f8", where)
    elif data_type == 7:
        values = np.array(repeated_ints(t.get(_FIELD["int64_data"], []), where), np.int64)
    elif data_type in (12, 13):
        values = np.array(repeated_ints(t.get(_FIELD["uint64_data"], []), where, signed=False),
                          np.uint64)
    else:
        ints = np.array(repeated_ints(t.get(_FIELD["int32_data"], []), where), np.int64)
        values = ints.astype(np.uint16).view(np.float16) if data_type == 10 else ints
    if values.size != count:
        raise NNVisError(f"{where}: {values.size} values for shape {dims}")
    return name, values.astype(dtype).reshape(dims)


def _external(entries: list, size: int, folder: Path | None, where: str) -> bytes:
    """`size` bytes of an external data file (location, offset, length) in the model's folder."""
    info = {}
    for raw in entries:
        e = parse_message(raw, {1: LEN, 2: LEN}, "external_data")
        info[text(last(e, 1, b""), where)] = text(last(e, 2, b""), where)
    location = info.get("location", "")
    if folder is None or not location:
        raise NNVisError(f"{where} is stored in an external data file that cannot be found")
    path = (folder / location).resolve()
    if folder.resolve() not in path.parents:
        raise NNVisError(f"{where}: external data file {location!r} is outside the model's folder")
    try:
        offset, length = int(info.get("offset", 0)), int(info.get("length", size))
    except ValueError:
        raise NNVisError(f"{where}: bad external data offset/length {info}") from None
    if offset < 0 or length != size:
        raise NNVisError(f"{where}: external data of {length} bytes at {offset}, the tensor "
                         f"needs {size}")
    try:
        if path.stat().st_size < offset + size:       # checked before reading (no huge buffer)
            raise NNVisError(f"{where}: external data file {location!r} ends before "
                             f"{offset + size} bytes")
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(size)
    except OSError as exc:
        raise NNVisError(f"{where}: cannot read external data file {location!r} "
                         f"({exc.strerror or exc})") from None


def _value_info(raw) -> OnnxInput:
    v = parse_message(raw, {1: LEN, 2: LEN}, "ValueInfoProto")
    name = text(last(v, 1, b""), "value name")
    tensor = parse_message(last(parse_message(last(v, 2, b""), {1: LEN}, "TypeProto"), 1, b""),
                           {1: VARINT, 2: LEN}, "TypeProto.Tensor")
    dims = []
    for d in parse_message(last(tensor, 2, b""), {1: LEN}, "TensorShapeProto").get(1, []):
        dim = parse_message(d, {1: VARINT, 2: LEN}, "Dimension")
        dims.append(as_int64(last(dim, 1)) if 1 in dim else None)
    return OnnxInput(name, tuple(dims), last(tensor, 1))


def _node(raw, index: int, source: str) -> OnnxNode:
    n = parse_message(raw, {1: LEN, 2: LEN, 3: LEN, 4: LEN, 5: LEN, 7: LEN}, "NodeProto")
    op_type = text(last(n, 4, b""), "op_type")
    if not op_type:
        raise NNVisError(f"{source}: node {index} has no op_type")
    name = text(last(n, 3, b""), "node name") or f"{op_type}_{index}"
    attributes = {}
    for a in n.get(5, []):
        key, value = _attribute(a, f"{source}: node {name!r}")
        attributes[key] = value
    return OnnxNode(name, op_type, text(last(n, 7, b""), "domain"),
                    [text(v, "input name") for v in n.get(1, [])],
                    [text(v, "output name") for v in n.get(2, [])], attributes)


def _attribute(raw, where: str):
    a = parse_message(raw, {1: LEN, 20: VARINT, 2: I32, 3: VARINT, 4: LEN, 5: LEN, 6: LEN,
                            7: (I32, LEN), 8: (VARINT, LEN), 9: LEN}, "AttributeProto")
    name = text(last(a, 1, b""), "attribute name")
    kind = last(a, 20)
    if not kind:                      # IR 1: no type field; the field present says it
        kind = next((k for f, k in ((2, _FLOAT), (3, _INT), (4, _STRING), (5, _TENSOR),
                                    (7, _FLOATS), (8, _INTS), (9, _STRINGS)) if f in a), 0)
    if kind == _FLOAT:
        return name, float(np.frombuffer(last(a, 2).to_bytes(4, "little"), "<f4")[0])
    if kind == _INT:
        return name, as_int64(last(a, 3))
    if kind == _STRING:
        return name, text(last(a, 4, b""), f"{where} attribute {name!r}")
    if kind == _TENSOR:
        return name, _tensor(last(a, 5, b""), where)[1]           # inline (Constant values)
    if kind == _FLOATS:
        return name, [float(v) for v in repeated_fixed(a.get(7, []), "<f4", where)]
    if kind == _INTS:
        return name, repeated_ints(a.get(8, []), where)
    if kind == _STRINGS:
        return name, [text(s, f"{where} attribute {name!r}") for s in a.get(9, [])]
    return name, None                 # subgraphs, sparse tensors, type protos: not read
