"""Real architectures (keras.applications, weights=None) through nnvis' readers and forward pass.

Each model is built once at the smallest input it allows, its BatchNorm statistics randomised,
saved as .keras and read back without Keras; Keras itself is the oracle for the graph, the weights
and every layer's activations.
"""
import collections

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import layers as L  # noqa: E402

from nnvis_addon.tools.bench.forward import build_application, relative_error  # noqa: E402
from nnvis_addon.io.keras_files import read_network, read_weights  # noqa: E402
from nnvis_addon.model.forward import forward, forward_partial  # noqa: E402
from nnvis_addon.model.keras_config import unsupported_reason  # noqa: E402

TIER = "oracle"

SIZE = 32                           # the smallest input all four accept
# kinds each architecture must bring (the DAG features and new kinds this file is about)
SIGNATURE = {
    "vgg16": {"Conv2D": 13, "MaxPooling2D": 5, "Dense": 3},
    "resnet50": {"Add": 16, "ZeroPadding2D": 2, "BatchNormalization": 53},
    "mobilenetv2": {"DepthwiseConv2D": 17, "Add": 10, "ReLU": 35, "ZeroPadding2D": 4},
    "densenet121": {"Concatenate": 58, "AveragePooling2D": 3, "Conv2D": 120},
}


@pytest.fixture(scope="module", params=list(SIGNATURE))
def app(request, tmp_path_factory):
    name = request.param
    model = build_application(name, SIZE, classes=7)
    path = tmp_path_factory.mktemp(name) / f"{name}.keras"
    model.save(path)
    network = read_network(path)
    probe = np.random.default_rng(2).uniform(-1, 1, (SIZE, SIZE, 3)).astype(np.float32)
    every_layer = keras.Model(model.input, [layer.output for layer in model.layers[1:]])
    want = {layer.name: np.asarray(y)[0]
            for layer, y in zip(model.layers[1:], every_layer(probe[None], training=False))}
    return name, model, network, read_weights(path, network), probe, want


def test_structure_equals_keras(app):
    name, model, network, _, _, _ = app
    assert len(network.layers) == len(model.layers)
    assert [l.name for l in network.layers] == [l.name for l in model.layers]
    assert [l.kind for l in network.layers] == [type(l).__name__ for l in model.layers]
    kinds = collections.Counter(l.kind for l in network.layers)
    assert {k: kinds[k] for k in SIGNATURE[name]} == SIGNATURE[name]
    for ours, theirs in zip(network.layers[1:], model.layers[1:]):
        (node,) = theirs._inbound_nodes                      # the DAG edge list, in call order
        assert ours.inbound == [t._keras_history.operation.name for t in node.input_tensors]
        assert ours.output_shape == tuple(theirs.output.shape[1:])
        assert ours.weight_shapes == [tuple(w.shape) for w in theirs.weights]
        assert unsupported_reason(ours) is None


def test_weights_equal_keras(app):
    _, model, network, weights, _, _ = app
    expected = {l.name: l.get_weights() for l in model.layers if l.weights}
    assert set(weights) == set(expected)
    for layer_name, arrays in expected.items():
        for got, want in zip(weights[layer_name], arrays, strict=True):
            np.testing.assert_array_equal(got, want)
    bn = [l for l in network.layers if l.kind == "BatchNormalization"]
    for layer in bn:                            # the BN formula is really exercised
        assert np.ptp(weights[layer.name][-1]) > 0.5 and np.abs(weights[layer.name][-2]).max() > 0.1


def test_every_activation_equals_keras(app):
    _, model, network, weights, probe, want = app
    got = forward(network, weights, probe)
    assert list(got) == [l.name for l in network.layers]
    errors = {name: relative_error(got[name], y) for name, y in want.items()}
    assert all(got[name].shape == y.shape for name, y in want.items())
    worst = max(errors, key=errors.get)
    assert errors[worst] <= 1e-4, (worst, errors[worst])
    final = got[model.layers[-1].name]
    assert final.shape == (7,) and abs(final.sum() - 1) < 1e-5 and final.std() > 0


# ------------------------------------------------------------------ a Lambda and a custom class


@keras.saving.register_keras_serializable(package="nnvis_test")
class Doubler(L.Layer):
    """A user class: its code exists only in this test, never in the file."""

    def call(self, x):
        return 2 * x


def test_lambda_and_custom_layers_import_as_blocks_without_running(tmp_path):
    marker = tmp_path / "lambda_ran"
    keras.utils.set_random_seed(3)
    inp = keras.Input((10, 10, 3), name="img")
    a = L.Conv2D(4, 3, name="conv_a")(inp)
    side = L.MaxPooling2D(name="side_pool")(a)
    # the path is a constant inside the function's code, so running the stored code would write it
    touch_and_double = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t * 2)[1]")
    lam = L.Lambda(touch_and_double, name="lam")(a)
    b = L.Conv2D(5, 3, name="conv_b")(lam)
    c = Doubler(name="twice")(b)
    out = L.Dense(3, name="head")(L.Flatten(name="flat")(c))
    tail = L.Lambda(lambda t: t + 1, name="tail")(side)       # an output nothing reads
    model = keras.Model(inp, [out, tail], name="odd")
    path = tmp_path / "odd.keras"
    model.save(path)
    assert marker.exists()             # building the model ran the Lambda once, symbolically
    marker.unlink()

    network = read_network(path)
    weights = read_weights(path, network)
    probe = np.random.default_rng(4).standard_normal((10, 10, 3)).astype(np.float32)
    got, skipped = forward_partial(network, weights, probe)
    assert not marker.exists()         # nnvis neither deserialised nor ran the Lambda

    assert [l.output_shape for l in network.layers[:-1]] == \
        [tuple(l.output.shape[1:]) for l in model.layers[:-1]]
    assert network.layers[-1].name == "tail" and network.layers[-1].output_shape == ()  # unrecorded
    assert unsupported_reason(network.layer("lam")) == \
        "layer 'lam': unsupported layer kind 'Lambda'"
    assert "custom layer class 'nnvis_test>Doubler'" in unsupported_reason(network.layer("twice"))
    assert list(got) == ["img", "conv_a", "side_pool"]
    assert list(skipped) == ["lam", "conv_b", "twice", "flat", "head", "tail"]
    assert "needs the output of 'lam'" in skipped["head"]
    reference = keras.Model(model.input,
                            [model.get_layer(n).output for n in ("conv_a", "side_pool")])
    for layer_name, y in zip(("conv_a", "side_pool"), reference(probe[None])):
        assert relative_error(got[layer_name], np.asarray(y)[0]) <= 1e-5

    keras.saving.load_model(path, safe_mode=False)      # what running the file's code looks like
    assert marker.exists()
