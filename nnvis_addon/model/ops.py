"""A layer's output shape, weight shapes and inference output, by kind: the entry points the config
parser, the weight readers and the forward pass call, so they agree on every kind. What each kind
computes is its own (`model.kinds`); here the inputs are counted, single inputs unwrapped and any
error prefixed with the layer's name and kind. What nnvis cannot compute raises ``Unsupported``
(an NNVisError), which the importer turns into a block without activations rather than a failed
import.
"""
from __future__ import annotations

import numpy as np

from ..errors import NNVisError
from . import kinds
from .kernels import ACTIVATIONS, Unsupported, check_activation
from .kinds import Kind

__all__ = ["ACTIVATIONS", "Unsupported", "apply", "check_supported", "output_shape",
           "unread_keys", "weight_shapes"]


def unread_keys(kind: str, config: dict) -> list[str]:
    """Config keys of a layer that nnvis neither reads nor knows to be harmless at inference."""
    known = kinds.get(kind)
    if known is None or known.config_keys is None:      # identities' configs are not checked
        return []
    return sorted(k for k in config if k not in known.config_keys and not k.startswith("_nnvis")
                  and not (k == "quantization_config" and config[k] is None))


def _where(kind: str, layer_name: str | None) -> str:
    return f"layer {layer_name!r} ({kind})" if layer_name else kind


def _op(kind: str, n_inputs: int, layer_name: str | None) -> Kind:
    op = kinds.get(kind)
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
    if kinds.get(kind) is None:
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
    known = kinds.get(kind)
    if known is not None and known.apply is None:
        raise NNVisError(f"{kind} computes nothing: its output is the network's input")
    op = _op(kind, len(inputs), layer_name)
    arrays = [np.asarray(x, dtype=np.float32) for x in inputs]
    weights = [np.asarray(w, dtype=np.float32) for w in weights]
    return np.asarray(_call(op.apply, op, (config, weights), arrays, kind, layer_name),
                      dtype=np.float32)
