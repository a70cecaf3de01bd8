"""Helpers the kinds' edge rules share (model.edges draws what they return): a layer's cells,
each epoch's weights, kernel slices. A cell is what a layer is drawn as (``Layer.is_spatial``):
feature map c of a map output, else a unit of the flattened output. Pure numpy.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...errors import NNVisError
from .config import SHARED_KEY

if TYPE_CHECKING:
    from ..network import Layer


def epoch_weights(layer: Layer, weights_by_epoch, count: int, stored: bool = False
                   ) -> list[list[np.ndarray]]:
    """Each epoch's weight list for `layer`, checked to hold at least `count` arrays; read into
    memory unless `stored` (the caller reads `io.stored.StoredArray`s in row blocks)."""
    out = []
    for e, weights in enumerate(weights_by_epoch):
        w = weights.get(layer.config.get(SHARED_KEY, layer.name))   # a shared layer's call
        if w is None or len(w) < count:
            raise NNVisError(f"layer {layer.name!r}: epoch {e} has "
                             f"{'no' if w is None else len(w)} weight arrays, needs {count}")
        out.append(list(w) if stored else [np.asarray(a) for a in w])
    return out


def check_shape(layer: Layer, what: str, array: np.ndarray, expected: tuple) -> None:
    if array.shape != tuple(expected):
        raise NNVisError(f"layer {layer.name!r}: {what} has shape {array.shape}, expected "
                         f"{tuple(expected)}")


def same_cells(layer: Layer, source: Layer, *_):
    if layer.cell_count != source.cell_count:
        raise NNVisError(f"layer {layer.name!r} ({layer.kind}): {source.cell_count} cells in "
                         f"{source.name!r} but {layer.cell_count} out; expected the same")
    cells = np.arange(layer.cell_count)
    return cells, cells, None


def element_edges(source: Layer, layer: Layer, index: np.ndarray, inverse: bool = False):
    """Unique (source cell, output cell) pairs of an element map, weight 1.

    index[i]: the source element that output element i reads; with `inverse`, the output element
    that source element i lands in.
    """
    src_el, dst_el = (np.arange(index.shape[0]), index) if inverse else \
        (index, np.arange(index.shape[0]))
    src = cell_of_element(source, src_el)
    dst = cell_of_element(layer, dst_el)
    pairs = np.unique(src.astype(np.int64) * layer.cell_count + dst)
    return pairs // layer.cell_count, pairs % layer.cell_count, None


def cell_of_element(layer: Layer, element: np.ndarray) -> np.ndarray:
    return element % int(layer.output_shape[-1]) if layer.is_spatial else element


def slice_norms(kernel: np.ndarray) -> np.ndarray:
    """(a, b) L2 norms of the window slices of a (*window, a, b) kernel (1D, 2D or 3D). A window
    of one tap's norm is its absolute value, exactly (float32 squared is exact in float64, and so
    is its square root): half of ResNet50's kernels are 1 × 1, and |k| is one pass instead of
    three."""
    if np.prod(kernel.shape[:-2]) == 1:
        return np.abs(kernel.reshape(kernel.shape[-2:]), dtype=np.float64)
    return np.sqrt(np.square(kernel, dtype=np.float64).sum(axis=tuple(range(kernel.ndim - 2))))


def kernels_of(layer: Layer, weights_by_epoch, count: int, shapes: list[tuple]) -> list[list]:
    """Each epoch's first `count` kernels, checked against `shapes` (None matches any size; a
    leading ``...``: the window's axes, as many as the layer's maps have)."""
    out = []
    for w in epoch_weights(layer, weights_by_epoch, count):
        for k, shape in zip(w[:count], shapes):
            if shape[0] is Ellipsis:
                shape = (None,) * (len(layer.output_shape) - 1) + shape[1:]
            if k.ndim != len(shape) or any(e not in (None, g) for e, g in zip(shape, k.shape)):
                want = ", ".join("k" if e is None else str(e) for e in shape)
                raise NNVisError(f"layer {layer.name!r}: {layer.kind} kernel has shape {k.shape}, "
                                 f"expected ({want})")
        out.append(w[:count])
    return out
