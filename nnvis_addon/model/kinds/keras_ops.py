"""Keras 3 functional ops (`x + 3.0`, `keras.ops.relu6(x)`): nodes of a Functional model whose
config names a `keras.src.ops.*` module; nnvis calls them "ops.<class>" (model.keras_config),
apart from the layers of the same class name (the op Add may add a constant). Also Mean, the
reduction ONNX exports decompose layers into (ReduceMean), named as Keras 3's ops class.

The op's own parameters (axis, x_min, ...) are in its config; its operands — tensors and
constants such as the 3.0 — are the call's arguments, which keras_config records under
OPERANDS_KEY in order, each an input (``{"input": k}``: its k-th inbound tensor) or a constant.
Unary ops link matching cells, binary ops as merges, reductions each input cell to the cells it
is reduced into (over the maps' own axes: map c → cell c; over the channels: every map → the one
map).
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import NNVisError
from ..kernels import ACTIVATIONS, Unsupported, gelu_tanh, precise_mean
from .cells import element_edges, same_cells
from .config import axes_of, numbers
from .elementwise import softmax_apply
from .merge import concat_apply, concat_edges, concat_shape, merge_edges
from .registry import Kind, get, register

OP_PREFIX = "ops."
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
    "Softmax": lambda c, x: softmax_apply(c, None, x),
    "LogSoftmax": lambda c, x: ACTIVATIONS["log_softmax"](x, axis=c.get("axis", -1)),
}


_BINARY = {"Add": np.add, "Subtract": np.subtract, "Multiply": np.multiply,
           "Divide": np.true_divide, "TrueDivide": np.true_divide, "Maximum": np.maximum,
           "Minimum": np.minimum, "Power": np.power}


_REDUCE = {"Mean": precise_mean, "Max": np.max, "Min": np.min,   # sums in float64 (precise_mean)
           "Sum": lambda x, axis, keepdims: np.sum(x, axis, np.float64, keepdims=keepdims)}


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
    values = _operands(config, inputs, lambda v: numbers(v, "operand"))
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
    values = _operands(config, shapes, lambda v: np.shape(numbers(v, "operand")))
    if len(values) != 2:
        raise Unsupported(f"takes two operands, got {len(values)}")
    return _broadcast(values)


def _binary_apply(fn):
    def apply(config, weights, xs):
        a, b = _operands(config, xs, lambda v: numbers(v, "operand"))
        return fn(a, b)
    return apply


def _mean_axes(config, shape) -> list[int]:
    return axes_of(config, len(shape) + 1, "Mean", None) or list(range(1, len(shape) + 1))


def _mean_shape(config, shape):
    axes = _mean_axes(config, shape)
    if config.get("keepdims"):
        return tuple(1 if i + 1 in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i + 1 not in axes)


def _mean_apply(config, weights, x):
    return precise_mean(x, tuple(_mean_axes(config, x.shape[1:])), bool(config.get("keepdims")))


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
    return concat_shape(config, _operands(config, shapes,
                                           lambda v: np.shape(numbers(v, "operand"))))


def _op_concat_apply(config, weights, xs):
    return concat_apply(config, weights, _operands(config, xs, lambda v: numbers(v, "operand")))


def _reduce_edges(layer, source, *_):
    """Every input cell → the cells it is reduced into."""
    shape = tuple(int(d) for d in source.output_shape)
    kind = get(layer.kind)
    config = {**layer.config, "keepdims": True}
    kept = kind.shape(config, shape if kind.arity == 1 else [shape])
    into = np.broadcast_to(np.arange(math.prod(kept)).reshape(kept), shape).ravel()
    return element_edges(source, layer, into, inverse=True)


register(Kind("Mean", _mean_apply, _mean_shape, config_keys={"axis", "keepdims"},
              edges=_reduce_edges, fan="elements"))
for _name, _fn in _UNARY.items():
    register(Kind(OP_PREFIX + _name,
                  (lambda f: lambda config, weights, xs: f(config, _one_tensor(config, xs)))(_fn),
                  lambda config, shapes: _one_tensor(config, shapes), arity=None,
                  config_keys=_OP_KEYS.get(_name, set()), edges=same_cells, passes=True,
                  mapwise=True))
for _name, _fn in _BINARY.items():
    register(Kind(OP_PREFIX + _name, _binary_apply(_fn), _binary_shape, arity=None,
                  config_keys=_OP_KEYS.get(_name, set()), edges=merge_edges, mapwise=True))
for _name, _fn in _REDUCE.items():
    register(Kind(OP_PREFIX + _name, _reduce_apply(_fn), _reduce_shape, arity=None,
                  config_keys=_OP_KEYS[_name], edges=_reduce_edges, mapwise=True))
register(Kind(OP_PREFIX + "Concatenate", _op_concat_apply, _op_concat_shape, arity=None,
              config_keys=_OP_KEYS["Concatenate"], edges=concat_edges, mapwise=True))
