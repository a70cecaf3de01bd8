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


def keras_activations(model, probe: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output for one probe (batch dim dropped), InputLayer included."""
    import keras
    layers = [layer for layer in model.layers]
    extractor = keras.Model(model.inputs, [layer.output for layer in layers])
    outputs = extractor(probe[None])
    acts = {layer.name: np.asarray(out)[0] for layer, out in zip(layers, outputs)}
    acts[model.inputs[0].name.split(":")[0]] = probe
    return acts
