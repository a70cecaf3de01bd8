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
from .keras_config import unsupported_reason
from .kinds import SHARED_KEY
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
                          batch) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(outputs, skipped): every computable layer's output for a batch (N, *input_shape), and for
    every other layer the reason it was not computed (a warning line naming the layer).

    ``weights`` maps layer names to their arrays in Keras ``get_weights()`` order; layers without
    weights may be left out. Outputs of no-op layers (Dropout) are the same arrays as their inputs.
    A multi-input model takes one batch per input: a dict {input name: batch} or a list in
    ``network.inputs`` order. Bad weights or a bad batch raise NNVisError; only what nnvis cannot
    compute is skipped.
    """
    return _run(network, weights, feeds(network, batch), strict=False)


def forward_batch(network: Network, weights: dict[str, list[np.ndarray]],
                  batch) -> dict[str, np.ndarray]:
    """Every layer's output for a batch shaped (N, *network.input_shape), batch dimension kept.

    Raises NNVisError at the first layer nnvis cannot compute (see ``forward_batch_partial``).
    """
    return _run(network, weights, feeds(network, batch), strict=True)[0]


def forward_partial(network: Network, weights: dict[str, list[np.ndarray]],
                    probe) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(outputs, skipped) for ONE probe shaped like ``network.input_shape`` (no batch dimension)."""
    outputs, skipped = _run(network, weights, _one(network, probe), strict=False)
    return {name: y[0] for name, y in outputs.items()}, skipped


def forward(network: Network, weights: dict[str, list[np.ndarray]],
            probe) -> dict[str, np.ndarray]:
    """Every layer's output for ONE probe shaped like ``network.input_shape`` (no batch dimension;
    a multi-input model: one per input, as for ``forward_batch_partial``).

    The InputLayer's entry is the probe itself (as float32). For a batch, use ``forward_batch``.
    """
    outputs, _ = _run(network, weights, _one(network, probe), strict=True)
    return {name: y[0] for name, y in outputs.items()}


def feeds(network: Network, batch) -> dict[str, object]:
    """{input name: what feeds it}: ``batch`` itself for a one-input model; a multi-input model's
    dict (keyed by input name) or list/tuple (in ``network.inputs`` order), checked against the
    inputs — one rule for probes and batches."""
    names = network.inputs
    if not names:
        raise NNVisError(f"network {network.name!r}: the forward pass needs an input layer")
    if len(names) == 1:
        return {names[0]: batch}
    listing = ", ".join(map(repr, names))
    if isinstance(batch, dict):
        if set(batch) != set(names):
            raise NNVisError(f"network {network.name!r}: inputs {sorted(map(str, batch))} given, "
                             f"the model takes {listing}")
        return {name: batch[name] for name in names}
    if isinstance(batch, (list, tuple)) and len(batch) == len(names):
        return dict(zip(names, batch))
    raise NNVisError(f"network {network.name!r} has {len(names)} inputs ({listing}): give one "
                     "probe per input, a list in that order or a dict by input name")


def _one(network: Network, probe) -> dict[str, np.ndarray]:
    out = {}
    for name, value in feeds(network, probe).items():
        value = np.asarray(value, dtype=np.float32)
        shape = network.layer(name).output_shape
        if not _fits(value.shape, shape):
            raise NNVisError(f"network {network.name!r}: probe for input {name!r} has shape "
                             f"{value.shape}, expected {tuple(shape)} (one input without a batch "
                             "dimension)")
        out[name] = value[None]
    return out


def _run(network, weights, fed: dict, strict: bool):
    """The forward pass from {input name: batch} (``feeds``)."""
    outputs: dict[str, np.ndarray] = {}
    for name, value in fed.items():
        value = np.asarray(value, dtype=np.float32)
        shape = network.layer(name).output_shape
        if value.ndim < 1 or not _fits(value.shape[1:], shape):
            raise NNVisError(f"network {network.name!r}: input batch for {name!r} has shape "
                             f"{value.shape}, expected (N, {', '.join(map(str, shape))})")
        outputs[name] = value
    if len({len(v) for v in outputs.values()}) > 1:
        raise NNVisError(f"network {network.name!r}: the inputs' batches differ in length "
                         f"({', '.join(f'{n}: {len(v)}' for n, v in outputs.items())})")
    return _walk(network, weights, outputs, strict)


def forward_missing(network: Network, weights: dict[str, list[np.ndarray]],
                    known: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(outputs, skipped) as ``forward_batch_partial`` gives them, from outputs already ``known``
    (batches, every layer's in the same order): the layers missing there computed from them — a
    Keras recording holds ``model.layers``' outputs, not those of the model's ops (``x + 3.0``)."""
    return _walk(network, weights, dict(known), strict=False)


def _walk(network, weights, outputs: dict, strict: bool):
    """Every layer not in ``outputs`` (which it fills) computed from its inbound layers'."""
    skipped: dict[str, str] = {}
    cause: dict[str, str] = {}                     # skipped layer -> the layer that could not run
    for layer in network.layers:
        if layer.name in outputs:
            continue
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
