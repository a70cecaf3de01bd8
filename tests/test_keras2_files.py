"""Files written by TensorFlow 2.15 (Keras 2), in every layout users save them, against the
activations TF 2.15 computed when it wrote them (tests/data/keras2/make_keras2_fixtures.py).

Each case loads like a user would (`load_run` on a file or folder) and compares every layer of
every epoch. The silently-wrong cases of issue 14 (LeakyReLU `alpha`, Keras 2 `hard_sigmoid`,
probe scaling) are also checked against the main venv's Keras 3 where it can express them.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from nnvis_addon.errors import NNVisError
from nnvis_addon.io import keras_files
from nnvis_addon.io.discover import discover, epoch_number
from nnvis_addon.model import keras2
from nnvis_addon.model.keras_config import block_path
from nnvis_addon.model.kernels import activate
from nnvis_addon.probe import load_probe
from nnvis_addon.run import load_run

TIER = "oracle"

DATA = Path(__file__).parent / "data" / "keras2"
RTOL, ATOL = 1e-4, 1e-5

# (path under DATA, epochs it holds; None: the last epoch's state shown as epoch 0)
CASES = [
    ("func/full.h5", None),                                   # model.save("m.h5")
    ("func/epochs_h5", [1, 2, 3]),                            # ModelCheckpoint("ep{epoch:02d}.h5")
    ("func/weights_h5", None),                                # save_weights("w.h5") + to_json
    ("func/weights_h5/w.h5", None),
    ("func/func.keras", None),                                # a Keras-2.15 .keras
    ("func/json_weights", None),                              # .json + .weights.h5
    ("func/tf_weights", None),                                # save_weights("ckpt/w")
    ("func/tf_weights/w.index", None),
    ("func/manager", [1, 2, 3]),                              # Checkpoint + CheckpointManager
    ("func/no_manager", [1, 2, 3]),                           # Checkpoint.save, no manager
    ("func/tutorial", [1, 2, 3]),                             # cp-{epoch:04d}.ckpt
    ("func/keras_pattern", [1, 2, 3]),          # weights.{epoch:02d}-{val_loss:.2f}.weights.h5
    ("func/savedmodel", None),                                # model.save("dir"), SavedModel
    ("func/savedmodel/saved_model.pb", None),
    ("func/savedmodel/variables/variables.index", None),
    ("seq/full.h5", None),                                    # augmentation + Rescaling(1/255)
    ("seq/seq.keras", None),
    ("seq/tf_weights", None),
    ("fcn/full.h5", None),                                    # Input((None, None, 3))
    ("fcn/weights_h5", None),
    ("fcn/tf_weights", None),
    ("nested/full.h5", None),                                 # a Functional inside a Sequential
    ("nested/weights_h5", None),
    ("nested/nested.keras", None),
    ("nested/json_weights", None),
    ("nested/tf_weights", None),
]


@pytest.mark.parametrize("names, epochs", [
    (["w01.h5", "w02.h5", "w03.h5"], [1, 2, 3]),    # ModelCheckpoint("w{epoch:02d}.h5")
    (["w03.h5"], [3]),                               # a lone zero-padded one
    (["w1.h5", "w2.h5", "w3.h5"], [1, 2, 3]),        # the one part that differs
    (["net16_a.h5", "net16_b.h5", "net16_c.h5"], [0, 1, 2])])  # a name's digits: natural order
def test_epoch_numbers_glued_to_letters(names, epochs, tmp_path):
    """Issue 25: `w01.h5 …` loaded as epochs 0, 1, 2 and a lone `w03` as epoch 0."""
    expected = _expected("func")
    for k, name in enumerate(names):
        source = 3 if len(names) == 1 else k + 1
        shutil.copy(DATA / "func" / "epochs_h5" / f"ep{source:02d}.h5", tmp_path / name)
    run = load_run(tmp_path, probe=expected["probe"])
    assert run.epochs == epochs
    for epoch, source in zip(epochs, [3] if len(names) == 1 else [1, 2, 3]):
        for layer in run.layers:
            np.testing.assert_allclose(run.activations(layer.name, epoch),
                                       expected[f"e{source}/{layer.name}"], rtol=RTOL, atol=ATOL)


def _expected(case: str):
    return np.load(DATA / case.split("/")[0] / "expected.npz")


@pytest.mark.parametrize("case, epochs", CASES, ids=[c for c, _ in CASES])
def test_every_layer_of_every_epoch_matches_tf215(case, epochs):
    expected = _expected(case)
    run = load_run(DATA / case, probe=expected["probe"])
    assert run.epochs == (epochs or [0])
    assert not run.warnings
    for epoch in run.epochs:
        stored = f"e{epoch}" if epochs else "e3"
        for layer in run.layers:
            np.testing.assert_allclose(run.activations(layer.name, epoch),
                                       expected[f"{stored}/{layer.name}"], rtol=RTOL, atol=ATOL,
                                       err_msg=f"{case} epoch {epoch} layer {layer.name}")


def test_keras2_leaky_relu_and_hard_sigmoid_are_honoured():
    """The two formulas Keras 2 and 3 disagree on: with Keras 3's, the numbers are off."""
    run = load_run(DATA / "func" / "full.h5", probe=_expected("func")["probe"])
    assert run.network.layer("leaky").config["negative_slope"] == pytest.approx(0.1)
    assert run.network.layer("hard").config["activation"] == "hard_sigmoid_keras2"
    x = np.linspace(-4, 4, 81, dtype=np.float32)
    np.testing.assert_allclose(activate("hard_sigmoid_keras2", x), np.clip(0.2 * x + 0.5, 0, 1))


def test_keras3_formulas_still_match_keras3():
    """A Keras 3 config keeps Keras 3's hard_sigmoid and LeakyReLU(negative_slope)."""
    import keras
    model = keras.Sequential([keras.Input((5,)), keras.layers.Activation("hard_sigmoid"),
                              keras.layers.LeakyReLU(negative_slope=0.1)])
    config = {**model.get_config(), "keras_version": keras.__version__}
    config = {"class_name": "Sequential", "config": config, "keras_version": keras.__version__}
    assert keras2.normalize(config) is config
    x = np.linspace(-4, 4, 5, dtype=np.float32)[None]
    np.testing.assert_allclose(activate("hard_sigmoid", x), np.asarray(model.layers[0](x)),
                               rtol=1e-6)


def test_probe_rule_is_one_rule(tmp_path):
    """An array and the same array as .npy give the same probe (never rescaled); an image file
    gives 0–255 to a model that starts with Rescaling(1/255), else [0, 1]."""
    from PIL import Image
    expected = _expected("seq")
    pixels = expected["probe"]                       # 0..255, what TF 2.15 was fed
    np.save(tmp_path / "probe.npy", pixels)
    Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "probe.png")
    from_array = load_run(DATA / "seq" / "full.h5", probe=pixels)
    from_npy = load_run(DATA / "seq" / "full.h5", probe=tmp_path / "probe.npy")
    from_png = load_run(DATA / "seq" / "full.h5", probe=tmp_path / "probe.png")
    for run in (from_array, from_npy, from_png):
        np.testing.assert_allclose(run.activations("logits", 0), expected["e3/logits"],
                                   rtol=RTOL, atol=1e-4)
    plain = load_probe(tmp_path / "probe.png", (8, 8, 3))
    assert 0 <= plain.min() and plain.max() <= 1


def test_variable_input_size_without_probe_uses_the_documented_default():
    run = load_run(DATA / "fcn" / "full.h5")
    assert run.network.input_shape == (224, 224, 3)
    assert run.network.layer("conv").output_shape == (112, 112, 4)
    assert any("224" in w for w in run.warnings)


def test_variable_input_size_takes_the_probe_size():
    run = load_run(DATA / "fcn" / "full.h5", probe=np.zeros((6, 10, 3), np.float32))
    assert run.network.layer("head").output_shape == (3, 5, 2)


def test_augmentation_layers_are_identity_at_inference():
    run = load_run(DATA / "seq" / "full.h5", probe=_expected("seq")["probe"])
    np.testing.assert_array_equal(run.activations("rotate", 0), run.probe)


@pytest.mark.parametrize("name, epoch", [
    ("ResNet50.keras", None), ("VGG16.keras", None), ("DenseNet121.keras", None),
    ("weights.03-0.42.weights.h5", 3), ("cp-0001.ckpt", 1), ("ckpt-12", 12), ("ep07.h5", 7),
    ("e5.weights.h5", 5), ("model_v2_epoch-5.keras", 5), ("epoch_07.weights.h5", 7),
    ("05.keras", 5), ("final.keras", None), ("model_03.keras", 3)])
def test_epochs_from_epoch_like_names_only(name, epoch):
    assert epoch_number(name) == epoch


def test_single_file_named_after_its_model_is_not_an_epoch(tmp_path):
    shutil.copy(DATA / "func" / "func.keras", tmp_path / "ResNet50.keras")
    assert [e.epoch for e in discover(tmp_path / "ResNet50.keras").epochs] == [0]
    assert [e.epoch for e in discover(tmp_path).epochs] == [0]


@pytest.mark.parametrize("name, epoch", [
    ("squeezenet1_1.keras", 0), ("resnet_18.keras", 0), ("model-224.keras", 0),
    ("mobilenet_v2.keras", 0), ("model_7.keras", 0), ("w03.keras", 3), ("model_03.keras", 3),
    ("weights.03-0.42.keras", 3), ("epoch_7.keras", 7), ("ep2.keras", 2), ("05.keras", 5)])
def test_a_lone_files_number_is_an_epoch_only_where_it_says_so(name, epoch, tmp_path):
    """A single file's number may be its model's (squeezenet1_1 showed "Epoch 1"): alone, only
    an epoch word, ModelCheckpoint's zero padding or a bare number count."""
    shutil.copy(DATA / "func" / "func.keras", tmp_path / name)
    assert [e.epoch for e in discover(tmp_path / name).epochs] == [epoch]


def test_architecture_is_picked_by_content(tmp_path):
    """case.json and history.json sort before model.json: they are not model configs."""
    for p in (DATA / "func" / "json_weights").iterdir():
        shutil.copy(p, tmp_path / p.name)
    (tmp_path / "case.json").write_text('{"cases": [1, 2]}')
    (tmp_path / "a_history.json").write_text('{"loss": [0.5]}')
    assert discover(tmp_path).architecture.name == "model.json"
    shutil.copy(DATA / "seq" / "json_weights" / "model.json", tmp_path / "b_other.json")
    with pytest.raises(NNVisError, match="several different model architectures"):
        discover(tmp_path)


def test_saved_model_without_keras_metadata_says_what_to_do(tmp_path):
    shutil.copytree(DATA / "func" / "savedmodel", tmp_path / "sm")
    (tmp_path / "sm" / "keras_metadata.pb").unlink()
    with pytest.raises(NNVisError, match="without keras_metadata.pb.*model.save"):
        load_run(tmp_path / "sm")


def test_folder_of_saved_models_is_epochs(tmp_path):
    for n in (1, 2):
        shutil.copytree(DATA / "func" / "savedmodel", tmp_path / f"epoch_{n}")
    found = discover(tmp_path)
    assert [e.epoch for e in found.epochs] == [1, 2]
    assert found.epochs[0].path == tmp_path / "epoch_1" / "variables" / "variables"


def test_nested_model_is_flattened_with_its_block():
    run = load_run(DATA / "nested" / "full.h5")
    assert [layer.name for layer in run.layers] == ["image", "b_conv", "b_bn", "b_relu", "gap",
                                                    "out"]
    assert run.network.layer("b_conv").inbound == ["image"]
    assert run.network.layer("gap").inbound == ["b_relu"]
    assert block_path(run.network.layer("b_bn")) == [("backbone", "Functional")]
    assert block_path(run.network.layer("out")) == []


def test_transfer_learning_model_matches_keras3(tmp_path):
    """Every fine-tuning tutorial's model, written by the main venv's Keras 3."""
    import keras
    backbone = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False,
                                              weights=None, alpha=0.35)
    model = keras.Sequential([keras.Input((32, 32, 3)), backbone,
                              keras.layers.GlobalAveragePooling2D(name="pool"),
                              keras.layers.Dense(10, name="head")])
    probe = np.random.default_rng(1).uniform(-1, 1, (32, 32, 3)).astype(np.float32)
    model.save(tmp_path / "transfer.keras")
    run = load_run(tmp_path / "transfer.keras", probe=probe)
    inner = keras.Model(backbone.inputs, [layer.output for layer in backbone.layers[1:]])
    for layer, want in zip(backbone.layers[1:], inner(probe[None])):
        np.testing.assert_allclose(run.activations(layer.name, 0), np.asarray(want)[0],
                                   rtol=RTOL, atol=1e-4, err_msg=layer.name)
    np.testing.assert_allclose(run.activations("head", 0), np.asarray(model(probe[None]))[0],
                               rtol=RTOL, atol=1e-4)


def test_mixed_float16_model_within_float16_rounding():
    """TF computes a mixed_float16 model in float16, nnvis in float32: they agree to float16
    rounding accumulated over a few layers, 2^-8 of each layer's largest value."""
    expected = _expected("mixed")
    run = load_run(DATA / "mixed" / "full.h5", probe=expected["probe"])
    assert not run.warnings
    for layer in run.layers:
        want = expected[f"e3/{layer.name}"]
        np.testing.assert_allclose(run.activations(layer.name, 0), want, rtol=0,
                                   atol=2 ** -8 * float(np.abs(want).max()), err_msg=layer.name)


def test_keras3_image_classification_tutorial_model(tmp_path):
    """keras.io "image classification from scratch": augmentation, Rescaling, then a CNN, fed a
    0–255 image file (the probe rule) — against the main venv's Keras 3."""
    import keras
    from PIL import Image
    L = keras.layers
    model = keras.Sequential([
        keras.Input((16, 16, 3)), L.RandomFlip("horizontal"), L.RandomRotation(0.1),
        L.RandomZoom(0.1), L.RandomContrast(0.2), L.RandomTranslation(0.1, 0.1),
        L.Rescaling(1.0 / 255), L.Conv2D(8, 3, strides=2, padding="same"),
        L.BatchNormalization(), L.Activation("relu"), L.SeparableConv2D(8, 3, padding="same"),
        L.GlobalAveragePooling2D(), L.Dropout(0.25), L.Dense(1)])
    model.save(tmp_path / "tutorial.keras")
    pixels = np.random.default_rng(2).integers(0, 256, (16, 16, 3)).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "cat.png")
    run = load_run(tmp_path / "tutorial.keras", probe=tmp_path / "cat.png")
    assert not run.warnings
    want = np.asarray(model(pixels[None].astype(np.float32), training=False))[0]
    np.testing.assert_allclose(run.predictions(0)[0], want, rtol=RTOL, atol=1e-5)


def test_unknown_config_key_on_a_known_layer_is_a_warning(tmp_path):
    import json
    config = json.loads((DATA / "func" / "json_weights" / "model.json").read_text())
    for entry in config["config"]["layers"]:
        if entry["name"] == "out":
            entry["config"]["lora_rank"] = 4            # a newer Keras option nnvis ignores
    (tmp_path / "model.json").write_text(json.dumps(config))
    shutil.copy(DATA / "func" / "json_weights" / "model.weights.h5", tmp_path)
    run = load_run(tmp_path)
    assert run.warnings == ["layer 'out' (Dense): config key 'lora_rank' not understood by nnvis; "
                            "its activations may differ from Keras'"]


@pytest.mark.parametrize("kind, kwargs", [
    ("Resizing", dict(height=6, width=10)),
    ("Resizing", dict(height=12, width=8, crop_to_aspect_ratio=True)),
    ("CenterCrop", dict(height=5, width=7)),
    ("CenterCrop", dict(height=12, width=20))])                  # larger: smart_resize
def test_preprocessing_layers_match_keras3(tmp_path, kind, kwargs):
    import keras
    model = keras.Sequential([keras.Input((9, 11, 2)), getattr(keras.layers, kind)(**kwargs),
                              keras.layers.Conv2D(2, 3, name="conv")])
    model.save(tmp_path / "m.keras")
    probe = np.random.default_rng(3).uniform(0, 1, (9, 11, 2)).astype(np.float32)
    run = load_run(tmp_path / "m.keras", probe=probe)
    assert not run.warnings
    want = np.asarray(model.layers[0](probe[None]))[0]
    np.testing.assert_allclose(run.activations(model.layers[0].name, 0), want, rtol=RTOL,
                               atol=1e-6)
    np.testing.assert_allclose(run.activations("conv", 0), np.asarray(model(probe[None]))[0],
                               rtol=RTOL, atol=1e-5)


def test_shared_layer_calls_match_keras3(tmp_path):
    """One Conv2D applied twice (Siamese/recurrent-style): drawn once per call, same weights."""
    import keras
    L = keras.layers
    inp = keras.Input((8, 8, 3), name="img")
    shared = L.Conv2D(4, 3, padding="same", activation="relu", name="shared")
    first = shared(L.Conv2D(4, 3, padding="same", name="a")(inp))
    second = shared(first)
    out = L.Dense(2, name="out")(L.GlobalAveragePooling2D()(L.Add()([first, second])))
    model = keras.Model(inp, out)
    probe = np.random.default_rng(4).uniform(0, 1, (8, 8, 3)).astype(np.float32)
    want = keras.Model(inp, [first, second, out])(probe[None])
    for name in ("m.keras", "m.h5"):
        model.save(tmp_path / name)
        run = load_run(tmp_path / name, probe=probe)
        for layer, tensor in zip(("shared", "shared@1", "out"), want):
            np.testing.assert_allclose(run.activations(layer, 0), np.asarray(tensor)[0],
                                       rtol=RTOL, atol=1e-6)


MULTI = ["multi/full.h5", "multi/weights_h5", "multi/json_weights", "multi/multi.keras",
         "multi/tf_weights", "multi/savedmodel"]


@pytest.mark.parametrize("case", MULTI)
def test_keras2_multi_input_shared_layer_and_random_crop(case):
    """Two images and a vector, one probe per input (a dict by input name); a Conv2D shared by
    both images (its second call `shared@1`); RandomCrop, which tf.keras 2.15 smart_resizes at
    inference — every layer against TF 2.15."""
    expected = _expected(case)
    probes = {k.split("/", 1)[1]: expected[k] for k in expected.files if k.startswith("probe/")}
    run = load_run(DATA / case, probe=probes)
    assert run.network.inputs == ["image", "reference", "aux"]
    assert not run.warnings
    assert {layer.name for layer in run.layers} == {k[3:] for k in expected.files
                                                    if k.startswith("e3/")}
    assert run.network.layer("crop").output_shape == (8, 8, 3)
    for layer in run.layers:
        np.testing.assert_allclose(run.activations(layer.name, 0), expected[f"e3/{layer.name}"],
                                   rtol=RTOL, atol=ATOL, err_msg=f"{case}: {layer.name}")
    np.testing.assert_array_equal(run.probe, probes["image"])


def _multi_input_keras3(folder: Path):
    import keras
    L = keras.layers
    image, mask, aux = (keras.Input((8, 8, 3), name="img"), keras.Input((8, 8, 1), name="mask"),
                        keras.Input((5,), name="aux"))
    x = L.Concatenate(name="cat")([L.Conv2D(4, 3, padding="same", name="ca")(image), mask])
    x = L.GlobalAveragePooling2D(name="gap")(L.Conv2D(4, 3, activation="relu", name="c2")(x))
    x = L.Concatenate(name="cat2")([x, L.Dense(3, name="da")(aux)])
    model = keras.Model([image, mask, aux], L.Dense(2, name="out")(x))
    model.save(folder / "multi.keras")
    rng = np.random.default_rng(6)
    return model, [rng.uniform(0, 1, s).astype(np.float32) for s in ((8, 8, 3), (8, 8, 1), (5,))]


def test_multi_input_probe_rule_keras3(tmp_path):
    """One probe per input: a list in the model's order, a dict by name, paths joined by ';'
    (the importer's file field), or probe_<input>.npy beside the file; anything else names the
    inputs. Every layer against the main venv's Keras 3."""
    from tf_oracle import keras_activations
    model, probes = _multi_input_keras3(tmp_path)
    want = keras_activations(model, probes)
    names = ["img", "mask", "aux"]
    paths = []
    for name, probe in zip(names, probes):
        np.save(tmp_path / f"probe_{name}.npy", probe)
        paths.append(str(tmp_path / f"probe_{name}.npy"))
    for given in (probes, dict(zip(reversed(names), reversed(probes))), ";".join(paths), None):
        run = load_run(tmp_path / "multi.keras", probe=given)
        assert run.network.inputs == names and not run.warnings
        assert set(want) == {layer.name for layer in run.layers}
        for layer, value in want.items():
            np.testing.assert_allclose(run.activations(layer, 0), value, rtol=RTOL, atol=1e-6,
                                       err_msg=layer)
    with pytest.raises(NNVisError, match=r"has 3 inputs \('img', 'mask', 'aux'\)"):
        load_run(tmp_path / "multi.keras", probe=probes[0])
    with pytest.raises(NNVisError, match="2 probes given"):
        load_run(tmp_path / "multi.keras", probe=probes[:2])
    with pytest.raises(NNVisError, match="takes inputs 'img', 'mask', 'aux'"):
        load_run(tmp_path / "multi.keras", probe={"img": probes[0], "x": probes[1]})


def test_multi_output_model_predicts_its_first_output(tmp_path):
    """A classifier head and a segmentation head: both computed; the class scores are the
    model's first output (config `output_layers`), not the last layer in the file."""
    import keras
    L = keras.layers
    image = keras.Input((8, 8, 3), name="img")
    h = L.Conv2D(4, 3, name="c")(image)
    model = keras.Model(image, [L.Dense(3, name="cls")(L.GlobalAveragePooling2D(name="g")(h)),
                                L.Conv2D(1, 1, name="seg")(h)])
    model.save(tmp_path / "two_heads.keras")
    probe = np.random.default_rng(7).uniform(0, 1, (8, 8, 3)).astype(np.float32)
    run = load_run(tmp_path / "two_heads.keras", probe=probe)
    classes, mask = model.predict(probe[None], verbose=0)
    assert run.network.output == "cls"
    np.testing.assert_allclose(run.predictions(0)[0], classes[0], rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(run.activations("seg", 0), mask[0], rtol=RTOL, atol=1e-6)


def test_random_crop_keras3_passes_through_at_inference(tmp_path):
    """Keras 3's RandomCrop crops only in training: model.predict feeds the uncropped image on
    (its declared (6, 6) shape notwithstanding); nnvis computes the same and says so."""
    import keras
    L = keras.layers
    model = keras.Sequential([keras.Input((10, 12, 3)), L.RandomCrop(6, 6, name="crop"),
                              L.Conv2D(2, 3, name="conv"), L.GlobalAveragePooling2D(name="gap"),
                              L.Dense(2, name="out")])
    model.save(tmp_path / "crop.keras")
    probe = np.random.default_rng(8).uniform(0, 1, (10, 12, 3)).astype(np.float32)
    run = load_run(tmp_path / "crop.keras", probe=probe)
    assert run.network.layer("crop").output_shape == (10, 12, 3)
    assert len(run.warnings) == 1 and "RandomCrop" in run.warnings[0]
    np.testing.assert_array_equal(run.activations("crop", 0), probe)
    np.testing.assert_allclose(run.predictions(0)[0], model.predict(probe[None], verbose=0)[0],
                               rtol=RTOL, atol=1e-6)


@pytest.mark.parametrize("case", ["seq/full.h5", "fcn/full.h5", "nested/full.h5",
                                  "multi/full.h5"])
def test_scene_builds_for_new_structures(case):
    """The importer's own path: augmentation layers, variable sizes and flattened nested models
    all get layer objects and edges (no raw exception anywhere)."""
    import bpy
    from nnvis_addon.scene.build import build_scene
    run = load_run(DATA / case)
    build_scene(run, scene=bpy.data.scenes.new(f"t-{case}"))
    names = {obj.get("nnvis_layer") for obj in bpy.data.objects}
    assert {layer.name for layer in run.layers} <= names


def test_nested_backbone_names_its_stages():
    """The flattened backbone's name stays on the stage labels of its layers."""
    from nnvis_addon.stages import stages
    run = load_run(DATA / "nested" / "full.h5")
    assert [s.name for s in stages(run.network)] == ["input", "backbone · stage 1", "head"]


@pytest.mark.parametrize("name", ["legacy_h5_huge_attribute.h5", "legacy_h5_slow_attribute.h5"])
def test_damaged_attribute_counts_allocate_nothing(name):
    """Found by the fuzzer: attribute dataspaces claiming 2^61 items made pyfive allocate them
    (and one take 2 s); every attribute's size is now checked against its header first."""
    import tracemalloc
    path = Path(__file__).parent / "data" / "fuzz" / name
    tracemalloc.start()
    try:
        with pytest.raises(NNVisError):
            load_run(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * path.stat().st_size + (1 << 20)


def test_keras3_export_savedmodel_is_a_clear_error(tmp_path):
    """Keras 3 `model.export` writes an inference SavedModel without keras_metadata.pb: its object
    graph holds only variables, so there is no architecture to read; the error says what to do."""
    import keras
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3, name="conv")])
    model.export(tmp_path / "exported", verbose=False)
    for path in (tmp_path / "exported", tmp_path / "exported" / "saved_model.pb",
                 tmp_path / "exported" / "variables" / "variables.index"):
        with pytest.raises(NNVisError,
                           match=r"without keras_metadata\.pb.*model\.save\('m\.keras'\)"):
            load_run(path)


def test_fuzzer_finds_in_functional_configs_are_nnvis_errors(tmp_path):
    """Found by the multi-input fuzz format: a non-list `inbound_nodes` (Keras 2 sniffing) and a
    `__keras_tensor__` whose config is not an object raised raw errors."""
    import json
    keras2_config = json.loads((DATA / "multi" / "json_weights" / "model.json").read_text())
    keras2_config["config"]["layers"][3]["inbound_nodes"] = 5
    keras3_model, _ = _multi_input_keras3(tmp_path)
    keras3_config = json.loads(keras3_model.to_json())
    cat = next(e for e in keras3_config["config"]["layers"] if e["name"] == "cat")
    cat["inbound_nodes"][0]["args"][0][0]["config"] = 7
    for k, config in enumerate((keras2_config, keras3_config)):
        (tmp_path / f"m{k}.json").write_text(json.dumps(config))
        with pytest.raises(NNVisError, match=f"m{k}.json"):
            keras_files.read_network(tmp_path / f"m{k}.json")
