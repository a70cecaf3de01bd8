"""The demo's training run: a small CNN on scikit-learn's embedded 8×8 digits, one checkpoint per epoch.

TensorFlow and scikit-learn are imported here only (never inside Blender). Writes into `out`:
`recording/` (the `Recorder`'s crash-safe recording: weights, activations and predictions for 8
held-out digits, and the training metrics, every epoch), `model.keras` (architecture + final
weights), `epoch_00.weights.h5` (untrained) … `epoch_NN.weights.h5` (ModelCheckpoint), and
`probe.npy` (a held-out digit the importer picks up for the checkpoint folder).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..model.kernels import resize_bilinear


def digits(size: int = 32):
    """(images (N, size, size, 1) float32 in [0, 1], labels (N,)) from sklearn's bundled digits."""
    from sklearn.datasets import load_digits
    data = load_digits()
    images = data.images.astype(np.float32) / 16.0
    big = np.stack([resize_bilinear(im[..., None], size, size) for im in images])
    return big.astype(np.float32), data.target.astype(np.int64)


def build_model(size: int = 32, seed: int = 0):
    import keras
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    return keras.Sequential([
        keras.Input((size, size, 1), name="digit"),
        layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
        layers.MaxPooling2D(2, name="pool2"),
        layers.Flatten(name="flatten"),
        layers.Dense(32, activation="relu", name="dense"),
        layers.Dense(10, activation="softmax", name="classes"),
    ], name="digits_cnn")


def train_digits(out, epochs: int = 10, size: int = 32, samples: int | None = None, seed: int = 0,
                 verbose: int = 0):
    """Train and write per-epoch checkpoints into `out`; returns the Keras History."""
    import keras
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    x, y = digits(size)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    probes, labels, x, y = x[:8], y[:8], x[8:], y[8:]
    if samples:
        x, y = x[:samples], y[:samples]
    model = build_model(size, seed)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.save_weights(out / "epoch_00.weights.h5")
    np.save(out / "probe.npy", probes[0])
    save = keras.callbacks.ModelCheckpoint(str(out / "epoch_{epoch:02d}.weights.h5"),
                                           save_weights_only=True)
    from ..record import Recorder
    recorder = Recorder(out / "recording", probes, labels=labels,
                        class_names=[str(d) for d in range(10)])
    history = model.fit(x, y, epochs=epochs, batch_size=64, validation_split=0.1,
                        callbacks=[save, recorder], verbose=verbose)
    model.save(out / "model.keras")
    return history
