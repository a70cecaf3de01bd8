"""Keras layer kinds in numpy: output shape, weight shapes and inference forward pass, per kind.

One registry (``_OPS``) maps a Keras class name to three small functions, so the config parser, the
weight readers and the forward pass agree on every kind, and adding a kind is one ``_register`` call.
Arrays are float32 and channels-last (NHWC, Keras' default); shapes passed around exclude the batch
dimension, arrays passed to ``apply`` include it. Spatial sizes may be None (variable-size inputs).
Conv2D is an im2col (strided views) + one matmul per block of output rows, so it runs at BLAS speed
without materialising the whole patch matrix of a large image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import NNVisError

# --------------------------------------------------------------------------------------------------
# Activations, by the names Keras 3 writes into configs ("swish" and "hard_swish" are its aliases).


def _sigmoid(x):
    return 0.5 * np.tanh(0.5 * x) + 0.5          # no overflow for large |x|, unlike 1/(1+exp(-x))


def _softplus(x):
    return np.logaddexp(np.float32(0), x)


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis=-1):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _erf(x):
    """erf in numpy (which has none): Abramowitz & Stegun 7.1.26, |error| < 1.5e-7 (float32-exact)."""
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                           + t * 1.061405429))))
    return np.sign(x) * (1.0 - poly * np.exp(-a * a))


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805

ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "leaky_relu": lambda x: np.where(x > 0, x, np.float32(0.2) * x),   # Keras 3 default slope 0.2
    "sigmoid": _sigmoid,
    "hard_sigmoid": lambda x: np.clip(x + 3, 0, 6) / 6,                # Keras 3: relu6(x + 3) / 6
    "hard_silu": lambda x: x * (np.clip(x + 3, 0, 6) / 6),
    "tanh": np.tanh,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "elu": _elu,
    "selu": lambda x: _SELU_SCALE * _elu(x, _SELU_ALPHA),
    "softplus": _softplus,
    "softsign": lambda x: x / (1 + np.abs(x)),
    "silu": lambda x: x * _sigmoid(x),
    "gelu": lambda x: 0.5 * x * (1 + _erf(x * np.float32(1 / math.sqrt(2)))),  # exact (erf) form
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "exponential": np.exp,
}
ACTIVATIONS["swish"] = ACTIVATIONS["silu"]
ACTIVATIONS["hard_swish"] = ACTIVATIONS["hard_silu"]


def activate(name, x: np.ndarray) -> np.ndarray:
    """Apply the activation a config names (None means linear), keeping float32."""
    key = "linear" if name is None else name
    fn = ACTIVATIONS.get(key) if isinstance(key, str) else None
    if fn is None:
        raise NNVisError(f"unsupported activation {name!r} "
                         f"(supported: {', '.join(sorted(ACTIVATIONS))})")
    return np.asarray(fn(x), dtype=np.float32)


# --------------------------------------------------------------------------------------------------
# Spatial helpers shared by convolution and pooling kinds (TF's 'valid'/'same' rules).


def pair(value, what: str = "value") -> tuple[int, int]:
    """A Keras 2-tuple parameter (int or 2-sequence, as configs write kernel_size/strides)."""
    if isinstance(value, int):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise NNVisError(f"bad {what} {value!r}: expected an int or two ints")


def out_length(n, k: int, s: int, d: int, padding: str):
    """Output length along one spatial axis (None stays None), TF rule."""
    if n is None:
        return None
    if padding == "same":
        return -(-n // s)
    if padding == "valid":
        out = (n - (k - 1) * d - 1) // s + 1
        if out <= 0:
            raise NNVisError(f"input size {n} is smaller than the window ({k}, dilation {d})")
        return out
    raise NNVisError(f"unsupported padding {padding!r} (supported: 'valid', 'same')")


def pad_amounts(n: int, k: int, s: int, d: int, padding: str) -> tuple[int, int]:
    """(before, after) padding along one axis; TF puts the odd extra pixel after."""
    if padding != "same":
        return 0, 0
    total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def _check_channels_last(config: dict) -> None:
    fmt = config.get("data_format") or "channels_last"
    if fmt != "channels_last":
        raise NNVisError(f"unsupported data_format {fmt!r} (only 'channels_last')")


def _spatial_shape(config, shape, k, s, d, channels) -> tuple:
    _check_channels_last(config)
    if len(shape) != 3:
        raise NNVisError(f"expected an (H, W, C) input, got shape {shape}")
    padding = config.get("padding", "valid")
    return (out_length(shape[0], k[0], s[0], d[0], padding),
            out_length(shape[1], k[1], s[1], d[1], padding), channels)


def _pad_hw(x, k, s, d, padding, value):
    (t, b), (l, r) = (pad_amounts(x.shape[1], k[0], s[0], d[0], padding),
                      pad_amounts(x.shape[2], k[1], s[1], d[1], padding))
    if t or b or l or r:
        x = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)
    return x


# --------------------------------------------------------------------------------------------------
# Kinds


def _conv_params(config):
    return (pair(config["kernel_size"], "kernel_size"), pair(config.get("strides", 1), "strides"),
            pair(config.get("dilation_rate", 1), "dilation_rate"), int(config.get("groups", 1)))


def _conv2d_shape(config, shape):
    k, s, d, _ = _conv_params(config)
    return _spatial_shape(config, shape, k, s, d, int(config["filters"]))


def _conv2d_weights(config, shape):
    k, _, _, groups = _conv_params(config)
    filters, channels = int(config["filters"]), shape[-1]
    if channels is None or channels % groups or filters % groups:
        raise NNVisError(f"{channels} input channels / {filters} filters do not split into "
                         f"{groups} groups")
    kernel = (k[0], k[1], channels // groups, filters)
    return [kernel, (filters,)] if config.get("use_bias", True) else [kernel]


_CONV_BLOCK_BYTES = 32 << 20  # patch bytes per matmul: big for BLAS, bounded memory on big images


def conv2d(x, kernel, strides, dilation, padding, groups=1):
    """NHWC convolution with a Keras (kh, kw, C/groups, F) kernel: im2col block + matmul."""
    kh, kw, cg, f = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    x = _pad_hw(x, (kh, kw), strides, dilation, padding, 0)
    n, h, w, c = x.shape
    ho, wo = (h - (kh - 1) * dh - 1) // sh + 1, (w - (kw - 1) * dw - 1) // sw + 1
    # (N, Ho, Wo, kh, kw, C) view: strided windows, patch pixels in Keras kernel order
    win = sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))
    win = win[:, ::sh, ::sw, :, ::dh, ::dw].transpose(0, 1, 2, 4, 5, 3)
    fg = f // groups
    kernels = [kernel[..., g * fg:(g + 1) * fg].reshape(kh * kw * cg, fg) for g in range(groups)]
    out = np.empty((n, ho, wo, f), dtype=np.float32)
    rows = max(1, _CONV_BLOCK_BYTES // max(1, wo * kh * kw * cg * 4))
    for i in range(n):
        for r0 in range(0, ho, rows):
            block = win[i, r0:r0 + rows]
            for g, k2 in enumerate(kernels):
                cols = block[..., g * cg:(g + 1) * cg].reshape(-1, kh * kw * cg)   # the im2col copy
                out[i, r0:r0 + rows, :, g * fg:(g + 1) * fg] = (cols @ k2).reshape(-1, wo, fg)
    return out


def _conv2d_apply(config, weights, x):
    k, s, d, groups = _conv_params(config)
    y = conv2d(x, weights[0], s, d, config.get("padding", "valid"), groups)
    if config.get("use_bias", True):
        y += weights[1]
    return activate(config.get("activation"), y)


def _pool_params(config):
    k = pair(config["pool_size"], "pool_size")
    s = pair(config.get("strides") or k, "strides")     # Keras: strides None means pool_size
    return k, s


def _pool_shape(config, shape):
    k, s = _pool_params(config)
    return _spatial_shape(config, shape, k, s, (1, 1), shape[-1])


def _pool_windows(x, k, s, ho, wo):
    """Yield the kh*kw strided (N, Ho, Wo, C) views, one per window offset (loop over the window)."""
    for i in range(k[0]):
        for j in range(k[1]):
            yield x[:, i:i + (ho - 1) * s[0] + 1:s[0], j:j + (wo - 1) * s[1] + 1:s[1]]


def _max_pool_apply(config, weights, x):
    k, s = _pool_params(config)
    padding = config.get("padding", "valid")
    ho, wo, _ = _pool_shape(config, x.shape[1:])
    xp = _pad_hw(x, k, s, (1, 1), padding, -np.inf)
    views = _pool_windows(xp, k, s, ho, wo)
    out = next(views).copy()
    for v in views:
        np.maximum(out, v, out=out)
    return out


def _avg_pool_apply(config, weights, x):
    """Average over the real pixels only: TF's 'same' average ignores the padding in the count."""
    k, s = _pool_params(config)
    padding = config.get("padding", "valid")
    ho, wo, _ = _pool_shape(config, x.shape[1:])
    xp = _pad_hw(x, k, s, (1, 1), padding, 0)
    views = _pool_windows(xp, k, s, ho, wo)
    out = next(views).copy()
    for v in views:
        out += v
    if padding == "same":
        ones = _pad_hw(np.ones((1, x.shape[1], x.shape[2], 1), np.float32), k, s, (1, 1), padding, 0)
        count = sum(_pool_windows(ones, k, s, ho, wo))
        return out / count
    return out / np.float32(k[0] * k[1])


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
    y = x @ weights[0]
    if config.get("use_bias", True):
        y += weights[1]
    return activate(config.get("activation"), y)


def _flatten_shape(config, shape):
    _check_channels_last(config)
    return (None if None in shape else math.prod(shape),)


def _bn_axis(config, shape):
    """The normalised axis as an index into the shape WITHOUT batch (Keras counts the batch)."""
    axis = config.get("axis", -1)
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    rank = len(shape) + 1
    if not isinstance(axis, int) or not -rank <= axis < rank or axis % rank == 0:
        raise NNVisError(f"unsupported BatchNormalization axis {config.get('axis')!r}")
    return axis % rank - 1


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


def _softmax_apply(config, weights, x):
    axis = config.get("axis", -1)
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    return _softmax(x, axis=axis)


def _gap_shape(config, shape):
    _check_channels_last(config)
    if len(shape) != 3:
        raise NNVisError(f"expected an (H, W, C) input, got shape {shape}")
    return (1, 1, shape[-1]) if config.get("keepdims") else (shape[-1],)


def _gap_apply(config, weights, x):
    return x.mean(axis=(1, 2), keepdims=bool(config.get("keepdims")))


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
_register("MaxPooling2D", _max_pool_apply, shape=_pool_shape)
_register("AveragePooling2D", _avg_pool_apply, shape=_pool_shape)
_register("Dense", _dense_apply, shape=_dense_shape, weights=_dense_weights)
_register("Flatten", lambda config, weights, x: x.reshape(x.shape[0], -1), shape=_flatten_shape)
_register("Dropout", _identity)
_register("BatchNormalization", _bn_apply, weights=_bn_weights)
_register("Activation", lambda config, weights, x: activate(config.get("activation"), x))
_register("ReLU", _relu_apply)
_register("Softmax", _softmax_apply)
_register("GlobalAveragePooling2D", _gap_apply, shape=_gap_shape)

SUPPORTED: frozenset[str] = frozenset(_OPS)


def _op(kind: str, n_inputs: int, layer_name: str | None) -> _Op:
    where = f"layer {layer_name!r}: " if layer_name else ""
    op = _OPS.get(kind)
    if op is None:
        raise NNVisError(f"{where}unsupported layer kind {kind!r} "
                         f"(supported: {', '.join(sorted(SUPPORTED))})")
    if op.arity is not None and n_inputs != op.arity:
        raise NNVisError(f"{where}{kind} takes {op.arity} input(s), got {n_inputs}")
    return op


def _call(fn, op, args, inputs, kind, layer_name):
    """Unwrap single inputs, and prefix any NNVisError from a kind with the layer's name and kind."""
    try:
        if op.arity == 0:
            return fn(*args)
        return fn(*args, inputs[0] if op.arity == 1 else inputs)
    except NNVisError as exc:
        where = f"layer {layer_name!r} ({kind})" if layer_name else kind
        raise NNVisError(f"{where}: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        where = f"layer {layer_name!r} ({kind})" if layer_name else kind
        raise NNVisError(f"{where}: bad config or input ({type(exc).__name__}: {exc})") from None


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
