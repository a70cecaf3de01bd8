"""Folding a deep network's repeated blocks (blocks.py): which layers make a block, what the folded
network draws (the block's output), the composed edges into a block, expanding a block again, and
the stage labels of a folded network."""
import numpy as np
import pytest

from nnvis_addon import NNVisError, blocks, stages
from nnvis_addon.model.edges import BLOCK_INPUTS, block_reach, layer_edges
from nnvis_addon.model.network import Layer, Network

TIER = "fast"

RNG = np.random.default_rng(11)


def layer(name, kind, shape, *inbound, **config):
    return Layer(name, kind, config, list(inbound), tuple(shape))


def residual_net():
    """in → stem (conv, relu) → block1 (conv a, conv b, add with the shortcut, relu) → gap → out"""
    return Network("res", [
        layer("in", "InputLayer", (6, 6, 2)),
        layer("stem_1_conv", "Conv2D", (6, 6, 3), "in", padding="same"),
        layer("stem_1_relu", "ReLU", (6, 6, 3), "stem_1_conv"),
        layer("b1_1_a", "Conv2D", (6, 6, 4), "stem_1_relu", padding="same"),
        layer("b1_1_b", "Conv2D", (6, 6, 3), "b1_1_a", padding="same"),
        layer("b1_1_add", "Add", (6, 6, 3), "stem_1_relu", "b1_1_b"),
        layer("b1_1_out", "ReLU", (6, 6, 3), "b1_1_add"),
        layer("gap", "GlobalAveragePooling2D", (3,), "b1_1_out"),
        layer("out", "Dense", (2,), "gap"),
    ])


def test_blocks_close_where_no_connection_jumps_over():
    units = blocks.find_blocks(residual_net())
    assert units == [["in"], ["stem_1_conv", "stem_1_relu"],
                     ["b1_1_a", "b1_1_b", "b1_1_add", "b1_1_out"], ["gap"], ["out"]]
    assert [blocks.block_name(residual_net(), u) for u in units] == ["in", "stem_1", "b1_1", "gap",
                                                                     "out"]


def test_sequential_layers_without_a_numbered_prefix_stay_apart():
    net = Network("seq", [layer("in", "InputLayer", (8, 8, 1)),
                          layer("conv1", "Conv2D", (8, 8, 2), "in"),
                          layer("pool1", "MaxPooling2D", (4, 4, 2), "conv1"),
                          layer("conv_a", "Conv2D", (4, 4, 2), "pool1"),
                          layer("conv_b", "Conv2D", (4, 4, 2), "conv_a")])
    assert blocks.find_blocks(net) == [[n.name] for n in net.layers]
    assert blocks.fold(net).layers == net.layers


def test_folded_network_draws_each_block_as_its_output():
    folded = blocks.fold(residual_net())
    assert [l.name for l in folded.layers] == ["in", "stem_1_relu", "b1_1_out", "gap", "out"]
    block = folded.layer("b1_1_out")
    assert block.kind == blocks.KIND and blocks.title(block) == "b1_1"
    assert block.inbound == ["stem_1_relu"] and block.output_shape == (6, 6, 3)
    assert blocks.layer_count(block) == 4 and folded.layer("gap").inbound == ["b1_1_out"]
    expanded = blocks.fold(residual_net(), expand=["b1_1"])
    assert "b1_1_add" in [l.name for l in expanded.layers]
    assert expanded.layer("b1_1_a").inbound == ["stem_1_relu"]
    assert blocks.should_fold(residual_net(), "folded") and not blocks.should_fold(
        residual_net(), "auto")
    with pytest.raises(ValueError):
        blocks.should_fold(residual_net(), "sideways")
    assert blocks.drawn(residual_net()).layers == residual_net().layers      # 9 layers: kept
    assert blocks.drawn(residual_net(), "folded", " b1_1 ,").layers == expanded.layers
    assert blocks.drawn(residual_net(), "folded").layers == folded.layers


def test_block_edges_compose_the_blocks_kernels():
    """The weight of input channel i → output channel o through the block: the shortcut's 1 (on
    i = o) plus Σ_m ‖A[:, :, i, m]‖ · ‖B[:, :, m, o]‖ over the two convolutions, straight from the
    kernels; only each output's strongest inputs are drawn."""
    net = residual_net()
    epochs = []
    for _ in range(2):
        a, b = RNG.normal(size=(3, 3, 3, 4)), RNG.normal(size=(3, 3, 4, 3))
        epochs.append({"b1_1_a": [a.astype(np.float32), np.zeros(4, np.float32)],
                       "b1_1_b": [b.astype(np.float32), np.zeros(3, np.float32)]})
    edges = layer_edges(blocks.fold(net), "b1_1_out", epochs)["stem_1_relu"]
    assert len(edges) == 3 * min(BLOCK_INPUTS, 3)
    for e, weights in enumerate(epochs):
        a, b = weights["b1_1_a"][0], weights["b1_1_b"][0]
        expected = np.einsum("im,mo->io", np.linalg.norm(a, axis=(0, 1)),
                             np.linalg.norm(b, axis=(0, 1))) + np.eye(3)
        np.testing.assert_allclose(edges.weight[e], expected[edges.src, edges.dst], rtol=1e-5)
    strongest = np.maximum(*[np.einsum("im,mo->io", np.linalg.norm(w["b1_1_a"][0], axis=(0, 1)),
                                       np.linalg.norm(w["b1_1_b"][0], axis=(0, 1))) + np.eye(3)
                             for w in epochs])
    for o in range(3):
        drawn = set(edges.src[edges.dst == o])
        assert drawn == set(np.argsort(-strongest[:, o])[:BLOCK_INPUTS])


def cell_net(cells=4):
    """NASNet's shape: each cell reads the two cells before it (`p`, adjusted by a 1×1 conv, and
    `ip`), merges branches inside (`add`) and closes by concatenating two of them, so no single
    layer closes a cell: the two previous cells' outputs cross every cell boundary. Cell 1
    adjusts `p` in two branches merged at once, their convolutions listed before cell 0's layers
    (as Keras lists NASNet's): a merge where as few tensors cross, yet no cell."""
    layers = [layer("in", "InputLayer", (6, 6, 2)),
              layer("stem_conv", "Conv2D", (6, 6, 6), "in", padding="same"),
              layer("cell_1_adjust_a", "Conv2D", (6, 6, 3), "stem_conv", padding="same"),
              layer("cell_1_adjust_b", "Conv2D", (6, 6, 3), "stem_conv", padding="same")]
    outs = ["stem_conv", "stem_conv"]
    for k in range(cells):
        p, ip = outs[-2], outs[-1]
        layers += [layer(f"cell_{k}_adjust", "Add", (6, 6, 3), "cell_1_adjust_a",
                         "cell_1_adjust_b") if k == 1 else
                   layer(f"cell_{k}_adjust", "Conv2D", (6, 6, 3), p, padding="same"),
                   layer(f"cell_{k}_ip", "Conv2D", (6, 6, 3), ip, padding="same"),
                   layer(f"cell_{k}_add", "Add", (6, 6, 3), f"cell_{k}_adjust", f"cell_{k}_ip"),
                   layer(f"cell_{k}_sep", "Conv2D", (6, 6, 3), f"cell_{k}_add", padding="same"),
                   layer(f"cell_{k}_concat", "Concatenate", (6, 6, 6), f"cell_{k}_ip",
                         f"cell_{k}_sep", axis=-1)]
        outs.append(f"cell_{k}_concat")
    layers += [layer("gap", "GlobalAveragePooling2D", (6,), outs[-1]),
               layer("out", "Dense", (2,), "gap")]
    return Network("cells", layers)


def cell_weights(net, epochs=2):
    return [{l.name: [RNG.normal(size=(3, 3, net.layer(l.inbound[0]).output_shape[-1],
                                       l.output_shape[-1])).astype(np.float32),
                      np.zeros(l.output_shape[-1], np.float32)]
             for l in net.layers if l.kind == "Conv2D"} for _ in range(epochs)]


def test_cells_that_read_two_cells_back_fold_one_unit_each():
    """NASNetMobile's 765 inner layers were one unit (no layer closes a cell); split where the
    fewest tensors cross, each cell is a unit shown by its concatenation, and a cell reading the
    one two back gets an edge that skips a unit."""
    net = cell_net()
    units = blocks.find_blocks(net)
    assert units[:2] == [["in"], ["stem_conv"]] and units[-2:] == [["gap"], ["out"]]
    assert units[2:-2] == [["cell_1_adjust_a", "cell_1_adjust_b"] * (k == 1) +
                           [f"cell_{k}_{n}" for n in ("adjust", "ip", "add", "sep", "concat")]
                           for k in range(4)]
    folded = blocks.fold(net)
    assert [blocks.title(l) for l in folded.layers] == \
        ["in", "stem_conv", "cell_0", "cell_1", "cell_2", "cell_3", "gap", "out"]
    assert folded.layer("cell_1_concat").inbound == ["stem_conv", "cell_0_concat"]
    assert folded.layer("cell_3_concat").inbound == ["cell_1_concat", "cell_2_concat"]
    expanded = blocks.fold(net, expand=["cell_2"])
    assert expanded.layer("cell_2_adjust").inbound == ["cell_0_concat"]
    assert expanded.layer("cell_3_concat").inbound == ["cell_1_concat", "cell_2_concat"]


def test_folded_cells_carry_the_whole_networks_composed_influence():
    """Composing the folded cells' reach along the folded graph (skip edges included) gives how
    strongly each stem channel reaches each output channel through all the cells, unfolded: no
    path is lost or counted twice where a cell reads the one two back."""
    net = cell_net()
    weights = cell_weights(net)
    folded = blocks.fold(net)
    stem, cells = folded.layer("stem_conv"), folded.layers[2:6]
    whole = Layer("all_cells", blocks.KIND, {}, ["stem_conv"], (6, 6, 6),
                  inner=[l for l in net.layers if l.name.startswith("cell_")])
    expected = block_reach(whole, stem, weights, [stem])
    for e in range(2):
        reach = {"stem_conv": np.eye(6, dtype=np.float32)}
        for cell in cells:
            sources = [folded.layer(n) for n in cell.inbound]
            reach[cell.name] = sum(reach[s.name] @ block_reach(cell, s, weights, sources)[e]
                                   for s in sources)
        np.testing.assert_allclose(reach["cell_3_concat"], expected[e], rtol=1e-5)


def test_a_cell_draws_each_output_maps_strongest_input_from_each_cell_it_reads():
    """A folded block reading two sources shares its `BLOCK_INPUTS` edges per output map between
    them: each output gets the strongest composed input (at any epoch) of each cell it reads, so
    the edges skipping a cell do not double the sheaf, and neither cell's connection is empty."""
    net = cell_net()
    weights = cell_weights(net)
    folded = blocks.fold(net)
    cell = folded.layer("cell_3_concat")
    sources = [folded.layer(n) for n in cell.inbound]
    edges = layer_edges(folded, cell.name, weights)
    assert BLOCK_INPUTS == len(sources)
    for s, reached in zip(sources, [np.arange(3, 6), np.arange(6)]):   # p reaches the sep half
        e, reach = edges[s.name], np.stack(block_reach(cell, s, weights, sources))
        np.testing.assert_array_equal(e.dst, reached)
        np.testing.assert_array_equal(e.src, reach.max(axis=0).argmax(axis=0)[reached])
        np.testing.assert_allclose(e.weight, reach[:, e.src, e.dst], rtol=1e-6)


def test_a_block_closing_in_a_keras_auto_name_is_titled_by_its_named_layers():
    """Xception's blocks close in `add`, `add_1`, ... (the shortcut's layers are Keras' automatic
    `conv2d_2`, `batch_normalization_2`): titled `block4` from the other layers' numbered prefix;
    a block with no such prefix keeps its output's name."""
    net = Network("x", [
        layer("in", "InputLayer", (6, 6, 3)),
        layer("block4_sepconv1", "SeparableConv2D", (6, 6, 3), "in"),
        layer("block4_sepconv1_bn", "BatchNormalization", (6, 6, 3), "block4_sepconv1"),
        layer("block4_pool", "MaxPooling2D", (3, 3, 3), "block4_sepconv1_bn"),
        layer("conv2d_2", "Conv2D", (3, 3, 3), "in"),
        layer("batch_normalization_2", "BatchNormalization", (3, 3, 3), "conv2d_2"),
        layer("add_2", "Add", (3, 3, 3), "block4_pool", "batch_normalization_2"),
        layer("sep_a", "SeparableConv2D", (3, 3, 3), "add_2"),
        layer("add", "ops.Add", (3, 3, 3), "add_2", "sep_a")])
    assert blocks.find_blocks(net)[1:] == [[l.name for l in net.layers[1:7]], ["sep_a", "add"]]
    assert [blocks.title(l) for l in blocks.fold(net).layers] == ["in", "block4", "add"]
    assert "conv2d_2" in [l.name for l in blocks.fold(net, expand=["block4"]).layers]
    assert [l.auto_named for l in net.layers] == [False] * 4 + [True] * 3 + [False, True]


@pytest.fixture(scope="module")
def resnet50(tmp_path_factory):
    pytest.importorskip("keras")
    from nnvis_addon import load_run
    from nnvis_addon.tools.bench.forward import build_application
    path = tmp_path_factory.mktemp("resnet50") / "resnet50.keras"
    build_application("resnet50", 32, classes=10).save(path)
    return load_run(path).network


def test_resnet50_folds_into_its_bottlenecks(resnet50):
    folded = blocks.fold(resnet50)
    titles = [blocks.title(l) for l in folded.layers]
    assert len(resnet50.layers) == 177 and len(folded.layers) == 21
    assert titles[3:6] == ["conv2_block1", "conv2_block2", "conv2_block3"]
    assert titles[-4:] == ["conv5_block2", "conv5_block3", "avg_pool", "predictions"]
    assert sum(blocks.layer_count(l) for l in folded.layers) == 177
    assert folded.layer("conv2_block1_out").inbound == ["pool1_pool"]
    texts = {s.name: s.text(folded) for s in stages.stages(folded)}
    assert list(texts) == ["input", "stem", "stage 1", "stage 2", "stage 3", "stage 4", "head"]
    assert texts["stage 3"].startswith("stage 3 · 6 blocks")


def test_a_name_finds_the_folded_blocks_it_stands_for(resnet50):
    """Expand Block by name (rebuild.block_titles): a block, a layer inside it, a block's name
    prefix; a name that matches nothing finds nothing (the operator then says so)."""
    units = {blocks.title(l): [i.name for i in l.inner] for l in blocks.fold(resnet50).layers
             if l.kind == blocks.KIND}
    assert blocks.named("conv3_block2", units) == ["conv3_block2"]
    assert blocks.named("conv3_block2_1_conv", units) == ["conv3_block2"]
    assert blocks.named("conv3", units) == [f"conv3_block{k}" for k in range(1, 5)]
    assert blocks.named("conv3_block22", units) == blocks.named("conv9", units) == []
    expanded = blocks.fold(resnet50, expand=["conv3"])        # the import's Expand Blocks too
    assert {l.config.get(blocks.EXPANDED) for l in expanded.layers} - {None} == \
        {f"conv3_block{k}" for k in range(1, 5)}
    with pytest.raises(NNVisError, match="has no block 'conv9'.*conv3_block2"):
        blocks.fold(resnet50, expand=["conv2_block1", "conv9"])


def test_padding_inside_an_expanded_block_starts_no_stage():
    """Spans of one resolution on either side of a padding layer are one stage."""
    net = Network("pad", [layer("in", "InputLayer", (8, 8, 1)),
                          *[layer(f"c{k}", "Conv2D", (8, 8, 2), f"c{k - 1}" if k > 1 else "in")
                            for k in range(1, 4)],
                          layer("pad", "ZeroPadding2D", (10, 10, 2), "c3"),
                          *[layer(f"c{k}", "Conv2D", (8, 8, 2), f"c{k - 1}" if k > 4 else "pad")
                            for k in range(4, 7)],
                          layer("gap", "GlobalAveragePooling2D", (2,), "c6"),
                          layer("out", "Dense", (2,), "gap")])
    found = stages.stages(net)
    assert [s.name for s in found] == ["input", "stage 1", "head"]
    assert found[1].layers == ["c1", "c2", "c3", "pad", "c4", "c5", "c6"]


@pytest.mark.parametrize("name, shown", [
    ("/features/features.1/Relu", "features.1/Relu"), ("/layer1/layer1.0/conv1/Conv", "layer1.0/conv1"),
    ("/conv1/Conv", "conv1"), ("/Flatten", "Flatten"), ("/fc/Gemm", "fc/Gemm"),
    ("conv2d_3", "conv2d_3"), ("block1/conv", "block1/conv")])
def test_torch_onnx_node_paths_read_without_their_repeats(name, shown):
    """Legends and labels titled "/features/features.1/Relu" (torchvision through ONNX)."""
    assert blocks.readable(name) == shown
