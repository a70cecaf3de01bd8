"""load_run on real TensorFlow-written checkpoints: epochs, weights and activations equal Keras'."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from nnvis_addon import NNVisError, load_run
from nnvis_addon.io.discover import epoch_number
from tf_oracle import keras_activations, keras_model

TIER = "fast"


def test_folder_of_weights_h5_has_every_epoch_with_keras_values(digits_run):
    folder, _ = digits_run
    run = load_run(folder)
    assert run.epochs == [0, 1, 2, 3]
    assert [l.name for l in run.layers] == ["digit", "conv1", "pool1", "conv2", "pool2", "flatten",
                                            "dense", "classes"]
    assert run.network.layer("conv2").output_shape == (16, 16, 16)
    probe = np.load(folder / "probe.npy")
    np.testing.assert_array_equal(run.probe, probe)
    for epoch in run.epochs:
        model = keras_model(folder / "model.keras", folder / f"epoch_{epoch:02d}.weights.h5")
        expected = keras_activations(model, probe)
        for layer in model.layers:
            for mine, theirs in zip(run.weights(layer.name, epoch), layer.get_weights()):
                np.testing.assert_array_equal(mine, theirs)
        for name, value in expected.items():
            np.testing.assert_allclose(run.activations(name, epoch), value, rtol=1e-4,
                                       atol=1e-5 * max(1.0, float(np.abs(value).max())))
    # training changed something: first and last epoch differ
    assert not np.allclose(run.activations("classes", 0), run.activations("classes", 3))


def test_single_keras_file_is_one_epoch(digits_run):
    folder, _ = digits_run
    run = load_run(folder / "model.keras")
    assert run.epochs == [0]
    model = keras_model(folder / "model.keras")
    np.testing.assert_array_equal(run.weights("dense", 0)[0], model.get_layer("dense").get_weights()[0])


def test_single_weights_file_takes_architecture_beside_it(digits_run):
    folder, _ = digits_run
    run = load_run(folder / "epoch_02.weights.h5")
    assert run.epochs == [2]


def test_json_architecture_and_tf2_checkpoints(digits_run, tmp_path):
    import tensorflow as tf
    folder, _ = digits_run
    model = keras_model(folder / "model.keras")
    (tmp_path / "model.json").write_text(model.to_json())
    ckpt = tf.train.Checkpoint(model=model)
    manager = tf.train.CheckpointManager(ckpt, str(tmp_path), max_to_keep=None)
    for epoch in (0, 2, 3):
        model.load_weights(folder / f"epoch_{epoch:02d}.weights.h5")
        manager.save(checkpoint_number=epoch)
    run = load_run(tmp_path, probe=folder / "probe.npy")
    assert run.epochs == [0, 2, 3]
    for epoch in run.epochs:
        model.load_weights(folder / f"epoch_{epoch:02d}.weights.h5")
        for layer in model.layers:
            for mine, theirs in zip(run.weights(layer.name, epoch), layer.get_weights()):
                np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("name, epoch", [("epoch_07.weights.h5", 7), ("weights.03-0.42.keras", 3),
                                         ("ckpt-12", 12), ("model_v2_epoch-5.keras", 5),
                                         ("final.keras", None), ("w03.weights.h5", 3),
                                         ("cp0007.ckpt", 7), ("VGG16.keras", None)])
def test_epoch_numbers_from_file_names(name, epoch):
    assert epoch_number(name.split(".")[0] if "epoch" in name else name) == epoch


def test_names_without_numbers_are_taken_in_natural_order(digits_run, tmp_path):
    folder, _ = digits_run
    shutil.copy(folder / "model.keras", tmp_path / "model.keras")
    shutil.copy(folder / "epoch_00.weights.h5", tmp_path / "a_start.weights.h5")
    shutil.copy(folder / "epoch_03.weights.h5", tmp_path / "b_end.weights.h5")
    run = load_run(tmp_path, probe=folder / "probe.npy")
    assert run.epochs == [0, 1]
    np.testing.assert_array_equal(run.weights("dense", 1)[0],
                                  load_run(folder).weights("dense", 3)[0])


def test_probe_image_is_resized_to_the_input(digits_run, tmp_path):
    from PIL import Image
    folder, _ = digits_run
    Image.fromarray(np.full((64, 48, 3), 255, np.uint8)).save(tmp_path / "white.png")
    run = load_run(folder / "model.keras", probe=tmp_path / "white.png")
    assert run.probe.shape == (32, 32, 1)
    np.testing.assert_allclose(run.probe, 1.0)


def test_default_probe_is_mid_grey_without_probe_file(digits_run, tmp_path):
    folder, _ = digits_run
    shutil.copy(folder / "model.keras", tmp_path / "model.keras")
    run = load_run(tmp_path / "model.keras")
    np.testing.assert_allclose(run.probe, 0.5)


def test_bad_inputs_name_the_file(digits_run, tmp_path):
    folder, _ = digits_run
    with pytest.raises(NNVisError, match="missing.keras"):
        load_run(tmp_path / "missing.keras")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(NNVisError, match="notes.txt"):
        load_run(tmp_path / "notes.txt")
    data = (folder / "model.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(NNVisError, match="cut.keras"):
        load_run(tmp_path / "cut.keras")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NNVisError, match="no checkpoints"):
        load_run(empty)


def test_recording_imports_with_metrics_predictions_and_tf_activations(digits_run):
    from nnvis_addon.model.forward import forward
    folder, history = digits_run
    run = load_run(folder / "recording", probe_index=2)
    assert run.epochs == [0, 1, 2, 3]
    assert run.probes.shape == (8, 32, 32, 1) and run.class_names == [str(d) for d in range(10)]
    np.testing.assert_array_equal(run.probe, run.probes[2])
    for key, values in history.history.items():
        np.testing.assert_allclose([run.metrics[e][key] for e in (1, 2, 3)], values, rtol=1e-6)
    assert run.predictions(3).shape == (8, 10)
    # the recorded (TensorFlow) activations agree with our numpy forward pass on recorded weights
    for epoch in run.epochs:
        weights = {l.name: run.weights(l.name, epoch) for l in run.layers}
        mine = forward(run.network, weights, run.probe)
        for layer in run.layers:
            value = run.activations(layer.name, epoch)
            np.testing.assert_allclose(mine[layer.name], value, rtol=1e-4,
                                       atol=1e-5 * max(1.0, float(np.abs(value).max())))
    # and its weights are the ModelCheckpoint's
    np.testing.assert_array_equal(run.weights("conv2", 2)[0],
                                  load_run(folder).weights("conv2", 2)[0])
    assert int(np.argmax(run.predictions(3)[2])) == int(np.argmax(run.activations("classes", 3)))


def test_custom_layer_with_variables_imports_as_structure(tmp_path):
    """A custom (registered) layer holding variables: no activations for it and what follows, the
    rest reads — its variables in the file are not mistaken for a foreign architecture's."""
    import keras

    @keras.saving.register_keras_serializable(package="nnvis_test")
    class Scale(keras.layers.Layer):
        def build(self, shape):
            self.factor = self.add_weight(shape=(shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.factor

    inp = keras.Input((6, 6, 1), name="pixels")
    x = keras.layers.Conv2D(2, 3, name="conv")(inp)
    x = Scale(name="scale")(x)
    out = keras.layers.Dense(3, name="out")(keras.layers.Flatten(name="flat")(x))
    model = keras.Model(inp, out)
    model.save(tmp_path / "custom.keras")
    run = load_run(tmp_path / "custom.keras")
    assert run.has_activations("conv") and not run.has_activations("scale")
    assert not run.has_activations("out") and run.predictions(0) is None
    assert any("scale" in w for w in run.warnings)
    np.testing.assert_array_equal(run.weights("conv", 0)[0], model.get_layer("conv").get_weights()[0])
