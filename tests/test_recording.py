"""The recording format (io/recording.py) and the Keras Recorder / record_checkpoints that write it.

TensorFlow is the oracle: an independent callback captures the weights at each epoch, and per-layer
``keras.Model(inputs, layer.output)`` models recompute every recorded activation from them.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from nnvis_addon.errors import NNVisError
from nnvis_addon.io.recording import RecordingWriter, read_recording

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
from sklearn.datasets import load_digits  # noqa: E402

from nnvis_addon.record import Recorder, record_checkpoints  # noqa: E402
from nnvis_addon.record import recorder as recorder_module  # noqa: E402

TIER = "oracle"

ODD_NAME = "conv.1>a"   # a '>' can't be in a Windows file name (TF names allow [A-Za-z0-9_.>-])


def digits(n=256):
    d = load_digits()
    x = d.images[:n].repeat(2, axis=1).repeat(2, axis=2)[..., None].astype("float32") / 16.0
    return x, d.target[:n].astype("int64")


def compile_(model):
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def sequential_cnn(with_input=True):
    layers = keras.layers
    stack = [layers.Conv2D(4, 3, activation="relu", name=ODD_NAME),
             layers.MaxPooling2D(2, name="pool"),
             layers.Conv2D(6, 3, activation="relu", name="conv2"),
             layers.Flatten(name="flat"), layers.Dense(10, activation="softmax", name="dense")]
    return compile_(keras.Sequential(([keras.Input((16, 16, 1))] if with_input else []) + stack))


def functional_cnn():
    layers = keras.layers
    inp = keras.Input((16, 16, 1), name="pixels")
    left = layers.Conv2D(4, 3, padding="same", activation="relu", name="left")(inp)
    right = layers.Conv2D(3, 5, padding="same", activation="tanh", name="right")(inp)
    joined = layers.Concatenate(name="join")([left, right])
    pooled = layers.GlobalAveragePooling2D(name="gap")(joined)
    return compile_(keras.Model(inp, layers.Dense(10, activation="softmax", name="out")(pooled)))


class Capture(keras.callbacks.Callback):
    """The oracle's copy of the weights before training and after each epoch (+ .weights.h5)."""

    def __init__(self, folder=None):
        super().__init__()
        self.weights, self.folder = {}, folder

    def on_epoch_begin(self, epoch, logs=None):
        if not self.weights:
            self._keep(epoch)

    def on_epoch_end(self, epoch, logs=None):
        self._keep(epoch + 1)

    def _keep(self, epoch):
        self.weights[epoch] = [w.copy() for w in self.model.get_weights()]
        if self.folder is not None:
            self.model.save_weights(os.path.join(self.folder, f"e{epoch}.weights.h5"))


def fit(model, path, epochs, every=1, folder=None, **recorder_kwargs):
    x, y = digits()
    capture = Capture(folder)
    recorder = Recorder(path, x[:10], labels=y[:10], every=every, **recorder_kwargs)
    history = model.fit(x, y, epochs=epochs, batch_size=64, validation_split=0.25, verbose=0,
                        callbacks=[capture, recorder])
    return history, capture, x[:10], y[:10]


def assert_matches_oracle(model, rec, captured, probes):
    """Every recorded epoch's weights equal the captured ones, and its activations/predictions equal
    per-layer keras.Model(inputs, layer.output) outputs of a fresh clone holding those weights."""
    clone = keras.models.clone_model(model)
    per_layer = {layer.name: keras.Model(clone.inputs[0], layer.output) for layer in clone.layers}
    for epoch in rec.epochs:
        recorded = [w for name in rec.layer_names for w in rec.weights(epoch)[name]]
        assert len(recorded) == len(captured[epoch])
        for got, want in zip(recorded, captured[epoch]):
            np.testing.assert_array_equal(got, want)
        clone.set_weights(captured[epoch])
        acts = rec.activations(epoch)
        for name, oracle in per_layer.items():
            np.testing.assert_allclose(acts[name], oracle(probes), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rec.predictions(epoch), clone(probes), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def sequential_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("seq")
    model = sequential_cnn()
    history, capture, probes, labels = fit(model, root / "rec", 3, folder=str(root),
                                           class_names=[f"digit {i}" for i in range(10)])
    model.save(root / "final.keras")
    with open(root / "arch.json", "w") as f:
        f.write(model.to_json())
    return SimpleNamespace(root=root, path=root / "rec", model=model, history=history,
                           capture=capture, probes=probes, labels=labels)


def test_sequential_recording_matches_tensorflow(sequential_run):
    run = sequential_run
    rec = read_recording(run.path)
    assert rec.epochs == [0, 1, 2, 3] and rec.warnings == []
    assert rec.layer_names == [layer.name for layer in run.model.layers]
    assert ODD_NAME in rec.layer_names
    assert rec.architecture == json.loads(run.model.to_json())
    np.testing.assert_array_equal(rec.probes, run.probes)
    np.testing.assert_array_equal(rec.labels, run.labels)
    assert rec.class_names == [f"digit {i}" for i in range(10)]
    assert_matches_oracle(run.model, rec, run.capture.weights, run.probes)
    # the weights really moved, so matching every epoch is not matching one state four times
    assert not np.allclose(rec.weights(0)["dense"][0], rec.weights(3)["dense"][0])


def test_metrics_equal_history(sequential_run):
    rec = read_recording(sequential_run.path)
    history = sequential_run.history.history
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert sorted(rec.metrics) == [0, 1, 2, 3]
    assert rec.metrics[0] == pytest.approx({"learning_rate": 0.01})
    for epoch in (1, 2, 3):
        want = {key: values[epoch - 1] for key, values in history.items()}
        assert rec.metrics[epoch] == pytest.approx({**want, "learning_rate": 0.01}, rel=1e-6)


def test_functional_model_every_2_keeps_last_epoch(tmp_path):
    model = functional_cnn()
    history, capture, probes, _ = fit(model, tmp_path / "rec", 3, every=2)
    rec = read_recording(tmp_path / "rec")
    assert rec.epochs == [0, 2, 3]
    assert sorted(rec.metrics) == [0, 1, 2, 3]          # logs of every epoch, snapshots of some
    assert rec.metrics[1]["loss"] == pytest.approx(history.history["loss"][0])
    assert rec.layer_names == ["pixels", "left", "right", "join", "gap", "out"]
    np.testing.assert_array_equal(rec.activations(3)["pixels"], probes)
    assert rec.weights(2)["join"] == []
    assert_matches_oracle(model, rec, capture.weights, probes)


def test_sequential_without_input_layer(tmp_path):
    model = sequential_cnn(with_input=False)
    model.build((None, 16, 16, 1))      # what keras.Input would have done
    _, capture, probes, _ = fit(model, tmp_path / "rec", 1)
    rec = read_recording(tmp_path / "rec")
    assert rec.epochs == [0, 1]
    np.testing.assert_allclose(rec.predictions(1), model(probes), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(rec.activations(1)["dense"], rec.predictions(1))
    assert rec.activations(0)[ODD_NAME].shape == (10, 14, 14, 4)
    np.testing.assert_array_equal(rec.weights(0)["dense"][1], capture.weights[0][-1])


@pytest.mark.parametrize("with_input, probe_shape, match", [
    (True, (4, 8, 8, 1), r"\(4, 8, 8, 1\).*expects input shape \(None, 16, 16, 1\)"),
    (True, (4, 16, 16), r"\(4, 16, 16\).*\(None, 16, 16, 1\)"),
    (False, (4, 16, 16, 1), r"no defined input shape to check the probes \(4, 16, 16, 1\)"),
])
def test_bad_probes_refused_before_training(tmp_path, with_input, probe_shape, match):
    model = sequential_cnn(with_input)
    x, y = digits(64)
    before = [w.copy() for w in model.get_weights()]
    recorder = Recorder(tmp_path / "rec", np.zeros(probe_shape, "float32"))
    with pytest.raises(NNVisError, match=match):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[recorder])
    assert not (tmp_path / "rec").exists()
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)


def test_recorder_refuses_bad_arguments(tmp_path):
    probes = np.zeros((3, 16, 16, 1), "float32")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("mine")
    with pytest.raises(NNVisError, match="full.*not an empty folder"):
        Recorder(tmp_path / "full", probes)
    with pytest.raises(NNVisError, match="3 probes but labels"):
        Recorder(tmp_path / "a", probes, labels=[1, 2])
    with pytest.raises(NNVisError, match="every"):
        Recorder(tmp_path / "a", probes, every=0)
    model = sequential_cnn()
    with pytest.raises(NNVisError, match="2 class names but model .* outputs 10"):
        model.fit(*digits(64), epochs=1, verbose=0,
                  callbacks=[Recorder(tmp_path / "b", probes, class_names=["a", "b"])])


def test_only_the_chief_writes(tmp_path, monkeypatch):
    import tensorflow as tf
    x, y = digits(64)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        model = sequential_cnn()
    assert recorder_module.is_chief(model)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[Recorder(tmp_path / "chief", x[:4])])
    assert read_recording(tmp_path / "chief").epochs == [0, 1]

    worker = SimpleNamespace(distribute_strategy=SimpleNamespace(
        extended=SimpleNamespace(should_checkpoint=False)))
    assert recorder_module.is_chief(worker) is False
    monkeypatch.setattr(recorder_module, "is_chief", lambda model: False)
    history = model.fit(x, y, epochs=2, verbose=0,
                        callbacks=[Recorder(tmp_path / "worker", x[:4])])
    assert len(history.history["loss"]) == 2 and not (tmp_path / "worker").exists()


def test_record_checkpoints_equals_recorder(sequential_run, tmp_path):
    run = sequential_run
    files = [(e, run.root / f"e{e}.weights.h5") for e in (3, 0, 2)]
    rec = record_checkpoints(run.root / "arch.json", files, run.probes, tmp_path / "a",
                             labels=run.labels)
    live = read_recording(run.path)
    assert rec.epochs == [0, 2, 3] and rec.metrics == {}
    for epoch in rec.epochs:
        for name in live.layer_names:
            np.testing.assert_allclose(rec.activations(epoch)[name], live.activations(epoch)[name],
                                       rtol=1e-5, atol=1e-6)
            for got, want in zip(rec.weights(epoch)[name], live.weights(epoch)[name]):
                np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(rec.predictions(epoch), live.predictions(epoch), rtol=1e-5)
    from_keras = record_checkpoints(run.root / "final.keras", [(7, run.root / "final.keras")],
                                    run.probes, tmp_path / "b")
    np.testing.assert_allclose(from_keras.predictions(7), live.predictions(3), rtol=1e-5)
    with pytest.raises(NNVisError, match="e9.weights.h5"):
        record_checkpoints(run.root / "arch.json", [(9, run.root / "e9.weights.h5")],
                           run.probes, tmp_path / "c")


# ------------------------------------------------------------------ bad recordings (numpy only)

def damaged_copy(src, dst, damage):
    shutil.copytree(src, dst)
    for rel, how in damage.items():
        path = os.path.join(dst, "epochs", rel)
        if how == "delete":
            os.remove(path)
        elif how == "garble":
            with open(path, "wb") as f:
                f.write(b"\x93NUMPY garbage " * 5)
        elif how == "truncate":
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) - 4)
        elif how == "reshape":
            np.save(path, np.zeros((2, 2), "float32"))
    return dst


def test_damaged_epochs_are_left_out_and_named(sequential_run, tmp_path):
    good = read_recording(sequential_run.path)
    rec = read_recording(damaged_copy(sequential_run.path, tmp_path / "r", {
        "epoch_000001/predictions.npy": "delete",
        "epoch_000002/layer_0001_act.npy": "garble",
        "epoch_000003/layer_0004_w0.npy": "truncate",
    }))
    assert rec.epochs == [0]
    assert len(rec.warnings) == 3
    for epoch, what in [(1, "predictions"), (2, "'pool' activations"),
                        (3, "'dense' weight 0")]:
        [line] = [w for w in rec.warnings if f"epoch {epoch} " in w]
        assert what in line and str(tmp_path / "r") in line
    np.testing.assert_array_equal(rec.activations(0)["dense"], good.activations(0)["dense"])
    with pytest.raises(NNVisError, match="epoch 2 is not in the recording"):
        rec.weights(2)

    rec = read_recording(damaged_copy(sequential_run.path, tmp_path / "s",
                                      {"epoch_000002/layer_0000_w1.npy": "reshape"}))
    assert rec.epochs == [0, 1, 3]
    assert "holds float32 (2, 2), expected float32 (4,)" in rec.warnings[0]


def test_no_usable_epoch_names_the_path(sequential_run, tmp_path):
    damage = {f"epoch_{e:06d}/predictions.npy": "delete" for e in range(4)}
    path = damaged_copy(sequential_run.path, tmp_path / "r", damage)
    match = re.escape(str(path)) + ".*no usable epoch.*epoch 3 left out"
    with pytest.raises(NNVisError, match=match):
        read_recording(path)


def test_newer_format_version_refused(sequential_run, tmp_path):
    path = tmp_path / "r"
    shutil.copytree(sequential_run.path, path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 2
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(NNVisError, match="format_version 2 is newer than this nnvis reads"):
        read_recording(path)


def test_not_a_recording(tmp_path):
    with pytest.raises(NNVisError, match=re.escape(f"{tmp_path}: not an nnvis recording")):
        read_recording(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "something else"}')
    with pytest.raises(NNVisError, match="not an nnvis recording manifest"):
        read_recording(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "nnvis-recording", "format_ver')
    with pytest.raises(NNVisError, match="manifest.json: cannot read"):
        read_recording(tmp_path)


def test_writer_round_trip_and_refusals(tmp_path):
    probes = np.arange(12, dtype="float32").reshape(3, 2, 2)
    arch = {"class_name": "Sequential", "config": {"name": "m"}}
    w = RecordingWriter(tmp_path / "r", arch, ["in/put ☃", "dense"], probes, labels=[2, 0, 1])
    with pytest.raises(NNVisError, match="no usable epoch"):
        read_recording(tmp_path / "r")      # a run killed before its first epoch finished
    kernel = np.ones((4, 2), "float32")
    acts = {"in/put ☃": probes, "dense": np.zeros((3, 2))}
    w.write_epoch(0, {"dense": [kernel, np.zeros(2, "float32")]}, acts, np.full((3, 2), 0.5),
                  {"loss": 1.5})
    with pytest.raises(NNVisError, match="layer 'dense' weights .* differs"):
        w.write_epoch(1, {"dense": [np.ones((5, 2), "float32")]}, acts, np.zeros((3, 2)))
    with pytest.raises(NNVisError, match="epoch 0 is negative or already recorded"):
        w.write_epoch(0, {}, acts, np.zeros((3, 2)))
    with pytest.raises(NNVisError, match="activations must cover exactly"):
        w.write_epoch(1, {}, {"dense": np.zeros((3, 2))}, np.zeros((3, 2)))
    w.write_metrics(1, {"loss": float("nan")})
    with pytest.raises(NNVisError, match="not an empty folder"):
        RecordingWriter(tmp_path / "r", arch, ["x"], probes)

    rec = read_recording(tmp_path / "r")
    assert rec.epochs == [0] and rec.architecture == arch
    assert rec.layer_names == ["in/put ☃", "dense"]
    assert rec.weights(0)["in/put ☃"] == []
    np.testing.assert_array_equal(rec.weights(0)["dense"][0], kernel)
    np.testing.assert_array_equal(rec.activations(0)["in/put ☃"], probes)
    assert rec.activations(0)["dense"].dtype == np.float32
    np.testing.assert_array_equal(rec.labels, [2, 0, 1])
    assert rec.metrics[0] == {"loss": 1.5} and np.isnan(rec.metrics[1]["loss"])
    assert sorted(os.listdir(tmp_path / "r" / "epochs")) == ["epoch_000000"]


def test_import_does_not_load_tensorflow():
    code = ("import sys, nnvis_addon, nnvis_addon.record, nnvis_addon.io.recording; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]; "
            "assert not bad, bad")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=120,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_nested_model_records_its_inner_layers(tmp_path):
    """Transfer learning (a MobileNetV2 backbone inside a Sequential): the recording holds every
    backbone layer under its own name, as the flattened network draws it, with TensorFlow's
    weights and activations (the backbone's layers run on what the outer graph feeds it)."""
    from nnvis_addon.run import load_run
    base = keras.applications.MobileNetV2(include_top=False, weights=None,
                                          input_shape=(32, 32, 3))
    model = keras.Sequential([keras.Input((32, 32, 3)), base,
                              keras.layers.GlobalAveragePooling2D(name="gap"),
                              keras.layers.Dense(10, activation="softmax", name="out")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (16, 32, 32, 3)).astype("float32"), rng.integers(0, 10, 16)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0,
              callbacks=[Recorder(tmp_path / "rec", x[:2])])
    run = load_run(tmp_path / "rec")
    assert not run.warnings
    inner = [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert [layer.name for layer in run.layers[1:]] == [l.name for l in inner] + ["gap", "out"]
    oracle = keras.Model(base.inputs, [layer.output for layer in inner])(x[:2], training=False)
    want = dict(zip([layer.name for layer in inner], oracle))
    want["gap"] = model.layers[1](want[inner[-1].name])
    want["out"] = model.layers[2](want["gap"])
    for name, value in want.items():
        for k in range(2):
            run.probe_index = k
            np.testing.assert_allclose(run.activations(name, 1), np.asarray(value)[k],
                                       rtol=1e-5, atol=1e-5, err_msg=name)
    for layer in inner + model.layers[1:]:
        for got, w in zip(run.weights(layer.name, 1), layer.get_weights()):
            np.testing.assert_array_equal(got, w)
