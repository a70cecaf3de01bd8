"""Designing a network without a checkpoint: the layer stack against Keras itself (the oracle) —
exported configs, round trips, what Keras refuses, random-weight activations — and the scene a
design builds (and rebuilds in place) against the importer's."""
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from nnvis_addon import design_stack as design  # noqa: E402
from nnvis_addon.errors import NNVisError  # noqa: E402

TIER = "blender"


def Input(*shape, **kw):
    return {"type": "Input", "shape": list(shape), **kw}


def L(kind, **kw):
    return {"type": kind, **kw}


# Every designer type and the options that change shapes: rectangular kernels, strides, 'same'
# padding, dilation, no bias, Dense on a rank-3 input, global pooling.
STACKS = {
    "cnn": [Input(32, 24, 3),
            L("Conv2D", filters=6, kernel_size=[5, 3], strides=2, padding="same",
              activation="relu"),
            L("BatchNormalization"),
            L("Activation", activation="tanh"),
            L("MaxPooling2D", pool_size=3, strides=1),
            L("AveragePooling2D", pool_size=2),
            L("Conv2D", filters=4, kernel_size=3, dilation_rate=2, use_bias=False),
            L("Dropout", rate=0.3),
            L("Dense", units=5),
            L("Flatten"),
            L("Dense", units=10, activation="softmax")],
    "gap": [Input(9, 9, 1),
            L("Conv2D", filters=3, kernel_size=2, padding="valid", activation="elu"),
            L("AveragePooling2D", pool_size=[2, 3], strides=[1, 2], padding="same"),
            L("GlobalAveragePooling2D"),
            L("BatchNormalization", center=False),
            L("Dense", units=4, activation="sigmoid")],
}


def keras_model(rows):
    """The Keras Sequential the rows describe, made by Keras' own constructors (row keys are
    Keras keyword arguments)."""
    made = []
    for row in rows:
        kwargs = {k: v for k, v in row.items() if k != "type"}
        if row["type"] == "Input":
            made.append(keras.Input(shape=tuple(kwargs.pop("shape")), **kwargs))
        else:
            made.append(getattr(keras.layers, row["type"])(**kwargs))
    return keras.Sequential(made)


# Every type with Keras' defaults: the configs nnvis writes for them must be Keras' own.
ALL_TYPES = [Input(16, 16, 1), L("Conv2D", filters=4, kernel_size=3), L("BatchNormalization"),
             L("Activation", activation="relu"), L("MaxPooling2D"), L("AveragePooling2D"),
             L("Dropout", rate=0.5), L("Dense", units=3), L("GlobalAveragePooling2D"),
             L("Flatten"), L("Dense", units=2)]
assert {row["type"] for row in ALL_TYPES} == set(design.TYPES)


@pytest.mark.parametrize("rows", [ALL_TYPES, design.DEFAULT_LAYERS], ids=["all_types", "default"])
def test_a_design_is_exactly_what_keras_to_json_writes(rows):
    keras.backend.clear_session()           # Keras' automatic names start again: conv2d, conv2d_1
    model = keras_model([{"pool_size": 2, **r} if r["type"] == "AveragePooling2D" else r
                         for r in rows])    # Keras requires AveragePooling2D's pool_size
    assert design.keras_config(rows, model.name) == json.loads(model.to_json())


@pytest.mark.parametrize("stack", STACKS, ids=list(STACKS))
def test_exported_json_builds_the_same_layers_and_shapes_in_keras(tmp_path, stack):
    rows = STACKS[stack]
    path = design.export_keras_json(rows, tmp_path / "design.json", name="figure_net")
    model = keras.models.model_from_json(path.read_text())
    shapes = [status.shape for status in design.check(rows)]
    assert model.name == "figure_net"
    assert tuple(model.inputs[0].shape[1:]) == shapes[0]
    assert [type(layer).__name__ for layer in model.layers] == [r["type"] for r in rows[1:]]
    assert [tuple(layer.output.shape[1:]) for layer in model.layers] == shapes[1:]
    network = design.design_network(rows, "figure_net")   # the importer's reading of the same JSON
    assert [layer.output_shape for layer in network.layers] == shapes
    assert sum(int(np.prod(s)) for layer in network.layers for s in layer.weight_shapes) \
        == model.count_params()


def test_keras_config_round_trips_through_the_stack(tmp_path):
    model = keras.Sequential([
        keras.Input((16, 12, 2), name="image"),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", use_bias=False,
                            kernel_regularizer=keras.regularizers.L2(0.01), name="conv_a"),
        keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, center=False),
        keras.layers.MaxPooling2D((2, 3)),
        keras.layers.Dropout(0.5, seed=3),
        keras.layers.AveragePooling2D(2, strides=1, padding="same"),
        keras.layers.Conv2D(6, (3, 1), strides=(2, 1), kernel_initializer="he_normal"),
        keras.layers.Activation("gelu"),
        keras.layers.GlobalAveragePooling2D(keepdims=True),
        keras.layers.Flatten(),
        keras.layers.Dense(7, activation="softmax", trainable=False),
    ], name="figure_source")
    config = json.loads(model.to_json())
    rows = design.layers_from_config(config)
    assert design.keras_config(rows, "figure_source") == config
    assert rows[0] == {"type": "Input", "name": "image", "shape": [16, 12, 2]}
    assert rows[1] == {"type": "Conv2D", "name": "conv_a", "filters": 4, "kernel_size": 3,
                       "strides": 1, "padding": "same", "activation": "relu", "use_bias": False,
                       "kernel_regularizer": config["config"]["layers"][1]["config"][
                           "kernel_regularizer"]}
    assert rows[3]["pool_size"] == [2, 3] and rows[3]["strides"] == [2, 3]
    assert rows[-1]["trainable"] is False
    model.save(tmp_path / "source.keras")           # the .keras file's architecture: same stack
    assert design.read_keras_design(tmp_path / "source.keras") == ("figure_source", rows)


def test_a_functional_chain_becomes_a_stack_and_a_branching_model_is_refused():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(2, 3, name="c")(inputs)
    chain = keras.Model(inputs, keras.layers.Dense(3, name="d")(keras.layers.Flatten()(x)))
    rows = design.layers_from_config(json.loads(chain.to_json()))
    assert [r["type"] for r in rows] == ["Input", "Conv2D", "Flatten", "Dense"]
    assert [s.shape for s in design.check(rows)] == [(8, 8, 1), (6, 6, 2), (72,), (3,)]
    y = keras.layers.Add()([x, keras.layers.Conv2D(2, 3, name="c2")(inputs)])
    branching = keras.Model(inputs, y)
    with pytest.raises(NNVisError, match="plain stacks only"):
        design.layers_from_config(json.loads(branching.to_json()))


# (id, rows, bad row, message fragment, does Keras refuse it too?)
INVALID = [
    ("kernel_larger_than_input", [Input(4, 4, 1), L("Conv2D", filters=2, kernel_size=5)],
     1, "larger than its 4×4 input", True),
    ("pool_larger_than_input", [Input(1, 3, 1), L("MaxPooling2D", pool_size=2)],
     1, "larger than its 1×3 input", True),
    ("conv_after_flatten", [Input(8, 8, 1), L("Flatten"), L("Conv2D", filters=2, kernel_size=3)],
     2, "(H, W, C)", True),
    ("global_pool_on_units", [Input(8), L("GlobalAveragePooling2D")], 1, "(H, W, C)", True),
    ("zero_filters", [Input(8, 8, 1), L("Conv2D", filters=0, kernel_size=3)], 1, "filters", True),
    ("negative_units", [Input(8), L("Dense", units=-3)], 1, "units", True),
    ("zero_kernel", [Input(8, 8, 1), L("Conv2D", filters=2, kernel_size=0)], 1, "kernel_size",
     True),
    ("zero_strides", [Input(8, 8, 1), L("MaxPooling2D", pool_size=2, strides=0)], 1, "strides",
     True),
    ("bad_padding", [Input(8, 8, 1), L("Conv2D", filters=2, kernel_size=3, padding="full")],
     1, "padding", True),
    ("rate_above_one", [Input(8), L("Dropout", rate=1.5)], 1, "rate", True),
    ("strides_with_dilation", [Input(9, 9, 1), L("Conv2D", filters=2, kernel_size=3, strides=2,
                                                 dilation_rate=2)], 1, "dilation", True),
    ("groups_not_dividing", [Input(8, 8, 3), L("Conv2D", filters=4, kernel_size=2, groups=2)],
     1, "groups", True),
    ("duplicate_name", [Input(8), L("Dense", units=2, name="a"), L("Dense", units=2, name="a")],
     2, "already used by row 2", True),
    ("slash_in_name", [Input(8), L("Dense", units=2, name="a/b")], 1, "'/'", True),
    ("unknown_activation", [Input(8), L("Dense", units=2, activation="foo")], 1, "activation",
     True),
    ("unknown_parameter", [Input(8), L("Dense", units=2, unit=3)], 1, "no parameter 'unit'", True),
    ("missing_units", [Input(8), L("Dense")], 1, "needs 'units'", True),
    ("input_not_first", [Input(8), L("Dense", units=3), Input(3)], 2, "only be the first", True),
    # nnvis' own rules, where Keras builds a model that has nothing to show:
    ("first_row_not_input", [L("Dense", units=3)], 0, "first row must be an Input", False),
    ("zero_size_input", [Input(0, 8, 1), L("Flatten")], 0, "positive", False),
    ("variable_size_input", [Input(None, None, 3), L("Conv2D", filters=2, kernel_size=3)], 0,
     "fixed sizes", False),
]


@pytest.mark.parametrize("rows,bad,fragment,keras_refuses", [c[1:] for c in INVALID],
                         ids=[c[0] for c in INVALID])
def test_impossible_rows_are_refused_with_the_row(rows, bad, fragment, keras_refuses):
    errors = design.validate(rows)
    assert [row for row, _ in errors] == [bad]
    assert fragment in errors[0][1]
    with pytest.raises(NNVisError, match=f"row {bad + 1} "):
        design.keras_config(rows)
    try:
        keras_model(rows).build()
        refused = False
    except (ValueError, TypeError, ZeroDivisionError):    # zero pool strides: Keras divides by 0
        refused = True
    assert refused == keras_refuses


def test_rows_after_an_error_have_no_shape_but_keep_their_own_checks():
    rows = [Input(4, 4, 1), L("Conv2D", filters=2, kernel_size=5), L("Flatten"), L("Dense")]
    assert design.check(rows) == [design.RowCheck((4, 4, 1), None),
                                  design.RowCheck(None, design.check(rows)[1].error),
                                  design.RowCheck(None, None),
                                  design.RowCheck(None, "Dense needs 'units'")]
    with pytest.raises(NNVisError, match=r"row 2 \(Conv2D\).*row 4 \(Dense\)"):
        design.design_run(rows)


def test_random_weights_are_seeded_glorot_and_give_keras_activations(tmp_path):
    rows = STACKS["gap"]
    run = design.design_run(rows, "random", seed=3)
    again, other = design.design_run(rows, "random", seed=3), design.design_run(rows, "random", 4)
    conv = run.weights("conv2d", 0)
    limit = np.sqrt(6 / (2 * 2 * 1 + 2 * 2 * 3))                  # fans times the kernel area
    assert np.abs(conv[0]).max() <= limit and np.abs(conv[0]).max() > 0.5 * limit
    assert not conv[1].any()                                       # zero biases
    gamma_free = run.weights("batch_normalization", 0)             # center=False: no beta
    assert [w.tolist() for w in gamma_free] == [[1.0] * 3, [0.0] * 3, [1.0] * 3]
    np.testing.assert_array_equal(again.weights("dense", 0)[0], run.weights("dense", 0)[0])
    assert not np.array_equal(other.weights("dense", 0)[0], run.weights("dense", 0)[0])
    assert run.probe.shape == (9, 9, 1) and 0 <= run.probe.min() and run.probe.max() <= 1

    model = keras.models.model_from_json(json.dumps(design.keras_config(rows)))
    for layer in model.layers:
        layer.set_weights(run.weights(layer.name, 0))
    probe = keras.Model(model.inputs, [layer.output for layer in model.layers])
    outputs = probe.predict(run.probe[None], verbose=0)
    for layer, expected in zip(model.layers, outputs):
        np.testing.assert_allclose(run.activations(layer.name, 0), expected[0], atol=2e-6)

    image = np.linspace(0, 1, 81, dtype=np.float32).reshape(9, 9)
    np.save(tmp_path / "probe.npy", image)
    with_probe = design.design_run(rows, "random", seed=3, probe=tmp_path / "probe.npy")
    np.testing.assert_array_equal(with_probe.probe[..., 0], image)


def test_structure_weights_are_zero_and_show_no_activation():
    run = design.design_run(STACKS["cnn"], "structure")
    for layer in run.layers:
        assert not run.activations(layer.name, 0).any()
        assert run.activations(layer.name, 0).shape == layer.output_shape
    assert not run.weights("conv2d", 0)[0].any()
    assert [w.ravel()[0] for w in run.weights("batch_normalization", 0)] == [1, 0, 0, 1]


# --------------------------------------------------------------------------------------------------
# Blender: the scene a design builds, and rebuilding it in place

bpy = pytest.importorskip("bpy")
from nnvis_addon import load_run  # noqa: E402
from nnvis_addon.scene import build_scene  # noqa: E402
from nnvis_addon.scene import design_writer as design_scene  # noqa: E402
from nnvis_addon.scene.layers import MODIFIER  # noqa: E402
from nnvis_addon.scene.nodes import input_ids  # noqa: E402


def _objects(collection) -> dict:
    """(kind, key) → object for the layer and edge objects of a run's collection."""
    out = {}
    for obj in collection.objects:
        if "nnvis_layer" in obj:
            out["layer", obj["nnvis_layer"]] = obj
        elif "nnvis_edges" in obj:
            out["edges", tuple(obj["nnvis_edges"])] = obj
    return out


def _controls(obj) -> tuple:
    mod = obj.modifiers[MODIFIER]
    return mod.node_group.name, sorted(input_ids(mod.node_group).items())


def test_a_design_builds_the_scene_the_importer_builds(tmp_path):
    rows = STACKS["cnn"]
    model = keras.models.model_from_json(json.dumps(design.keras_config(rows)))
    model.save(tmp_path / "designed.keras")
    bpy.ops.wm.read_homefile(use_empty=True)     # (keeps the suite's installed add-on enabled)
    imported = _objects(build_scene(load_run(tmp_path / "designed.keras")))
    built = _objects(build_design_scene(rows))
    assert sum(key[0] == "layer" for key in built) == len(rows)     # one object per layer
    assert built.keys() == imported.keys()
    for key, obj in built.items():
        assert _controls(obj) == _controls(imported[key])
        assert obj.get("nnvis_kind") == imported[key].get("nnvis_kind")
        assert list(obj.get("nnvis_shape", [])) == list(imported[key].get("nnvis_shape", []))
        assert obj.animation_data.action is not None                 # the Epoch input is keyed


def build_design_scene(rows, weights="random"):
    return design_scene.build_design(rows, weights=weights, seed=1, scene=bpy.context.scene)


def _inventory() -> list:
    return sorted((kind, block.name) for kind in
                  ("objects", "meshes", "curves", "hair_curves", "materials", "images", "actions",
                   "node_groups", "cameras", "lights", "worlds", "collections")
                  for block in getattr(bpy.data, kind))


def test_rebuild_in_place_keeps_camera_and_material_edits_and_leaves_no_orphans():
    bpy.ops.wm.read_homefile(use_empty=True)
    rows = [dict(r) for r in design.DEFAULT_LAYERS]
    collection = build_design_scene(rows)
    camera = bpy.context.scene.camera
    camera.location = (1.0, -9.0, 4.0)
    conv = _objects(collection)["layer", "conv2d"]
    mod = conv.modifiers[MODIFIER]
    ids = input_ids(mod.node_group)
    material = mod[ids["Material"]]
    material.node_tree.nodes["Principled BSDF"].inputs["Roughness"].default_value = 0.125
    mod[ids["Scale"]] = 0.75
    old_image = next(n.image for n in material.node_tree.nodes if n.type == "TEX_IMAGE")
    old_size = tuple(old_image.size)

    rows[1]["filters"] = 4                                  # conv2d changes: 8 → 4 maps
    rows.insert(3, L("BatchNormalization"))
    assert design_scene.rebuild_design(collection, rows) == collection
    objects = _objects(collection)
    assert sum(key[0] == "layer" for key in objects) == len(rows)
    assert bpy.context.scene.camera == camera and tuple(camera.location) == (1.0, -9.0, 4.0)
    assert [o.type for o in collection.objects].count("CAMERA") == 1
    conv = objects["layer", "conv2d"]
    assert conv.name == "cnn:conv2d" and len(conv.data.vertices) == 4
    mod = conv.modifiers[MODIFIER]
    assert mod[ids["Material"]] == material and mod[ids["Scale"]] == pytest.approx(0.75)
    assert material.node_tree.nodes["Principled BSDF"].inputs["Roughness"].default_value \
        == pytest.approx(0.125)
    image = next(n.image for n in material.node_tree.nodes if n.type == "TEX_IMAGE")
    assert image.name == "cnn:conv2d activations" and tuple(image.size) != old_size

    rebuilt = _inventory()
    with pytest.raises(NNVisError, match="row 2 "):
        design_scene.rebuild_design(collection, [Input(2, 2, 1), L("Conv2D", filters=1, kernel_size=3)])
    assert _inventory() == rebuilt and _objects(collection).keys() == objects.keys()
    bpy.ops.wm.read_homefile(use_empty=True)
    build_design_scene(rows)          # a fresh build of the new stack: the same datablocks, names
    assert _inventory() == rebuilt    # and all (nothing of the old build is left over)


def test_the_sidebar_editor_drives_the_library_through_its_operators(empty_scene, tmp_path):
    """The installed extension (conftest): Add > NNVis > CNN, row edits rebuilding in place only
    while the stack is valid, and Keras JSON in and out of the editor's rows unchanged."""
    stack = empty_scene.nnvis_design
    assert bpy.ops.nnvis.add_designed_cnn(weights="random", seed=2) == {"FINISHED"}
    assert [row.type for row in stack.layers] == [r["type"] for r in design.DEFAULT_LAYERS]
    collection = stack.collection
    layer_names = lambda: sorted(k[1] for k in _objects(collection) if k[0] == "layer")  # noqa
    assert layer_names() == sorted(["input_layer", "conv2d", "max_pooling2d", "conv2d_1",
                                    "max_pooling2d_1", "flatten", "dense"])
    dense = _objects(collection)["layer", "dense"].modifiers[MODIFIER]
    material_input = input_ids(dense.node_group)["Material"]
    mine = bpy.data.materials.new("mine")                  # the user's own material on a layer
    dense[material_input] = mine
    stack.active = 1
    bpy.ops.nnvis.design_add_layer(type="BatchNormalization")
    assert stack.active == 2 and "batch_normalization" in layer_names()
    dense = _objects(collection)["layer", "dense"].modifiers[MODIFIER]
    assert dense[material_input] == mine
    stack.layers[1].padding = "valid"
    stack.layers[1].kernel_size = (40, 40)                 # impossible: the scene stays
    assert len(_objects(collection)["layer", "conv2d"].data.vertices) == 8
    assert list(_objects(collection)["layer", "conv2d_1"]["nnvis_shape"]) == [13, 13, 16]
    stack.layers[1].filters = 5                            # still impossible
    assert len(_objects(collection)["layer", "conv2d"].data.vertices) == 8
    stack.layers[1].kernel_size = (3, 3)                   # valid again: rebuilt with 5 maps
    assert len(_objects(collection)["layer", "conv2d"].data.vertices) == 5
    assert bpy.ops.nnvis.design_remove_layer() == {"FINISHED"}
    assert "batch_normalization" not in layer_names()

    keras.backend.clear_session()
    source = keras.Sequential([keras.Input((20, 16, 3)),
                               keras.layers.Conv2D(6, (5, 3), strides=(2, 1), use_bias=False),
                               keras.layers.AveragePooling2D(2, strides=1, padding="same"),
                               keras.layers.Dropout(0.3), keras.layers.Flatten(),
                               keras.layers.Dense(4, activation="mish")], name="loaded")
    (tmp_path / "in.json").write_text(source.to_json())
    assert bpy.ops.nnvis.load_keras_design(filepath=str(tmp_path / "in.json")) == {"FINISHED"}
    assert stack.model_name == "loaded" and len(stack.layers) == 6
    assert bpy.ops.nnvis.export_keras_json(filepath=str(tmp_path / "out.json")) == {"FINISHED"}
    assert json.loads((tmp_path / "out.json").read_text()) == json.loads(source.to_json())


def test_one_registry_of_layer_kind_facts():
    """model/kinds: what the designer offers runs in the forward pass and draws edges; a row
    shows a subset of its main parameters; pass-through kinds are known to the edges."""
    from nnvis_addon.model import edges, kinds
    assert design.TYPES == tuple(kinds.DESIGN) and design.TYPES[0] == "Input"
    for row_type, facts in kinds.DESIGN.items():
        assert set(facts.row) <= set(facts.main), row_type
        assert kinds.get(facts.kind) is not None and edges.drawable(facts.kind), row_type
    assert all(edges.drawable(kind) for kind in kinds.having("passes"))
