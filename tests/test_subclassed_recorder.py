"""The Keras Recorder on a subclassed keras.Model: a small CNN (a Sequential stem, nested
Conv2D+BN blocks in a list, one with a ``tf.nn.relu`` in its own call(), one ReLU layer called
twice, a residual ``+`` and a ``* 0.5`` in call()) never built before ``fit``, trained 2 epochs.
Every recorded layer at every epoch equals that sublayer's output computed by Keras for the probes
(the oracle calls the sublayers by hand, as call() does); the recording imports through
``load_run`` and ``build_scene`` with every layer drawn."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
from keras import layers  # noqa: E402

from nnvis_addon import load_run  # noqa: E402
from nnvis_addon.errors import NNVisError  # noqa: E402
from nnvis_addon.record import Recorder  # noqa: E402

TIER = "oracle"

RTOL = 1e-4


class ConvBN(layers.Layer):
    """A block of its own: its two layers are recorded, not the block."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(filters, 3, padding="same")
        self.bn = layers.BatchNormalization()

    def call(self, x, training=False):
        return self.bn(self.conv(x), training=training)


class ConvBNReLU(ConvBN):
    """A block with code of its own: its tf.nn.relu is recorded as blocks.1.call."""

    def call(self, x, training=False):
        return tf.nn.relu(super().call(x, training=training))


class ResNetish(keras.Model):
    def __init__(self):
        super().__init__()
        self.stem = keras.Sequential([layers.Conv2D(4, 3, padding="same"), layers.ReLU()])
        self.blocks = [ConvBN(4), ConvBNReLU(4)]
        self.act = layers.ReLU()                # called twice
        self.pool = layers.GlobalAveragePooling2D()
        self.fc = layers.Dense(3, activation="softmax")

    def call(self, x, training=False):
        x = self.stem(x, training=training)
        x = self.act(self.blocks[0](x, training=training) + x)
        x = self.act(self.blocks[1](x, training=training) * 0.5)
        return self.fc(self.pool(x))


def by_hand(model, x) -> dict[str, np.ndarray]:
    """Every sublayer's output for `x` in inference mode, by recorded name, computed by calling
    the sublayers as ResNetish.call does."""
    out = {"input": x}
    out["stem.0"] = model.stem.layers[0](x)
    out["stem.1"] = model.stem.layers[1](out["stem.0"])
    b0, b1 = model.blocks
    out["blocks.0.conv"] = b0.conv(out["stem.1"])
    out["blocks.0.bn"] = b0.bn(out["blocks.0.conv"], training=False)
    out["call"] = out["blocks.0.bn"] + out["stem.1"]
    out["act"] = model.act(out["call"])
    out["blocks.1.conv"] = b1.conv(out["act"])
    out["blocks.1.bn"] = b1.bn(out["blocks.1.conv"], training=False)
    out["blocks.1.call"] = tf.nn.relu(out["blocks.1.bn"])
    out["call:1"] = out["blocks.1.call"] * 0.5
    out["act@1"] = model.act(out["call:1"])
    out["pool"] = model.pool(out["act@1"])
    out["fc"] = model.fc(out["pool"])
    return {k: np.asarray(v) for k, v in out.items()}


class Oracle(keras.callbacks.Callback):
    """By-hand outputs before training and after each epoch (listed after the Recorder)."""

    def __init__(self, probes):
        super().__init__()
        self.probes, self.outputs = probes, {}

    def on_epoch_begin(self, epoch, logs=None):
        if not self.outputs:
            self.outputs[epoch] = by_hand(self.model, self.probes)

    def on_epoch_end(self, epoch, logs=None):
        self.outputs[epoch + 1] = by_hand(self.model, self.probes)


LAYERS = {"input": "InputLayer", "stem.0": "Conv2D", "stem.1": "ReLU", "blocks.0.conv": "Conv2D",
          "blocks.0.bn": "BatchNormalization", "call": "ResNetish.call", "act": "ReLU",
          "blocks.1.conv": "Conv2D", "blocks.1.bn": "BatchNormalization",
          "blocks.1.call": "ConvBNReLU.call", "call:1": "ResNetish.call", "act@1": "ReLU",
          "pool": "GlobalAveragePooling2D", "fc": "Dense"}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = ResNetish()                     # never built or called before fit
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (48, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 48)
    probes = x[:5]
    oracle = Oracle(probes)
    folder = tmp_path_factory.mktemp("subclassed") / "run"
    model.fit(x, y, epochs=2, batch_size=16, verbose=0,
              callbacks=[Recorder(folder, probes, labels=y[:5]), oracle])
    return folder, model, oracle.outputs, probes


def test_every_sublayer_equals_keras_at_every_epoch(recorded):
    folder, model, oracle, probes = recorded
    run = load_run(folder)
    assert run.epochs == [0, 1, 2] and not run.warnings
    assert {l.name: l.kind for l in run.layers} == LAYERS
    inbound = {l.name: l.inbound for l in run.layers}
    assert sorted(inbound["call"]) == ["blocks.0.bn", "stem.1"]    # the residual +, by the tape
    assert inbound["blocks.1.call"] == ["blocks.1.bn"] and inbound["act@1"] == ["call:1"]
    assert inbound["call:1"] == ["blocks.1.call"]       # not blocks.1.bn again, through it
    assert inbound["blocks.1.conv"] == ["act"]
    for epoch in run.epochs:
        for name in LAYERS:
            for p in range(len(probes)):
                run.probe_index = p
                np.testing.assert_allclose(run.activations(name, epoch), oracle[epoch][name][p],
                                           rtol=RTOL, atol=1e-6, err_msg=f"{name} epoch {epoch}")
        np.testing.assert_allclose(run.predictions(epoch), oracle[epoch]["fc"], rtol=RTOL,
                                   atol=1e-6)
    assert not np.allclose(oracle[0]["fc"], oracle[2]["fc"])      # training moved the numbers
    for got, want in zip(run.weights("blocks.1.bn", 2), model.blocks[1].bn.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert run.weights("act@1", 2) == []


def test_a_fresh_probe_is_computed_up_to_the_code_nnvis_cannot_run(recorded):
    """nnvis computes the Keras layers for a probe of its own; a tensor made by call() code is
    not guessed: it and what it feeds get no activations, each named in the warnings."""
    folder, _, oracle, probes = recorded
    run = load_run(folder, probe=probes[3])
    for name in ("stem.0", "stem.1", "blocks.0.conv", "blocks.0.bn"):
        np.testing.assert_allclose(run.activations(name, 2), oracle[2][name][3], rtol=RTOL,
                                   atol=1e-6, err_msg=name)
    assert not any(run.has_activations(n) for n in ("call", "act", "call:1", "fc"))
    assert any("'call'" in w for w in run.warnings)


def test_recording_draws_every_layer(recorded, empty_scene):
    from nnvis_addon.scene import build_scene
    run = load_run(recorded[0])
    collection = build_scene(run, scene=empty_scene)
    drawn = {obj.get("nnvis_layer") for obj in collection.all_objects}
    assert set(LAYERS) <= drawn


def test_subclassed_keras_file_points_to_the_recorder(recorded, tmp_path):
    folder, model, _, _ = recorded
    model.save(tmp_path / "sub.keras")
    with pytest.raises(NNVisError, match=r"sub\.keras.*subclassed.*Recorder\(folder, probes\)"):
        load_run(tmp_path / "sub.keras")
    arch = json.loads((folder / "architecture.json").read_text())
    assert arch["class_name"] == "Functional"


def test_probes_the_model_cannot_take_are_refused_before_writing(tmp_path):
    """A model already called (so built) on 1-channel images: 3-channel probes are refused before
    any training or writing. (A model never built is built by the Recorder from the probes.)"""
    model = ResNetish()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = np.zeros((8, 8, 8, 1), "float32"), np.zeros(8, "int64")
    model(x[:1])
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(NNVisError, match=r"subclassed model .* fails on probes of shape "
                                         r"\(8, 8, 3\)"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[Recorder(tmp_path / "rec", np.zeros((2, 8, 8, 3), "float32"))])
    assert not (tmp_path / "rec").exists()
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)


class Branchy(keras.Model):
    """Runs `extra` only on batches holding a bright pixel: the layers depend on the input."""

    def __init__(self):
        super().__init__()
        self.extra = layers.Conv2D(1, 1)
        self.pool = layers.GlobalAveragePooling2D()
        self.fc = layers.Dense(2)

    def call(self, x):
        if tf.reduce_max(x) > 0.5:
            x = self.extra(x)
        return self.fc(self.pool(x))


def test_a_call_that_runs_other_layers_for_other_probes_is_refused(tmp_path):
    model = Branchy()
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    probes = np.zeros((3, 4, 4, 1), "float32")
    probes[1:] = 1.0            # the first probe (the traced one) has none
    with pytest.raises(NNVisError, match="called its layers in another order"):
        model.fit(probes, np.zeros((3, 2), "float32"), epochs=1, verbose=0,
                  callbacks=[Recorder(tmp_path / "rec", probes)])


@keras.saving.register_keras_serializable("nnvis_test")
class Small(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(3, 3)
        self.pool = layers.GlobalAveragePooling2D()
        self.fc = layers.Dense(2)

    def call(self, x):
        return self.fc(self.pool(self.conv(x) * 2.0))


def test_checkpoints_of_a_subclassed_model_become_a_recording(tmp_path):
    """Per-epoch weights a subclassed model already saved: record_checkpoints turns them into a
    recording (in a Python that can build the model's class), equal to Keras layer by layer."""
    from nnvis_addon.record import record_checkpoints
    keras.utils.set_random_seed(1)
    model = Small()
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(1).uniform(0, 1, (16, 6, 6, 1)).astype("float32")
    model.fit(x, np.ones((16, 2), "float32"), epochs=2, verbose=0, callbacks=[
        keras.callbacks.ModelCheckpoint(str(tmp_path / "e{epoch:02d}.weights.h5"),
                                        save_weights_only=True)])
    model.save(tmp_path / "model.keras")
    record_checkpoints(tmp_path / "model.keras", [(e, tmp_path / f"e0{e}.weights.h5")
                                                  for e in (1, 2)], x[:2], tmp_path / "rec")
    run = load_run(tmp_path / "rec")
    assert [(l.name, l.kind) for l in run.layers] == [
        ("input", "InputLayer"), ("conv", "Conv2D"), ("call", "Small.call"),
        ("pool", "GlobalAveragePooling2D"), ("fc", "Dense")]
    conv = model.conv(x[:2])
    want = {"conv": conv, "call": conv * 2.0, "pool": model.pool(conv * 2.0)}
    want["fc"] = model.fc(want["pool"])
    for name, value in want.items():
        run.probe_index = 1
        np.testing.assert_allclose(run.activations(name, 2), np.asarray(value)[1], rtol=RTOL,
                                   atol=1e-6, err_msg=name)
