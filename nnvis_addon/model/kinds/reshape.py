"""Kinds that reorder elements: Flatten and Reshape (Keras), and nnvis' own Rearrange, Slice and
Gather that its ONNX import makes of reshapes that reorder elements (a channel shuffle), slices and
gathers (model.onnx_layout). Edges follow the elements: each input cell → every output cell its
elements land in (Flatten of (H, W, C): map c → units (h·W + w)·C + c), weight 1; a channel
shuffle is one edge per map, map π(c) → map c.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ...errors import NNVisError
from .cells import element_edges
from .config import COMMON, axis_index, check_channels_last, ints
from .registry import Design, Kind, get, register

if TYPE_CHECKING:
    from ..network import Layer


def _flatten_order(config, shape) -> bool:
    """True for ``order: "chw"``: a feature map flattened in (C, H, W) element order, as PyTorch
    and ONNX models do (nnvis' extension of Keras' Flatten; their weights expect that order)."""
    order = config.get("order", "hwc")
    if order not in ("hwc", "chw") or order == "chw" and len(shape) != 3:
        raise NNVisError(f"bad Flatten order {order!r} for an input of shape {shape}")
    return order == "chw"


def _flatten_shape(config, shape):
    check_channels_last(config)
    _flatten_order(config, shape)
    return (None if None in shape else math.prod(shape),)


def _flatten_apply(config, weights, x):
    if _flatten_order(config, x.shape[1:]):
        x = x.transpose(0, 3, 1, 2)
    return x.reshape(x.shape[0], -1)


def _reshape_shape(config, shape):
    target = config["target_shape"]
    if not isinstance(target, (list, tuple)) or not all(
            isinstance(d, int) and (d > 0 or d == -1) for d in target) or target.count(-1) > 1:
        raise NNVisError(f"bad target_shape {target!r}")
    size = None if None in shape else math.prod(shape)
    known = math.prod(d for d in target if d != -1)
    if -1 in target:
        if size is not None and size % known:
            raise NNVisError(f"cannot reshape {shape} to {tuple(target)}")
        return tuple((None if size is None else size // known) if d == -1 else d for d in target)
    if size is not None and size != known:
        raise NNVisError(f"cannot reshape {shape} ({size} values) to {tuple(target)}")
    return tuple(target)


def _rearrange_params(config, shape):
    """Rearrange: split the array (without batch) into `split`, permute by `perm`, reshape to
    `target_shape` — a channel shuffle, a flatten in another order."""
    split, perm, target = (ints(config, k) for k in ("split", "perm", "target_shape"))
    if sorted(perm) != list(range(len(split))) or min(split + target, default=1) < 1 or \
            None not in shape and not math.prod(split) == math.prod(shape) == math.prod(target):
        raise NNVisError(f"cannot rearrange {tuple(shape)} by split {split}, perm {perm} into "
                         f"{tuple(target)}")
    return split, perm, target


def _rearrange_apply(config, weights, x):
    split, perm, target = _rearrange_params(config, x.shape[1:])
    n = x.shape[0]
    return x.reshape(n, *split).transpose(0, *(p + 1 for p in perm)).reshape(n, *target)


def _slice_params(config, shape):
    """Slice: the elements range(start, stop, step) of one axis (Keras numbering, with batch)."""
    axis = axis_index(config.get("axis"), len(shape) + 1, "Slice") - 1
    picked = range(*(int(config[k]) for k in ("start", "stop", "step")))
    if shape[axis] is None or not picked or min(picked) < 0 or max(picked) >= shape[axis]:
        raise NNVisError(f"slice {picked} is empty or outside axis {axis + 1} of {shape}")
    return axis, picked


def _slice_shape(config, shape):
    axis, picked = _slice_params(config, shape)
    return tuple(len(picked) if i == axis else d for i, d in enumerate(shape))


def _slice_apply(config, weights, x):
    axis, picked = _slice_params(config, x.shape[1:])
    return np.take(x, np.asarray(picked), axis=axis + 1)


def _gather_params(config, shape):
    """Gather: per sample, the flat input's elements `indices` (C order), as `target_shape`."""
    indices, target = ints(config, "indices"), ints(config, "target_shape")
    if len(indices) != math.prod(target) or min(indices, default=0) < 0 or \
            None not in shape and max(indices, default=0) >= math.prod(shape):
        raise NNVisError(f"cannot gather {len(indices)} elements of {tuple(shape)} into "
                         f"{tuple(target)}")
    return indices, target


def _gather_apply(config, weights, x):
    indices, target = _gather_params(config, x.shape[1:])
    return x.reshape(x.shape[0], -1)[:, indices].reshape(x.shape[0], *target)


def _reshape_edges(layer: Layer, source: Layer, *_):
    """Flatten, Reshape: output element i is input element i (C order); a Flatten with
    ``order: "chw"`` (PyTorch/ONNX) reads the (H, W, C) map in (C, H, W) order."""
    size = math.prod(source.output_shape)
    if size != math.prod(layer.output_shape):
        raise NNVisError(f"layer {layer.name!r}: {layer.kind} of {source.output_shape} gives "
                         f"{size} elements, not {math.prod(layer.output_shape)}")
    index = np.arange(size)
    if layer.config.get("order") == "chw" and len(source.output_shape) == 3:
        index = index.reshape(source.output_shape).transpose(2, 0, 1).ravel()
    return element_edges(source, layer, index)


def _moved_edges(layer, source, *_):
    """Rearrange, Slice, Gather: output element i is the input element the kind moves there,
    found by applying the kind to the input's element indices."""
    shape = tuple(int(d) for d in source.output_shape)
    index = np.arange(math.prod(shape)).reshape(1, *shape)
    moved = np.asarray(get(layer.kind).apply(layer.config, [], index)).ravel()
    return element_edges(source, layer, moved)


register(Kind("Flatten", _flatten_apply, _flatten_shape, config_keys={"order"},
              edges=_reshape_edges, fan="elements", passes=True,
              design=Design(7, "flatten", {**COMMON, "data_format": "channels_last"},
                            built=True)))
register(Kind("Reshape", lambda config, weights, x: x.reshape(x.shape[0], *config["target_shape"]),
              _reshape_shape, config_keys={"target_shape"}, edges=_reshape_edges,
              fan="elements", passes=True))
_MOVE = dict(edges=_moved_edges, fan="elements", passes=True, onnx_only=True)
register(Kind("Rearrange", _rearrange_apply,
              lambda config, shape: tuple(_rearrange_params(config, shape)[2]),
              config_keys={"split", "perm", "target_shape"}, **_MOVE))
register(Kind("Slice", _slice_apply, _slice_shape, config_keys={"axis", "start", "stop", "step"},
              **_MOVE))
register(Kind("Gather", _gather_apply,
              lambda config, shape: tuple(_gather_params(config, shape)[1]),
              config_keys={"indices", "target_shape"}, **_MOVE))
