"""An ONNX model as plain data: what `io.onnx` parses a file into and `onnx_graph` maps onto a
Network (the model floor holds it, so the reader depends on the model and not the other way)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class OnnxNode:
    name: str                  # unique in the graph (nodes without a name get op_type_<index>)
    op_type: str               # e.g. "Conv"
    domain: str                # "" (or "ai.onnx") for the standard operators
    inputs: list[str]          # value names; "" for an omitted optional input
    outputs: list[str]
    attributes: dict           # name -> int, float, str, ndarray, list; None for subgraphs


@dataclass
class OnnxInput:
    name: str
    shape: tuple               # None for a symbolic (dim_param) or missing dimension
    elem_type: int             # TensorProto.DataType


@dataclass
class OnnxModel:
    source: str                # the file, named in every error
    name: str                  # the graph's name
    opset: int                 # the default domain's opset version
    inputs: list[OnnxInput]    # graph inputs that are not initializers
    outputs: list[str]
    nodes: list[OnnxNode]
    initializers: dict[str, np.ndarray]
