"""The numpy layer kinds and forward pass against Keras itself (the oracle) on random data."""
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

from nnvis_addon.errors import NNVisError  # noqa: E402
from nnvis_addon.model import kernels, kinds, ops  # noqa: E402
from nnvis_addon.model.forward import (forward, forward_batch, forward_batch_partial,  # noqa: E402
                                       forward_partial)
from nnvis_addon.model.network import Layer, Network  # noqa: E402

TIER = "fast"

# Keras 3's names; Keras 2's hard_sigmoid is checked against TF 2.15 in test_keras2_files
ACTIVATION_NAMES = sorted(set(ops.ACTIVATIONS) - {kernels.KERAS2_HARD_SIGMOID})

# (id, layer factory, input shape without batch)
CASES = [
    ("conv_valid", lambda: layers.Conv2D(5, 3), (9, 8, 3)),
    ("conv_same_s2_odd", lambda: layers.Conv2D(4, 3, strides=2, padding="same"), (9, 7, 2)),
    ("conv_same_s2_even", lambda: layers.Conv2D(4, 3, strides=2, padding="same"), (8, 10, 2)),
    ("conv_k4_same_s1", lambda: layers.Conv2D(3, 4, padding="same"), (7, 6, 2)),
    ("conv_5x3_s21_same", lambda: layers.Conv2D(3, (5, 3), strides=(2, 1), padding="same"), (11, 6, 3)),
    ("conv_dil2_valid", lambda: layers.Conv2D(4, 3, dilation_rate=2), (11, 9, 3)),
    ("conv_dil2_same", lambda: layers.Conv2D(4, 3, dilation_rate=(2, 1), padding="same"), (9, 8, 3)),
    ("conv_1x1_nobias", lambda: layers.Conv2D(6, 1, use_bias=False), (5, 5, 4)),
    ("conv_groups2", lambda: layers.Conv2D(6, 3, groups=2, activation="relu"), (7, 7, 4)),
    ("maxpool_2", lambda: layers.MaxPooling2D(), (8, 9, 3)),
    ("maxpool_3s2_same_odd", lambda: layers.MaxPooling2D(3, 2, padding="same"), (7, 9, 2)),
    ("maxpool_3s1_same", lambda: layers.MaxPooling2D(3, 1, padding="same"), (6, 5, 2)),
    ("maxpool_23_s12", lambda: layers.MaxPooling2D((2, 3), (1, 2)), (7, 9, 2)),
    ("avgpool_2", lambda: layers.AveragePooling2D(2), (9, 8, 3)),
    ("avgpool_3s2_same_odd", lambda: layers.AveragePooling2D(3, 2, padding="same"), (7, 9, 2)),
    ("avgpool_2s1_same_odd", lambda: layers.AveragePooling2D(2, 1, padding="same"), (5, 7, 2)),
    ("avgpool_3s2_valid", lambda: layers.AveragePooling2D(3, 2), (9, 8, 2)),
    ("dense", lambda: layers.Dense(7), (12,)),
    ("dense_rank3_input", lambda: layers.Dense(4, activation="tanh"), (5, 3, 6)),
    ("dense_nobias", lambda: layers.Dense(3, use_bias=False), (6,)),
    ("flatten", lambda: layers.Flatten(), (4, 3, 5)),
    ("dropout", lambda: layers.Dropout(0.5), (4, 3, 2)),
    ("bn", lambda: layers.BatchNormalization(), (5, 4, 3)),
    ("bn_no_center", lambda: layers.BatchNormalization(center=False, epsilon=0.1), (5, 4, 3)),
    ("bn_no_scale", lambda: layers.BatchNormalization(scale=False), (5, 4, 3)),
    ("bn_neither", lambda: layers.BatchNormalization(center=False, scale=False), (6,)),
    ("bn_axis1", lambda: layers.BatchNormalization(axis=1), (5, 4, 3)),
    ("relu", lambda: layers.ReLU(), (4, 4, 3)),
    ("relu_max6", lambda: layers.ReLU(max_value=6.0), (4, 4, 3)),
    ("relu_leaky", lambda: layers.ReLU(negative_slope=0.3), (4, 4, 3)),
    ("relu_all", lambda: layers.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.5), (4, 4, 3)),
    ("relu_threshold", lambda: layers.ReLU(threshold=0.5), (4, 4, 3)),
    ("relu_threshold_leaky", lambda: layers.ReLU(negative_slope=0.2, threshold=0.5), (4, 4, 3)),
    ("softmax", lambda: layers.Softmax(), (4, 3, 5)),
    ("softmax_axis1", lambda: layers.Softmax(axis=1), (4, 3, 5)),
    ("gap", lambda: layers.GlobalAveragePooling2D(), (5, 7, 3)),
    ("gap_keepdims", lambda: layers.GlobalAveragePooling2D(keepdims=True), (5, 7, 3)),
    ("gmp", lambda: layers.GlobalMaxPooling2D(), (5, 7, 3)),
    ("gmp_keepdims", lambda: layers.GlobalMaxPooling2D(keepdims=True), (5, 7, 3)),
    ("dw", lambda: layers.DepthwiseConv2D(3), (9, 8, 3)),
    ("dw_s2_same_mult2", lambda: layers.DepthwiseConv2D(3, 2, padding="same", depth_multiplier=2),
     (9, 8, 3)),
    ("dw_s2_valid_relu", lambda: layers.DepthwiseConv2D(3, 2, activation="relu"), (10, 9, 4)),
    ("dw_dil2_same_nobias", lambda: layers.DepthwiseConv2D((3, 2), dilation_rate=2, padding="same",
                                                           use_bias=False), (9, 8, 3)),
    ("dw_5x5_s2_same", lambda: layers.DepthwiseConv2D(5, 2, padding="same"), (11, 12, 5)),
    ("sep", lambda: layers.SeparableConv2D(4, 3, depth_multiplier=2), (8, 9, 3)),
    ("sep_s2_same_relu", lambda: layers.SeparableConv2D(5, 3, 2, padding="same", activation="relu"),
     (9, 8, 3)),
    ("sep_nobias", lambda: layers.SeparableConv2D(4, 1, use_bias=False), (5, 5, 3)),
    ("conv_1x1_s2", lambda: layers.Conv2D(4, 1, strides=2), (7, 6, 3)),
    ("conv_1x1_s2_same", lambda: layers.Conv2D(4, 1, strides=2, padding="same"), (7, 6, 3)),
    ("zeropad_int", lambda: layers.ZeroPadding2D(1), (4, 5, 2)),
    ("zeropad_pairs", lambda: layers.ZeroPadding2D(((0, 1), (2, 3))), (4, 5, 2)),
    ("zeropad_rows_cols", lambda: layers.ZeroPadding2D((2, 1)), (4, 5, 2)),
    ("crop", lambda: layers.Cropping2D(((1, 2), (0, 3))), (6, 7, 2)),
    ("crop_int", lambda: layers.Cropping2D(1), (6, 7, 2)),
    ("upsample", lambda: layers.UpSampling2D(), (3, 4, 2)),
    ("upsample_23", lambda: layers.UpSampling2D((2, 3)), (3, 4, 2)),
    ("upsample_bilinear", lambda: layers.UpSampling2D((2, 3), interpolation="bilinear"), (4, 5, 2)),
    ("reshape", lambda: layers.Reshape((20, 3)), (4, 5, 3)),
    ("reshape_infer", lambda: layers.Reshape((-1, 6)), (4, 5, 3)),
    ("rescaling", lambda: layers.Rescaling(1 / 255, offset=-0.5), (4, 5, 3)),
    ("rescaling_lists", lambda: layers.Rescaling([1.0, 2.0, 0.5], offset=[0.0, 1.0, -2.0]),
     (4, 5, 3)),
    ("rescaling_numpy", lambda: layers.Rescaling(np.float32([2, 3, 4]), offset=np.float32(0.5)),
     (4, 5, 3)),
    ("normalization_weights", lambda: layers.Normalization(), (4, 5, 3)),
    ("normalization_axis_none", lambda: layers.Normalization(axis=None), (4, 5, 3)),
    ("normalization_axis_12", lambda: layers.Normalization(axis=(1, 2)), (4, 5, 3)),
    ("normalization_config", lambda: layers.Normalization(mean=[1.0, 2.0, 3.0],
                                                         variance=[1.0, 4.0, 0.25]), (4, 5, 3)),
    ("normalization_config_scalar", lambda: layers.Normalization(mean=0.5, variance=2.0),
     (4, 5, 3)),
    ("normalization_invert", lambda: layers.Normalization(mean=[1.0, 2.0, 3.0],
                                                         variance=[1.0, 4.0, 0.25], invert=True),
     (4, 5, 3)),
    ("layernorm", lambda: layers.LayerNormalization(), (4, 5, 3)),
    ("layernorm_axes", lambda: layers.LayerNormalization(axis=[1, 2, 3], epsilon=0.1), (4, 5, 3)),
    ("layernorm_axis1_noscale", lambda: layers.LayerNormalization(axis=1, scale=False), (4, 5, 3)),
    ("layernorm_rms", lambda: layers.LayerNormalization(rms_scaling=True), (4, 5, 3)),
    ("leaky_relu_layer", lambda: layers.LeakyReLU(0.1), (4, 4, 3)),
    ("spatial_dropout", lambda: layers.SpatialDropout2D(0.5), (4, 4, 3)),
    ("gaussian_noise", lambda: layers.GaussianNoise(1.0), (4, 4, 3)),
    ("identity", lambda: layers.Identity(), (4, 4, 3)),
]
CASES += [(f"activation_{a}", lambda a=a: layers.Activation(a), (3, 4, 5)) for a in ACTIVATION_NAMES]
CASES += [(f"conv_{a}", lambda a=a: layers.Conv2D(3, 2, activation=a), (5, 4, 3))
          for a in ACTIVATION_NAMES]
CASES += [(f"dense_{a}", lambda a=a: layers.Dense(4, activation=a), (6,)) for a in ACTIVATION_NAMES]


def random_weights(layer, rng):
    """Random values in every weight (biases and BN statistics too), variances kept positive."""
    out = []
    for w in layer.weights:
        v = rng.standard_normal(w.shape).astype(np.float32)
        out.append(np.abs(v) + 0.5 if "variance" in w.path else v)
    return out


def assert_close(got, want):
    want = np.asarray(want)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("factory, in_shape", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_kind_matches_keras(factory, in_shape):
    rng = np.random.default_rng(0)
    layer = factory()
    x = rng.standard_normal((2, *in_shape)).astype(np.float32) * 2
    layer(x)                                            # builds the weights
    weights = random_weights(layer, rng)
    layer.set_weights(weights)
    if isinstance(layer, layers.Normalization):
        layer.finalize_state()       # derives its constants from the weights (as loading does)
    want = np.asarray(layer(x))
    kind = type(layer).__name__
    config = json.loads(json.dumps(layer.get_config()))    # as config.json has it: lists, not tuples

    assert ops.output_shape(kind, config, [in_shape]) == want.shape[1:]
    assert ops.weight_shapes(kind, config, [in_shape]) == [tuple(w.shape) for w in layer.weights]
    assert_close(ops.apply(kind, config, weights, [x]), want)


def test_activations_cover_the_brief():
    assert {"relu", "sigmoid", "tanh", "softmax", "linear", "elu", "selu", "softplus", "swish", "silu",
            "gelu", "relu6", "leaky_relu", "hard_sigmoid"} <= set(ops.ACTIVATIONS)
    assert kinds.names() >= {"InputLayer", "Conv2D", "MaxPooling2D", "AveragePooling2D", "Dense",
                             "Flatten", "Dropout", "BatchNormalization", "Activation", "ReLU",
                             "Softmax", "GlobalAveragePooling2D"}


def test_variable_size_shapes_match_keras():
    conv = layers.Conv2D(4, 3, strides=2, padding="same")
    config = conv.get_config()
    want = conv.compute_output_shape((None, None, None, 3))[1:]
    assert ops.output_shape("Conv2D", config, [(None, None, 3)]) == tuple(want) == (None, None, 4)
    assert ops.weight_shapes("Conv2D", config, [(None, None, 3)]) == [(3, 3, 3, 4), (4,)]
    assert ops.output_shape("Flatten", {}, [(None, None, 4)]) == (None,)


def test_input_layer_shape():
    config = layers.InputLayer(shape=(28, 28, 1)).get_config()
    assert ops.output_shape("InputLayer", config, []) == (28, 28, 1)
    assert ops.weight_shapes("InputLayer", config, []) == []


def test_unsupported_kind_and_activation_raise():
    with pytest.raises(NNVisError, match="LSTM"):
        ops.output_shape("LSTM", {}, [(4, 3)])
    with pytest.raises(NNVisError, match="my_lstm.*LSTM"):
        ops.apply("LSTM", {}, [], [np.zeros((1, 4, 3), np.float32)], layer_name="my_lstm")
    with pytest.raises(NNVisError, match="'crelu'"):
        ops.apply("Activation", {"activation": "crelu"}, [], [np.zeros((1, 3), np.float32)])
    with pytest.raises(NNVisError, match="valid_too_small.*smaller than the window"):
        ops.output_shape("Conv2D", {"filters": 2, "kernel_size": 5}, [(3, 3, 1)],
                         layer_name="valid_too_small")


# ---------------------------------------------------------------------------- whole networks


def network_of(model) -> Network:
    """The test's stand-in for the config parser: a Network straight from a built Keras model."""
    input_layer = model.inputs[0]._keras_history.operation
    keras_layers = [input_layer] + [lay for lay in model.layers if lay is not input_layer]
    return Network(model.name, [
        Layer(name=lay.name, kind=type(lay).__name__, config=lay.get_config(),
              inbound=[t._keras_history.operation.name
                       for t in (lay._inbound_nodes[0].input_tensors if lay is not input_layer else [])],
              output_shape=tuple(lay.output.shape[1:]),
              weight_shapes=[tuple(w.shape) for w in lay.weights])
        for lay in keras_layers])


@pytest.fixture(scope="module")
def small_cnn():
    keras.utils.set_random_seed(7)
    model = keras.Sequential([
        layers.Input((14, 13, 2)),
        layers.Conv2D(6, 3, activation="relu", name="conv_a"),
        layers.MaxPooling2D(name="pool_a"),
        layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_b"),
        layers.MaxPooling2D(name="pool_b"),
        layers.Flatten(name="flat"),
        layers.Dense(16, activation="relu", name="fc"),
        layers.Dense(5, activation="softmax", name="probs"),
    ], name="small_cnn")
    rng = np.random.default_rng(1)
    for lay in model.layers:                     # non-zero biases, so a dropped bias would show
        lay.set_weights([w * 0.7 for w in random_weights(lay, rng)])
    weights = {lay.name: lay.get_weights() for lay in model.layers if lay.weights}
    probes = keras.Model(model.inputs, [lay.output for lay in model.layers])
    return model, network_of(model), weights, probes


def test_small_cnn_layer_by_layer(small_cnn):
    model, network, weights, probes = small_cnn
    x = np.random.default_rng(2).standard_normal((14, 13, 2)).astype(np.float32)
    got = forward(network, weights, x)
    want = probes([x[None]])
    assert list(got) == [lay.name for lay in network.layers]
    np.testing.assert_array_equal(got[network.layers[0].name], x)
    for lay, w in zip(model.layers, want):
        assert_close(got[lay.name], np.asarray(w)[0])
    assert abs(got["probs"].sum() - 1) < 1e-5


def test_small_cnn_batch(small_cnn):
    model, network, weights, probes = small_cnn
    x = np.random.default_rng(3).standard_normal((3, 14, 13, 2)).astype(np.float32)
    got = forward_batch(network, weights, x)
    for lay, w in zip(model.layers, probes([x])):
        assert_close(got[lay.name], np.asarray(w))


def test_bad_probe_shape_raises(small_cnn):
    _, network, weights, _ = small_cnn
    with pytest.raises(NNVisError, match=r"small_cnn.*\(13, 14, 2\).*expected \(14, 13, 2\)"):
        forward(network, weights, np.zeros((13, 14, 2), np.float32))
    with pytest.raises(NNVisError, match="expected"):
        forward(network, weights, np.zeros((1, 14, 13, 2), np.float32))   # a batch, not a probe


def test_wrong_or_missing_weights_raise(small_cnn):
    _, network, weights, _ = small_cnn
    x = np.zeros((14, 13, 2), np.float32)
    swapped = dict(weights, conv_b=[weights["conv_b"][0][..., :7], weights["conv_b"][1]])
    with pytest.raises(NNVisError, match=r"conv_b.*\(3, 3, 6, 7\).*\(3, 3, 6, 8\)"):
        forward(network, swapped, x)
    no_bias = dict(weights, fc=weights["fc"][:1])
    with pytest.raises(NNVisError, match="'fc'"):
        forward(network, no_bias, x)
    missing = {k: v for k, v in weights.items() if k != "probs"}
    with pytest.raises(NNVisError, match="'probs'"):
        forward(network, missing, x)


def test_unsupported_layer_in_network_is_named(small_cnn):
    _, network, weights, _ = small_cnn
    odd = Network("odd", [network.layers[0], Layer("warp", "Warp2D", {}, [network.layers[0].name],
                                                   (14, 13, 2))])
    with pytest.raises(NNVisError, match="'warp'.*Warp2D"):
        forward(odd, weights, np.zeros((14, 13, 2), np.float32))


def test_conv_in_many_row_blocks_matches_keras(monkeypatch):
    """Large images are convolved a few output rows at a time; the seams must not show."""
    monkeypatch.setattr(kernels, "_CONV_BLOCK_BYTES", 1)      # one output row per matmul
    rng = np.random.default_rng(4)
    conv = layers.Conv2D(4, 3, strides=2, padding="same", groups=2)
    x = rng.standard_normal((2, 9, 7, 4)).astype(np.float32)
    conv(x)
    weights = random_weights(conv, rng)
    conv.set_weights(weights)
    assert_close(ops.apply("Conv2D", conv.get_config(), weights, [x]), np.asarray(conv(x)))


MERGES = [
    ("add3", layers.Add, {}, [(4, 5, 3)] * 3),
    ("add_broadcast", layers.Add, {}, [(4, 5, 3), (1, 5, 1)]),
    ("subtract", layers.Subtract, {}, [(4, 5, 3)] * 2),
    ("multiply", layers.Multiply, {}, [(4, 5, 3)] * 3),
    ("average", layers.Average, {}, [(4, 5, 3)] * 3),
    ("maximum", layers.Maximum, {}, [(6,)] * 2),
    ("minimum", layers.Minimum, {}, [(4, 5, 3)] * 2),
    ("concat", layers.Concatenate, {}, [(4, 5, 3), (4, 5, 2), (4, 5, 1)]),
    ("concat_axis1", layers.Concatenate, {"axis": 1}, [(4, 5, 3), (2, 5, 3)]),
    ("concat_axis2", layers.Concatenate, {"axis": -2}, [(4, 5, 3), (4, 1, 3)]),
    ("concat_units", layers.Concatenate, {}, [(6,), (3,)]),
]


@pytest.mark.parametrize("cls, kwargs, in_shapes", [m[1:] for m in MERGES],
                         ids=[m[0] for m in MERGES])
def test_merge_matches_keras(cls, kwargs, in_shapes):
    rng = np.random.default_rng(5)
    layer = cls(**kwargs)
    xs = [rng.standard_normal((2, *s)).astype(np.float32) for s in in_shapes]
    want = np.asarray(layer(xs))
    config = json.loads(json.dumps(layer.get_config()))
    assert ops.output_shape(cls.__name__, config, in_shapes) == want.shape[1:]
    assert ops.weight_shapes(cls.__name__, config, in_shapes) == []
    assert_close(ops.apply(cls.__name__, config, [], xs), want)


def test_merge_shape_errors():
    with pytest.raises(NNVisError, match=r"'s' \(Add\).*do not match"):
        ops.output_shape("Add", {}, [(4, 5, 3), (4, 5, 2)], layer_name="s")
    with pytest.raises(NNVisError, match="exactly 2"):
        ops.output_shape("Subtract", {}, [(3,)] * 3)
    with pytest.raises(NNVisError, match="outside the concatenation axis"):
        ops.output_shape("Concatenate", {"axis": -1}, [(4, 5, 3), (4, 6, 3)])
    with pytest.raises(ops.Unsupported, match="different ranks"):
        ops.output_shape("Add", {}, [(4, 5, 3), (3,)])
    with pytest.raises(ops.Unsupported, match="axis 0"):
        ops.output_shape("Concatenate", {"axis": 0}, [(3,), (3,)])


def test_unsupported_options_are_unsupported_not_errors():
    """What nnvis lacks raises ops.Unsupported (import keeps the layer); broken input does not."""
    conv = {"filters": 2, "kernel_size": 3}
    with pytest.raises(ops.Unsupported, match="channels_first"):
        ops.output_shape("Conv2D", {**conv, "data_format": "channels_first"}, [(3, 8, 8)])
    with pytest.raises(ops.Unsupported, match="'c' \\(Conv2D\\).*custom"):
        ops.check_supported("Conv2D", {**conv, "activation": {"class_name": "MyAct"}},
                            layer_name="c")
    with pytest.raises(ops.Unsupported, match="'lam'.*'Lambda'"):
        ops.check_supported("Lambda", {}, layer_name="lam")
    with pytest.raises(ops.Unsupported, match="bicubic"):
        ops.apply("UpSampling2D", {"size": 2, "interpolation": "bicubic"}, [],
                  [np.zeros((1, 2, 2, 1), np.float32)])
    ops.check_supported("Conv2D", {**conv, "activation": "relu"})
    for bad in ({"filters": 2}, {**conv, "kernel_size": "3"}):
        with pytest.raises(NNVisError) as info:
            ops.output_shape("Conv2D", bad, [(8, 8, 3)])
        assert not isinstance(info.value, ops.Unsupported)


def test_partial_forward_skips_what_it_cannot_compute(small_cnn):
    """An unknown layer and everything after it is skipped with reasons; the rest is computed."""
    model, network, weights, probes = small_cnn
    layers_ = list(network.layers)
    pool_a = next(i for i, lay in enumerate(layers_) if lay.name == "pool_a")
    warp = Layer("warp", "Warp2D", {}, ["pool_a"], layers_[pool_a].output_shape)
    side = Layer("side", "Activation", {"activation": "tanh"}, ["pool_a"],
                 layers_[pool_a].output_shape)
    conv_b = layers_[pool_a + 1]
    rewired = Layer(conv_b.name, conv_b.kind, conv_b.config, ["warp"], conv_b.output_shape,
                    conv_b.weight_shapes)
    odd = Network("odd", layers_[:pool_a + 1] + [warp, side, rewired] + layers_[pool_a + 2:])
    x = np.random.default_rng(8).standard_normal((14, 13, 2)).astype(np.float32)
    got, skipped = forward_partial(odd, weights, x)
    assert list(got) == [lay.name for lay in layers_[:pool_a + 1]] + ["side"]
    want = probes([x[None]])
    for lay, w in zip(model.layers[:pool_a], want):
        assert_close(got[lay.name], np.asarray(w)[0])
    assert_close(got["side"], np.tanh(np.asarray(want[pool_a - 1])[0]))   # want has no input
    assert list(skipped) == ["warp", "conv_b", "pool_b", "flat", "fc", "probs"]
    assert skipped["warp"] == "layer 'warp': unsupported layer kind 'Warp2D'"
    assert skipped["probs"] == ("layer 'probs' (Dense): not computed, it needs the output of "
                                "'warp', which nnvis cannot compute")
    batch, skipped_b = forward_batch_partial(odd, weights, np.stack([x, x]))
    assert skipped_b == skipped and batch["side"].shape == (2, *warp.output_shape)
    with pytest.raises(NNVisError, match="'warp'.*Warp2D"):
        forward_batch(odd, weights, np.stack([x, x]))


def test_partial_forward_still_rejects_bad_weights(small_cnn):
    _, network, weights, _ = small_cnn
    bad = dict(weights, fc=weights["fc"][:1])
    with pytest.raises(NNVisError, match="'fc'"):
        forward_partial(network, bad, np.zeros((14, 13, 2), np.float32))
