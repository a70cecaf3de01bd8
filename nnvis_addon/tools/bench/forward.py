"""The forward-pass columns of `nnvis bench import`: nnvis' numpy pass vs TensorFlow, side by side.

Both compute EVERY layer's output for one probe of a keras.applications model (weights=None, random
but non-trivial BatchNorm statistics), in the same process, alternating runs so machine load hits
both alike; each time is the best of ``repeats`` after one warm-up run (TensorFlow traces its graph
then). TensorFlow runs as a tf.function (graph mode, as model.predict does), outputs fetched as
numpy. TensorFlow/Keras are imported here only, lazily: the rest of nnvis never needs them.
"""
from __future__ import annotations

import json
import time

import numpy as np

from ...model.forward import forward_partial
from ...model.keras_config import network_from_config

APPLICATIONS = {"vgg16": "VGG16", "resnet50": "ResNet50", "mobilenetv2": "MobileNetV2",
                "densenet121": "DenseNet121", "efficientnetb0": "EfficientNetB0",
                "mobilenetv3small": "MobileNetV3Small", "inceptionv3": "InceptionV3",
                "efficientnetv2s": "EfficientNetV2S"}


def randomize_batchnorm(model, rng: np.random.Generator) -> None:
    """Give every BatchNormalization layer non-trivial gamma/beta/moving stats (fresh ones are
    1/0/0/1, which would hide a mistake in the inference formula)."""
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            stats = []
            for w in layer.weights:
                low, high = (0.5, 2.0) if "variance" in w.path or "gamma" in w.path else (-0.2, 0.2)
                stats.append(rng.uniform(low, high, w.shape).astype(np.float32))
            layer.set_weights(stats)


def build_application(model_name: str, size: int, classes: int = 1000):
    """keras.applications.<model_name>(weights=None) for size×size×3 inputs, BN stats randomised."""
    import keras
    if model_name.lower() not in APPLICATIONS:
        raise ValueError(f"unknown model {model_name!r} (one of {', '.join(APPLICATIONS)})")
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, APPLICATIONS[model_name.lower()])(
        weights=None, input_shape=(size, size, 3), classes=classes)
    randomize_batchnorm(model, np.random.default_rng(0))
    return model


def measure(model_name: str, size: int, repeats: int = 3) -> dict:
    """{"model", "size", "layers", "forward_s", "tf_forward_s", "ratio", "max_rel_err"}.

    ``model_name`` is one of APPLICATIONS' keys (vgg16, resnet50, mobilenetv2, densenet121);
    ``ratio`` is forward_s / tf_forward_s; ``max_rel_err`` the worst layer's ``relative_error``.
    """
    import keras
    import tensorflow as tf

    model = build_application(model_name, size)
    network = network_from_config(json.loads(model.to_json()), f"keras.applications {model_name}")
    weights = {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
    computed = model.layers[1:]
    every_layer = keras.Model(model.input, [layer.output for layer in computed])
    tf_forward = tf.function(lambda x: every_layer(x, training=False))
    probe = np.random.default_rng(1).uniform(-1, 1, (size, size, 3)).astype(np.float32)
    batch = tf.constant(probe[None])

    def numpy_run():
        outputs, skipped = forward_partial(network, weights, probe)
        if skipped:
            raise RuntimeError(f"{model_name}: nnvis skipped {', '.join(skipped)}")
        return outputs

    def tf_run():
        return [t.numpy() for t in tf_forward(batch)]

    ours, theirs = numpy_run(), tf_run()                       # warm-up (and TF's tracing)
    ours_s, tf_s = [], []
    for _ in range(repeats):
        ours_s.append(_seconds(numpy_run))
        tf_s.append(_seconds(tf_run))
    err = max(relative_error(ours[layer.name], want[0]) for layer, want in zip(computed, theirs))
    return {"model": model_name, "size": size, "layers": len(network.layers),
            "forward_s": min(ours_s), "tf_forward_s": min(tf_s),
            "ratio": min(ours_s) / min(tf_s), "max_rel_err": err}


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| over max |want|: the ≤ 1e-4 float32 yardstick of one layer's output."""
    scale = float(np.abs(want).max())
    diff = float(np.abs(np.asarray(got, np.float64) - want).max())
    return diff / scale if scale else diff


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
