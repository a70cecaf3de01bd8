"""The network's inference forward pass in numpy: every layer's activations for a probe image.

This is what lets nnvis animate activations from plain checkpoints (no TensorFlow in Blender):
weights per epoch in, activations per layer out. Each layer's weights are checked against
``ops.weight_shapes`` before use, so a checkpoint that does not fit the architecture fails with the
layer named instead of producing garbage. Layers nnvis cannot compute (unknown kinds, Lambda,
custom activations) are skipped with a reason by the ``*_partial`` functions, together with every
layer that needs their output; the plain functions refuse such networks.
"""
from __future__ import annotations

import numpy as np

from ..errors import NNVisError
from . import ops
from .keras_config import SHARED_KEY, unsupported_reason
from .network import Network


def _fits(shape: tuple, expected: tuple) -> bool:
    """Shape match where None in ``expected`` (a variable size) matches anything."""
    return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


def _checked_weights(layer, weights: dict, input_shapes: list[tuple]) -> list[np.ndarray]:
    expected = ops.weight_shapes(layer.kind, layer.config, input_shapes, layer_name=layer.name)
    given = weights.get(layer.config.get(SHARED_KEY, layer.name), [])   # a shared layer's call
    got = [tuple(np.shape(w)) for w in given]
    if got != expected:
        raise NNVisError(f"layer {layer.name!r} ({layer.kind}): weights have shapes {got}, "
                         f"expected {expected}")
    return [np.asarray(w, dtype=np.float32) for w in given]


def _compute(layer, weights, args) -> np.ndarray:
    """One layer's output; raises ops.Unsupported if nnvis cannot compute it."""
    reason = unsupported_reason(layer)
    if reason:
        raise ops.Unsupported(reason)
    ops.check_supported(layer.kind, layer.config, layer_name=layer.name)
    w = _checked_weights(layer, weights, [a.shape[1:] for a in args])
    y = ops.apply(layer.kind, layer.config, w, args, layer_name=layer.name)
    if not _fits(y.shape[1:], tuple(layer.output_shape)):
        raise NNVisError(f"layer {layer.name!r} ({layer.kind}): computed output shape "
                         f"{y.shape[1:]}, the network says {tuple(layer.output_shape)}")
    return y


def forward_batch_partial(network: Network, weights: dict[str, list[np.ndarray]],
                          batch: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(outputs, skipped): every computable layer's output for a batch (N, *input_shape), and for
    every other layer the reason it was not computed (a warning line naming the layer).

    ``weights`` maps layer names to their arrays in Keras ``get_weights()`` order; layers without
    weights may be left out. Outputs of no-op layers (Dropout) are the same arrays as their inputs.
    Bad weights or a bad batch raise NNVisError; only what nnvis cannot compute is skipped.
    """
    return _run(network, weights, batch, strict=False)


def forward_batch(network: Network, weights: dict[str, list[np.ndarray]],
                  batch: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output for a batch shaped (N, *network.input_shape), batch dimension kept.

    Raises NNVisError at the first layer nnvis cannot compute (see ``forward_batch_partial``).
    """
    return _run(network, weights, batch, strict=True)[0]


def forward_partial(network: Network, weights: dict[str, list[np.ndarray]],
                    probe: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(outputs, skipped) for ONE probe shaped like ``network.input_shape`` (no batch dimension)."""
    outputs, skipped = _run(network, weights, _one(network, probe), strict=False)
    return {name: y[0] for name, y in outputs.items()}, skipped


def forward(network: Network, weights: dict[str, list[np.ndarray]],
            probe: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output for ONE probe shaped like ``network.input_shape`` (no batch dimension).

    The InputLayer's entry is the probe itself (as float32). For a batch, use ``forward_batch``.
    """
    outputs, _ = _run(network, weights, _one(network, probe), strict=True)
    return {name: y[0] for name, y in outputs.items()}


def _one(network: Network, probe) -> np.ndarray:
    probe = np.asarray(probe, dtype=np.float32)
    if not _fits(probe.shape, network.input_shape):
        raise NNVisError(f"network {network.name!r}: probe has shape {probe.shape}, expected "
                         f"{tuple(network.input_shape)} (one input without a batch dimension)")
    return probe[None]


def _run(network, weights, batch, strict: bool):
    inputs = [layer for layer in network.layers if layer.kind == "InputLayer"]
    if len(inputs) != 1 or network.layers[0] is not inputs[0]:
        raise NNVisError(f"network {network.name!r}: the forward pass needs exactly one input layer, "
                         f"first (found {len(inputs)})")
    batch = np.asarray(batch, dtype=np.float32)
    if batch.ndim < 1 or not _fits(batch.shape[1:], network.input_shape):
        raise NNVisError(f"network {network.name!r}: input batch has shape {batch.shape}, "
                         f"expected (N, {', '.join(map(str, network.input_shape))})")
    outputs: dict[str, np.ndarray] = {network.layers[0].name: batch}
    skipped: dict[str, str] = {}
    cause: dict[str, str] = {}                     # skipped layer -> the layer that could not run
    for layer in network.layers[1:]:
        blocked = next((name for name in layer.inbound if name in skipped), None)
        if blocked is not None:
            cause[layer.name] = cause[blocked]
            skipped[layer.name] = (f"layer {layer.name!r} ({layer.kind}): not computed, it needs "
                                   f"the output of {cause[blocked]!r}, which nnvis cannot compute")
            continue
        try:
            args = [outputs[name] for name in layer.inbound]
        except KeyError as exc:
            raise NNVisError(f"layer {layer.name!r}: inbound layer {exc.args[0]!r} is not computed "
                             f"before it (layers must be in topological order)") from None
        try:
            outputs[layer.name] = _compute(layer, weights, args)
        except ops.Unsupported as exc:
            if strict:
                raise NNVisError(f"network {network.name!r}: {exc}") from None
            skipped[layer.name], cause[layer.name] = str(exc), layer.name
    return outputs, skipped
