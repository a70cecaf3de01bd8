"""The network's inference forward pass in numpy: every layer's activations for a probe image.

This is what lets nnvis animate activations from plain checkpoints (no TensorFlow in Blender):
weights per epoch in, activations per layer out. Each layer's weights are checked against
``ops.weight_shapes`` before use, so a checkpoint that does not fit the architecture fails with the
layer named instead of producing garbage.
"""
from __future__ import annotations

import numpy as np

from ..errors import NNVisError
from . import ops
from .network import Network


def _fits(shape: tuple, expected: tuple) -> bool:
    """Shape match where None in ``expected`` (a variable size) matches anything."""
    return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


def _checked_weights(layer, weights: dict, input_shapes: list[tuple]) -> list[np.ndarray]:
    expected = ops.weight_shapes(layer.kind, layer.config, input_shapes, layer_name=layer.name)
    given = weights.get(layer.name, [])
    got = [tuple(np.shape(w)) for w in given]
    if got != expected:
        raise NNVisError(f"layer {layer.name!r} ({layer.kind}): weights have shapes {got}, "
                         f"expected {expected}")
    return [np.asarray(w, dtype=np.float32) for w in given]


def forward_batch(network: Network, weights: dict[str, list[np.ndarray]],
                  batch: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output for a batch shaped (N, *network.input_shape), batch dimension kept.

    ``weights`` maps layer names to their arrays in Keras ``get_weights()`` order; layers without
    weights may be left out. Outputs of no-op layers (Dropout) are the same arrays as their inputs.
    """
    inputs = [layer for layer in network.layers if layer.kind == "InputLayer"]
    if len(inputs) != 1 or network.layers[0] is not inputs[0]:
        raise NNVisError(f"network {network.name!r}: the forward pass needs exactly one input layer, "
                         f"first (found {len(inputs)})")
    batch = np.asarray(batch, dtype=np.float32)
    if batch.ndim < 1 or not _fits(batch.shape[1:], network.input_shape):
        raise NNVisError(f"network {network.name!r}: input batch has shape {batch.shape}, "
                         f"expected (N, {', '.join(map(str, network.input_shape))})")
    outputs: dict[str, np.ndarray] = {network.layers[0].name: batch}
    for layer in network.layers[1:]:
        try:
            args = [outputs[name] for name in layer.inbound]
        except KeyError as exc:
            raise NNVisError(f"layer {layer.name!r}: inbound layer {exc.args[0]!r} is not computed "
                             f"before it (layers must be in topological order)") from None
        w = _checked_weights(layer, weights, [a.shape[1:] for a in args])
        y = ops.apply(layer.kind, layer.config, w, args, layer_name=layer.name)
        if not _fits(y.shape[1:], tuple(layer.output_shape)):
            raise NNVisError(f"layer {layer.name!r} ({layer.kind}): computed output shape "
                             f"{y.shape[1:]}, the network says {tuple(layer.output_shape)}")
        outputs[layer.name] = y
    return outputs


def forward(network: Network, weights: dict[str, list[np.ndarray]],
            probe: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output for ONE probe shaped like ``network.input_shape`` (no batch dimension).

    The InputLayer's entry is the probe itself (as float32). For a batch, use ``forward_batch``.
    """
    probe = np.asarray(probe, dtype=np.float32)
    if not _fits(probe.shape, network.input_shape):
        raise NNVisError(f"network {network.name!r}: probe has shape {probe.shape}, expected "
                         f"{tuple(network.input_shape)} (one input without a batch dimension)")
    return {name: y[0] for name, y in forward_batch(network, weights, probe[None]).items()}
