"""TensorFlow as the oracle: what Keras itself says a checkpoint's weights and activations are."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def keras_model(architecture: Path, weights: Path | None = None):
    import keras
    model = keras.models.load_model(architecture, compile=False)
    if weights is not None:
        model.load_weights(weights)
    return model


def keras_activations(model, probe) -> dict[str, np.ndarray]:
    """Every layer's output for one probe (batch dim dropped), InputLayer included; a multi-input
    model takes a list of probes in `model.inputs` order."""
    import keras
    probes = list(probe) if isinstance(probe, (list, tuple)) else [probe]
    layers = [layer for layer in model.layers]
    extractor = keras.Model(model.inputs, [layer.output for layer in layers])
    outputs = extractor([p[None] for p in probes] if len(probes) > 1 else probes[0][None],
                        training=False)
    acts = {layer.name: np.asarray(out)[0] for layer, out in zip(layers, outputs)}
    acts.update((t.name.split(":")[0], p) for t, p in zip(model.inputs, probes))
    return acts
