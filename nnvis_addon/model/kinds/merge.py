"""Merges of several inputs: Add, Subtract, Multiply, Divide, Maximum, Minimum, Average
(element-wise, broadcast) and Concatenate.

Edges: from each input, c → c (a broadcast input cell → every cell it is broadcast to),
weight 1; Concatenate: each input's cells → their cells in the output (offset along its axis),
weight 1.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ...errors import NNVisError
from ..kernels import Unsupported
from .cells import element_edges, same_cells
from .config import axis_index
from .registry import Kind, register

if TYPE_CHECKING:
    from ..network import Layer


def merge_shape(config, shapes):
    """Keras' element-wise merge shape: equal ranks, dims equal or 1 (broadcast), None wins."""
    if len(shapes) < 2:
        raise NNVisError(f"needs at least 2 inputs, got {len(shapes)}")
    if len({len(s) for s in shapes}) > 1:
        raise Unsupported(f"inputs of different ranks {shapes}")
    out = []
    for dims in zip(*shapes):
        sizes = {d for d in dims if d is not None and d != 1}
        if len(sizes) > 1:
            raise NNVisError(f"input shapes {shapes} do not match")
        out.append(None if None in dims else sizes.pop() if sizes else 1)
    return tuple(out)


def subtract_shape(config, shapes):
    if len(shapes) != 2:
        raise NNVisError(f"takes exactly 2 inputs, got {len(shapes)}")
    return merge_shape(config, shapes)


def fold(fn):
    """A merge applying ``fn`` left to right, as Keras' merge layers do."""
    def apply(config, weights, xs):
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        return out
    return apply


def _average_apply(config, weights, xs):
    return fold(np.add)(config, weights, xs) / np.float32(len(xs))


def concat_shape(config, shapes):
    if len(shapes) < 2:
        raise NNVisError(f"needs at least 2 inputs, got {len(shapes)}")
    rank = len(shapes[0]) + 1
    if any(len(s) + 1 != rank for s in shapes):
        raise NNVisError(f"inputs of different ranks {shapes}")
    axis = axis_index(config.get("axis", -1), rank, "Concatenate") - 1
    out = []
    for i, dims in enumerate(zip(*shapes)):
        if i == axis:
            out.append(None if None in dims else sum(dims))
        elif len({d for d in dims if d is not None}) > 1:
            raise NNVisError(f"input shapes {shapes} differ outside the concatenation axis")
        else:
            out.append(next((d for d in dims if d is not None), None))
    return tuple(out)


def concat_apply(config, weights, xs):
    return np.concatenate(xs, axis=axis_index(config.get("axis", -1), xs[0].ndim, "Concatenate"))


def merge_edges(layer: Layer, source: Layer, *_):
    """Element-wise merges: each output element reads its (possibly broadcast) input element."""
    if source.is_spatial == layer.is_spatial and source.cell_count == layer.cell_count:
        return same_cells(layer, source)
    shape = tuple(int(d) for d in source.output_shape)
    index = np.arange(math.prod(shape)).reshape(shape)
    return element_edges(source, layer, np.broadcast_to(index, layer.output_shape).ravel())


def concat_edges(layer: Layer, source: Layer, _, sources: list[Layer], k: int):
    rank = len(layer.output_shape)
    axis = layer.config.get("axis", -1)
    axis = (axis[0] if isinstance(axis, (list, tuple)) else axis) % (rank + 1) - 1
    offset = sum(int(s.output_shape[axis]) for s in sources[:k])
    if layer.is_spatial:                    # cells are channels: shifted, or kept if H/W grows
        cells = np.arange(source.cell_count)
        return cells, cells + (offset if axis == rank - 1 else 0), None
    out = np.arange(layer.cell_count).reshape(layer.output_shape)
    block = [slice(None)] * rank
    block[axis] = slice(offset, offset + int(source.output_shape[axis]))
    return element_edges(source, layer, out[tuple(block)].ravel(), inverse=True)


for _name, _apply, _shape in (("Add", fold(np.add), merge_shape),
                              ("Subtract", fold(np.subtract), subtract_shape),
                              ("Multiply", fold(np.multiply), merge_shape),
                              ("Divide", fold(np.divide), subtract_shape),
                              ("Maximum", fold(np.maximum), merge_shape),
                              ("Minimum", fold(np.minimum), merge_shape),
                              ("Average", _average_apply, merge_shape)):
    register(Kind(_name, _apply, _shape, arity=None, config_keys=set(), edges=merge_edges,
                  mapwise=True))
register(Kind("Concatenate", concat_apply, concat_shape, arity=None, config_keys={"axis"},
              edges=concat_edges, mapwise=True))
