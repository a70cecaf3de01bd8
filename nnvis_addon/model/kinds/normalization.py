"""Normalisation and learned scales: BatchNormalization, LayerNormalization, Normalization,
Rescaling, LayerScale (keras.applications' ConvNeXt) and nnvis' Affine (ONNX's learned bias or
scale).

Edges join cell c to cell c. BatchNormalization's weight is its effective scale
gamma / sqrt(moving_var + eps), the factor it multiplies that channel by (gamma = 1 when ``scale``
is off; normalised over another axis than the last, a cell has no single scale: weight 1);
LayerScale's and Affine's their learned scale; the others' 1 (LayerNormalization couples a pixel's
channels, but draws as a pass-through).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...errors import NNVisError
from .cells import check_shape, epoch_weights, same_cells
from .config import (COMMON, INIT_KEYS, axes_of, axis_index, check_broadcast, ints,
                     keras_initializer, numbers)
from .registry import Design, Kind, register

if TYPE_CHECKING:
    from ..network import Layer

_NORM_KEYS = {"axis", "center", "epsilon", "scale", "momentum"} | INIT_KEYS


def _bn_axis(config, shape):
    """The normalised axis as an index into the shape WITHOUT batch (Keras counts the batch)."""
    return axis_index(config.get("axis", -1), len(shape) + 1, "BatchNormalization") - 1


def _bn_weights(config, shape):
    n = shape[_bn_axis(config, shape)]
    count = 2 + bool(config.get("scale", True)) + bool(config.get("center", True))
    return [(n,)] * count           # [gamma] [beta] moving_mean moving_variance, Keras order


def _bn_apply(config, weights, x):
    axis = _bn_axis(config, x.shape[1:]) + 1
    weights = list(weights)
    gamma = weights.pop(0) if config.get("scale", True) else None
    beta = weights.pop(0) if config.get("center", True) else None
    mean, var = weights
    inv = 1 / np.sqrt(var + np.float32(config.get("epsilon", 1e-3)))
    if gamma is not None:
        inv = inv * gamma
    shift = -mean * inv if beta is None else beta - mean * inv
    bshape = [1] * x.ndim
    bshape[axis] = -1
    return x * inv.reshape(bshape) + shift.reshape(bshape)


def _norm_stat_shape(config, shape, what, default):
    axes = axes_of(config, len(shape) + 1, what, default)
    stat = tuple(shape[a - 1] for a in axes)
    if None in stat:
        raise NNVisError(f"{what} axis {config.get('axis')!r} has an unknown size in {shape}")
    return axes, stat


def _normalization_weights(config, shape):
    if config.get("mean") is not None:
        return []                               # constants in the config, no variables
    _, stat = _norm_stat_shape(config, shape, "Normalization", [-1])
    return [stat, stat, ()]                     # mean, variance, count (Keras' variable order)


def _normalization_apply(config, weights, x):
    """Keras Normalization: (x - mean) / max(sqrt(var), 1e-7), or the inverse when ``invert``."""
    axes, _ = _norm_stat_shape(config, x.shape[1:], "Normalization", [-1])
    bshape = [x.shape[d] if d in axes else 1 for d in range(x.ndim)]
    if config.get("mean") is None:
        mean, var = (w.reshape(bshape) for w in weights[:2])
    else:
        mean, var = (numbers(config[key], key) for key in ("mean", "variance"))
        if mean.ndim:                           # Keras aligns the constants with the last axes
            expanded = [1] * x.ndim
            for i in range(1, mean.ndim + 1):
                expanded[axes[-i]] = mean.shape[-i]
            mean, var = mean.reshape(expanded), var.reshape(expanded)
    scale = np.maximum(np.sqrt(var), np.float32(1e-7))
    if config.get("invert"):
        return mean + x * scale
    return (x - mean) / scale


def _layer_norm_weights(config, shape):
    _, stat = _norm_stat_shape(config, shape, "LayerNormalization", -1)
    rms = bool(config.get("rms_scaling"))
    return ([stat] if config.get("scale", True) or rms else []) + \
           ([stat] if config.get("center", True) and not rms else [])


def _layer_norm_apply(config, weights, x):
    """Keras 3 LayerNormalization (its rms_scaling divides by the variance, as Keras 3.15 does)."""
    axes, _ = _norm_stat_shape(config, x.shape[1:], "LayerNormalization", -1)
    bshape = [x.shape[d] if d in axes else 1 for d in range(x.ndim)]
    weights = [w.reshape(bshape) for w in weights]
    rms = bool(config.get("rms_scaling"))
    gamma = weights.pop(0) if config.get("scale", True) or rms else None
    beta = weights.pop(0) if config.get("center", True) and not rms else None
    mean = x.mean(axis=tuple(axes), keepdims=True)
    var = np.square(x - mean).mean(axis=tuple(axes), keepdims=True)
    inv = 1 / np.sqrt(var + np.float32(config.get("epsilon", 1e-3)))
    if gamma is not None:
        inv = inv * gamma
    if rms:
        return x * inv
    shift = -mean * inv if beta is None else beta - mean * inv
    return x * inv + shift


def _rescaling_shape(config, shape):
    for key in ("scale", "offset"):
        check_broadcast(numbers(config.get(key, 0.0), key), shape, key)
    return shape


def _rescaling_apply(config, weights, x):
    return x * numbers(config["scale"], "scale") + numbers(config.get("offset", 0.0), "offset")


def _affine_weights(config, shape):
    weight = tuple(ints(config, "shape"))
    check_broadcast(np.zeros(weight), shape, "Affine weights")
    return [weight, weight]


def _affine_apply(config, weights, x):
    """nnvis' Affine: x · scale + offset with learned arrays (weights, one set per epoch) that
    broadcast against the input — an ONNX Add/Sub/Mul/Div by an initializer: the bias after a
    MatMul, ConvNeXt's layer scale. (Rescaling holds constants that never train.)"""
    return x * weights[0] + weights[1]


def _layer_scale_weights(config, shape):
    dim = config.get("projection_dim", shape[-1])
    if dim != shape[-1]:
        raise NNVisError(f"projection_dim {dim!r} does not match {shape[-1]} input channels")
    return [(shape[-1],)]


def _bn_edges(layer: Layer, source: Layer, weights_by_epoch, *_):
    cells = same_cells(layer, source)[0]
    axis = layer.config.get("axis", -1)
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    if axis not in (-1, len(layer.output_shape)):       # Keras counts the batch axis
        return cells, cells, None
    channels = int(layer.output_shape[-1])
    scale_on = bool(layer.config.get("scale", True))
    count = 2 + scale_on + bool(layer.config.get("center", True))
    eps = float(layer.config.get("epsilon", 1e-3))
    rows = []
    for w in epoch_weights(layer, weights_by_epoch, count):
        for a in w[:count]:
            check_shape(layer, "a BatchNormalization weight", a, (channels,))
        gamma = w[0].astype(np.float64) if scale_on else 1.0
        rows.append((gamma / np.sqrt(w[count - 1].astype(np.float64) + eps))[cells % channels])
    return cells, cells, np.stack(rows).astype(np.float32)


def _layer_scale_edges(layer: Layer, source: Layer, weights_by_epoch, *_):
    """LayerScale: cell c → c, weight its learned scale gamma[c]."""
    cells = same_cells(layer, source)[0]
    rows = [w[0][cells % int(layer.output_shape[-1])]
            for w in epoch_weights(layer, weights_by_epoch, 1)]
    return cells, cells, np.stack(rows).astype(np.float32)


def _affine_edges(layer: Layer, source: Layer, weights_by_epoch, *_):
    """Affine (ONNX's learned bias or scale): cell c → c, weight = the factor it multiplies that
    cell by (its mean over the map where it varies), like BatchNormalization's."""
    cells = same_cells(layer, source)[0]
    rows = []
    for w in epoch_weights(layer, weights_by_epoch, 2):
        scale = np.broadcast_to(np.asarray(w[0], np.float32), layer.output_shape)
        rows.append(scale.reshape(-1, layer.cell_count).mean(axis=0, dtype=np.float64)
                    if layer.is_spatial else scale.ravel())
    return cells, cells, np.stack(rows).astype(np.float32)


def _bn_identity(config, shapes) -> list[np.ndarray]:
    """Weights that leave the input as it is (gamma 1, beta 0, mean 0, var 1): a design's start."""
    names = (["gamma"] if config.get("scale", True) else []) \
        + (["beta"] if config.get("center", True) else []) + ["mean", "var"]
    return [np.full(s, 1.0 if n in ("gamma", "var") else 0.0, np.float32)
            for n, s in zip(names, shapes)]


register(Kind("BatchNormalization", _bn_apply, weights=_bn_weights,
              config_keys=_NORM_KEYS | {"moving_mean_initializer", "moving_variance_initializer",
                                        "renorm", "renorm_clipping", "renorm_momentum",
                                        "synchronized"},
              edges=_bn_edges, mapwise=True,
              design=Design(4, "batch_normalization", {
                  **COMMON, "axis": -1, "momentum": 0.99, "epsilon": 0.001, "center": True,
                  "scale": True, "beta_initializer": keras_initializer("Zeros"),
                  "gamma_initializer": keras_initializer("Ones"),
                  "moving_mean_initializer": keras_initializer("Zeros"),
                  "moving_variance_initializer": keras_initializer("Ones"),
                  "beta_regularizer": None, "gamma_regularizer": None, "beta_constraint": None,
                  "gamma_constraint": None, "synchronized": False, "renorm": False,
                  "renorm_clipping": None, "renorm_momentum": 0.99}, built=True,
                  neutral=_bn_identity)))
_PASS = dict(edges=same_cells, passes=True, mapwise=True)
register(Kind("LayerNormalization", _layer_norm_apply, weights=_layer_norm_weights,
              config_keys=_NORM_KEYS | {"rms_scaling"}, **_PASS))
register(Kind("Normalization", _normalization_apply, weights=_normalization_weights,
              config_keys={"axis", "invert", "mean", "variance"}, **_PASS))
register(Kind("Rescaling", _rescaling_apply, _rescaling_shape, config_keys={"offset", "scale"},
              **_PASS))
register(Kind("LayerScale", lambda config, weights, x: x * weights[0],
              weights=_layer_scale_weights, config_keys={"init_values", "projection_dim"},
              edges=_layer_scale_edges, mapwise=True))
register(Kind("Affine", _affine_apply, weights=_affine_weights, config_keys={"shape"},
              edges=_affine_edges, mapwise=True, onnx_only=True))
