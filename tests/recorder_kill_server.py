"""Fork server for test_recorder_kill.py: imports Keras/TensorFlow once, then forks one recording
training run per request, so each SIGKILL trial costs a fork instead of TF's ~4 s import.

Protocol, one line per message. The server prints "ready", then for each folder read from stdin
forks a child that trains (practically forever) with a Recorder into that folder; the server prints
"pid <pid>" and, once the child is gone, "reaped <pid>". The child prints "fit" just before
``model.fit``, "writing <n>" when the Recorder starts on epoch n (n >= 1) and "epoch <n>" once it
has finished writing it. EOF ends it.
The server itself never runs a TF op: forking a process whose TF runtime has started is unsafe.
"""
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import numpy as np  # noqa: E402

from nnvis_addon.record import Recorder  # noqa: E402

PROBES = 64


def build_model():
    layers = keras.layers
    model = keras.Sequential([keras.Input((16, 16, 1)),
                              layers.Conv2D(16, 3, activation="relu", name="c1"),
                              layers.Conv2D(16, 3, activation="relu", name="c2"),
                              layers.Flatten(name="flat"),
                              layers.Dense(10, activation="softmax", name="out")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data():
    x = np.random.default_rng(0).random((64, 16, 16, 1), dtype=np.float32)
    return x, np.arange(64) % 10


def say(message: str) -> None:
    os.write(1, (message + "\n").encode())      # unbuffered: what was said survives a SIGKILL


class Announce(keras.callbacks.Callback):
    """Listed before the Recorder: says when the Recorder is about to write epoch n."""

    def on_epoch_end(self, epoch, logs=None):
        say(f"writing {epoch + 1}")


class Report(keras.callbacks.Callback):
    """Listed after the Recorder, so it speaks only once the Recorder's write has returned."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 0:
            say("epoch 0")

    def on_epoch_end(self, epoch, logs=None):
        say(f"epoch {epoch + 1}")


def child(folder: str) -> None:
    signal.alarm(120)           # never outlive a test that lost track of us
    x, y = data()
    model = build_model()
    recorder = Recorder(folder, x[:PROBES], labels=y[:PROBES])
    say("fit")
    model.fit(x, y, epochs=100_000, batch_size=64, verbose=0,
              callbacks=[Announce(), recorder, Report()])


def main() -> None:
    say("ready")
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                child(line.strip())
            finally:
                os._exit(0)
        say(f"pid {pid}")
        os.waitpid(pid, 0)
        say(f"reaped {pid}")


if __name__ == "__main__":
    main()
