"""ONNX graphs that move axes: torchvision's ConvNeXt (NHWC LayerNorm, MLP and layer scale between
NCHW ↔ NHWC transposes; LayerNorm and GELU as ops or decomposed by older opsets) and ShuffleNetV2
(channel split and shuffle by Slice, Reshape and Transpose), small, two weight sets, every layer
every epoch equal to onnxruntime; the layout rules themselves against numpy."""
from __future__ import annotations

import numpy as np
import pytest

from nnvis_addon import load_run
from nnvis_addon.model import ops
from nnvis_addon.model.edges import layer_edges
from nnvis_addon.model.onnx_layout import Layout, reshape, transpose

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
pytest.importorskip("onnxruntime")

from onnx_models import assert_nodes_match, export  # noqa: E402

TIER = "oracle"

SIZE = 32


def _epochs(make, folder, opset, seeds=(1, 2), dynamo=False, **options):
    """One ONNX file per 'epoch': the model with every parameter and buffer drawn anew (ConvNeXt
    starts its layer scale at 1e-6 and its LayerNorms at 1 and 0, which would hide the blocks);
    by the TorchScript exporter, or the dynamo one (torch's default: chunk as Split)."""
    folder.mkdir()
    model = make()
    for epoch, seed in enumerate(seeds, 1):
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in list(model.named_parameters()) + list(model.named_buffers()):
                if p.dtype.is_floating_point:
                    value = torch.randn(p.shape, generator=generator) * 0.5
                    p.copy_(value.abs() + 0.5 if "running_var" in name else value)
        if dynamo:
            torch.onnx.export(model.eval(), (torch.zeros(1, 3, SIZE, SIZE),),
                              str(folder / f"epoch_{epoch:02d}.onnx"), dynamo=True,
                              input_names=["input"], opset_version=opset, external_data=False)
        else:
            export(model, folder / f"epoch_{epoch:02d}.onnx", SIZE, opset_version=opset, **options)
    return folder


def _convnext():
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt
    return ConvNeXt([CNBlockConfig(16, 32, 1), CNBlockConfig(32, None, 2)], num_classes=10)


def _shufflenet():
    return torchvision.models.ShuffleNetV2([2, 1, 1], [8, 16, 32, 64, 128], num_classes=10)


def _probe():
    return np.random.default_rng(3).standard_normal((3, SIZE, SIZE)).astype(np.float32)


def _edges(run, layer):
    weights = [{l.name: run.weights(l.name, e) for l in run.layers} for e in run.epochs]
    return layer_edges(run.network, layer.name, weights)


@pytest.mark.parametrize("opset, dynamo, kinds", [
    (20, False, {"LayerNormalization", "Dense", "Activation"}),                # Gelu op
    (17, False, {"LayerNormalization", "Dense", "Erf", "Multiply"}),           # GELU through Erf
    (16, False, {"Mean", "Subtract", "Square", "Sqrt", "Divide", "Erf"}),  # LayerNorm decomposed
    (20, True, {"LayerNormalization", "Gather"}),       # the head's as_strided: Reshape, Gather
])
def test_convnext_every_layer_every_epoch(opset, dynamo, kinds, tmp_path):
    """Opset 16 without constant folding: each Linear's weight is a Transpose of an initializer,
    folded by nnvis."""
    folder = _epochs(_convnext, tmp_path / "convnext", opset, dynamo=dynamo,
                     **({"do_constant_folding": False} if opset == 16 else {}))
    x = _probe()
    run = load_run(folder, probe=x)
    assert run.epochs == [1, 2] and not run.warnings
    assert kinds <= {l.kind for l in run.layers}
    for epoch in run.epochs:
        assert_nodes_match(run, folder / f"epoch_{epoch:02d}.onnx", x, epoch)
    assert not np.allclose(*(run.activations(run.layers[-1].name, e) for e in run.epochs))
    # NCHW ↔ NHWC transposes are identities to the picture: the same maps, one edge each
    transposes = [l for l in run.layers if l.config.get("_nnvis_onnx_op") == "Transpose"]
    assert transposes and {l.kind for l in transposes} == {"Identity"}
    for layer in transposes:
        (edges,) = _edges(run, layer).values()
        assert edges.one_to_one and np.array_equal(edges.src, edges.dst)
        assert layer.output_shape == run.network.layer(layer.inbound[0]).output_shape
    # the layer scale multiplies each map by its own learned factor, each epoch's own: the
    # edges' weights
    scales = [l for l in run.layers if l.kind == "Affine" and l.config["_nnvis_onnx_op"] == "Mul"
              and run.network.layer(l.inbound[0]).config["_nnvis_onnx_op"] == "Transpose"]
    assert len(scales) == 3
    for layer in scales:
        assert layer.weight_shapes[0] == (1, 1, layer.output_shape[-1])
        (edges,) = _edges(run, layer).values()
        factors = np.stack([run.weights(layer.name, e)[0].ravel() for e in run.epochs])
        np.testing.assert_array_equal(edges.weight, factors)
        assert not np.allclose(*factors)


@pytest.mark.parametrize("dynamo", [False, True])
def test_shufflenet_every_layer_every_epoch_and_the_shuffle_is_a_permutation(dynamo, tmp_path):
    folder = _epochs(_shufflenet, tmp_path / "shufflenet", 20, dynamo=dynamo)
    x = _probe()
    run = load_run(folder, probe=x)
    assert run.epochs == [1, 2] and not run.warnings
    for epoch in run.epochs:
        assert_nodes_match(run, folder / f"epoch_{epoch:02d}.onnx", x, epoch)
    shuffles = [l for l in run.layers if l.kind == "Rearrange"]
    assert len(shuffles) == 4
    assert all(l.config.get("_nnvis_onnx_op") == "Transpose" for l in shuffles)
    for layer in shuffles:
        channels = layer.output_shape[-1]
        assert layer.output_shape == run.network.layer(layer.inbound[0]).output_shape
        (edges,) = _edges(run, layer).values()
        assert edges.one_to_one and len(edges) == channels
        c = np.arange(channels)             # torchvision's channel_shuffle, 2 groups
        np.testing.assert_array_equal(edges.src[np.argsort(edges.dst)],
                                      (c % 2) * (channels // 2) + c // 2)
    # the 5-D reshapes around the shuffle keep the maps as they are
    reshapes = [l for l in run.layers if l.config.get("_nnvis_onnx_op") == "Reshape"]
    assert len(reshapes) == 8 and {l.kind for l in reshapes} == {"Identity"}
    # the channel split (two Slices, or a Split's two outputs): each half's maps, one edge each
    halves = [l for l in run.layers if l.kind == "Slice"]
    assert {l.config["_nnvis_onnx_op"] for l in halves} == {"Split" if dynamo else "Slice"}
    assert len(halves) == 2                      # the one stride-1 block splits its input
    for layer in halves:
        (edges,) = _edges(run, layer).values()
        half = layer.output_shape[-1]
        assert edges.one_to_one and len(edges) == half
        np.testing.assert_array_equal(edges.src - edges.dst, layer.config["start"])


def test_layouts_follow_numpy():
    """Reshape/transpose chains (a channel shuffle, NCHW → NHWC → flat, a split channel axis
    moved last): nnvis' array, moved as the layout rules say, is always the ONNX value laid out."""
    rng = np.random.default_rng(0)
    value = rng.standard_normal((1, 6, 4, 5)).astype(np.float32)
    chains = [
        [("reshape", (2, 3, 4, 5)), ("transpose", (0, 2, 1, 3, 4)), ("reshape", (6, 4, 5))],
        [("transpose", (0, 2, 3, 1)), ("reshape", (4 * 5 * 6,))],
        [("transpose", (0, 2, 3, 1)), ("transpose", (0, 3, 1, 2)), ("reshape", (6, 20))],
        [("reshape", (2, 3, 20)), ("transpose", (0, 3, 1, 2)), ("reshape", (20, 6))],
    ]
    for chain in chains:
        onnx_value, layout = value, Layout.default(value.shape[1:])
        ours = layout.as_nnvis(onnx_value)
        for step, arg in chain:
            if step == "reshape":
                onnx_value = onnx_value.reshape(1, *arg)
                layout, moved = reshape(layout, arg)
            else:
                onnx_value = onnx_value.transpose(arg)
                layout, moved = transpose(layout, arg)
            if moved is not None:
                ours = ops.apply("Rearrange", moved, [], [ours[None]])[0]
            np.testing.assert_array_equal(ours, layout.as_nnvis(onnx_value), err_msg=str(chain))
    _, shuffle = transpose(reshape(Layout.default((6, 4, 5)), (2, 3, 4, 5))[0], (0, 2, 1, 3, 4))
    assert shuffle is not None                                   # the one step that moves maps
    assert reshape(Layout.default((6, 4, 5)), (2, 3, 4, 5))[1] is None
    assert reshape(Layout.default((64, 1, 1)), (2, 32, 1, 1)) == (     # 1×1 maps: the same
        Layout((2, 32, 1, 1), ((2,), (3,), (0, 1))), None)
    flat, plain = reshape(Layout.default((64,)), (8, 8))        # units: a plain reshape
    assert flat == Layout.default((8, 8)) and plain["perm"] == [0, 1]


def test_a_transposed_value_into_a_convolution_is_a_labelled_block(tmp_path):
    """An op that needs NCHW maps fed an NHWC value (no transpose back) keeps its place with a
    message naming the layout; the layers before it are computed."""
    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(8, 4, 1)

        def forward(self, x):
            return self.conv(torch.relu(x).permute(0, 2, 3, 1))

    run = load_run(export(Odd(), tmp_path / "odd.onnx", 8, channels=8))
    relu, move, conv = run.layers[1:]
    assert run.has_activations(move.name) and move.kind == "Identity"
    assert not run.has_activations(conv.name)
    assert "needs an (N, C, H, W) input" in conv.config["_nnvis_unsupported"]


def test_scene_plan_draws_the_shuffle_as_maps_and_permutation_edges(tmp_path):
    """The planned scene (what Blender is given) of a shuffle and an NHWC LayerNorm: every layer
    an atlas of feature maps holding its activations, the transposes' maps those of their input,
    the shuffle's connection one straight edge per map, from the map it came from."""
    from torchvision.models.shufflenetv2 import channel_shuffle

    from nnvis_addon.atlas import as_cells, unpack
    from nnvis_addon.options import SceneOptions
    from nnvis_addon.plan import plan_scene

    class Mini(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 1)
            self.norm = torch.nn.LayerNorm(8)

        def forward(self, x):
            x = channel_shuffle(torch.relu(self.a(x)), 2)
            return self.b(self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))

    torch.manual_seed(0)
    run = load_run(export(Mini(), tmp_path / "mini.onnx", 8), probe=_probe()[:, :8, :8])
    plan = plan_scene(run, SceneOptions())
    for lp in plan.layers:
        assert lp.layer.is_spatial and lp.atlas is not None, lp.layer.name
        acts = np.stack([run.activations(lp.layer.name, e) for e in run.epochs])
        a = lp.atlas
        np.testing.assert_array_equal(unpack(a.rgb, a.tile_h, a.tile_w, a.cells,
                                             a.rows_per_epoch), as_cells(acts, True))
    kinds = [l.kind for l in run.layers]
    assert kinds == ["InputLayer", "Conv2D", "ReLU", "Identity", "Rearrange", "Identity",
                     "Identity", "LayerNormalization", "Identity", "Conv2D"]
    shuffle = next(c for c in plan.connections if run.network.layer(c.dst).kind == "Rearrange")
    assert len(shuffle.edges) == 8 and shuffle.edges.one_to_one
    np.testing.assert_array_equal(shuffle.edges.src[np.argsort(shuffle.edges.dst)],
                                  [0, 4, 1, 5, 2, 6, 3, 7])
    np.testing.assert_array_equal(shuffle.straight, shuffle.bundled)


@pytest.mark.parametrize("kind", ["Gather", "Affine", "Rearrange", "Slice"])
def test_a_keras_class_named_like_an_onnx_only_kind_is_a_custom_block(kind):
    """A legacy Keras file's own `Gather` layer (no registered name) is not nnvis' ONNX Gather:
    a labelled block, not a config error that fails the import."""
    from nnvis_addon.model.keras_config import network_from_config, unsupported_reason

    def tensor(name):
        return {"class_name": "__keras_tensor__", "config": {"keras_history": [name, 0, 0]}}

    config = {"class_name": "Functional", "config": {"name": "m", "layers": [
        {"class_name": "InputLayer", "name": "x", "inbound_nodes": [],
         "config": {"name": "x", "batch_shape": [None, 6]}},
        {"class_name": kind, "name": "odd", "config": {"name": "odd", "indices": 2},
         "inbound_nodes": [{"args": [tensor("x")], "kwargs": {}}]},
    ], "input_layers": [["x", 0, 0]], "output_layers": [["odd", 0, 0]]}}
    network = network_from_config(config, "model.keras")
    assert f"custom layer class '{kind}'" in unsupported_reason(network.layer("odd"))
