"""Keras layer kinds in numpy: output shape, weight shapes and inference forward pass, per kind.

One registry (``_OPS``) maps a Keras class name to three small functions, so the config parser, the
weight readers and the forward pass agree on every kind, and adding a kind is one ``_register`` call.
Shapes passed around exclude the batch dimension, arrays passed to ``apply`` include it (float32,
channels-last). Spatial sizes may be None (variable-size inputs). Config values follow what
Keras 3's ``get_config()`` writes (checked against keras.applications' models); the array math is in
``kernels``. What nnvis cannot compute raises ``Unsupported`` (an NNVisError), which the importer
turns into a block without activations rather than a failed import.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import NNVisError
from . import kinds
from .kernels import (ACTIVATIONS, Unsupported, activate, avg_pool, axis_padding, check_activation,
                      conv2d, conv3d, depthwise_conv2d, erf, gelu_tanh, max_pool, out_length,
                      pool3d, precise_mean, resize_bilinear, smart_resize, softmax, upsample)

__all__ = ["ACTIVATIONS", "CONFIG_KEYS", "SUPPORTED", "Unsupported", "apply",
           "check_supported", "output_shape", "unread_keys", "weight_shapes"]

# --------------------------------------------------------------------------------------------------
# Config helpers


def sizes(value, n: int, what: str = "value", minimum: int = 1) -> tuple[int, ...]:
    """A Keras n-tuple parameter (int or n-sequence, as configs write kernel_size/strides), each
    at least `minimum` (sizes and strides are ≥ 1; a file may say anything)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * n
    if isinstance(value, (list, tuple)) and len(value) == n and \
            all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        if min(value) < minimum:
            raise NNVisError(f"bad {what} {value!r}: must be ≥ {minimum}")
        return tuple(int(v) for v in value)
    raise NNVisError(f"bad {what} {value!r}: expected an int or {n} ints")


def pair(value, what: str = "value", minimum: int = 1) -> tuple[int, int]:
    """A Keras 2-tuple parameter (see ``sizes``)."""
    return sizes(value, 2, what, minimum)


def _pads(value, n: int, what: str) -> tuple[tuple[int, int], ...]:
    """ZeroPadding/Cropping amounts along n axes: int, one per axis, or (before, after) pairs."""
    if isinstance(value, (list, tuple)) and len(value) == n and \
            all(isinstance(v, (list, tuple)) for v in value):
        return tuple(sizes(v, 2, what, 0) for v in value)
    return tuple((a, a) for a in sizes(value, n, what, 0))


def _pad_pairs(value, what: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """ZeroPadding2D/Cropping2D amounts: int, (rows, cols) or ((top, bottom), (left, right))."""
    return _pads(value, 2, what)


def _numbers(value, what: str) -> np.ndarray:
    """A number or nested list of numbers from a config (Keras wraps numpy arrays in __numpy__)."""
    if isinstance(value, dict) and value.get("class_name") in ("__numpy__", "__tensor__"):
        value = (value.get("config") or {}).get("value")
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise Unsupported(f"{what} {value!r} is not a number or a list of numbers") from None
    if array.size == 0:
        raise Unsupported(f"{what} {value!r} is empty")
    return array


def _axis(axis, rank: int, what: str) -> int:
    """A Keras axis (counting the batch; negative from the end) as an index WITH the batch."""
    if isinstance(axis, (list, tuple)) and len(axis) == 1:
        axis = axis[0]
    if not isinstance(axis, int) or isinstance(axis, bool) or not -rank <= axis < rank \
            or axis % rank == 0:
        raise Unsupported(f"unsupported {what} axis {axis!r} for a rank-{rank - 1} input")
    return axis % rank


def _check_channels_last(config: dict) -> None:
    fmt = config.get("data_format") or "channels_last"
    if fmt != "channels_last":
        raise Unsupported(f"unsupported data_format {fmt!r} (only 'channels_last')")


def _check_hwc(config, shape) -> None:
    _check_channels_last(config)
    if len(shape) != 3:
        raise NNVisError(f"expected an (H, W, C) input, got shape {shape}")


def padding_of(config):
    """A config's padding: 'valid'/'same' (Keras), or explicit ((top, bottom), (left, right))
    pads as PyTorch and ONNX models give them (checked: two pairs of ints ≥ 0)."""
    padding = config.get("padding", "valid")
    if isinstance(padding, str):
        return padding
    if not (isinstance(padding, (list, tuple)) and len(padding) == 2
            and all(isinstance(p, (list, tuple)) for p in padding)):
        raise NNVisError(f"bad padding {padding!r}: expected 'valid', 'same' or "
                         "((top, bottom), (left, right))")
    return _pad_pairs(padding, "padding")


def _spatial_shape(config, shape, k, s, d, channels) -> tuple:
    _check_hwc(config, shape)
    padding = padding_of(config)
    return (out_length(shape[0], k[0], s[0], d[0], axis_padding(padding, 0)),
            out_length(shape[1], k[1], s[1], d[1], axis_padding(padding, 1)), channels)


def _bias_act(config, weights, y, bias_index):
    if config.get("use_bias", True):
        y += weights[bias_index]
    return activate(config.get("activation"), y)


# --------------------------------------------------------------------------------------------------
# Convolutions


def _conv_params(config):
    return (pair(config["kernel_size"], "kernel_size"), pair(config.get("strides", 1), "strides"),
            pair(config.get("dilation_rate", 1), "dilation_rate"), int(config.get("groups", 1)))


def _conv2d_shape(config, shape):
    k, s, d, _ = _conv_params(config)
    return _spatial_shape(config, shape, k, s, d, int(config["filters"]))


def _kernel_weights(config, window: tuple, channels) -> list[tuple]:
    """A (grouped) convolution's kernel (*window, channels/groups, filters) and bias shapes."""
    filters, groups = int(config["filters"]), int(config.get("groups", 1))
    if channels is None or groups < 1 or channels % groups or filters % groups:
        raise NNVisError(f"{channels} input channels / {filters} filters do not split into "
                         f"{groups} groups")
    kernel = (*window, channels // groups, filters)
    return [kernel, (filters,)] if config.get("use_bias", True) else [kernel]


def _conv2d_weights(config, shape):
    return _kernel_weights(config, _conv_params(config)[0], shape[-1])


def _conv2d_apply(config, weights, x):
    k, s, d, groups = _conv_params(config)
    y = conv2d(x, weights[0], s, d, padding_of(config), groups)
    return _bias_act(config, weights, y, 1)


def _depthwise_channels(config, shape) -> tuple[int, int]:
    """(input channels, depth_multiplier); the channel count must be known for the kernel."""
    if not shape or shape[-1] is None:
        raise NNVisError(f"needs a known channel count, got shape {shape}")
    return int(shape[-1]), int(config.get("depth_multiplier", 1))


def _depthwise_shape(config, shape):
    k, s, d, _ = _conv_params(config)
    c, m = _depthwise_channels(config, shape)
    return _spatial_shape(config, shape, k, s, d, c * m)


def _depthwise_weights(config, shape):
    (kh, kw), _, _, _ = _conv_params(config)
    c, m = _depthwise_channels(config, shape)
    return [(kh, kw, c, m)] + ([(c * m,)] if config.get("use_bias", True) else [])


def _depthwise_apply(config, weights, x):
    k, s, d, _ = _conv_params(config)
    y = depthwise_conv2d(x, weights[0], s, d, padding_of(config))
    return _bias_act(config, weights, y, 1)


def _separable_weights(config, shape):
    (kh, kw), _, _, _ = _conv_params(config)
    c, m = _depthwise_channels(config, shape)
    filters = int(config["filters"])
    return ([(kh, kw, c, m), (1, 1, c * m, filters)]
            + ([(filters,)] if config.get("use_bias", True) else []))


def _separable_apply(config, weights, x):
    """Depthwise then pointwise (1×1) convolution; Keras' one bias comes after the pointwise."""
    k, s, d, _ = _conv_params(config)
    y = depthwise_conv2d(x, weights[0], s, d, padding_of(config))
    y = conv2d(y, weights[1], (1, 1), (1, 1), "valid")
    return _bias_act(config, weights, y, 2)


# --------------------------------------------------------------------------------------------------
# Pooling, padding, cropping, resizing


def _pool_params(config):
    k = pair(config["pool_size"], "pool_size")
    s = pair(config.get("strides") or k, "strides")     # Keras: strides None means pool_size
    return k, s


def _pool_shape(config, shape):
    k, s = _pool_params(config)
    return _spatial_shape(config, shape, k, s, (1, 1), shape[-1])


def _pool_apply(pool):
    def apply(config, weights, x):
        k, s = _pool_params(config)
        return pool(x, k, s, padding_of(config))
    return apply


def _global_pool_shape(config, shape):
    _check_hwc(config, shape)
    return (1, 1, shape[-1]) if config.get("keepdims") else (shape[-1],)


def _global_pool_apply(reduce):
    return lambda config, weights, x: reduce(x, axis=(1, 2), keepdims=bool(config.get("keepdims")))


def _grow(n, by: int):
    return None if n is None else n + by


def _zero_pad_shape(config, shape):
    _check_hwc(config, shape)
    (t, b), (l, r) = _pad_pairs(config.get("padding", 1), "padding")
    return _grow(shape[0], t + b), _grow(shape[1], l + r), shape[2]


def _zero_pad_apply(config, weights, x):
    (t, b), (l, r) = _pad_pairs(config.get("padding", 1), "padding")
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))


def _crop_shape(config, shape):
    _check_hwc(config, shape)
    (t, b), (l, r) = _pad_pairs(config.get("cropping", 0), "cropping")
    out = _grow(shape[0], -t - b), _grow(shape[1], -l - r)
    if any(n is not None and n <= 0 for n in out):
        raise NNVisError(f"cropping {config.get('cropping')!r} leaves nothing of {shape}")
    return (*out, shape[2])


def _crop_apply(config, weights, x):
    (t, b), (l, r) = _pad_pairs(config.get("cropping", 0), "cropping")
    return x[:, t:x.shape[1] - b, l:x.shape[2] - r]


def _upsample_shape(config, shape):
    _check_hwc(config, shape)
    a, b = pair(config.get("size", 2), "size")
    return (None if shape[0] is None else shape[0] * a,
            None if shape[1] is None else shape[1] * b, shape[2])


def _upsample_apply(config, weights, x):
    return upsample(x, pair(config.get("size", 2), "size"), config.get("interpolation", "nearest"))


def _target_size(config) -> tuple[int, int]:
    return pair([config["height"], config["width"]], "height/width")


def _resize_shape(config, shape):
    _check_hwc(config, shape)
    if config.get("interpolation", "bilinear") != "bilinear" or config.get("antialias") \
            or config.get("pad_to_aspect_ratio"):
        raise Unsupported("only bilinear Resizing without antialias or padding is supported")
    return (*_target_size(config), shape[2])


def _resize_apply(config, weights, x):
    """Keras' Resizing: bilinear (half-pixel), after a centred aspect-ratio crop if asked."""
    h, w = _target_size(config)
    resize = smart_resize if config.get("crop_to_aspect_ratio") else resize_bilinear
    return np.stack([resize(image, h, w) for image in x])


def _center_crop_shape(config, shape):
    _check_hwc(config, shape)
    return (*_target_size(config), shape[2])


def _center_crop_apply(config, weights, x):
    """Keras' CenterCrop: a centred window when the image is large enough, else smart_resize."""
    h, w = _target_size(config)
    H, W = x.shape[1:3]
    if H >= h and W >= w:
        top, left = (H - h) // 2, (W - w) // 2
        return x[:, top:top + h, left:left + w]
    return np.stack([smart_resize(image, h, w) for image in x])


KERAS2_KEY = "_nnvis_keras2"    # in a layer config: written by tf.keras ≤ 2.15 (keras2.normalize)


def _random_crop_shape(config, shape):
    _check_hwc(config, shape)
    _target_size(config)
    return (*_target_size(config), shape[2]) if config.get(KERAS2_KEY) else tuple(shape)


def _random_crop_apply(config, weights, x):
    """RandomCrop at inference (training=False, as model.predict): Keras 2 smart_resizes to
    (height, width) (tf.keras 2.15 `RandomCrop.call`); Keras 3 passes the image through uncropped
    (`transform_images` crops only when training), whatever shape its config declares."""
    if not config.get(KERAS2_KEY):
        return x
    h, w = _target_size(config)
    return np.stack([smart_resize(image, h, w) for image in x])


# --------------------------------------------------------------------------------------------------
# Dense, reshaping, element-wise


def _input_shape(config):
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    if not shape:
        raise NNVisError("InputLayer config has no batch_shape")
    return tuple(None if d is None else int(d) for d in shape[1:])


def _dense_shape(config, shape):
    return (*shape[:-1], int(config["units"]))


def _dense_weights(config, shape):
    if not shape or shape[-1] is None:
        raise NNVisError(f"Dense needs a known last input dimension, got shape {shape}")
    units = int(config["units"])
    return [(shape[-1], units), (units,)] if config.get("use_bias", True) else [(shape[-1], units)]


def _dense_apply(config, weights, x):
    return _bias_act(config, weights, x @ weights[0], 1)


def _flatten_order(config, shape) -> bool:
    """True for ``order: "chw"``: a feature map flattened in (C, H, W) element order, as PyTorch
    and ONNX models do (nnvis' extension of Keras' Flatten; their weights expect that order)."""
    order = config.get("order", "hwc")
    if order not in ("hwc", "chw") or order == "chw" and len(shape) != 3:
        raise NNVisError(f"bad Flatten order {order!r} for an input of shape {shape}")
    return order == "chw"


def _flatten_shape(config, shape):
    _check_channels_last(config)
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


def _relu_apply(config, weights, x):
    """Keras' ReLU layer: thresholded, clipped, with a leaky slope below the threshold."""
    slope = np.float32(config.get("negative_slope") or 0)
    threshold = np.float32(config.get("threshold") or 0)
    max_value = config.get("max_value")
    y = np.where(x > threshold, x, np.float32(0)) if threshold else np.maximum(x, 0)
    if max_value is not None:
        y = np.clip(y, 0, np.float32(max_value))
    if slope:
        y = y - slope * np.maximum(threshold - x, 0)
    return y


def _leaky_relu_apply(config, weights, x):
    """Keras 3's `negative_slope` (Keras 2's `alpha`, renamed by model.keras2)."""
    slope = np.float32(config.get("negative_slope", 0.3))
    return np.where(x >= 0, x, slope * x)


def _thresholded_relu_apply(config, weights, x):
    """Keras 2's ThresholdedReLU (gone in Keras 3): x where x > theta, else 0."""
    return np.where(x > np.float32(config.get("theta", 1.0)), x, np.float32(0))


def _softmax_apply(config, weights, x):
    axis = config.get("axis", -1)
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    return softmax(x, axis=axis)


def _check_broadcast(values: np.ndarray, shape, what: str) -> None:
    """Config constants must broadcast onto the input without changing its shape."""
    if values.ndim > len(shape) or any(v != 1 and d is not None and v != d
                                       for v, d in zip(values.shape[::-1], shape[::-1])):
        raise NNVisError(f"{what} of shape {values.shape} does not fit an input of shape {shape}")


def _rescaling_shape(config, shape):
    for key in ("scale", "offset"):
        _check_broadcast(_numbers(config.get(key, 0.0), key), shape, key)
    return shape


def _rescaling_apply(config, weights, x):
    return x * _numbers(config["scale"], "scale") + _numbers(config.get("offset", 0.0), "offset")


def _affine_weights(config, shape):
    weight = tuple(_ints(config, "shape"))
    _check_broadcast(np.zeros(weight), shape, "Affine weights")
    return [weight, weight]


def _affine_apply(config, weights, x):
    """nnvis' Affine: x · scale + offset with learned arrays (weights, one set per epoch) that
    broadcast against the input — an ONNX Add/Sub/Mul/Div by an initializer: the bias after a
    MatMul, ConvNeXt's layer scale. (Rescaling holds constants that never train.)"""
    return x * weights[0] + weights[1]


# --------------------------------------------------------------------------------------------------
# Normalizations


def _bn_axis(config, shape):
    """The normalised axis as an index into the shape WITHOUT batch (Keras counts the batch)."""
    return _axis(config.get("axis", -1), len(shape) + 1, "BatchNormalization") - 1


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


def _axes(config, rank: int, what: str, default) -> list[int]:
    """A list-valued Keras axis config as sorted indices WITH the batch (never the batch itself)."""
    raw = config.get("axis", default)
    raw = [] if raw is None else [raw] if isinstance(raw, int) else raw
    if not isinstance(raw, (list, tuple)):
        raise Unsupported(f"unsupported {what} axis {raw!r}")
    axes = [_axis(a, rank, what) for a in raw]
    if [a % rank for a in sorted(raw)] != sorted(axes) or len(set(axes)) < len(axes):
        raise Unsupported(f"unsupported {what} axis {raw!r} (mixed or repeated axes)")
    return sorted(axes)


def _norm_stat_shape(config, shape, what, default):
    axes = _axes(config, len(shape) + 1, what, default)
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
        mean, var = (_numbers(config[key], key) for key in ("mean", "variance"))
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


# --------------------------------------------------------------------------------------------------
# Moving values: nnvis' own kinds for ONNX's reshapes and slices (model.onnx_layout), not Keras'


def _ints(config, key) -> list[int]:
    value = config[key]
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise NNVisError(f"bad {key} {value!r}: expected a list of ints")
    return [int(v) for v in value]


def _rearrange_params(config, shape):
    """Rearrange: split the array (without batch) into `split`, permute by `perm`, reshape to
    `target_shape` — a channel shuffle, a flatten in another order."""
    split, perm, target = (_ints(config, k) for k in ("split", "perm", "target_shape"))
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
    axis = _axis(config.get("axis"), len(shape) + 1, "Slice") - 1
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
    indices, target = _ints(config, "indices"), _ints(config, "target_shape")
    if len(indices) != math.prod(target) or min(indices, default=0) < 0 or \
            None not in shape and max(indices, default=0) >= math.prod(shape):
        raise NNVisError(f"cannot gather {len(indices)} elements of {tuple(shape)} into "
                         f"{tuple(target)}")
    return indices, target


def _gather_apply(config, weights, x):
    indices, target = _gather_params(config, x.shape[1:])
    return x.reshape(x.shape[0], -1)[:, indices].reshape(x.shape[0], *target)


def moved_elements(kind: str, config: dict, shape: tuple) -> np.ndarray:
    """For a kind that only moves values (kinds.MOVE): index[i] = the input element (flat,
    C order, no batch) that output element i is, computed by the kind itself."""
    if kind not in kinds.MOVE:
        raise NNVisError(f"{kind} does not only move values")
    index = np.arange(math.prod(shape)).reshape(1, *shape)
    return np.asarray(_call(_OPS[kind].apply, _OPS[kind], (config, []), [index], kind, None)
                      ).ravel()


# --------------------------------------------------------------------------------------------------
# Math: ONNX's element-wise ops and reductions that exports decompose layers into (LayerNorm as
# ReduceMean/Sub/Pow/Sqrt/Div before opset 17, GELU through Erf before opset 20); named as
# Keras 3's ops classes, configs as their arguments


def _mean_axes(config, shape) -> list[int]:
    return _axes(config, len(shape) + 1, "Mean", None) or list(range(1, len(shape) + 1))


def _mean_shape(config, shape):
    axes = _mean_axes(config, shape)
    if config.get("keepdims"):
        return tuple(1 if i + 1 in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i + 1 not in axes)


def _mean_apply(config, weights, x):
    return precise_mean(x, tuple(_mean_axes(config, x.shape[1:])), bool(config.get("keepdims")))


# --------------------------------------------------------------------------------------------------
# Merges (several inputs)


def _merge_shape(config, shapes):
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


def _subtract_shape(config, shapes):
    if len(shapes) != 2:
        raise NNVisError(f"takes exactly 2 inputs, got {len(shapes)}")
    return _merge_shape(config, shapes)


def _fold(fn):
    """A merge applying ``fn`` left to right, as Keras' merge layers do."""
    def apply(config, weights, xs):
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        return out
    return apply


def _average_apply(config, weights, xs):
    return _fold(np.add)(config, weights, xs) / np.float32(len(xs))


def _concat_shape(config, shapes):
    if len(shapes) < 2:
        raise NNVisError(f"needs at least 2 inputs, got {len(shapes)}")
    rank = len(shapes[0]) + 1
    if any(len(s) + 1 != rank for s in shapes):
        raise NNVisError(f"inputs of different ranks {shapes}")
    axis = _axis(config.get("axis", -1), rank, "Concatenate") - 1
    out = []
    for i, dims in enumerate(zip(*shapes)):
        if i == axis:
            out.append(None if None in dims else sum(dims))
        elif len({d for d in dims if d is not None}) > 1:
            raise NNVisError(f"input shapes {shapes} differ outside the concatenation axis")
        else:
            out.append(next((d for d in dims if d is not None), None))
    return tuple(out)


def _concat_apply(config, weights, xs):
    return np.concatenate(xs, axis=_axis(config.get("axis", -1), xs[0].ndim, "Concatenate"))


# --------------------------------------------------------------------------------------------------
# 3D maps (D, H, W, C): Conv3D and its pooling, padding, cropping, upsampling


def _check_dhwc(config, shape) -> None:
    _check_channels_last(config)
    if len(shape) != 4:
        raise NNVisError(f"expected a (D, H, W, C) input, got shape {shape}")


def _conv3d_params(config):
    padding = config.get("padding", "valid")
    if padding not in ("valid", "same"):
        raise Unsupported(f"unsupported padding {padding!r} (supported: 'valid', 'same')")
    return (sizes(config["kernel_size"], 3, "kernel_size"),
            sizes(config.get("strides", 1), 3, "strides"),
            sizes(config.get("dilation_rate", 1), 3, "dilation_rate"), padding)


def _conv3d_shape(config, shape):
    _check_dhwc(config, shape)
    k, s, d, padding = _conv3d_params(config)
    return (*(out_length(shape[a], k[a], s[a], d[a], padding) for a in range(3)),
            int(config["filters"]))


def _conv3d_weights(config, shape):
    return _kernel_weights(config, _conv3d_params(config)[0], shape[-1])


def _conv3d_apply(config, weights, x):
    _, s, d, padding = _conv3d_params(config)
    return _bias_act(config, weights, conv3d(x, weights[0], s, d, padding,
                                             int(config.get("groups", 1))), 1)


def _pool3d_params(config):
    k = sizes(config["pool_size"], 3, "pool_size")
    padding = config.get("padding", "valid")
    if padding not in ("valid", "same"):
        raise Unsupported(f"unsupported padding {padding!r} (supported: 'valid', 'same')")
    return k, sizes(config.get("strides") or k, 3, "strides"), padding


def _pool3d_shape(config, shape):
    _check_dhwc(config, shape)
    k, s, padding = _pool3d_params(config)
    return (*(out_length(shape[a], k[a], s[a], 1, padding) for a in range(3)), shape[-1])


def _pool3d_apply(mean: bool):
    return lambda config, weights, x: pool3d(x, *_pool3d_params(config), mean=mean)


def _global_pool3d_shape(config, shape):
    _check_dhwc(config, shape)
    return (1, 1, 1, shape[-1]) if config.get("keepdims") else (shape[-1],)


def _global_pool3d_apply(reduce):
    return lambda config, weights, x: reduce(x, axis=(1, 2, 3),
                                             keepdims=bool(config.get("keepdims")))


def _zero_pad3d_shape(config, shape):
    _check_dhwc(config, shape)
    pads = _pads(config.get("padding", 1), 3, "padding")
    return (*(_grow(n, a + b) for n, (a, b) in zip(shape, pads)), shape[-1])


def _zero_pad3d_apply(config, weights, x):
    return np.pad(x, ((0, 0), *_pads(config.get("padding", 1), 3, "padding"), (0, 0)))


def _crop3d_shape(config, shape):
    _check_dhwc(config, shape)
    crops = _pads(config.get("cropping", 1), 3, "cropping")
    out = tuple(_grow(n, -a - b) for n, (a, b) in zip(shape, crops))
    if any(n is not None and n <= 0 for n in out):
        raise NNVisError(f"cropping {config.get('cropping')!r} leaves nothing of {shape}")
    return (*out, shape[-1])


def _crop3d_apply(config, weights, x):
    crops = _pads(config.get("cropping", 1), 3, "cropping")
    return x[(slice(None),) + tuple(slice(a, n - b) for (a, b), n in zip(crops, x.shape[1:4]))]


def _upsample3d_shape(config, shape):
    _check_dhwc(config, shape)
    factors = sizes(config.get("size", 2), 3, "size")
    return (*(None if n is None else n * f for n, f in zip(shape, factors)), shape[-1])


def _upsample3d_apply(config, weights, x):
    for axis, f in enumerate(sizes(config.get("size", 2), 3, "size"), start=1):
        x = x.repeat(f, axis=axis)
    return x


# --------------------------------------------------------------------------------------------------
# 1D maps (L, C): each 1D kind is its 2D kind (kinds.ONE_D) on a map one row high


def _lift_1d(kind: str, config: dict) -> dict:
    """A 1D kind's config as its 2D kind's: every window one row high, pads only along L; a
    causal convolution becomes explicit left padding."""
    lifted = dict(config)
    for key in ("kernel_size", "strides", "dilation_rate", "pool_size"):
        if config.get(key) is not None:
            lifted[key] = (1, *sizes(config[key], 1, key))
    if kind == "UpSampling1D":
        lifted["size"] = (1, *sizes(config.get("size", 2), 1, "size"))
    elif kind in ("ZeroPadding1D", "Cropping1D"):
        key = "padding" if kind == "ZeroPadding1D" else "cropping"
        lifted[key] = ((0, 0), pair(config.get(key, 1), key, 0))     # int or (before, after)
    elif config.get("padding") == "causal":
        (k,), (d,) = sizes(config["kernel_size"], 1), sizes(config.get("dilation_rate", 1), 1)
        lifted["padding"] = ((0, 0), ((k - 1) * d, 0))
    return lifted


def _register_1d(kind: str, kind_2d: str) -> None:
    """`kind` as `kind_2d` on (N, 1, L, C): its kernels gain a leading axis of one, outputs lose
    it."""
    op = _OPS[kind_2d]

    def shape(config, shape):
        _check_channels_last(config)
        if len(shape) != 2:
            raise NNVisError(f"expected an (L, C) input, got shape {shape}")
        out = op.shape(_lift_1d(kind, config), (1, *shape))
        return out[1:] if len(out) == 3 else out

    def weights(config, shape):
        return [w[1:] if len(w) >= 4 else w
                for w in op.weights(_lift_1d(kind, config), (1, *shape))]

    def apply(config, weights, x):
        y = op.apply(_lift_1d(kind, config), [w[None] if w.ndim >= 3 else w for w in weights],
                     x[:, None])
        return y[:, 0] if y.ndim == 4 else y
    _register(kind, apply, shape=shape, weights=weights)


# --------------------------------------------------------------------------------------------------
# Keras 3 functional ops (kinds.OP_*): `x + 3.0`, `keras.ops.relu6(x)` in a Functional model.
# The op's own parameters (axis, x_min, ...) are in its config; its operands — tensors and
# constants such as the 3.0 — are the call's arguments, which keras_config records under
# OPERANDS_KEY in order, each an input (``{"input": k}``: its k-th inbound tensor) or a constant.

OPERANDS_KEY = "_nnvis_operands"

def _plain(fn):
    """An op without parameters: (config, x) -> fn(x)."""
    return lambda config, x: fn(x)


_UNARY = {      # (config, x) -> output
    "Relu": _plain(ACTIVATIONS["relu"]), "Relu6": _plain(ACTIVATIONS["relu6"]),
    "Sigmoid": _plain(ACTIVATIONS["sigmoid"]), "HardSigmoid": _plain(ACTIVATIONS["hard_sigmoid"]),
    "Silu": _plain(ACTIVATIONS["silu"]), "Swish": _plain(ACTIVATIONS["silu"]),
    "HardSilu": _plain(ACTIVATIONS["hard_silu"]), "HardSwish": _plain(ACTIVATIONS["hard_silu"]),
    "Gelu": lambda c, x: gelu_tanh(x) if c.get("approximate", True) else ACTIVATIONS["gelu"](x),
    "Elu": lambda c, x: np.where(x > 0, x, np.float32(c.get("alpha", 1.0)) *
                                 np.expm1(np.minimum(x, 0))),
    "Selu": _plain(ACTIVATIONS["selu"]),
    "LeakyRelu": lambda c, x: np.where(x >= 0, x, np.float32(c.get("negative_slope", 0.2)) * x),
    "Softplus": _plain(ACTIVATIONS["softplus"]), "Softsign": _plain(ACTIVATIONS["softsign"]),
    "Tanh": _plain(np.tanh), "Exp": _plain(np.exp), "Log": _plain(np.log),
    "Sqrt": _plain(np.sqrt), "Square": _plain(np.square), "Absolute": _plain(np.abs),
    "Abs": _plain(np.abs), "Negative": _plain(np.negative),
    "Reciprocal": _plain(lambda x: np.float32(1) / x),
    "Clip": lambda c, x: np.clip(x, np.float32(c["x_min"]), np.float32(c["x_max"])),
    "Softmax": lambda c, x: _softmax_apply(c, None, x),
    "LogSoftmax": lambda c, x: ACTIVATIONS["log_softmax"](x, axis=c.get("axis", -1)),
}
_BINARY = {"Add": np.add, "Subtract": np.subtract, "Multiply": np.multiply,
           "Divide": np.true_divide, "TrueDivide": np.true_divide, "Maximum": np.maximum,
           "Minimum": np.minimum, "Power": np.power}
_REDUCE = {"Mean": precise_mean, "Max": np.max, "Min": np.min,   # sums in float64 (precise_mean)
           "Sum": lambda x, axis, keepdims: np.sum(x, axis, np.float64, keepdims=keepdims)}
# the config keys each op reads (besides "name"): others may change its numbers (unread_keys)
_OP_KEYS = {"Gelu": {"approximate"}, "Elu": {"alpha"}, "LeakyRelu": {"negative_slope"},
            "Clip": {"x_min", "x_max"}, "Softmax": {"axis"}, "LogSoftmax": {"axis"},
            "Concatenate": {"axis"}, **{name: {"axis", "keepdims", "initial"} for name in _REDUCE}}


def _operands(config, inputs, constant) -> list:
    """The op's operands in call order: its inputs (arrays or shapes) and ``constant(value)``."""
    template = config.get(OPERANDS_KEY)
    if isinstance(template, dict) and isinstance(template.get("keywords"), list):
        raise Unsupported(f"its call passes keyword arguments ({', '.join(template['keywords'])}),"
                          " which nnvis does not read")
    if not isinstance(template, list) or not template:
        raise Unsupported("its call's arguments are not recorded")
    out = []
    for item in template:
        if isinstance(item, dict) and set(item) == {"input"}:
            k = item["input"]
            if not isinstance(k, int) or not 0 <= k < len(inputs):
                raise NNVisError(f"bad operand {item!r} for {len(inputs)} input(s)")
            out.append(inputs[k])
        else:
            out.append(constant(item))
    return out


def _one_tensor(config, inputs):
    values = _operands(config, inputs, lambda v: _numbers(v, "operand"))
    if len(values) != 1 or len(inputs) != 1:
        raise Unsupported(f"takes one tensor, got {len(values)} operand(s)")
    return values[0]


def _broadcast(shapes) -> tuple:
    """NumPy's broadcast of shapes (right-aligned; None, an unknown size, wins over 1)."""
    rank = max(len(s) for s in shapes)
    out = []
    for dims in zip(*[(1,) * (rank - len(s)) + tuple(s) for s in shapes]):
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise NNVisError(f"operand shapes {list(shapes)} do not broadcast")
        out.append(known.pop() if known else None if None in dims else 1)
    return tuple(out)


def _binary_shape(config, shapes):
    values = _operands(config, shapes, lambda v: np.shape(_numbers(v, "operand")))
    if len(values) != 2:
        raise Unsupported(f"takes two operands, got {len(values)}")
    return _broadcast(values)


def _binary_apply(fn):
    def apply(config, weights, xs):
        a, b = _operands(config, xs, lambda v: _numbers(v, "operand"))
        return fn(a, b)
    return apply


def _reduce_shape(config, shapes):
    if config.get("initial") is not None:
        raise Unsupported(f"unsupported initial value {config['initial']!r}")
    return _mean_shape(config, _one_tensor(config, shapes))


def _reduce_apply(fn):
    """A reduction over the axes ``Mean`` reads (``axis``, None: all but the batch)."""
    def apply(config, weights, xs):
        x = _one_tensor(config, xs)
        return fn(x, axis=tuple(_mean_axes(config, x.shape[1:])),
                  keepdims=bool(config.get("keepdims")))
    return apply


def _op_concat_shape(config, shapes):
    return _concat_shape(config, _operands(config, shapes,
                                           lambda v: np.shape(_numbers(v, "operand"))))


def _op_concat_apply(config, weights, xs):
    return _concat_apply(config, weights, _operands(config, xs, lambda v: _numbers(v, "operand")))


def _register_ops() -> None:
    """Every kinds.OP_* kind with the function above that computes it (named there, found here)."""
    def name(kind):
        return kind[len(kinds.OP_PREFIX):]
    for kind in sorted(kinds.OP_UNARY):
        _register(kind, (lambda f: lambda config, weights, xs: f(config, _one_tensor(config, xs)))(
            _UNARY[name(kind)]), shape=lambda config, shapes: _one_tensor(config, shapes),
            arity=None)
    for kind in sorted(kinds.OP_BINARY):
        _register(kind, _binary_apply(_BINARY[name(kind)]), shape=_binary_shape, arity=None)
    for kind in sorted(kinds.OP_REDUCE):
        _register(kind, _reduce_apply(_REDUCE[name(kind)]), shape=_reduce_shape, arity=None)
    _register(kinds.OP_CONCAT, _op_concat_apply, shape=_op_concat_shape, arity=None)


# --------------------------------------------------------------------------------------------------
# keras.applications' own layers (registered by Keras itself, so built-ins)


def _layer_scale_weights(config, shape):
    dim = config.get("projection_dim", shape[-1])
    if dim != shape[-1]:
        raise NNVisError(f"projection_dim {dim!r} does not match {shape[-1]} input channels")
    return [(shape[-1],)]


# --------------------------------------------------------------------------------------------------
# The registry and the public entry points


@dataclass(frozen=True)
class _Op:
    shape: Callable            # (config, input shape(s)) -> output shape
    weights: Callable          # (config, input shape(s)) -> [weight shapes]
    apply: Callable | None     # (config, weights, input array(s)) -> output array; None: inputs
    arity: int | None          # number of inputs; None: any number (op gets lists)


_OPS: dict[str, _Op] = {}


def _register(kind, apply, shape=lambda config, shape: shape, weights=lambda config, *shape: [],
              arity=1):
    _OPS[kind] = _Op(shape, weights, apply, arity)


_identity = lambda config, weights, x: x  # noqa: E731 (inference-time no-ops)

_register("InputLayer", None, shape=_input_shape, arity=0)
_register("Conv2D", _conv2d_apply, shape=_conv2d_shape, weights=_conv2d_weights)
_register("DepthwiseConv2D", _depthwise_apply, shape=_depthwise_shape, weights=_depthwise_weights)
_register("SeparableConv2D", _separable_apply, shape=_conv2d_shape, weights=_separable_weights)
_register("MaxPooling2D", _pool_apply(max_pool), shape=_pool_shape)
_register("AveragePooling2D", _pool_apply(avg_pool), shape=_pool_shape)
_register("GlobalAveragePooling2D", _global_pool_apply(precise_mean), shape=_global_pool_shape)
_register("GlobalMaxPooling2D", _global_pool_apply(np.max), shape=_global_pool_shape)
_register("ZeroPadding2D", _zero_pad_apply, shape=_zero_pad_shape)
_register("Cropping2D", _crop_apply, shape=_crop_shape)
_register("UpSampling2D", _upsample_apply, shape=_upsample_shape)
_register("Resizing", _resize_apply, shape=_resize_shape)
_register("CenterCrop", _center_crop_apply, shape=_center_crop_shape)
_register("RandomCrop", _random_crop_apply, shape=_random_crop_shape)
_register("Dense", _dense_apply, shape=_dense_shape, weights=_dense_weights)
_register("Flatten", _flatten_apply, shape=_flatten_shape)
_register("Reshape", lambda config, weights, x: x.reshape(x.shape[0], *config["target_shape"]),
          shape=_reshape_shape)
_register("BatchNormalization", _bn_apply, weights=_bn_weights)
_register("LayerNormalization", _layer_norm_apply, weights=_layer_norm_weights)
_register("Normalization", _normalization_apply, weights=_normalization_weights)
_register("Rescaling", _rescaling_apply, shape=_rescaling_shape)
_register("Affine", _affine_apply, weights=_affine_weights)
_register("Activation", lambda config, weights, x: activate(config.get("activation"), x))
_register("ReLU", _relu_apply)
_register("LeakyReLU", _leaky_relu_apply)
_register("ThresholdedReLU", _thresholded_relu_apply)
_register("Softmax", _softmax_apply)
for _kind in sorted(kinds.IDENTITY):    # identities at inference
    _register(_kind, _identity)
_register("Add", _fold(np.add), shape=_merge_shape, arity=None)
_register("Subtract", _fold(np.subtract), shape=_subtract_shape, arity=None)
_register("Multiply", _fold(np.multiply), shape=_merge_shape, arity=None)
_register("Maximum", _fold(np.maximum), shape=_merge_shape, arity=None)
_register("Minimum", _fold(np.minimum), shape=_merge_shape, arity=None)
_register("Average", _average_apply, shape=_merge_shape, arity=None)
_register("Concatenate", _concat_apply, shape=_concat_shape, arity=None)
_register("Square", lambda config, weights, x: x * x)
_register("Sqrt", lambda config, weights, x: np.sqrt(x))
_register("Erf", lambda config, weights, x: erf(x))
_register("Mean", _mean_apply, shape=_mean_shape)
_register("Divide", _fold(np.divide), shape=_subtract_shape, arity=None)
_register("Rearrange", _rearrange_apply,
          shape=lambda config, shape: tuple(_rearrange_params(config, shape)[2]))
_register("Slice", _slice_apply, shape=_slice_shape)
_register("Gather", _gather_apply,
          shape=lambda config, shape: tuple(_gather_params(config, shape)[1]))
_register("LayerScale", lambda config, weights, x: x * weights[0], weights=_layer_scale_weights)
_register("Conv3D", _conv3d_apply, shape=_conv3d_shape, weights=_conv3d_weights)
_register("MaxPooling3D", _pool3d_apply(mean=False), shape=_pool3d_shape)
_register("AveragePooling3D", _pool3d_apply(mean=True), shape=_pool3d_shape)
_register("GlobalAveragePooling3D", _global_pool3d_apply(precise_mean),
          shape=_global_pool3d_shape)
_register("GlobalMaxPooling3D", _global_pool3d_apply(np.max), shape=_global_pool3d_shape)
_register("ZeroPadding3D", _zero_pad3d_apply, shape=_zero_pad3d_shape)
_register("Cropping3D", _crop3d_apply, shape=_crop3d_shape)
_register("UpSampling3D", _upsample3d_apply, shape=_upsample3d_shape)
for _kind, _kind_2d in kinds.ONE_D.items():
    _register_1d(_kind, _kind_2d)
_register_ops()

SUPPORTED: frozenset[str] = frozenset(_OPS)

# The config keys tf.keras 2.15 and Keras 3 write for each kind (read from their get_config()):
# each is either read by the op above or has no effect at inference (initializers, regularizers,
# constraints, momentum). Any other key (a newer Keras option, a hand edit) may change the numbers
# unseen, so `unread_keys` reports it and the run warns. Identity kinds are not checked.
_ANY = {"name", "trainable", "dtype", "data_format", "seed"}
_INIT = {f"{w}_{what}" for w in ("kernel", "bias", "depthwise", "pointwise", "gamma", "beta")
         for what in ("initializer", "regularizer", "constraint")} | {"activity_regularizer"}
_CONV = {"activation", "dilation_rate", "filters", "groups", "kernel_size", "padding", "strides",
         "use_bias"} | _INIT
_NORM = {"axis", "center", "epsilon", "scale", "momentum"} | _INIT
_POOL = {"padding", "pool_size", "strides"}
CONFIG_KEYS: dict[str, frozenset[str]] = {kind: frozenset(keys | _ANY) for kind, keys in {
    "InputLayer": {"batch_shape", "batch_input_shape", "ragged", "sparse", "optional"},
    "Conv2D": _CONV, "DepthwiseConv2D": _CONV | {"depth_multiplier"},
    "SeparableConv2D": _CONV | {"depth_multiplier"},
    "Dense": {"activation", "units", "use_bias"} | _INIT,
    "MaxPooling2D": _POOL, "AveragePooling2D": _POOL,
    "GlobalAveragePooling2D": {"keepdims"}, "GlobalMaxPooling2D": {"keepdims"},
    "ZeroPadding2D": {"padding"}, "Cropping2D": {"cropping"},
    "UpSampling2D": {"interpolation", "size"}, "Flatten": {"order"}, "Reshape": {"target_shape"},
    "Resizing": {"height", "width", "interpolation", "crop_to_aspect_ratio",
                 "pad_to_aspect_ratio", "fill_mode", "fill_value", "antialias"},
    "CenterCrop": {"height", "width"}, "RandomCrop": {"height", "width"},
    "BatchNormalization": _NORM | {"moving_mean_initializer", "moving_variance_initializer",
                                   "renorm", "renorm_clipping", "renorm_momentum",
                                   "synchronized"},
    "LayerNormalization": _NORM | {"rms_scaling"},
    "Normalization": {"axis", "invert", "mean", "variance"}, "Rescaling": {"offset", "scale"},
    "Affine": {"shape"},
    "Activation": {"activation"}, "ReLU": {"max_value", "negative_slope", "threshold"},
    "LeakyReLU": {"negative_slope"}, "ThresholdedReLU": {"theta"}, "Softmax": {"axis"},
    "Concatenate": {"axis"}, "Rearrange": {"split", "perm", "target_shape"},
    "Slice": {"axis", "start", "stop", "step"}, "Gather": {"indices", "target_shape"},
    "Mean": {"axis", "keepdims"},
    **{kind: set() for kind in ("Square", "Sqrt", "Erf", "Divide")},
    **{kind: set() for kind in ("Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average")},
    "LayerScale": {"init_values", "projection_dim"},
    "Conv3D": _CONV, "MaxPooling3D": _POOL, "AveragePooling3D": _POOL,
    "GlobalAveragePooling3D": {"keepdims"}, "GlobalMaxPooling3D": {"keepdims"},
    "ZeroPadding3D": {"padding"}, "Cropping3D": {"cropping"}, "UpSampling3D": {"size"},
    "Conv1D": _CONV, "DepthwiseConv1D": _CONV | {"depth_multiplier"},
    "SeparableConv1D": _CONV | {"depth_multiplier"}, "MaxPooling1D": _POOL,
    "AveragePooling1D": _POOL, "GlobalAveragePooling1D": {"keepdims"},
    "GlobalMaxPooling1D": {"keepdims"}, "ZeroPadding1D": {"padding"},
    "Cropping1D": {"cropping"}, "UpSampling1D": {"size"},
    **{kinds.OP_PREFIX + name: _OP_KEYS.get(name, set())
       for name in (*_UNARY, *_BINARY, *_REDUCE, "Concatenate")},
}.items()}


def unread_keys(kind: str, config: dict) -> list[str]:
    """Config keys of a layer that nnvis neither reads nor knows to be harmless at inference."""
    known = CONFIG_KEYS.get(kind)
    if known is None:
        return []
    return sorted(k for k in config if k not in known and not k.startswith("_nnvis")
                  and not (k == "quantization_config" and config[k] is None))


def _where(kind: str, layer_name: str | None) -> str:
    return f"layer {layer_name!r} ({kind})" if layer_name else kind


def _op(kind: str, n_inputs: int, layer_name: str | None) -> _Op:
    op = _OPS.get(kind)
    if op is None:
        where = f"layer {layer_name!r}: " if layer_name else ""
        if kind.startswith(kinds.OP_PREFIX):
            raise Unsupported(f"{where}unsupported Keras op {kind[len(kinds.OP_PREFIX):]!r}")
        raise Unsupported(f"{where}unsupported layer kind {kind!r}")   # named, not listed: short
    if op.arity is not None and n_inputs != op.arity:
        raise NNVisError(f"{_where(kind, layer_name)}: takes {op.arity} input(s), got {n_inputs}")
    return op


def _call(fn, op, args, inputs, kind, layer_name):
    """Unwrap single inputs, and prefix any NNVisError from a kind with the layer's name and kind."""
    try:
        if op.arity == 0:
            return fn(*args)
        return fn(*args, inputs[0] if op.arity == 1 else inputs)
    except NNVisError as exc:
        raise type(exc)(f"{_where(kind, layer_name)}: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError, ArithmeticError) as exc:
        raise NNVisError(f"{_where(kind, layer_name)}: bad config or input "
                         f"({type(exc).__name__}: {exc})") from None


def check_supported(kind: str, config: dict, *, layer_name: str | None = None) -> None:
    """Raise Unsupported if nnvis cannot compute this layer (its kind or its activation).

    Shape inference may still work for such a layer (a Conv2D with a custom activation).
    """
    if kind not in _OPS:
        _op(kind, 0, layer_name)                     # raises the unsupported-kind error
    try:
        check_activation(config.get("activation"))
    except Unsupported as exc:
        raise Unsupported(f"{_where(kind, layer_name)}: {exc}") from None


def output_shape(kind: str, config: dict, input_shapes: list[tuple], *,
                 layer_name: str | None = None) -> tuple:
    """The layer's output shape (no batch dimension) for the given input shapes."""
    op = _op(kind, len(input_shapes), layer_name)
    shapes = [tuple(s) for s in input_shapes]
    return tuple(_call(op.shape, op, (config,), shapes, kind, layer_name))


def weight_shapes(kind: str, config: dict, input_shapes: list[tuple], *,
                  layer_name: str | None = None) -> list[tuple]:
    """The layer's weight shapes, in Keras ``get_weights()`` order."""
    op = _op(kind, len(input_shapes), layer_name)
    shapes = [tuple(s) for s in input_shapes]
    return [tuple(s) for s in _call(op.weights, op, (config,), shapes, kind, layer_name)]


def apply(kind: str, config: dict, weights: list[np.ndarray], inputs: list[np.ndarray], *,
          layer_name: str | None = None) -> np.ndarray:
    """The layer's inference output for float32 inputs WITH a batch dimension (weights unchecked)."""
    if kind in _OPS and _OPS[kind].apply is None:
        raise NNVisError(f"{kind} computes nothing: its output is the network's input")
    op = _op(kind, len(inputs), layer_name)
    arrays = [np.asarray(x, dtype=np.float32) for x in inputs]
    weights = [np.asarray(w, dtype=np.float32) for w in weights]
    return np.asarray(_call(op.apply, op, (config, weights), arrays, kind, layer_name),
                      dtype=np.float32)
