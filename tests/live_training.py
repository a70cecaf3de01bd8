"""Subprocess for test_live.py: a tiny Keras training on real digits with the Recorder, paced by
the test: after the Recorder has written epoch n the run prints "epoch n" and waits for a line on
stdin before training on, so the test sees a recording that grows while the training is alive.

usage: live_training.py FOLDER EPOCHS [DIE_AT]. With DIE_AT > 0 the writer SIGKILLs itself
halfway through writing epoch DIE_AT (after two of its files), as a crash or Ctrl-\\ would, leaving
that epoch half written.
"""
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from nnvis_addon.io import recording  # noqa: E402
from nnvis_addon.record import Recorder  # noqa: E402


def say(message: str) -> None:
    os.write(1, (message + "\n").encode())


class Pace(keras.callbacks.Callback):
    """Listed after the Recorder: speaks once an epoch is written, then waits for the test."""

    def on_epoch_end(self, epoch, logs=None):
        say(f"epoch {epoch + 1}")
        sys.stdin.readline()


def die_while_writing(epoch: int) -> None:
    """SIGKILL this process after two .npy files of `epoch` are on disk."""
    save, written = recording._save_npy, []

    def save_then_maybe_die(path, array):
        save(path, array)
        if recording.epoch_dir_name(epoch) in path:
            written.append(path)
            if len(written) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
    recording._save_npy = save_then_maybe_die


def main(folder: str, epochs: int, die_at: int = 0) -> None:
    if die_at:
        die_while_writing(die_at)
    keras.utils.set_random_seed(0)
    digits = load_digits()
    x = (digits.images[..., None] / 16.0).astype("float32")[:300]
    y = digits.target[:300]
    layers = keras.layers
    model = keras.Sequential([keras.Input((8, 8, 1)),
                              layers.Conv2D(4, 3, activation="relu", name="conv"),
                              layers.MaxPooling2D(2, name="pool"),
                              layers.Flatten(name="flat"),
                              layers.Dense(10, activation="softmax", name="digit")],
                             name="live_cnn")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    recorder = Recorder(folder, x[:4], labels=y[:4], class_names=[str(d) for d in range(10)])
    say("fit")
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0, callbacks=[recorder, Pace()])
    say("done")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0)
