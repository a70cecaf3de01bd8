"""Keras architecture + weights readers against TensorFlow-written files (Keras is the oracle)."""
import copy
import json
import time
import zipfile

import numpy as np
import pyfive
import pytest

import keras
from keras import layers as L

from nnvis_addon.errors import NNVisError
from nnvis_addon.io.keras_files import (read_architecture, read_network, read_weights,
                                        weight_groups)
from nnvis_addon.model.keras_config import layer_graph, network_from_config, unsupported_reason

TIER = "oracle"

SHAPE = (12, 12, 1)
EPOCHS = 2


def _named(names: bool):
    return (lambda name: {"name": name}) if names else (lambda name: {})


def _sequential_cnn(names: bool, hidden: int = 10, extra: bool = False):
    n = _named(names)
    stack = [
        keras.Input(SHAPE, **n("pixels")),
        L.Conv2D(4, 3, activation="relu", **n("conv_a")),
        L.BatchNormalization(**n("bn_a")),
        L.MaxPooling2D(**n("pool_a")),
        L.Conv2D(6, 3, padding="same", **n("conv_b")),
        L.MaxPooling2D(**n("pool_b")),
        L.Flatten(**n("flat")),
        L.Dense(hidden, activation="relu", **n("hidden")),
        L.Dense(3, activation="softmax", **n("probs")),
    ]
    if extra:
        stack.append(L.Dense(3))
    return keras.Sequential(stack, **n("cnn_named"))


def _functional_cnn():
    inp = keras.Input(SHAPE, name="image")
    x = L.Conv2D(5, 3, strides=2, padding="same", name="stem")(inp)
    x = L.BatchNormalization(center=False)(x)
    x = L.ReLU()(x)
    x = L.Conv2D(7, 3)(x)
    x = L.AveragePooling2D(2)(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dropout(0.2)(x)
    out = L.Dense(3, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="func")


def _keras_layers(model):
    """All layers, InputLayer first (a Sequential's model.layers leaves it out)."""
    layers = list(model.layers)
    inp = model.inputs[0]._keras_history.operation
    return layers if layers[0] is inp else [inp] + layers


class _Snapshots(keras.callbacks.Callback):
    """get_weights() of every layer at each epoch end (after ModelCheckpoint, listed before it)."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append({l.name: l.get_weights() for l in self.model.layers if l.weights})


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Three trained models saved every way Keras 3 saves them; default-named layers are built
    after the functional model so their names (conv2d_1, ...) differ from the HDF5 groups."""
    keras.backend.clear_session()        # fresh name counters, whatever tests ran before
    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("keras")
    x = np.random.default_rng(0).random((32, *SHAPE), dtype=np.float32)
    y = np.arange(32) % 3
    out = {}
    for key, build in (("named", lambda: _sequential_cnn(True)), ("functional", _functional_cnn),
                       ("default", lambda: _sequential_cnn(False))):
        model = build()
        model.compile("adam", "sparse_categorical_crossentropy")
        folder = root / key
        folder.mkdir()
        snaps = _Snapshots()
        ckpt = keras.callbacks.ModelCheckpoint(str(folder / "epoch{epoch:02d}.weights.h5"),
                                               save_weights_only=True)
        model.fit(x, y, epochs=EPOCHS, batch_size=16, verbose=0, callbacks=[ckpt, snaps])
        model.save(folder / "model.keras")
        model.save_weights(folder / "model.weights.h5")
        (folder / "model.json").write_text(model.to_json())
        out[key] = {"model": model, "dir": folder, "snapshots": snaps.epochs}

    # Graph-only models: merges, a nested model, a shared layer (kinds/structures not supported).
    inp = keras.Input(SHAPE, name="img")
    a = L.Conv2D(4, 3, padding="same", name="ca")(inp)
    b = L.Conv2D(4, 1, name="cb")(inp)
    c = L.Add(name="sum")([a, b])
    d = L.Concatenate(name="cat")([c, a])
    out["merge"] = json.loads(keras.Model(inp, L.Flatten(name="fl")(d), name="m").to_json())
    inner = keras.Sequential([keras.Input((4,)), L.Dense(2)], name="inner")
    v = keras.Input((4,), name="v")
    out["nested"] = json.loads(keras.Model(v, inner(v)).to_json())
    shared = L.Dense(4, name="shared")
    out["shared"] = json.loads(keras.Model(v, shared(shared(v))).to_json())

    # Weights of other architectures, for the mismatch errors.
    for key, model in (("wider", _sequential_cnn(False, hidden=11)),
                       ("longer", _sequential_cnn(False, extra=True))):
        model.save_weights(root / f"{key}.weights.h5")
        out[key] = root / f"{key}.weights.h5"
    return out


MODELS = ["named", "functional", "default"]


@pytest.mark.parametrize("key", MODELS)
@pytest.mark.parametrize("file", ["model.keras", "model.json"])
def test_network_matches_keras(saved, key, file):
    model = saved[key]["model"]
    network = read_network(saved[key]["dir"] / file)
    expected = _keras_layers(model)
    assert network.name == model.name
    assert [l.name for l in network.layers] == [l.name for l in expected]
    assert [l.kind for l in network.layers] == [type(l).__name__ for l in expected]
    for ours, theirs in zip(network.layers, expected):
        node = theirs._inbound_nodes[0]
        assert ours.inbound == [t._keras_history.operation.name for t in node.input_tensors]
        assert ours.output_shape == tuple(theirs.output.shape[1:])
        assert ours.weight_shapes == [tuple(w.shape) for w in theirs.get_weights()]
        assert ours.config["name"] == theirs.name
    assert network.input_shape == SHAPE


def test_user_names_kept(saved):
    network = read_network(saved["named"]["dir"] / "model.keras")
    assert [l.name for l in network.layers] == [
        "pixels", "conv_a", "bn_a", "pool_a", "conv_b", "pool_b", "flat", "hidden", "probs"]
    assert network.layer("bn_a").weight_shapes == [(4,)] * 4


@pytest.mark.parametrize("key", MODELS)
def test_weight_groups_match_keras_metadata(saved, key):
    """Keras 3.15 tags each layer's vars group with the layer name: our naming rule must agree."""
    network = read_network(saved[key]["dir"] / "model.json")
    h5 = pyfive.File(str(saved[key]["dir"] / "model.weights.h5"))
    groups = weight_groups(network)
    for layer in network.layers[1:]:
        assert h5[groups[layer.name] + "/vars"].attrs["name"] == layer.name
    if key == "default":
        assert groups["conv2d_1"] == "layers/conv2d" and groups["conv2d_2"] == "layers/conv2d_1"


@pytest.mark.parametrize("key", MODELS)
@pytest.mark.parametrize("file", ["model.keras", "model.weights.h5"])
def test_weights_equal_keras(saved, key, file):
    model = saved[key]["model"]
    network = read_network(saved[key]["dir"] / "model.keras")
    weights = read_weights(saved[key]["dir"] / file, network)
    expected = {l.name: l.get_weights() for l in model.layers if l.weights}
    assert set(weights) == set(expected)
    for name, arrays in expected.items():
        assert len(weights[name]) == len(arrays)
        for got, want in zip(weights[name], arrays):
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("key", MODELS)
def test_model_checkpoint_epochs(saved, key):
    network = read_network(saved[key]["dir"] / "model.json")
    files = sorted(saved[key]["dir"].glob("epoch*.weights.h5"))
    assert [f.name for f in files] == [f"epoch{e:02d}.weights.h5" for e in range(1, EPOCHS + 1)]
    read = [read_weights(f, network) for f in files]
    for got, want in zip(read, saved[key]["snapshots"]):
        for name, arrays in want.items():
            for a, b in zip(got[name], arrays):
                np.testing.assert_array_equal(a, b)
    bn = next(l.name for l in network.layers if l.kind == "BatchNormalization")
    assert not np.array_equal(read[0][bn][-1], read[1][bn][-1])   # moving variance trained on


@pytest.mark.parametrize("key,value", [("batch_shape", [None, *SHAPE]),
                                       ("batch_input_shape", [None, *SHAPE]),
                                       ("input_shape", list(SHAPE)),
                                       ("build_input_shape", [None, *SHAPE])])
def test_sequential_without_input_layer(saved, key, value):
    config = read_architecture(saved["named"]["dir"] / "model.keras")
    full = network_from_config(config, "full")
    del config["config"]["layers"][0]
    assert config["config"].pop("build_input_shape") == [None, *SHAPE]
    layer = config["config"]["layers"][0]["config"]
    target = config["config"] if key == "build_input_shape" else layer
    target[key] = value
    network = network_from_config(config, "arch.json")
    assert network.layers[0].kind == "InputLayer" and network.input_shape == SHAPE
    assert network.layers[1].inbound == [network.layers[0].name]
    assert [(l.name, l.output_shape, l.weight_shapes) for l in network.layers[1:]] == \
        [(l.name, l.output_shape, l.weight_shapes) for l in full.layers[1:]]


def test_merge_inbound_order(saved):
    name, specs = layer_graph(saved["merge"], "m.json")
    assert name == "m"
    assert [(n, k, inbound) for n, k, _, inbound in specs] == [
        ("img", "InputLayer", []), ("ca", "Conv2D", ["img"]), ("cb", "Conv2D", ["img"]),
        ("sum", "Add", ["ca", "cb"]), ("cat", "Concatenate", ["sum", "ca"]),
        ("fl", "Flatten", ["cat"])]
    network = network_from_config(saved["merge"], "m.json")
    assert [l.output_shape for l in network.layers] == [
        (12, 12, 1), (12, 12, 4), (12, 12, 4), (12, 12, 4), (12, 12, 8), (1152,)]
    assert not any(unsupported_reason(l) for l in network.layers)


def test_unknown_kind_in_sequential_is_a_block(saved):
    """An unknown kind keeps the import going; its shape comes from what the config records."""
    config = _seq_layer(read_architecture(saved["named"]["dir"] / "model.json"), 4,
                        class_name="LSTM")
    network = network_from_config(config, "arch.json")
    conv_b, pool_b, flat = (network.layer(n) for n in ("conv_b", "pool_b", "flat"))
    assert unsupported_reason(conv_b) == "layer 'conv_b': unsupported layer kind 'LSTM'"
    assert conv_b.weight_shapes == [] and conv_b.output_shape == ()   # pool_b records no input
    assert "input is unknown" in unsupported_reason(pool_b)
    assert pool_b.output_shape == (2, 2, 6)             # read from flat's build_config
    assert unsupported_reason(flat) is None and flat.output_shape == (24,)
    assert unsupported_reason(network.layer("conv_a")) is None


def test_topological_order_from_shuffled_config(saved):
    config = copy.deepcopy(saved["merge"])
    config["config"]["layers"].reverse()
    _, specs = layer_graph(config, "m.json")
    order = [s[0] for s in specs]
    assert order[0] == "img" and order[-1] == "fl"
    assert order.index("sum") < order.index("cat") and order.index("ca") < order.index("sum")


def test_shape_the_file_contradicts_marks_the_layer(saved):
    config = _functional_config(saved)
    for entry in config["config"]["layers"]:
        for tensor in entry["inbound_nodes"][0]["args"] if entry["inbound_nodes"] else []:
            if tensor["config"]["keras_history"][0] == "stem":
                tensor["config"]["shape"] = [None, 7, 7, 5]
    stem = network_from_config(config, "arch.json").layer("stem")
    assert unsupported_reason(stem) == ("layer 'stem' (Conv2D): nnvis computes output shape "
                                        "(6, 6, 5) but the file records (7, 7, 5)")
    assert stem.output_shape == (7, 7, 5) and stem.weight_shapes == []


def _functional_config(saved):
    return read_architecture(saved["functional"]["dir"] / "model.json")


def _set_history(config, layer, source):
    for entry in config["config"]["layers"]:
        if entry["name"] == layer:
            entry["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = source
    return config


def _seq_layer(arch, i, **changes):
    arch["config"]["layers"][i].update(changes)
    return arch


GARBLED = [
    (lambda c, s: [c], "not a JSON object"),
    (lambda c, s: {**c, "class_name": "MyModel"}, "'MyModel'"),
    (lambda c, s: {k: v for k, v in c.items() if k != "config"}, "no 'config'"),
    (lambda c, s: {**c, "config": {**c["config"], "layers": {}}}, "no 'layers'"),
    (lambda c, s: _seq_layer(c, 1, class_name=None), "'conv_a' has no class_name"),
    (lambda c, s: _seq_layer(c, 2, config=[]), "layer #2 has no name"),
    (lambda c, s: _seq_layer(c, 1, config={"name": "conv_a", "kernel_size": 3}), "'conv_a'"),
    (lambda c, s: _seq_layer(c, 3, config={**c["config"]["layers"][3]["config"],
                                           "name": "conv_a"}), "two layers are named 'conv_a'"),
    (lambda c, s: _seq_layer(c, 5, class_name="InputLayer"), "'pool_b'.*not the first"),
    (lambda c, s: {**c, "config": {"name": "x", "layers": c["config"]["layers"][1:]}},
     "no InputLayer.*'conv_a' declares no input shape"),
    (lambda c, s: _set_history(_functional_config(s), "head", "nowhere"), "'head'.*'nowhere'"),
    (lambda c, s: _set_history(_functional_config(s), "stem", "head"), "cycle.*stem"),
]


@pytest.mark.parametrize("mutate,message", GARBLED)
def test_garbled_config_raises(saved, mutate, message):
    config = mutate(read_architecture(saved["named"]["dir"] / "model.json"), saved)
    with pytest.raises(NNVisError, match="arch.json: .*" + message):
        network_from_config(config, "arch.json")


def test_bfloat16_weights_read_as_float32(tmp_path):
    model = keras.Sequential([keras.Input((4,)), L.Dense(3, dtype="bfloat16", name="half")])
    model.save_weights(tmp_path / "bf.weights.h5")
    network = network_from_config(json.loads(model.to_json()), "bf.json")
    got = read_weights(tmp_path / "bf.weights.h5", network)["half"]
    want = model.layers[0].get_weights()
    assert str(want[0].dtype) == "bfloat16" and got[0].dtype == np.float32
    np.testing.assert_array_equal(got[0], want[0].astype(np.float32))
    assert np.abs(got[0]).max() > 0


def test_missing_files(tmp_path, saved):
    network = read_network(saved["named"]["dir"] / "model.keras")
    with pytest.raises(NNVisError, match="nope.keras"):
        read_network(tmp_path / "nope.keras")
    with pytest.raises(NNVisError, match="nope.weights.h5"):
        read_weights(tmp_path / "nope.weights.h5", network)


def test_truncated_keras(tmp_path, saved):
    data = (saved["named"]["dir"] / "model.keras").read_bytes()
    network = read_network(saved["named"]["dir"] / "model.keras")
    for cut in (10, len(data) // 2, len(data) - 30):
        path = tmp_path / f"cut{cut}.keras"
        path.write_bytes(data[:cut])
        with pytest.raises(NNVisError, match=path.name):
            read_network(path)
        with pytest.raises(NNVisError, match=path.name):
            read_weights(path, network)


def test_truncated_weights_fail_fast(tmp_path, saved):
    data = (saved["named"]["dir"] / "model.weights.h5").read_bytes()
    network = read_network(saved["named"]["dir"] / "model.keras")
    start = time.perf_counter()
    for cut in list(range(0, len(data), len(data) // 40)) + [len(data) - 1]:
        path = tmp_path / f"cut{cut}.weights.h5"
        path.write_bytes(data[:cut])
        with pytest.raises(NNVisError, match=path.name):
            read_weights(path, network)
    assert time.perf_counter() - start < 10


def test_zip_without_members(tmp_path, saved):
    network = read_network(saved["named"]["dir"] / "model.keras")
    path = tmp_path / "empty.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", "{}")
    with pytest.raises(NNVisError, match="empty.keras.*config.json"):
        read_network(path)
    with pytest.raises(NNVisError, match="empty.keras.*model.weights.h5"):
        read_weights(path, network)


def test_nested_model_is_flattened(saved):
    network = network_from_config(saved["nested"], "nested.json")
    dense = network.layers[-1]
    assert dense.kind == "Dense" and dense.inbound == ["v"]
    assert dense.config["_nnvis_block"] == [["inner", "Sequential"]]


def test_shared_layer_is_drawn_once_per_call(saved):
    network = network_from_config(saved["shared"], "shared.json")
    second = network.layer("shared@1")
    assert second.config["_nnvis_shares"] == "shared" and second.weight_shapes == []
    assert network.layer("shared").weight_shapes


def test_not_keras_files(tmp_path, saved):
    network = read_network(saved["named"]["dir"] / "model.keras")
    text = tmp_path / "notes.weights.h5"
    text.write_text("hello")
    with pytest.raises(NNVisError, match="notes.weights.h5.*neither"):
        read_weights(text, network)
    bad_json = tmp_path / "arch.json"
    bad_json.write_text('{"class_name": "Sequential", ')
    with pytest.raises(NNVisError, match="arch.json"):
        read_network(bad_json)



def test_legacy_h5_written_by_keras3(tmp_path, saved):
    """Keras 3 still writes the legacy layout for a `.h5` name: weights keyed by layer name."""
    model = saved["named"]["model"]
    legacy = tmp_path / "legacy.h5"
    model.save(legacy)
    network = read_network(legacy)
    got = read_weights(legacy, network)
    assert set(got) == {layer.name for layer in model.layers if layer.get_weights()}
    for layer in model.layers:
        for mine, theirs in zip(got.get(layer.name, []), layer.get_weights(), strict=True):
            np.testing.assert_array_equal(mine, theirs)


def test_weights_from_other_architecture(saved):
    network = read_network(saved["default"]["dir"] / "model.keras")
    hidden = network.layers[-2].name
    with pytest.raises(NNVisError, match=rf"wider.weights.h5: layer '{hidden}'.*weight 0 has shape "
                                         r"\(24, 11\), expected \(24, 10\)"):
        read_weights(saved["wider"], network)
    with pytest.raises(NNVisError, match=r"longer.weights.h5: .*layers/dense_2"):
        read_weights(saved["longer"], network)
    with pytest.raises(NNVisError, match=r"model.weights.h5: layer .*expected \(3, 3, 1, 4\)"):
        read_weights(saved["functional"]["dir"] / "model.weights.h5", network)
    config = read_architecture(saved["default"]["dir"] / "model.json")
    config["config"]["layers"].append({"class_name": "Dense", "config": {"name": "more",
                                                                         "units": 2}})
    with pytest.raises(NNVisError, match=r"model.weights.h5: no weights for layer 'more' "
                                         r"\(expected group layers/dense_2/vars\)"):
        read_weights(saved["default"]["dir"] / "model.weights.h5",
                     network_from_config(config, "arch.json"))
