"""Folding a deep network's repeated blocks (blocks.py): which layers make a block, what the folded
network draws (the block's output), the composed edges into a block, expanding a block again, and
the stage labels of a folded network."""
import numpy as np
import pytest

from nnvis_addon import blocks, stages
from nnvis_addon.model.edges import BLOCK_INPUTS, layer_edges
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
    assert [blocks.block_name(u) for u in units] == ["in", "stem_1", "b1_1", "gap", "out"]


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


@pytest.mark.parametrize("name, shown", [
    ("/features/features.1/Relu", "features.1/Relu"), ("/layer1/layer1.0/conv1/Conv", "layer1.0/conv1"),
    ("/conv1/Conv", "conv1"), ("/Flatten", "Flatten"), ("/fc/Gemm", "fc/Gemm"),
    ("conv2d_3", "conv2d_3"), ("block1/conv", "block1/conv")])
def test_torch_onnx_node_paths_read_without_their_repeats(name, shown):
    """Legends and labels titled "/features/features.1/Relu" (torchvision through ONNX)."""
    assert blocks.readable(name) == shown
