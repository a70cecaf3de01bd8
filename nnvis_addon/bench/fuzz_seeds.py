"""Seed files for the reader fuzzer, written by TensorFlow/Keras itself (imported here only).

One small CNN (Conv2D, BatchNormalization, pooling, Dense: every kind of variable the readers map)
trained for two epochs on scikit-learn's digits, saved every way nnvis reads:

    keras/model.keras               model.save
    h5/model.weights.h5, model.json model.save_weights + model.to_json (the network it is read for)
    tf2/ckpt-1.index, .data-*, model.json   tf.train.CheckpointManager with the optimizer
    recording/...                   the Recorder callback (three epochs, two probes)

Small on purpose: every fuzz input is a variant of these, and ten thousand are read per format.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _model():
    import keras
    layers = keras.layers
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1), name="digit"),
        layers.Conv2D(4, 3, activation="relu", name="conv"),
        layers.BatchNormalization(name="bn"),
        layers.MaxPooling2D(2, name="pool"),
        layers.Flatten(name="flat"),
        layers.Dense(10, activation="softmax", name="classes"),
    ], name="fuzz_cnn")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def make_seeds(folder) -> Path:
    """Write the seed files into `folder` (created); returns it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from sklearn.datasets import load_digits

    from ..record import Recorder

    folder = Path(folder)
    for sub in ("keras", "h5", "tf2"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    x = (digits.images[:128, :, :, None] / 16.0).astype(np.float32)
    y = digits.target[:128].astype(np.int64)
    model = _model()
    recorder = Recorder(folder / "recording", x[:2], labels=y[:2],
                        class_names=[str(d) for d in range(10)])
    model.fit(x, y, epochs=2, batch_size=64, verbose=0, callbacks=[recorder])
    model.save(folder / "keras" / "model.keras")
    model.save_weights(folder / "h5" / "model.weights.h5")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    tf.train.CheckpointManager(checkpoint, str(folder / "tf2"), max_to_keep=1).save()
    for sub in ("h5", "tf2"):
        (folder / sub / "model.json").write_text(model.to_json())
    return folder


if __name__ == "__main__":      # python -m nnvis_addon.bench.fuzz_seeds FOLDER (the bench's child)
    import sys
    make_seeds(sys.argv[1])
