"""Dense: a matrix over the last axis.

Edges: unit i → unit o, weight W[i, o]. On a rank>1 input Keras applies W along the last axis at
every position: for an (H, W, C) input (drawn as C maps, output H×W×U drawn as U maps) the edges
are channel c → map o, weight W[c, o]; for any other shape (..., F) each position p gets its own
edges, unit p·F+f → unit p·U+o, weight W[f, o]. A huge kernel (VGG16's 25088 × 4096) is never
listed whole: `_dense_strongest` finds its strongest edges block by block.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ...errors import NNVisError
from .cells import check_shape, epoch_weights
from .config import COMMON, GLOROT, INIT_KEYS, bias_act, keras_initializer
from .registry import Design, Kind, register

if TYPE_CHECKING:
    from ..network import Layer


def _dense_shape(config, shape):
    return (*shape[:-1], int(config["units"]))


def _dense_weights(config, shape):
    if not shape or shape[-1] is None:
        raise NNVisError(f"Dense needs a known last input dimension, got shape {shape}")
    units = int(config["units"])
    return [(shape[-1], units), (units,)] if config.get("use_bias", True) else [(shape[-1], units)]


def _dense_apply(config, weights, x):
    return bias_act(config, weights, x @ weights[0], 1)


def _dense_edges(layer: Layer, source: Layer, weights_by_epoch, *_):
    fan_in, units = int(source.output_shape[-1]), int(layer.output_shape[-1])
    kernels = [w[0] for w in epoch_weights(layer, weights_by_epoch, 1)]
    for k in kernels:
        check_shape(layer, "Dense kernel", k, (fan_in, units))
    positions = 1 if source.is_spatial else math.prod(source.output_shape[:-1])
    f = np.repeat(np.arange(fan_in), units)
    o = np.tile(np.arange(units), fan_in)
    p = np.repeat(np.arange(positions), fan_in * units)
    src = p * fan_in + np.tile(f, positions)
    dst = p * units + np.tile(o, positions)
    weight = np.stack([np.tile(k.astype(np.float32).ravel(), positions) for k in kernels])
    return src, dst, weight


def _dense_strongest(layer: Layer, source: Layer, weights_by_epoch, limit: int):
    """The `limit` strongest unit → unit edges of a Dense layer (max over epochs of |W|, ties to
    the lower index, as `prune`), found on the kernel in row blocks: a sample of whole rows gives a
    safe lower cut, one pass keeps the candidates above it with their weights, an exact sort picks
    the top. Extra memory stays a few blocks, not the 100M-edge list of VGG16's first dense layer,
    and a kernel left in its file (`StoredArray`) is read once, a block at a time."""
    fan_in, units = int(source.output_shape[-1]), int(layer.output_shape[-1])
    kernels = [w[0] for w in epoch_weights(layer, weights_by_epoch, 1, stored=True)]
    for k in kernels:
        check_shape(layer, "Dense kernel", k, (fan_in, units))
    n = fan_in * units
    rows = np.unique(np.random.default_rng(0).integers(0, fan_in, max(1, (1 << 20) // units)))
    sample = np.max([np.abs(np.concatenate([np.asarray(k[r:r + 1], np.float32) for r in rows]))
                     for k in kernels], axis=0).ravel()
    keep_share = min(1.0, 2.0 * limit / n)
    cut = float(np.quantile(sample, 1.0 - keep_share)) if keep_share < 1.0 else -np.inf
    block = max(1, (1 << 22) // units)
    while True:
        idx, val, weight = [], [], []
        for r0 in range(0, fan_in, block):
            w = [np.asarray(k[r0:r0 + block], np.float32).ravel() for k in kernels]
            s = np.abs(w[0])
            for other in w[1:]:
                np.maximum(s, np.abs(other), out=s)
            hit = np.flatnonzero(s >= cut)
            idx.append(hit + r0 * units)
            val.append(s[hit])
            weight.append(np.stack([other[hit] for other in w]))
        idx, val = np.concatenate(idx), np.concatenate(val)
        if idx.size >= limit or cut == -np.inf:
            break
        cut = -np.inf                   # the sample misjudged the tail: take everything
    top = np.lexsort((idx, -val))[:limit]
    top = top[np.argsort(idx[top])]
    return idx[top] // units, idx[top] % units, np.concatenate(weight, axis=1)[:, top]


def _dense_edge_weights(layer, source, weights_by_epoch, src, dst) -> np.ndarray:
    """(E, n) weights of the edges `src[i]` → `dst[i]` from a flat source: the kernel indexed
    directly (it may be huge)."""
    units = int(layer.output_shape[-1])
    kernels = [np.asarray(w[0], np.float32) for w in epoch_weights(layer, weights_by_epoch, 1)]
    return np.stack([k.ravel()[src * units + dst] for k in kernels])


register(Kind("Dense", _dense_apply, _dense_shape, _dense_weights,
              config_keys={"activation", "units", "use_bias"} | INIT_KEYS, edges=_dense_edges,
              strongest=_dense_strongest, edge_weights=_dense_edge_weights, fan="all",
              design=Design(9, "dense", {
                  **COMMON, "units": None, "activation": "linear", "use_bias": True,
                  "kernel_initializer": GLOROT, "bias_initializer": keras_initializer("Zeros"),
                  "kernel_regularizer": None, "bias_regularizer": None,
                  "kernel_constraint": None, "bias_constraint": None,
                  "quantization_config": None},
                  ("units", "activation"), ("units",), built=True)))
