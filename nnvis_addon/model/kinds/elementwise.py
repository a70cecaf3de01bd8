"""Element-wise kinds on one input: activations (Activation, ReLU, LeakyReLU, ThresholdedReLU,
Softmax) and the math ONNX exports decompose layers into (Square, Sqrt, Erf: LayerNorm before
opset 17, GELU before opset 20). Channel i feeds channel i: edges join matching cells, weight 1.
"""
from __future__ import annotations

import numpy as np

from ..kernels import activate, erf, softmax
from .cells import same_cells
from .config import COMMON
from .registry import Design, Kind, register


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


def softmax_apply(config, weights, x):
    axis = config.get("axis", -1)
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    return softmax(x, axis=axis)


def _elementwise(name, apply, keys, **facts) -> Kind:
    return register(Kind(name, apply, config_keys=keys, edges=same_cells, passes=True,
                         mapwise=True, **facts))


_elementwise("Activation", lambda config, weights, x: activate(config.get("activation"), x),
             {"activation"}, design=Design(5, "activation", {**COMMON, "activation": None},
                                           ("activation",), ("activation",)))
_elementwise("ReLU", _relu_apply, {"max_value", "negative_slope", "threshold"})
_elementwise("LeakyReLU", _leaky_relu_apply, {"negative_slope"},
             keras2_renames=(("alpha", "negative_slope"),))
_elementwise("ThresholdedReLU", _thresholded_relu_apply, {"theta"})
_elementwise("Softmax", softmax_apply, {"axis"})
_elementwise("Square", lambda config, weights, x: x * x, set())
_elementwise("Sqrt", lambda config, weights, x: np.sqrt(x), set())
_elementwise("Erf", lambda config, weights, x: erf(x), set())
