"""The installed extension's importer builds the scene the issue describes, with true values."""
from __future__ import annotations

import numpy as np
import pytest

from nnvis_addon import load_run
from nnvis_addon.atlas import as_cells, pack

TIER = "blender"


def import_run(folder, **kwargs):
    import bpy
    before = set(bpy.data.collections)
    assert bpy.ops.import_scene.nnvis_checkpoint(filepath=str(folder), **kwargs) == {"FINISHED"}
    (collection,) = [c for c in bpy.data.collections if c not in before]
    return collection


def modifier_input(obj, name):
    from nnvis_addon.scene.nodes import input_ids
    mod = obj.modifiers["NNVis"]
    return mod, input_ids(mod.node_group)[name]


def epoch_fcurve(obj):
    """The F-curve of `obj`'s shown epoch: a layer's or edges' `nnvis_epoch` property, an
    overlay's Epoch input."""
    from nnvis_addon.scene import animation, compat
    (fcurve,) = [f for f in compat.fcurves_of(obj) if f.data_path == animation.epoch_path(obj)]
    return fcurve


@pytest.fixture(scope="module")
def imported(digits_run, addon):
    import bpy
    bpy.ops.wm.read_homefile(use_empty=True)
    folder, _ = digits_run
    collection = import_run(folder, frames_per_epoch=5)
    return collection, load_run(folder)


def test_one_object_per_layer_and_one_curves_object_per_connection(imported):
    collection, run = imported
    layer_objs = [o for o in collection.objects if "nnvis_layer" in o]
    assert sorted(o["nnvis_layer"] for o in layer_objs) == sorted(l.name for l in run.layers)
    edge_objs = [o for o in collection.objects if "nnvis_edges" in o]
    assert sorted(tuple(o["nnvis_edges"]) for o in edge_objs) == sorted(
        (src, l.name) for l in run.layers for src in l.inbound)
    assert all(o.type == "CURVES" for o in edge_objs)
    assert collection.name == f"{run.network.name} · {run.name}"


def test_instances_equal_cells(imported):
    import bpy
    collection, run = imported
    depsgraph = bpy.context.evaluated_depsgraph_get()
    counts = {}
    for inst in depsgraph.object_instances:
        if inst.is_instance and "nnvis_layer" in inst.parent.original:
            name = inst.parent.original["nnvis_layer"]
            counts[name] = counts.get(name, 0) + 1
    assert counts == {l.name: l.cell_count for l in run.layers}


def test_node_trees_read_in_blender(imported):
    """What a Blender user opens is readable: every tree nnvis builds is laid out (each node at
    its own place, left to right along the data), the cells group framed into labelled sections,
    the modifier's inputs in panels; each layer and connection carries its material in a slot
    and its Level of Detail starts at its own count."""
    import bpy
    collection, run = imported
    trees = [g for g in bpy.data.node_groups if g.name.startswith("NNVis")]
    trees += [m.node_tree for m in bpy.data.materials if m.node_tree]
    assert len(trees) > 10
    for tree in trees:
        placed = [tuple(n.location) for n in tree.nodes if n.type != "FRAME"]
        assert len(set(placed)) == len(placed), tree.name
        for link in tree.links:
            if link.from_node.type != "FRAME" and link.to_node.type != "GROUP_OUTPUT":
                assert link.from_node.location.x < link.to_node.location.x, tree.name
    cells = bpy.data.node_groups["NNVis Feature Maps"]
    frames = {n.label for n in cells.nodes if n.type == "FRAME"}
    assert "The layer's block (Expansion 0)" in frames and len(frames) == 4
    assert sum(n.parent is not None for n in cells.nodes) > 0.8 * len(cells.nodes)
    panels = {item.name: [c.name for c in item.interface_items]
              for item in cells.interface.items_tree if item.item_type == "PANEL"}
    assert panels["Layout"][:2] == ["Expansion", "Morph"]
    assert panels["Level of Detail"] == ["Max Cells"] and "Colour" in panels
    for layer in run.layers:
        obj = collection.objects[f"{collection.name}:{layer.name}"]
        mod, material = modifier_input(obj, "Material")
        assert [s.material for s in obj.material_slots] == [mod[material]]
        mod, max_cells = modifier_input(obj, "Max Cells")
        assert mod[max_cells] == layer.cell_count
    for obj in (o for o in collection.objects if "nnvis_edges" in o):
        mod, material = modifier_input(obj, "Material")
        assert [s.material for s in obj.material_slots] == [mod[material]]
        mod, max_edges = modifier_input(obj, "Max Edges")
        assert mod[max_edges] == len(obj.data.curves)


def test_epoch_keyframes_one_per_epoch_linear(imported):
    collection, run = imported
    for obj in collection.objects:
        if "NNVis" not in obj.modifiers:
            continue
        points = epoch_fcurve(obj).keyframe_points
        assert len(points) == len(run.epochs)
        assert [tuple(p.co) for p in points] == [(1 + 5 * e, float(i)) for i, e in
                                                 enumerate(run.epochs)]
        assert {p.interpolation for p in points} == {"LINEAR"}


def test_epoch_input_blends_between_epochs(imported):
    """Layers and edges key the epoch on a property only their shaders read (their geometry
    stays the same from frame to frame); the epoch counter on its geometry-nodes input."""
    import bpy
    from nnvis_addon.scene.nodes import input_ids
    collection, run = imported
    obj = collection.objects[f"{collection.name}:conv1"]
    assert "Epoch" not in input_ids(obj.modifiers["NNVis"].node_group)
    edges = next(o for o in collection.objects if "nnvis_edges" in o)
    counter = next(o for o in collection.objects if o.get("nnvis_overlay_kind") == "counter")
    mod, ident = modifier_input(counter, "Epoch")
    scene = bpy.context.scene
    scene.frame_set(1 + 5 * 1 + 2)            # 2/5 of the way from epoch 1 to epoch 2
    assert obj["nnvis_epoch"] == edges["nnvis_epoch"] == pytest.approx(1.4, abs=1e-5)
    assert mod[ident] == pytest.approx(1.4, abs=1e-5)


def test_atlas_pixels_hold_the_true_activations(imported):
    collection, run = imported
    for layer in run.layers:
        obj = collection.objects[f"{collection.name}:{layer.name}"]
        mod, ident = modifier_input(obj, "Material")
        material = mod[ident]
        image = next(n.image for n in material.node_tree.nodes if n.bl_idname == "ShaderNodeTexImage")
        pixels = np.empty(image.size[0] * image.size[1] * 4, np.float32)
        image.pixels.foreach_get(pixels)
        rgb = pixels.reshape(image.size[1], image.size[0], 4)[..., :3]
        acts = np.stack([run.activations(layer.name, e) for e in run.epochs])
        np.testing.assert_array_equal(rgb, pack(as_cells(acts, layer.is_spatial)).rgb)


def test_scene_is_set_up_for_rendering(imported):
    import bpy
    collection, run = imported
    scene = bpy.context.scene
    assert scene.camera is not None and scene.camera.name in collection.objects
    assert scene.render.engine == "CYCLES" and scene.cycles.device == "CPU"
    assert scene.render.image_settings.file_format == "FFMPEG"
    assert scene.frame_end >= 1 + 5 * run.epochs[-1]


def test_unknown_layer_is_a_labelled_block_and_nothing_runs(empty_scene, tmp_path):
    """A Lambda (custom code) imports as a grey block; the layers after it lose only their
    activations; its code is never executed."""
    import bpy
    import keras
    marker = tmp_path / "lambda-ran.txt"

    def side_effect(x):
        open(marker, "w").write("ran")
        return x * 2.0

    inp = keras.Input((8, 8, 1), name="pixels")
    x = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inp)
    x = keras.layers.Lambda(side_effect, name="custom")(x)
    x = keras.layers.Flatten(name="flat")(x)
    out = keras.layers.Dense(4, name="out")(x)
    keras.Model(inp, out, name="with_lambda").save(tmp_path / "lambda.keras")
    marker.unlink(missing_ok=True)
    collection = import_run(tmp_path / "lambda.keras", all_epochs=False)
    assert not marker.exists()
    layer_objs = {o["nnvis_layer"]: o for o in collection.objects if "nnvis_layer" in o}
    assert set(layer_objs) == {"pixels", "conv", "custom", "flat", "out"}
    assert "Lambda" in layer_objs["custom"]["nnvis_unsupported"]
    assert "NNVis" in layer_objs["conv"].modifiers          # computed: animated feature maps
    assert "NNVis" not in layer_objs["flat"].modifiers      # fed by the Lambda: a block
    edges = sorted(tuple(o["nnvis_edges"]) for o in collection.objects if "nnvis_edges" in o)
    assert edges == [("pixels", "conv")]


def test_importer_applies_look_camera_move_and_legend(digits_run, empty_scene):
    import bpy
    folder, _ = digits_run
    collection = import_run(folder / "recording", look="paper", camera_move="orbit",
                            show_legend=True)
    background = bpy.context.scene.world.node_tree.nodes["Background"].inputs["Color"]
    assert tuple(background.default_value)[:3] == pytest.approx((1.0, 1.0, 1.0))
    assert collection.get("nnvis_camera_move") == "orbit"
    legends = [o for o in collection.objects if "nnvis_legend_layer" in o]
    assert len(legends) == 2 and not any(o.hide_render for o in legends)   # the maps', the edges'



def test_a_real_architecture_scales_with_layers_not_cells(empty_scene, tmp_path):
    """MobileNetV2 (156 layers, DAG with residual Adds) with every layer drawn (blocks expanded):
    one object per layer plus edges per connection and a bounded set of extras — not one per
    feature map; the caps are reported."""
    import bpy
    import keras
    from nnvis_addon.scene import SceneOptions, build_scene
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), classes=10)
    model.save(tmp_path / "mobilenet.keras")
    run = load_run(tmp_path / "mobilenet.keras")
    collection = build_scene(run, SceneOptions(max_total_edges=20_000, blocks="expanded"),
                             bpy.context.scene)
    layers = [o for o in collection.objects if "nnvis_layer" in o]
    edges = [o for o in collection.objects if "nnvis_edges" in o]
    connections = sum(len(l.inbound) for l in run.layers)
    assert len(layers) == len(run.layers) == len(model.layers)
    assert len(edges) == connections
    assert len(collection.objects) <= len(layers) + len(edges) + 40
    assert sum(len(o.data.curves) for o in edges) == collection["nnvis_edges_drawn"] <= 20_000
    assert collection["nnvis_edges_total"] > 100_000
    adds = [l for l in run.layers if l.kind == "Add"]
    assert adds and all(len(l.inbound) == 2 for l in adds)


def test_a_grey_slabs_text_is_sized_to_the_slab(empty_scene, tmp_path):
    """The kind text of a layer nnvis cannot compute stands on its slab's face, as large as the
    face allows: it was sized by the slab's longer side and stood above it, unreadably small on a
    small slab and huge over the labels beside a wide one (a Conv1D's)."""
    import bpy
    import keras
    inp = keras.Input((64, 4), name="series")
    x = keras.layers.Conv1D(16, 3, name="conv1d")(inp)
    x = keras.layers.Lambda(lambda t: t * 2.0, name="custom")(x)      # a grey slab, wide
    x = keras.layers.Flatten(name="flat")(x)                          # fed by it: a slab too
    keras.Model(inp, keras.layers.Dense(3, name="out")(x), name="series").save(
        tmp_path / "series.keras")
    collection = import_run(tmp_path / "series.keras", all_epochs=False)
    depsgraph = bpy.context.evaluated_depsgraph_get()

    def box(obj):
        ev = obj.evaluated_get(depsgraph)
        corners = np.array([tuple(ev.matrix_world @ __import__("mathutils").Vector(c))
                            for c in ev.bound_box])
        return corners.min(axis=0), corners.max(axis=0)

    slabs = [o for o in collection.objects if "nnvis_unsupported" in o]
    assert {o["nnvis_layer"] for o in slabs} >= {"custom", "flat"}
    for slab in slabs:
        text = next(o for o in collection.objects if o.get("nnvis_block_label") ==
                    slab["nnvis_layer"])
        (slo, shi), (tlo, thi) = box(slab), box(text)
        assert np.all(tlo[1:] >= slo[1:] - 1e-4) and np.all(thi[1:] <= shi[1:] + 1e-4), \
            (slab.name, slo, shi, tlo, thi)                  # on the face, inside its outline
        share = np.max((thi - tlo)[1:] / (shi - slo)[1:])
        assert share >= 0.6, (slab.name, share)              # and as large as it allows
