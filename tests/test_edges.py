"""Edges between layers: which cell feeds which and how strongly, values for colour, pruning.

Connectivity and weights are checked against Keras itself: the Jacobian of a real Keras layer says
which input elements reach which outputs and by how much; edges aggregate that to cells.
"""
import numpy as np
import pytest

from nnvis_addon.errors import NNVisError
from nnvis_addon.model import kinds, ops
from nnvis_addon.model.edges import (Edges, cell_activations, drawable, edge_values, layer_edges,
                                     prune)
from nnvis_addon.model.network import Layer, Network

TIER = "fast"

RNG = np.random.default_rng(7)


def net(*layers):
    return Network("m", list(layers))


def inp(shape, name="in"):
    return Layer(name, "InputLayer", {}, [], tuple(shape))


def lay(name, kind, shape, inbound="in", **config):
    return Layer(name, kind, config, [inbound], tuple(shape))


# --------------------------------------------------------------------------------------------------
# Keras as the oracle


def _keras_jacobians(layer, in_shapes, weights):
    """d layer(x…) / d x_k for random inputs, each flattened to (out elements, in elements)."""
    tf = pytest.importorskip("tensorflow")
    import keras
    symbolic = [keras.Input(shape) for shape in in_shapes]
    layer(symbolic if len(in_shapes) > 1 else symbolic[0])
    if weights:
        layer.set_weights(weights)
    xs = [tf.constant(RNG.normal(size=(1, *shape)).astype(np.float32)) for shape in in_shapes]
    with tf.GradientTape(persistent=True) as tape:
        for x in xs:
            tape.watch(x)
        y = layer(xs if len(xs) > 1 else xs[0], training=False)
    out_shape = tuple(y.shape[1:])
    # TF's vectorised (pfor) jacobian cannot differentiate a grouped convolution on the CPU
    # (Conv2DBackpropInput with groups): loop over the outputs there instead
    pfor = getattr(layer, "groups", 1) == 1
    jacs = [tape.jacobian(y, x, experimental_use_pfor=pfor).numpy().reshape(
        int(np.prod(out_shape)), int(np.prod(shape))) for x, shape in zip(xs, in_shapes)]
    return jacs, out_shape


def _cell_of(shape):
    """Cell of every element of a layer output: channel if feature maps ((L, C), (H, W, C),
    (D, H, W, C)), else the element itself."""
    size = int(np.prod(shape))
    return np.arange(size) % shape[-1] if 2 <= len(shape) <= 4 else np.arange(size)


def _no_weights():
    return []


KERAS_CASES = [   # (id, layer factory, input shape(s), weights factory)
    ("dense", lambda L: L.Dense(4), [(6,)], lambda: [RNG.normal(size=(6, 4)), RNG.normal(size=4)]),
    ("dense_on_maps", lambda L: L.Dense(3), [(2, 3, 5)],
     lambda: [RNG.normal(size=(5, 3)), RNG.normal(size=3)]),
    ("dense_on_rank2", lambda L: L.Dense(3), [(4, 5)],
     lambda: [RNG.normal(size=(5, 3)), RNG.normal(size=3)]),
    ("conv", lambda L: L.Conv2D(4, 3), [(6, 5, 3)],
     lambda: [RNG.normal(size=(3, 3, 3, 4)), RNG.normal(size=4)]),
    ("conv_groups2", lambda L: L.Conv2D(6, 2, groups=2), [(5, 5, 4)],
     lambda: [RNG.normal(size=(2, 2, 2, 6)), RNG.normal(size=6)]),
    ("conv_1x1", lambda L: L.Conv2D(4, 1), [(3, 3, 5)],         # a one-tap window's norm: |k|
     lambda: [RNG.normal(size=(1, 1, 5, 4)), RNG.normal(size=4)]),
    ("depthwise_x2", lambda L: L.DepthwiseConv2D(3, depth_multiplier=2), [(5, 5, 3)],
     lambda: [RNG.normal(size=(3, 3, 3, 2)), RNG.normal(size=6)]),
    ("separable", lambda L: L.SeparableConv2D(4, 3, depth_multiplier=2), [(5, 5, 3)],
     lambda: [RNG.normal(size=(3, 3, 3, 2)), RNG.normal(size=(1, 1, 6, 4)), RNG.normal(size=4)]),
    ("bn", lambda L: L.BatchNormalization(epsilon=0.01), [(3, 3, 4)],
     lambda: [RNG.normal(size=4), RNG.normal(size=4), RNG.normal(size=4), RNG.uniform(0.5, 2, 4)]),
    ("bn_units_no_scale", lambda L: L.BatchNormalization(scale=False), [(5,)],
     lambda: [RNG.normal(size=5), RNG.normal(size=5), RNG.uniform(0.5, 2, 5)]),
    ("flatten", lambda L: L.Flatten(), [(3, 2, 4)], _no_weights),
    ("reshape_units_to_maps", lambda L: L.Reshape((2, 2, 3)), [(12,)], _no_weights),
    ("reshape_maps_to_rank2", lambda L: L.Reshape((6, 4)), [(2, 3, 4)], _no_weights),
    ("maxpool", lambda L: L.MaxPooling2D(), [(4, 4, 3)], _no_weights),
    ("avgpool", lambda L: L.AveragePooling2D(2), [(4, 4, 3)], _no_weights),
    ("gap", lambda L: L.GlobalAveragePooling2D(), [(3, 4, 5)], _no_weights),
    ("gmp", lambda L: L.GlobalMaxPooling2D(), [(3, 4, 5)], _no_weights),
    ("zero_pad", lambda L: L.ZeroPadding2D(1), [(3, 3, 2)], _no_weights),
    ("crop", lambda L: L.Cropping2D(1), [(4, 4, 2)], _no_weights),
    ("upsample", lambda L: L.UpSampling2D(), [(2, 2, 3)], _no_weights),
    ("relu", lambda L: L.ReLU(), [(3, 3, 2)], _no_weights),
    ("leaky_relu", lambda L: L.LeakyReLU(), [(3, 3, 2)], _no_weights),
    ("activation", lambda L: L.Activation("tanh"), [(7,)], _no_weights),
    ("dropout", lambda L: L.Dropout(0.5), [(3, 3, 2)], _no_weights),
    ("add", lambda L: L.Add(), [(3, 3, 4)] * 3, _no_weights),
    ("multiply_broadcast_pixel", lambda L: L.Multiply(), [(3, 3, 4), (1, 1, 4)], _no_weights),
    ("add_broadcast_channel", lambda L: L.Add(), [(3, 3, 1), (3, 3, 4)], _no_weights),
    ("add_units_broadcast", lambda L: L.Add(), [(1,), (5,)], _no_weights),
    ("concat_channels", lambda L: L.Concatenate(), [(3, 3, 2), (3, 3, 5)], _no_weights),
    ("concat_height", lambda L: L.Concatenate(axis=1), [(2, 3, 4), (1, 3, 4)], _no_weights),
    ("concat_units", lambda L: L.Concatenate(), [(3,), (4,)], _no_weights),
    ("concat_rank2_first_axis", lambda L: L.Concatenate(axis=1), [(2, 3), (1, 3)], _no_weights),
]
JACOBIAN_WEIGHT_KINDS = ("Dense", "BatchNormalization")            # weight = one Jacobian entry
KERNEL_KINDS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")     # weight = norm of a block


@pytest.mark.parametrize("case", KERAS_CASES, ids=[c[0] for c in KERAS_CASES])
def test_edges_match_the_keras_jacobian(case):
    """Edges = the cell pairs the Keras layer connects; weights as documented, from the Jacobian.

    Dense/BN weight = the Jacobian entry itself (W[i, o], BN's scale); convolution weight = the L2
    norm of the Jacobian block of one interior output pixel over one input channel's window, which
    is the (effective) kernel slice; weight-free kinds: 1. Merges: checked for every input.
    """
    _, make, in_shapes, make_weights = case
    from keras import layers as L
    layer = make(L)
    weights = [w.astype(np.float32) for w in make_weights()]
    jacs, out_shape = _keras_jacobians(layer, in_shapes, weights)
    kind = type(layer).__name__
    names = [f"in{k}" for k in range(len(in_shapes))]
    network = net(*[inp(shape, name) for shape, name in zip(in_shapes, names)],
                  Layer("x", kind, layer.get_config(), names, out_shape))
    all_edges = layer_edges(network, "x", [{"x": weights}])
    assert set(all_edges) == set(names)
    for name, shape, jac in zip(names, in_shapes, jacs):
        edges = all_edges[name]
        src_cell, dst_cell = _cell_of(shape), _cell_of(out_shape)
        reach = np.zeros((dst_cell.max() + 1, src_cell.max() + 1))
        np.add.at(reach, (dst_cell[:, None], src_cell[None, :]), np.abs(jac))
        expected_pairs = {(int(s), int(d)) for d, s in zip(*np.nonzero(reach > 1e-7))}
        assert {(int(s), int(d)) for s, d in zip(edges.src, edges.dst)} == expected_pairs
        assert len(edges) == len(expected_pairs)                      # no duplicates
        if kind in JACOBIAN_WEIGHT_KINDS:
            # element index = cell index for units and for pixel (0, 0) of map c: one entry
            for s, d, w in zip(edges.src, edges.dst, edges.weight[0]):
                assert jac[d, s] == pytest.approx(w, rel=1e-5, abs=1e-6)
        elif kind in KERNEL_KINDS:
            j = jac.reshape(*out_shape, *shape)[1, 1]                 # an interior output pixel
            for s, d, w in zip(edges.src, edges.dst, edges.weight[0]):
                assert np.linalg.norm(j[d, :, :, s]) == pytest.approx(w, rel=1e-5)
        else:
            np.testing.assert_array_equal(edges.weight, 1.0)


def test_softmax_and_layer_norm_are_drawn_channel_to_channel():
    """They couple all channels of a pixel (every Jacobian entry), but the drawn path is c → c."""
    for kind in ("Softmax", "LayerNormalization"):
        network = net(inp((3, 3, 4)), lay("s", kind, (3, 3, 4)))
        edges = layer_edges(network, "s", [{"s": [np.ones(4), np.zeros(4)]}])["in"]
        np.testing.assert_array_equal(edges.src, np.arange(4))
        np.testing.assert_array_equal(edges.dst, np.arange(4))


def test_the_same_input_twice_keeps_both_edge_sets():
    network = net(inp((2, 2, 3)), Layer("c", "Concatenate", {"axis": -1}, ["in", "in"], (2, 2, 6)))
    edges = layer_edges(network, "c", [{}])["in"]
    np.testing.assert_array_equal(edges.src, [0, 1, 2, 0, 1, 2])
    np.testing.assert_array_equal(edges.dst, np.arange(6))


def test_every_kind_the_forward_pass_computes_has_edges():
    assert all(drawable(kind) for kind in kinds.names())


def test_dense_weights_are_the_kernel_every_epoch():
    kernels = [RNG.normal(size=(6, 4)).astype(np.float32) for _ in range(3)]
    network = net(inp((6,)), lay("d", "Dense", (4,), units=4))
    edges = layer_edges(network, "d", [{"d": [k, np.zeros(4)]} for k in kernels])["in"]
    assert edges.src.dtype == np.int32 and edges.dst.dtype == np.int32
    assert edges.weight.shape == (3, 24) and edges.weight.dtype == np.float32
    for epoch, k in enumerate(kernels):
        for e in range(24):
            assert edges.weight[epoch, e] == k[edges.src[e], edges.dst[e]]


def test_conv_weights_are_kernel_slice_norms():
    k = RNG.normal(size=(3, 3, 4, 5)).astype(np.float32)
    network = net(inp((8, 8, 4)), lay("c", "Conv2D", (6, 6, 5), filters=5, kernel_size=3))
    edges = layer_edges(network, "c", [{"c": [k, np.zeros(5)]}])["in"]
    assert len(edges) == 20
    for s, d, w in zip(edges.src, edges.dst, edges.weight[0]):
        assert w == pytest.approx(np.sqrt(sum(k[a, b, s, d] ** 2 for a in range(3)
                                              for b in range(3))), rel=1e-6)


def test_flatten_maps_each_channel_to_its_units_in_channels_last_order():
    network = net(inp((2, 3, 4)), lay("f", "Flatten", (24,)))
    edges = layer_edges(network, "f", [{}])["in"]
    for c in range(4):
        x = np.zeros((2, 3, 4))
        x[:, :, c] = 1
        np.testing.assert_array_equal(np.sort(edges.dst[edges.src == c]), np.flatnonzero(x.ravel()))


def test_input_layer_has_no_edges_and_multiple_epochs_repeat_weight_free_rows():
    network = net(inp((4, 4, 3)), lay("p", "MaxPooling2D", (2, 2, 3)),
                  lay("f", "Flatten", (12,), "p"))
    assert layer_edges(network, "in", [{}]) == {}
    edges = layer_edges(network, "p", [{}, {}])["in"]
    np.testing.assert_array_equal(edges.src, [0, 1, 2])
    np.testing.assert_array_equal(edges.weight, np.ones((2, 3)))
    assert edges.one_to_one and not layer_edges(network, "f", [{}])["p"].one_to_one


def test_bn_over_a_non_channel_axis_draws_weight_one():
    w = [np.ones(4), np.zeros(4), np.zeros(4), np.full(4, 3.0)]
    network = net(inp((4, 3, 2)), lay("b", "BatchNormalization", (4, 3, 2), axis=1))
    edges = layer_edges(network, "b", [{"b": w}])["in"]
    np.testing.assert_array_equal(edges.weight, np.ones((1, 2)))


@pytest.mark.parametrize("layers, weights, message", [
    ((inp((4,)), lay("x", "LSTM", (4,))), [{}], "'x'.*LSTM"),
    ((inp((4,)), lay("d", "Dense", (3,), units=3)), [{"d": [np.zeros((4, 3))]}, {}],
     "'d'.*epoch 1"),
    ((inp((4,)), lay("d", "Dense", (3,), units=3)), [{"d": [np.zeros((5, 3))]}], "'d'.*shape"),
    ((inp((5, 5, 2)), lay("c", "Conv2D", (3, 3, 4), filters=4, kernel_size=3)),
     [{"c": [np.zeros((3, 3, 3, 4))]}], "'c'.*kernel"),
    ((inp((5, 5, 2)), lay("s", "SeparableConv2D", (3, 3, 4), filters=4, kernel_size=3)),
     [{"s": [np.zeros((3, 3, 2, 1))]}], "'s'.*epoch 0 has 1 weight arrays, needs 2"),
    ((inp((4, 4, 3)), lay("p", "MaxPooling2D", (2, 2, 4))), [{}], "'p'.*cells"),
    ((inp((4,)), lay("d", "Dense", (3,), units=3)), [], "'d'.*no epochs"),
])
def test_bad_layers_raise_naming_the_layer(layers, weights, message):
    with pytest.raises(NNVisError, match=message):
        layer_edges(net(*layers), layers[-1].name, weights)


# --------------------------------------------------------------------------------------------------
# Values and pruning


def _edges(n_src=5, n_dst=3, epochs=2):
    src = np.repeat(np.arange(n_src), n_dst).astype(np.int32)
    dst = np.tile(np.arange(n_dst), n_src).astype(np.int32)
    return Edges(src, dst, RNG.normal(size=(epochs, src.shape[0])).astype(np.float32))


def test_edge_values_are_what_they_claim():
    edges = _edges()
    act = RNG.normal(size=(2, 5)).astype(np.float32)
    np.testing.assert_array_equal(edge_values(edges, "weight"), edges.weight)
    np.testing.assert_array_equal(edge_values(edges, "abs"), np.abs(edges.weight))
    wxa = edge_values(edges, "weight_x_activation", act)
    imp = edge_values(edges, "importance", act)
    for e in range(2):
        for i in range(len(edges)):
            a = act[e, edges.src[i]]
            assert wxa[e, i] == pytest.approx(edges.weight[e, i] * a)
            assert imp[e, i] == pytest.approx(abs(edges.weight[e, i]) * abs(a))
    with pytest.raises(NNVisError, match="needs the source"):
        edge_values(edges, "importance")
    with pytest.raises(NNVisError, match="do not cover"):
        edge_values(edges, "importance", act[:, :4])
    with pytest.raises(NNVisError, match="unknown edge value mode"):
        edge_values(edges, "colour")


def test_cell_activations_average_maps_and_keep_units():
    act = RNG.normal(size=(2, 3, 4, 5))
    maps = cell_activations(Layer("c", "Conv2D", {}, [], (3, 4, 5)), act)
    assert maps.shape == (2, 5)
    assert maps[1, 2] == pytest.approx(np.mean([act[1, h, w, 2] for h in range(3)
                                                for w in range(4)]))
    strips = cell_activations(Layer("c1", "Conv1D", {}, [], (4, 5)), act[:, 0])   # 1D maps
    np.testing.assert_allclose(strips, act[:, 0].mean(axis=1), rtol=1e-6)
    units = cell_activations(Layer("d", "Dense", {}, [], (20,)), act[:, 0].reshape(2, 20))
    np.testing.assert_allclose(units, act[:, 0].reshape(2, 20))
    with pytest.raises(NNVisError, match="'d'"):
        cell_activations(Layer("d", "Dense", {}, [], (7,)), act[:, 0])


def _score(values):
    return np.abs(values).max(axis=0)


def test_prune_keeps_exactly_the_top_k_into_each_target():
    edges = _edges(n_src=9, n_dst=4, epochs=3)
    values = edge_values(edges, "weight")
    keep = prune(edges, values, top_k=2)
    score = _score(values)
    expected = []
    for d in range(4):
        into = [i for i in range(len(edges)) if edges.dst[i] == d]
        expected += sorted(into, key=lambda i: -score[i])[:2]
    np.testing.assert_array_equal(keep, sorted(expected))


def test_prune_scores_on_the_max_over_epochs():
    edges = Edges(np.zeros(3, np.int32), np.zeros(3, np.int32),
                  np.array([[5.0, 0.1, 0.2], [0.0, 0.3, -0.4]], np.float32))
    np.testing.assert_array_equal(prune(edges, edges.weight, top_k=2), [0, 2])   # |−0.4| > 0.3


def test_prune_threshold_and_level_of_detail_cap():
    edges = _edges(n_src=20, n_dst=10)
    values = edge_values(edges, "abs")
    score = _score(values)
    np.testing.assert_array_equal(prune(edges, values, threshold=1.0), np.flatnonzero(score >= 1.0))
    capped = prune(edges, values, max_edges=17)
    np.testing.assert_array_equal(capped, np.sort(np.argsort(-score, kind="stable")[:17]))
    both = prune(edges, values, top_k=3, max_edges=12)
    assert both.shape == (12,) and set(both) <= set(prune(edges, values, top_k=3))
    assert prune(edges, values).shape == (len(edges),)


def test_prune_ties_go_to_the_lower_index_and_subset_follows():
    edges = Edges(np.arange(4, dtype=np.int32), np.zeros(4, np.int32), np.ones((1, 4), np.float32))
    keep = prune(edges, edges.weight, top_k=2)
    np.testing.assert_array_equal(keep, [0, 1])
    sub = edges.subset(keep)
    np.testing.assert_array_equal(sub.src, [0, 1])
    assert sub.weight.shape == (1, 2)


def test_capped_dense_edges_equal_pruning_the_full_list():
    """layer_edges(max_edges=k) on a Dense layer picks exactly prune(max_edges=k) of all edges,
    without building the full list first."""
    from nnvis_addon.model.edges import layer_edges, prune
    from nnvis_addon.model.network import Layer, Network
    net = Network("t", [Layer("i", "InputLayer", {}, [], (50,)),
                        Layer("d", "Dense", {}, ["i"], (40,), [(50, 40), (40,)])])
    rng = np.random.default_rng(0)
    weights = [{"d": [rng.standard_normal((50, 40)).astype(np.float32), np.zeros(40, np.float32)]}
               for _ in range(3)]
    full = layer_edges(net, "d", weights)["i"]
    capped = layer_edges(net, "d", weights, max_edges=300)["i"]
    keep = prune(full, full.weight, max_edges=300)
    assert len(capped) == 300
    np.testing.assert_array_equal(capped.src, full.src[keep])
    np.testing.assert_array_equal(capped.dst, full.dst[keep])
    np.testing.assert_array_equal(capped.weight, full.weight[:, keep])


def test_connection_caps_fit_the_total():
    from nnvis_addon.model.edges import connection_caps
    assert connection_caps([10, 20], 100) is None
    cap = connection_caps([1000, 50, 5000], 1500)
    assert sum(min(s, cap) for s in (1000, 50, 5000)) <= 1500
    assert sum(min(s, cap + 1) for s in (1000, 50, 5000)) > 1500
