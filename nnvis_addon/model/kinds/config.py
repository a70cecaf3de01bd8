"""Reading a Keras layer config (what every family of kinds shares), and the defaults Keras 3.15
writes into one (the design templates' parts).

Config values follow what Keras 3's ``get_config()`` writes (checked against keras.applications'
models); a file may say anything, so each reader checks what it reads and raises an NNVisError
naming the value. Pure Python and numpy.
"""
from __future__ import annotations

import numpy as np

from ...errors import NNVisError
from ..kernels import Unsupported, activate, axis_padding, out_length, pad_amounts

KERAS2_KEY = "_nnvis_keras2"    # in a layer config: written by tf.keras ≤ 2.15 (keras2.normalize)
SHARED_KEY = "_nnvis_shares"     # in Layer.config: the layer whose weights this call reuses


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


def pads(value, n: int, what: str) -> tuple[tuple[int, int], ...]:
    """ZeroPadding/Cropping amounts along n axes: int, one per axis, or (before, after) pairs."""
    if isinstance(value, (list, tuple)) and len(value) == n and \
            all(isinstance(v, (list, tuple)) for v in value):
        return tuple(sizes(v, 2, what, 0) for v in value)
    return tuple((a, a) for a in sizes(value, n, what, 0))


def pad_pairs(value, what: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """ZeroPadding2D/Cropping2D amounts: int, (rows, cols) or ((top, bottom), (left, right))."""
    return pads(value, 2, what)


def numbers(value, what: str) -> np.ndarray:
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


def axis_index(axis, rank: int, what: str) -> int:
    """A Keras axis (counting the batch; negative from the end) as an index WITH the batch."""
    if isinstance(axis, (list, tuple)) and len(axis) == 1:
        axis = axis[0]
    if not isinstance(axis, int) or isinstance(axis, bool) or not -rank <= axis < rank \
            or axis % rank == 0:
        raise Unsupported(f"unsupported {what} axis {axis!r} for a rank-{rank - 1} input")
    return axis % rank


def check_channels_last(config: dict) -> None:
    fmt = config.get("data_format") or "channels_last"
    if fmt != "channels_last":
        raise Unsupported(f"unsupported data_format {fmt!r} (only 'channels_last')")


def check_hwc(config, shape) -> None:
    check_channels_last(config)
    if len(shape) != 3:
        raise NNVisError(f"expected an (H, W, C) input, got shape {shape}")


def check_dhwc(config, shape) -> None:
    check_channels_last(config)
    if len(shape) != 4:
        raise NNVisError(f"expected a (D, H, W, C) input, got shape {shape}")


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
    return pad_pairs(padding, "padding")


def spatial_shape(config, shape, k, s, d, channels) -> tuple:
    check_hwc(config, shape)
    padding = padding_of(config)
    return (out_length(shape[0], k[0], s[0], d[0], axis_padding(padding, 0)),
            out_length(shape[1], k[1], s[1], d[1], axis_padding(padding, 1)), channels)


def bias_act(config, weights, y, bias_index):
    if config.get("use_bias", True):
        y += weights[bias_index]
    return activate(config.get("activation"), y)


def grow(n, by: int):
    return None if n is None else n + by


def check_broadcast(values: np.ndarray, shape, what: str) -> None:
    """Config constants must broadcast onto the input without changing its shape."""
    if values.ndim > len(shape) or any(v != 1 and d is not None and v != d
                                       for v, d in zip(values.shape[::-1], shape[::-1])):
        raise NNVisError(f"{what} of shape {values.shape} does not fit an input of shape {shape}")


def axes_of(config, rank: int, what: str, default) -> list[int]:
    """A list-valued Keras axis config as sorted indices WITH the batch (never the batch itself)."""
    raw = config.get("axis", default)
    raw = [] if raw is None else [raw] if isinstance(raw, int) else raw
    if not isinstance(raw, (list, tuple)):
        raise Unsupported(f"unsupported {what} axis {raw!r}")
    axes = [axis_index(a, rank, what) for a in raw]
    if [a % rank for a in sorted(raw)] != sorted(axes) or len(set(axes)) < len(axes):
        raise Unsupported(f"unsupported {what} axis {raw!r} (mixed or repeated axes)")
    return sorted(axes)


def ints(config, key) -> list[int]:
    value = config[key]
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise NNVisError(f"bad {key} {value!r}: expected a list of ints")
    return [int(v) for v in value]


# --------------------------------------------------------------------------------------------------
# Keras 3.15's defaults, as model.to_json() writes them (the design templates are made of these)


def keras_initializer(name: str, config: dict | None = None) -> dict:
    return {"module": "keras.initializers", "class_name": name, "config": config or {},
            "registered_name": None}


DTYPE_POLICY = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
                "registered_name": None}
GLOROT = keras_initializer("GlorotUniform", {"seed": None, "input_axes": None,
                                             "output_axes": None})
COMMON = {"name": None, "trainable": True, "dtype": DTYPE_POLICY}

# config keys every kind may carry, and the initializer, regularizer and constraint keys of any
# weight: none changes what a layer computes at inference
ANY_KEYS = frozenset({"name", "trainable", "dtype", "data_format", "seed"})
INIT_KEYS = frozenset({f"{w}_{what}" for w in ("kernel", "bias", "depthwise", "pointwise", "gamma",
                                                "beta")
                       for what in ("initializer", "regularizer", "constraint")}
                      | {"activity_regularizer"})


def window_of(k, s, d, padding, in_hw) -> tuple:
    """(stride, offset, size) of the input pixels one output pixel of a kernel window reads (see
    model.window): TF's rule for 'valid'/'same', the odd padded pixel after."""
    before = [pad_amounts(n, k[a], s[a], d[a], axis_padding(padding, a))[0]
              for a, n in enumerate(in_hw)]
    return ((float(s[0]), float(s[1])), (-float(before[0]), -float(before[1])),
            ((k[0] - 1) * d[0] + 1, (k[1] - 1) * d[1] + 1))
