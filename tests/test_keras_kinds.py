"""Keras 3 ops, keras.applications' own layers, 1D and 3D maps: trained models of each family
(weights=None, small inputs, 2 epochs saved by ModelCheckpoint) loaded through `load_run`, every
layer at every epoch against Keras itself — each op node, nested models' layers included."""
import collections

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import layers as L  # noqa: E402

from nnvis_addon.tools.bench.forward import relative_error  # noqa: E402
from nnvis_addon.model.keras_config import unsupported_reason  # noqa: E402
from nnvis_addon.layout import STRIP_ASPECT  # noqa: E402
from nnvis_addon.options import SceneOptions  # noqa: E402
from nnvis_addon.plan import plan_scene  # noqa: E402
from nnvis_addon.run import load_run  # noqa: E402

TIER = "oracle"

EPOCHS = 2


def _conv1d():
    inp = keras.Input((48, 3), name="signal")
    x = L.Conv1D(8, 5, activation="relu", name="c1")(inp)
    x = L.ZeroPadding1D((1, 2))(x)
    x = L.Conv1D(8, 3, padding="causal", dilation_rate=2)(x)
    x = L.MaxPooling1D(2)(x)
    x = L.SeparableConv1D(6, 3, padding="same", depth_multiplier=2)(x)
    x = L.DepthwiseConv1D(3, strides=2, padding="same")(x)
    x = L.UpSampling1D(2)(x)
    x = L.Cropping1D((1, 1))(x)
    x = L.AveragePooling1D(3, strides=2, padding="same")(x)
    x = L.Conv1D(10, 3, groups=2, padding="same")(x)
    pooled = L.Concatenate()([L.GlobalAveragePooling1D()(x), L.GlobalMaxPooling1D()(x)])
    return keras.Model(inp, L.Dense(4, activation="softmax")(pooled), name="conv1d_net")


def _conv3d():
    inp = keras.Input((6, 10, 10, 2), name="volume")
    x = L.Conv3D(4, 3, padding="same", activation="relu")(inp)
    x = L.ZeroPadding3D(((1, 0), (1, 1), (0, 2)))(x)
    x = L.Conv3D(6, (2, 3, 3), strides=(1, 2, 2))(x)
    x = L.MaxPooling3D(2, padding="same")(x)
    x = L.UpSampling3D((2, 1, 2))(x)
    x = L.Cropping3D(((1, 0), (0, 1), (1, 1)))(x)
    x = L.AveragePooling3D(2, strides=1, padding="same")(x)
    pooled = L.Add()([L.GlobalAveragePooling3D()(x), L.GlobalMaxPooling3D()(x)])
    return keras.Model(inp, L.Dense(4, activation="softmax")(pooled), name="conv3d_net")


def _ops():
    """A model written with keras.ops: constants on either side, two-tensor ops, reductions."""
    from keras import ops
    inp = keras.Input((8, 8, 3), name="img")
    x = L.Conv2D(6, 3, padding="same")(inp)
    gate = ops.relu6(x + 3.0) / 6.0                       # hard sigmoid, written out
    x = x * gate
    squeeze = ops.mean(ops.sigmoid(x), axis=(1, 2), keepdims=True)
    x = ops.multiply(x, squeeze)
    x = ops.subtract(1.0, ops.maximum(x, -0.5))
    x = ops.clip(ops.gelu(x), -1.0, 1.0) + ops.square(ops.tanh(x))
    x = ops.concatenate([ops.leaky_relu(x, negative_slope=0.1), ops.silu(x)], axis=-1)
    x = ops.max(ops.hard_silu(x), axis=(1, 2))
    return keras.Model(inp, L.Dense(4, activation="softmax")(x), name="ops_net")


MODELS = {   # name: (builder, trained by fit (else weights drawn per epoch), kinds it must bring)
    "mobilenetv3small": (lambda: keras.applications.MobileNetV3Small(
        input_shape=(32, 32, 3), weights=None, classes=4, minimalistic=False), False,
        {"ops.Add": 9, "ops.Multiply": 9, "Multiply": 9, "ReLU": 23}),
    "convnexttiny": (lambda: keras.applications.ConvNeXtTiny(
        input_shape=(32, 32, 3), weights=None, classes=4), False,
        {"LayerScale": 18, "LayerNormalization": 23, "ops.Add": 18}),
    "conv1d": (_conv1d, True, {"Conv1D": 3, "SeparableConv1D": 1, "DepthwiseConv1D": 1,
                               "MaxPooling1D": 1, "AveragePooling1D": 1, "UpSampling1D": 1,
                               "GlobalAveragePooling1D": 1, "GlobalMaxPooling1D": 1}),
    "conv3d": (_conv3d, True, {"Conv3D": 2, "MaxPooling3D": 1, "AveragePooling3D": 1,
                               "UpSampling3D": 1, "ZeroPadding3D": 1, "Cropping3D": 1,
                               "GlobalAveragePooling3D": 1, "GlobalMaxPooling3D": 1}),
    "ops": (_ops, True, {"ops.Add": 2, "ops.TrueDivide": 1, "ops.Mean": 1, "ops.Subtract": 1,
                         "ops.Concatenate": 1, "ops.Max": 1, "ops.Gelu": 1}),
}


def keras_outputs(model, probe) -> dict[str, np.ndarray]:
    """Every operation's output for one probe — ops nodes, and the layers of nested models (which
    nnvis draws flattened) — by running Keras' own graph op by op."""
    out = {model.inputs[0]._keras_history.operation.name: probe}

    def recording(op):
        def call(*args, **kwargs):
            if isinstance(op, keras.Sequential):      # its layers one by one, as nnvis draws them
                y = args[0]
                for layer in op.layers:
                    y = layer(y, training=False)
                    out[layer.name] = np.asarray(y)[0]
                return y
            y = op(*args, **kwargs)
            out[op.name] = np.asarray(y)[0]
            return y
        return call
    model._run_through_graph(probe[None], operation_fn=recording)
    return out


class _Outputs(keras.callbacks.Callback):
    """Keras' outputs of every operation at each epoch's end (listed after ModelCheckpoint)."""

    def __init__(self, probe):
        super().__init__()
        self.probe, self.epochs = probe, []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(keras_outputs(self.model, self.probe))


def _drift(model, rng) -> None:
    """New values for every weight, as an epoch of training would leave them but cheaper than
    training these large graphs (tracing ConvNeXt's grouped convolutions' gradients costs
    minutes): each scaled and shifted at random, variances kept positive — LayerScale's
    gamma leaves its 1e-6 start, so every residual branch counts."""
    for variable in model.weights:
        value = np.asarray(variable)
        value = value * rng.uniform(0.5, 1.5, value.shape) + rng.normal(0, 0.05, value.shape)
        variable.assign((np.abs(value) + 0.5 if "variance" in variable.path else value)
                        .astype(np.float32))


@pytest.fixture(scope="module", params=list(MODELS))
def trained(request, tmp_path_factory):
    """(name, run, Keras' outputs per epoch): 2 epochs saved as epochNN.keras, by
    ModelCheckpoint where training is cheap, else as drawn weights."""
    name = request.param
    build, fit, _ = MODELS[name]
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build()
    shape = tuple(model.inputs[0].shape[1:])
    rng = np.random.default_rng(0)
    probe = rng.uniform(-1, 1, shape).astype(np.float32)
    folder = tmp_path_factory.mktemp(name)
    outputs = _Outputs(probe)
    if fit:
        model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
        x = rng.uniform(-1, 1, (8, *shape)).astype(np.float32)
        model.fit(x, np.arange(8) % 4, epochs=EPOCHS, batch_size=8, verbose=0, callbacks=[
            keras.callbacks.ModelCheckpoint(str(folder / "epoch{epoch:02d}.keras")), outputs])
    else:
        outputs.set_model(model)
        for epoch in range(1, EPOCHS + 1):
            _drift(model, rng)
            model.save(folder / f"epoch{epoch:02d}.keras")
            outputs.on_epoch_end(epoch)
    np.save(folder / "probe.npy", probe)           # the probe the importer finds beside them
    return name, load_run(folder), outputs.epochs


def test_every_layer_every_epoch_equals_keras(trained):
    name, run, want = trained
    assert run.epochs == list(range(1, EPOCHS + 1))
    assert not run.warnings
    kinds = collections.Counter(layer.kind for layer in run.network.layers)
    assert {k: kinds[k] for k in MODELS[name][2]} == MODELS[name][2]
    assert [l.name for l in run.network.layers if unsupported_reason(l)] == []
    assert set(want[0]) == {l.name for l in run.network.layers}
    errors = {}
    for epoch, expected in zip(run.epochs, want):
        for layer in run.network.layers:
            got = run.activations(layer.name, epoch)
            assert got.shape == expected[layer.name].shape, layer.name
            errors[layer.name, epoch] = relative_error(got, expected[layer.name])
    worst = max(errors, key=errors.get)
    assert errors[worst] <= 1e-4, (worst, errors[worst])
    last = run.network.output                         # training moved the numbers
    assert not np.allclose(run.activations(last, 1), run.activations(last, 2))


def test_maps_drawn_as_what_they_are(trained):
    """Every layer drawn with activations; a 1D map is a strip one row high, a 3D map its depth
    slices stacked (rows D·H), the atlas holding the run's values in that order."""
    name, run, _ = trained
    if name == "convnexttiny":
        pytest.skip("2D maps as MobileNetV3's; its 768-channel edges cost half a minute to plan")
    plan = plan_scene(run, SceneOptions())
    assert [p.layer.name for p in plan.layers if p.unsupported] == []
    for layer_plan in plan.layers:
        layer, atlas = layer_plan.layer, layer_plan.atlas
        shape = layer.output_shape
        if len(shape) == 2:
            assert (atlas.tile_h, atlas.tile_w) == (1, shape[0])
            width, height = layer_plan.size
            assert width > height > 0
        elif len(shape) == 4:
            assert (atlas.tile_h, atlas.tile_w) == (shape[0] * shape[1], shape[2])
        else:
            continue
        values = run.activations(layer.name, run.epochs[-1])
        d, c = (shape[0] - 1, shape[-1] - 1)            # the last slice's / length's last map
        if len(shape) == 2:
            assert atlas.value(c, 1, 0, d) == values[d, c]
        else:
            h, w = shape[1] - 1, shape[2] - 1
            assert atlas.value(c, 1, d * shape[1] + h, w) == values[d, h, w, c]


def test_an_op_nnvis_cannot_compute_is_named_and_the_rest_drawn(tmp_path):
    from keras import ops
    keras.backend.clear_session()
    inp = keras.Input((6, 6, 2), name="img")
    a = L.Conv2D(3, 3, name="conv")(inp)
    b = ops.cumsum(a, axis=1)
    side = L.ReLU(name="side")(a)
    out = L.Dense(2, name="head")(L.Flatten(name="flat")(ops.add(b, side)))
    keras.Model(inp, out, name="odd_op").save(tmp_path / "odd.keras")
    run = load_run(tmp_path / "odd.keras")
    assert "layer 'cumsum': unsupported Keras op 'Cumsum'" in \
        [w for w in run.warnings if w.startswith("layer 'cumsum'")][0]
    assert [l.name for l in run.network.layers if run.has_activations(l.name)] == \
        ["img", "conv", "side"]
    plan = plan_scene(run, SceneOptions(blocks="expanded"))
    assert [p.layer.name for p in plan.layers if p.unsupported] == ["cumsum", "add", "flat",
                                                                      "head"]


def test_a_recording_of_an_ops_model_has_every_op(tmp_path):
    """The Keras Recorder records `model.layers`, which leaves the ops out: the import computes
    them from the recorded outputs that feed them."""
    from nnvis_addon.record import Recorder
    keras.backend.clear_session()
    keras.utils.set_random_seed(1)
    model = _ops()
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (8, 8, 8, 3)).astype(np.float32)
    outputs = _Outputs(x[0])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(x, np.arange(8) % 4, epochs=EPOCHS, batch_size=8, verbose=0,
              callbacks=[Recorder(tmp_path / "rec", x[:2]), outputs])
    run = load_run(tmp_path / "rec")
    assert run.epochs == [0, 1, 2] and not run.warnings
    ops_layers = [l.name for l in run.network.layers if l.kind.startswith("ops.")]
    assert len(ops_layers) == 19
    for epoch, expected in zip(run.epochs[1:], outputs.epochs):
        for layer in run.network.layers:
            assert relative_error(run.activations(layer.name, epoch),
                                  expected[layer.name]) <= 1e-4, (layer.name, epoch)


def test_scene_holds_strips_and_stacked_slices(trained, addon):
    """Through the installed importer: each 1D map a plane as wide as its strip is long and a
    quarter as high (`layout.STRIP_ASPECT`), each 3D map a plane D·H high; the atlas images hold
    the true activations."""
    import bpy
    from nnvis_addon.atlas import as_cells, pack
    from nnvis_addon.scene.nodes import input_ids
    family, run, _ = trained
    if family not in ("conv1d", "conv3d"):
        pytest.skip("2D maps: test_scene.py")
    bpy.ops.wm.read_homefile(use_empty=True)
    before = set(bpy.data.collections)
    assert bpy.ops.import_scene.nnvis_checkpoint(filepath=run.source) == {"FINISHED"}
    (collection,) = [c for c in bpy.data.collections if c not in before]
    for layer in run.network.layers:
        if not layer.is_spatial:
            continue
        mod = collection.objects[f"{collection.name}:{layer.name}"].modifiers["NNVis"]
        ids = input_ids(mod.node_group)
        rows, cols = layer.map_shape
        assert (rows, cols) == ((1, layer.output_shape[0]) if family == "conv1d" else
                                (layer.output_shape[0] * layer.output_shape[1],
                                 layer.output_shape[2]))
        width, height = mod[ids["Width"]], mod[ids["Height"]]
        assert height / width == pytest.approx(max(rows / cols, STRIP_ASPECT)
                                               if family == "conv1d" else rows / cols, rel=1e-5)
        image = next(n.image for n in mod[ids["Material"]].node_tree.nodes
                     if n.bl_idname == "ShaderNodeTexImage")
        pixels = np.empty(image.size[0] * image.size[1] * 4, np.float32)
        image.pixels.foreach_get(pixels)
        acts = np.stack([run.activations(layer.name, e) for e in run.epochs])
        np.testing.assert_array_equal(pixels.reshape(image.size[1], image.size[0], 4)[..., :3],
                                      pack(as_cells(acts, True)).rgb)


@pytest.mark.parametrize("kind, config, shape, message", [
    ("Conv1D", {"filters": 4, "kernel_size": [3], "groups": -1}, (9, 6), "groups"),
    ("AveragePooling3D", {"pool_size": [2, 2, 1 << 31], "padding": "same"}, (4, 4, 4, 2),
     "far larger"),
    ("ops.Add", {"_nnvis_operands": {"keywords": ["x1", "x2"]}}, (4, 4, 2),
     "keyword arguments \\(x1, x2\\)"),
    ("ops.Max", {"_nnvis_operands": [{"input": 0}], "axis": 1, "initial": 3.0}, (4, 4, 2),
     "initial value 3.0"),
])
def test_configs_nnvis_cannot_take_are_named(kind, config, shape, message):
    """Found by fuzzing the new kinds' configs: errors naming the layer, never numpy's."""
    from nnvis_addon.errors import NNVisError
    from nnvis_addon.model import ops
    with pytest.raises(NNVisError, match=f"layer 'x' \\({kind}\\): .*{message}"):
        ops.weight_shapes(kind, config, [shape], layer_name="x")
        ops.output_shape(kind, config, [shape], layer_name="x")


def test_every_op_function_is_a_registered_kind():
    """Every function of the op tables in model/kinds/keras_ops.py is a registered kind that
    computes and whose config keys are checked."""
    from nnvis_addon.model import kinds
    from nnvis_addon.model.kinds import keras_ops
    for table in (keras_ops._UNARY, keras_ops._BINARY, keras_ops._REDUCE):
        for name in table:
            kind = kinds.get(kinds.OP_PREFIX + name)
            assert kind is not None and kind.apply is not None and kind.config_keys is not None


def test_a_signal_probe_is_resized_along_its_length():
    """A Conv1D model's probe of another length is resampled like an image row (linear,
    half-pixel centres); one of other channels is refused naming its shape."""
    from nnvis_addon.errors import NNVisError
    from nnvis_addon.probe import load_probe
    signal = np.stack([np.arange(4.0), 10 * np.arange(4.0)], axis=1)        # (4, 2)
    got = load_probe(signal, (8, 2))
    np.testing.assert_allclose(got[:, 0], [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])
    np.testing.assert_allclose(got[:, 1], 10 * got[:, 0])
    with pytest.raises(NNVisError, match=r"shape \(4, 3\) can't be fitted .* \(8, 2\)"):
        load_probe(np.zeros((4, 3)), (8, 2))
