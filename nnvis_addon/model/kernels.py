"""The array math behind the layer kinds: activations, convolutions, pooling, resizing (NHWC).

No configs here, only arrays and plain parameters, so each routine can be timed and tested on its
own. Speed matters (the forward pass runs once per epoch on networks like ResNet50 at 224×224):
Conv2D is im2col (strided views) + one BLAS matmul per block of output rows, 1×1 convolutions are a
plain matmul, and depthwise convolution is a sum over kernel taps of strided views (vectorised over
channels).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import NNVisError


class Unsupported(NNVisError):
    """Valid Keras that nnvis cannot compute (a layer kind, activation or option it lacks).

    Distinct from other NNVisErrors (broken input): the importer keeps such a layer as a block
    without activations instead of failing.
    """


# --------------------------------------------------------------------------------------------------
# Activations, by the names Keras 3 writes into configs ("swish" and "hard_swish" are its aliases).


def _sigmoid(x):
    """1/(1+e^-x) through e^-|x| (no overflow), so that a small output keeps float32's relative
    precision: 0.5·tanh(x/2) + 0.5 lost it to cancellation (sigmoid(-12) 0.3 % off, sigmoid(-20) 0),
    which a squeeze-excite's gate multiplies into every map."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, e) / (1 + e)


def _softplus(x):
    return np.logaddexp(np.float32(0), x)


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis=-1):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def erf(x):
    """erf in numpy (which has none): Abramowitz & Stegun 7.1.26, |error| < 1.5e-7 (float32-exact)."""
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                           + t * 1.061405429))))
    return np.sign(x) * (1.0 - poly * np.exp(-a * a))


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805

KERAS2_HARD_SIGMOID = "hard_sigmoid_keras2"

ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "leaky_relu": lambda x: np.where(x > 0, x, np.float32(0.2) * x),   # Keras 3 default slope 0.2
    "sigmoid": _sigmoid,
    "hard_sigmoid": lambda x: np.clip(x + 3, 0, 6) / 6,                # Keras 3: relu6(x + 3) / 6
    "hard_silu": lambda x: x * (np.clip(x + 3, 0, 6) / 6),
    # Keras 2 wrote "hard_sigmoid" for clip(0.2x + 0.5, 0, 1); model.keras2 renames it to this
    KERAS2_HARD_SIGMOID: lambda x: np.clip(np.float32(0.2) * x + np.float32(0.5), 0, 1),
    "tanh": np.tanh,
    "softmax": softmax,
    "log_softmax": _log_softmax,
    "elu": _elu,
    "selu": lambda x: _SELU_SCALE * _elu(x, _SELU_ALPHA),
    "softplus": _softplus,
    "softsign": lambda x: x / (1 + np.abs(x)),
    "silu": lambda x: x * _sigmoid(x),
    "gelu": lambda x: 0.5 * x * (1 + erf(x * np.float32(1 / math.sqrt(2)))),  # exact (erf) form
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "exponential": np.exp,
}
ACTIVATIONS["swish"] = ACTIVATIONS["silu"]


def gelu_tanh(x):
    """GELU's tanh approximation: what keras.ops.gelu computes by default (approximate=True)."""
    return 0.5 * x * (1 + np.tanh(np.float32(math.sqrt(2 / math.pi))
                                  * (x + np.float32(0.044715) * x ** 3)))
ACTIVATIONS["hard_swish"] = ACTIVATIONS["hard_silu"]


def check_activation(name) -> None:
    """Raise Unsupported unless ``name`` (a config's activation; None means linear) is known."""
    if name is not None and not (isinstance(name, str) and name in ACTIVATIONS):
        shown = name if isinstance(name, str) else "a custom/serialised function"
        raise Unsupported(f"unsupported activation {shown!r} "
                          f"(supported: {', '.join(sorted(ACTIVATIONS))})")


def activate(name, x: np.ndarray) -> np.ndarray:
    """Apply the activation a config names (None means linear), keeping float32."""
    check_activation(name)
    if name is None or name == "linear":
        return x
    return np.asarray(ACTIVATIONS[name](x), dtype=np.float32)


# --------------------------------------------------------------------------------------------------
# Window geometry (TF's 'valid'/'same' rules), shared by convolution and pooling


def axis_padding(padding, axis: int):
    """One axis' share of a padding: 'same'/'valid' as they are, explicit pads as (before, after).

    Explicit pads ((top, bottom), (left, right)) are what PyTorch and ONNX models say (nnvis' one
    extension of Keras' padding config); TF's 'same' is not the same thing for even windows.
    """
    return padding if isinstance(padding, str) else tuple(padding[axis])


def out_length(n, k: int, s: int, d: int, padding):
    """Output length along one spatial axis (None stays None), TF rule; `padding` is 'same',
    'valid' or this axis' explicit (before, after) pads."""
    if isinstance(padding, str) and padding not in ("same", "valid"):
        raise Unsupported(f"unsupported padding {padding!r} (supported: 'valid', 'same', "
                          "explicit pads)")
    if n is None:
        return None
    if (k - 1) * d + 1 > 16 * n + 64:       # 'same' would pad it with more than the map holds
        raise NNVisError(f"window {k} (dilation {d}) is far larger than the input's {n}")
    if padding == "same":
        return -(-n // s)
    if not isinstance(padding, str):
        n = n + padding[0] + padding[1]
    out = (n - (k - 1) * d - 1) // s + 1
    if out <= 0:
        raise NNVisError(f"input size {n} is smaller than the window ({k}, dilation {d})")
    return out


def pad_amounts(n: int, k: int, s: int, d: int, padding) -> tuple[int, int]:
    """(before, after) padding along one axis; TF puts the odd extra pixel after."""
    if not isinstance(padding, str):
        return int(padding[0]), int(padding[1])
    if padding != "same":
        return 0, 0
    total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def ceil_mode_extra(n: int, k: int, s: int, d: int, before: int, after: int) -> int:
    """Rows to add after the pads so a floor-rule window count equals PyTorch/ONNX ``ceil_mode``
    (a last, partial window, unless it would start inside the end padding)."""
    span = n + before + after - (k - 1) * d - 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + before:
        out -= 1
    return max((out - 1) * s - span, 0)


def pad_hw(x, k, s, d, padding, value=0):
    """``x`` padded for a k/s/d window under ``padding`` (no copy when nothing is added)."""
    (t, b), (l, r) = (pad_amounts(x.shape[1], k[0], s[0], d[0], axis_padding(padding, 0)),
                      pad_amounts(x.shape[2], k[1], s[1], d[1], axis_padding(padding, 1)))
    if t or b or l or r:
        x = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)
    return x


def _taps(x, k, s, d, ho, wo):
    """Yield ((i, j), strided (N, Ho, Wo, C) view) for every kernel tap of an already padded x."""
    for i in range(k[0]):
        for j in range(k[1]):
            r, c = i * d[0], j * d[1]
            yield (i, j), x[:, r:r + (ho - 1) * s[0] + 1:s[0], c:c + (wo - 1) * s[1] + 1:s[1]]


def _out_hw(x, k, s, d):
    return ((x.shape[1] - (k[0] - 1) * d[0] - 1) // s[0] + 1,
            (x.shape[2] - (k[1] - 1) * d[1] - 1) // s[1] + 1)


# --------------------------------------------------------------------------------------------------
# Convolution

_CONV_BLOCK_BYTES = 32 << 20  # patch bytes per matmul: big for BLAS, bounded memory on big images


def conv2d(x, kernel, strides, dilation, padding, groups=1):
    """NHWC convolution with a Keras (kh, kw, C/groups, F) kernel: im2col block + matmul."""
    kh, kw, cg, f = kernel.shape
    x = pad_hw(x, (kh, kw), strides, dilation, padding)
    if kh == kw == 1 and groups == 1:                   # pointwise: no window, no im2col copy
        x = x[:, ::strides[0], ::strides[1]]
        return (x.reshape(-1, cg) @ kernel.reshape(cg, f)).reshape(*x.shape[:3], f)
    (sh, sw), (dh, dw) = strides, dilation
    n = x.shape[0]
    ho, wo = _out_hw(x, (kh, kw), strides, dilation)
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


def depthwise_conv2d(x, kernel, strides, dilation, padding):
    """Keras DepthwiseConv2D: (kh, kw, C, M) kernel, output channel c*M + m filters input channel c.

    One multiply-add of a strided view per kernel tap, all channels at once (no im2col, no loop
    over channels). Computing bands of rows to keep the sum in cache measured no faster here.
    """
    kh, kw, c, m = kernel.shape
    x = pad_hw(x, (kh, kw), strides, dilation, padding)
    if m > 1:
        x = np.repeat(x, m, axis=-1)                    # channel c*M + m reads input channel c
    k = kernel.reshape(kh, kw, c * m)
    ho, wo = _out_hw(x, (kh, kw), strides, dilation)
    out = np.empty((x.shape[0], ho, wo, c * m), dtype=np.float32)
    tmp = np.empty_like(out)
    for (i, j), view in _taps(x, (kh, kw), strides, dilation, ho, wo):
        if i == j == 0:
            np.multiply(view, k[0, 0], out=out)
        else:
            np.multiply(view, k[i, j], out=tmp)
            out += tmp
    return out


def _depth_taps(x, k: int, s: int, d: int, padding, value=0.0):
    """(output depth, [(tap, (N, Do, H, W, C) strided view)]) of an NDHWC array's depth axis
    under a `padding` ('valid'/'same'), padded with `value`: the 3D kinds are 2D kinds summed
    or reduced over these taps."""
    before, after = pad_amounts(x.shape[1], k, s, d, padding)
    if before or after:
        x = np.pad(x, ((0, 0), (before, after)) + ((0, 0),) * 3, constant_values=value)
    depth = (x.shape[1] - (k - 1) * d - 1) // s + 1
    return depth, [(t, x[:, t * d:t * d + (depth - 1) * s + 1:s]) for t in range(k)]


def _per_slice(fn, view):
    """``fn`` (an NHWC → NHWC routine) over every depth slice of an NDHWC view."""
    n, depth = view.shape[:2]
    y = fn(np.ascontiguousarray(view).reshape(n * depth, *view.shape[2:]))
    return y.reshape(n, depth, *y.shape[1:])


def conv3d(x, kernel, strides, dilation, padding, groups=1):
    """NDHWC convolution with a Keras (kd, kh, kw, C/groups, F) kernel: the sum over depth taps
    of 2D convolutions of the slices they read."""
    out = None
    for t, view in _depth_taps(x, kernel.shape[0], strides[0], dilation[0], padding)[1]:
        y = _per_slice(lambda v: conv2d(v, kernel[t], strides[1:], dilation[1:], padding, groups),
                       view)
        out = y if out is None else out + y
    return out


def pool3d(x, k, s, padding, mean: bool):
    """TF 3D max or average pooling: 2D pooling of each slice, then max or mean over the depth
    window (an average counts only real slices, as TF's 'same' does: the count is separable)."""
    pool = avg_pool if mean else max_pool
    depth, taps = _depth_taps(x, k[0], s[0], 1, padding, 0.0 if mean else -np.inf)
    out = None
    for _, view in taps:
        y = _per_slice(lambda v: pool(v, k[1:], s[1:], padding), view)
        out = y if out is None else (out + y if mean else np.maximum(out, y))
    if not mean:
        return out
    count = sum(v for _, v in _depth_taps(np.ones((1, x.shape[1], 1, 1, 1), np.float32),
                                          k[0], s[0], 1, padding)[1])
    return out / count


# --------------------------------------------------------------------------------------------------
# Pooling and resizing


def max_pool(x, k, s, padding):
    """TF max pooling ('same' pads with -inf, so padding never wins)."""
    xp = pad_hw(x, k, s, (1, 1), padding, -np.inf)
    ho, wo = _out_hw(xp, k, s, (1, 1))
    views = (v for _, v in _taps(xp, k, s, (1, 1), ho, wo))
    out = next(views).copy()
    for v in views:
        np.maximum(out, v, out=out)
    return out


def avg_pool(x, k, s, padding):
    """TF average pooling: with padding the mean is over the real pixels only (as TF's 'same' and
    ONNX's default count_include_pad=0)."""
    xp = pad_hw(x, k, s, (1, 1), padding, 0)
    ho, wo = _out_hw(xp, k, s, (1, 1))
    views = (v for _, v in _taps(xp, k, s, (1, 1), ho, wo))
    out = next(views).copy()
    for v in views:
        out += v
    if padding != "valid":
        ones = pad_hw(np.ones((1, x.shape[1], x.shape[2], 1), np.float32), k, s, (1, 1), padding)
        count = sum(v for _, v in _taps(ones, k, s, (1, 1), ho, wo))
        return out / count
    return out / np.float32(k[0] * k[1])


def precise_mean(x, axis, keepdims=False):
    """A float32 mean summed in float64. numpy adds axes other than the last one element after
    element in the array's own dtype: over an NHWC map's H and W that drifts ~2e-6 at 56×56 (3e-6
    at 112×112) where the frameworks' blocked sums stay at float32 rounding, and a
    squeeze-excite's large pre-sigmoid values magnify it past 1e-4. Cheap next to a conv."""
    return np.mean(x, axis=axis, keepdims=keepdims, dtype=np.float64).astype(np.float32)


def _bilinear_matrix(n: int, factor: int) -> np.ndarray:
    """(n*factor, n) weights of TF's bilinear resize with half-pixel centres along one axis."""
    src = (np.arange(n * factor) + 0.5) / factor - 0.5
    low = np.floor(src)
    frac = (src - low).astype(np.float32)
    lo, hi = np.clip(low, 0, n - 1).astype(int), np.clip(low + 1, 0, n - 1).astype(int)
    m = np.zeros((n * factor, n), np.float32)
    rows = np.arange(n * factor)
    np.add.at(m, (rows, lo), 1 - frac)
    np.add.at(m, (rows, hi), frac)
    return m


def upsample(x, size, interpolation):
    """Keras UpSampling2D: pixel repetition ('nearest') or TF's bilinear resize ('bilinear')."""
    if interpolation == "nearest":
        return x.repeat(size[0], axis=1).repeat(size[1], axis=2)
    if interpolation != "bilinear":
        raise Unsupported(f"unsupported interpolation {interpolation!r} "
                          "(supported: 'nearest', 'bilinear')")
    rows, cols = _bilinear_matrix(x.shape[1], size[0]), _bilinear_matrix(x.shape[2], size[1])
    y = np.einsum("ph,nhwc->npwc", rows, x, optimize=True)
    return np.einsum("qw,npwc->npqc", cols, y, optimize=True)


def resize_bilinear(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """An (H, W, C) image resized bilinearly with half-pixel centres, as TF's resize with
    antialias off (the probe, Keras' Resizing)."""
    H, W = image.shape[:2]
    if (H, W) == (h, w):
        return image
    ys = np.clip((np.arange(h) + 0.5) * H / h - 0.5, 0, H - 1)
    xs = np.clip((np.arange(w) + 0.5) * W / w - 0.5, 0, W - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, H - 1), np.minimum(x0 + 1, W - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = image[y0][:, x0] * (1 - fx) + image[y0][:, x1] * fx
    bottom = image[y1][:, x0] * (1 - fx) + image[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def smart_resize(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """Keras' smart_resize: the largest centred window of the target's aspect ratio, resized."""
    H, W = image.shape[:2]
    ch = max(min(H, int(W * h / w)), 1)
    cw = max(min(W, int(H * w / h)), 1)
    top, left = int((H - ch) / 2), int((W - cw) / 2)
    return resize_bilinear(image[top:top + ch, left:left + cw], h, w)
