"""Expand a folded block of an imported run, and fold it back (scene/rebuild.py through the
sidebar's operators): the run is drawn again with its import options, in place of the old one, and
a rebuild that fails leaves the scene as it was."""
from __future__ import annotations

import numpy as np
import pytest

from nnvis_addon import blocks, load_run

TIER = "blender"


@pytest.fixture(scope="module")
def residual_model(tmp_path_factory):
    """A functional CNN whose two residual blocks fold (Blocks: Folded)."""
    keras = pytest.importorskip("keras")
    from keras import layers as L
    keras.utils.set_random_seed(5)
    inp = keras.Input((8, 8, 1), name="image")
    a = L.ReLU(name="relu1")(L.Conv2D(4, 3, padding="same", name="conv1")(inp))
    b = L.Conv2D(4, 3, padding="same", name="conv2")(L.Conv2D(4, 3, padding="same",
                                                             name="conv2a")(a))
    c = L.ReLU(name="relu2")(L.Add(name="residual")([a, b]))
    d = L.Conv2D(4, 3, padding="same", name="conv3")(L.Conv2D(4, 3, padding="same",
                                                             name="conv3a")(c))
    e = L.ReLU(name="relu3")(L.Add(name="residual2")([c, d]))
    out = L.Dense(3, activation="softmax", name="classes")(L.GlobalAveragePooling2D(name="gap")(e))
    folder = tmp_path_factory.mktemp("residual")
    keras.Model(inp, out, name="residual_cnn").save(folder / "model.keras")
    return folder / "model.keras"


@pytest.fixture(scope="module")
def deep_model(tmp_path_factory):
    """A ResNet-like CNN of 42 residual blocks in four stages (4, 8, 26, 4: ResNet101's 3, 4,
    23, 3 and some), so many that each stage folds into one unit (blocks._coarser), as
    ResNet101V2's do."""
    keras = pytest.importorskip("keras")
    from keras import layers as L
    keras.utils.set_random_seed(7)
    inp = keras.Input((32, 32, 3), name="image")
    x = L.ReLU(name="conv1_relu")(L.Conv2D(4, 3, strides=2, padding="same", name="conv1_conv")(inp))
    for stage, count in zip((2, 3, 4, 5), (4, 8, 26, 4)):
        if stage > 2:
            x = L.MaxPooling2D(name=f"pool{stage}")(x)
        for b in range(1, count + 1):
            c = L.Conv2D(4, 3, padding="same", name=f"conv{stage}_block{b}_conv")(x)
            x = L.Add(name=f"conv{stage}_block{b}_out")([x, c])
    out = L.Dense(10, activation="softmax", name="predictions")(
        L.GlobalAveragePooling2D(name="avg_pool")(x))
    path = tmp_path_factory.mktemp("deep") / "deep.keras"
    keras.Model(inp, out, name="deep_resnet").save(path)
    return path


def layer_objects(collection) -> dict:
    return {o["nnvis_layer"]: o for o in collection.objects if "nnvis_layer" in o}


def atlas_rgb(obj) -> np.ndarray:
    """The layer's activation atlas as its material's image holds it."""
    from nnvis_addon.scene.nodes import input_ids
    mod = obj.modifiers["NNVis"]
    material = mod[input_ids(mod.node_group)["Material"]]
    image = next(n.image for n in material.node_tree.nodes if n.bl_idname == "ShaderNodeTexImage")
    pixels = np.empty(image.size[0] * image.size[1] * 4, np.float32)
    image.pixels.foreach_get(pixels)
    return pixels.reshape(image.size[1], image.size[0], 4)[..., :3]


def test_expand_a_block_and_fold_it_back(residual_model, addon, tmp_path):
    import bpy
    from nnvis_addon import names
    bpy.ops.wm.read_homefile(use_empty=True)
    assert bpy.ops.import_scene.nnvis_checkpoint(filepath=str(residual_model), blocks="folded",
                                                 camera_move="orbit") == {"FINISHED"}
    (run,) = [c for c in bpy.data.collections if names.RUN in c]
    label, folded = run.name, layer_objects(run)
    block = next(o for o in folded.values() if names.BLOCK_TITLE in o)
    title, keys = block[names.BLOCK_TITLE], run[names.EPOCHS][:]
    source = load_run(residual_model)
    network = source.network
    expanded_net = blocks.drawn(network, "folded", title)
    assert len(folded) < len(expanded_net.layers) < len(network.layers)   # one of two blocks

    bpy.context.view_layer.objects.active = block
    assert bpy.ops.nnvis.expand_block() == {"FINISHED"}
    (run,) = [c for c in bpy.data.collections if names.RUN in c]
    drawn = layer_objects(run)
    assert run.name == label and set(drawn) == {l.name for l in expanded_net.layers}
    assert not any(names.BLOCK_TITLE in o and o[names.BLOCK_TITLE] == title for o in drawn.values())
    assert all(o.name.startswith(f"{label}:") and not o.name[-4:-3] == "."
               for o in run.objects if names.SHARED not in o)
    assert run[names.CAMERA_MOVE] == "orbit" and list(run[names.EPOCHS]) == list(keys)
    assert list(run[names.BLOCKS]) == ["folded", title]
    labels = {o[names.LABEL] for o in run.objects if names.LABEL in o}
    assert labels == set(drawn)                 # a label per drawn layer, old ones gone
    assert len([o for o in bpy.data.objects if names.LABEL in o]) == len(labels)
    # the expanded layers show their own activations, as the run computes them
    from nnvis_addon.atlas import as_cells, pack
    inner = [l for l in expanded_net.layers if l.name not in folded]
    assert inner
    for layer in inner:
        acts = np.stack([source.activations(layer.name, e) for e in source.epochs])
        np.testing.assert_array_equal(atlas_rgb(drawn[layer.name]),
                                      pack(as_cells(acts, layer.is_spatial)).rgb)

    bpy.context.view_layer.objects.active = next(iter(drawn.values()))
    assert bpy.ops.nnvis.fold_blocks() == {"FINISHED"}
    (run,) = [c for c in bpy.data.collections if names.RUN in c]
    assert set(layer_objects(run)) == set(folded) and list(run[names.BLOCKS]) == ["folded", ""]


def test_failed_rebuild_leaves_the_scene_as_it_was(residual_model, addon, tmp_path):
    import shutil
    import bpy
    from nnvis_addon import NNVisError, names
    from nnvis_addon.scene import rebuild
    bpy.ops.wm.read_homefile(use_empty=True)
    moved = tmp_path / "model.keras"
    shutil.copy(residual_model, moved)
    assert bpy.ops.import_scene.nnvis_checkpoint(filepath=str(moved),
                                                 blocks="folded") == {"FINISHED"}
    (run,) = [c for c in bpy.data.collections if names.RUN in c]
    before = sorted(o.name for o in bpy.data.objects)
    title = next(o[names.BLOCK_TITLE] for o in run.objects if names.BLOCK_TITLE in o)
    moved.unlink()
    with pytest.raises(NNVisError, match="no checkpoints found"):
        rebuild.expand_block(run, title)
    assert sorted(o.name for o in bpy.data.objects) == before


def test_rebuild_keeps_the_parent_collection_and_the_fold_of_an_older_run(residual_model, addon):
    """A run imported before the options were recorded keeps its block folding (names.BLOCKS),
    and a run the user moved into a collection of their own stays there."""
    import bpy
    from nnvis_addon import names
    from nnvis_addon.scene import rebuild
    bpy.ops.wm.read_homefile(use_empty=True)
    assert bpy.ops.import_scene.nnvis_checkpoint(filepath=str(residual_model),
                                                 blocks="folded") == {"FINISHED"}
    (run,) = [c for c in bpy.data.collections if names.RUN in c]
    del run[names.OPTIONS]                     # as an import of an earlier nnvis left it
    figures = bpy.data.collections.new("Figures")
    bpy.context.scene.collection.children.link(figures)
    figures.children.link(run)
    bpy.context.scene.collection.children.unlink(run)
    title = next(o[names.BLOCK_TITLE] for o in run.objects if names.BLOCK_TITLE in o)
    fresh = rebuild.expand_block(run, title)
    expected = blocks.drawn(load_run(residual_model).network, "folded", title)
    assert set(layer_objects(fresh)) == {l.name for l in expected.layers}
    assert fresh.name in figures.children and fresh.name not in bpy.context.scene.collection.children


class _Layout:
    """A stand-in for a panel's layout that logs what it is asked to draw."""

    def __init__(self, log):
        self.log = log

    def label(self, text="", **_):
        self.log.append(("label", text))

    def operator(self, idname, **_):
        self.log.append(("operator", idname))
        return type("Props", (), {})()

    def prop(self, *_, **__):
        pass

    def row(self, **_):
        return self

    def operator_menu_enum(self, *_, **__):
        pass


def test_the_layer_panel_offers_expand_on_a_block_and_fold_once_expanded(residual_model, addon):
    import bpy
    from nnvis_addon import names
    bpy.ops.wm.read_homefile(use_empty=True)
    assert bpy.ops.import_scene.nnvis_checkpoint(filepath=str(residual_model),
                                                 blocks="folded") == {"FINISHED"}
    (run,) = [c for c in bpy.data.collections if names.RUN in c]
    panel = bpy.types.Panel.bl_rna_get_subclass_py("NNVIS_PT_layer")

    def drawn(obj):
        log = []
        panel.draw(type("Panel", (), {"layout": _Layout(log)})(),
                   type("Context", (), {"active_object": obj})())
        return log

    block = next(o for o in run.objects if names.BLOCK_TITLE in o)
    log = drawn(block)
    assert ("operator", "nnvis.expand_block") in log
    assert [t for kind, t in log if kind == "label"][0].startswith(block[names.LAYER])
    assert not any(kind == "label" and t.startswith("Overlay") for kind, t in log)
    assert ("operator", "nnvis.fold_blocks") not in log
    bpy.context.view_layer.objects.active = block
    assert bpy.ops.nnvis.expand_block() == {"FINISHED"}
    (run,) = [c for c in bpy.data.collections if names.RUN in c]
    edges = next(o for o in run.objects if names.EDGES in o)
    log = drawn(edges)
    assert ("operator", "nnvis.fold_blocks") in log
    assert [t for kind, t in log if kind == "label"][0].endswith("(edges)")


def test_an_expanded_block_is_labelled_framed_and_stays_selected(residual_model, addon):
    """Expand Block in a run labelled by stages (as every wrapped network is, ResNet50's): the
    expanded layers went unlabelled and the selection jumped to the input. Now each expanded
    layer carries its own label, the shot holds, and the block's output layer stays active."""
    import bpy
    from nnvis_addon import names
    from test_picture import check_frame
    bpy.ops.wm.read_homefile(use_empty=True)
    assert bpy.ops.import_scene.nnvis_checkpoint(filepath=str(residual_model), blocks="folded",
                                                 labels="stages") == {"FINISHED"}
    (run,) = [c for c in bpy.data.collections if names.RUN in c]
    block = next(o for o in layer_objects(run).values() if names.BLOCK_TITLE in o)
    title, output = block[names.BLOCK_TITLE], block[names.LAYER]
    inner = list(block[names.BLOCK_LAYERS])
    bpy.context.view_layer.objects.active = block
    assert bpy.ops.nnvis.expand_block() == {"FINISHED"}
    (run,) = [c for c in bpy.data.collections if names.RUN in c]
    labels = {o[names.LABEL] for o in run.objects if names.LABEL in o}
    assert set(inner) <= labels and "input" in labels          # the stages keep theirs
    active = bpy.context.view_layer.objects.active
    assert active[names.LAYER] == output and active.get(names.EXPANDED_BLOCK) == title
    assert bpy.context.selected_objects == [active]
    scene = bpy.context.scene
    for frame in (scene.frame_start, scene.frame_end):
        scene.frame_set(frame)
        check_frame(scene, scene.camera, deep=True)


def _import_deep(path):
    import bpy
    from nnvis_addon import names
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 640, 360
    assert bpy.ops.import_scene.nnvis_checkpoint(filepath=str(path)) == {"FINISHED"}
    (run,) = [c for c in bpy.data.collections if names.RUN in c]
    return run


@pytest.mark.parametrize("stage, parts", [("conv4", 1), ("conv3", 8)])
def test_an_expanded_stage_keeps_the_picture(deep_model, addon, stage, parts):
    """Expand Block on a stage folded whole (conv4: 52 layers, conv3: 16): one short label per
    layer had spread 58 labels over the legends, the counter and each other. Now the stage is
    labelled by its blocks (block1 …) where they fit side by side, else as one, and
    every label stays in the frame, apart, off the overlays, 12 px tall."""
    import bpy
    from nnvis_addon import names
    from test_picture import check_frame, check_labels_apart, check_labels_clear
    run = _import_deep(deep_model)
    block = next(o for o in layer_objects(run).values() if o.get(names.BLOCK_TITLE) == stage)
    inner = list(block[names.BLOCK_LAYERS])
    bpy.context.view_layer.objects.active = block
    assert bpy.ops.nnvis.expand_block() == {"FINISHED"}
    (run,) = [c for c in bpy.data.collections if names.RUN in c]
    assert set(inner) <= set(layer_objects(run))
    labels = [o for o in run.objects if names.LABEL in o]
    own = [o for o in labels if set(o[names.LABEL_LAYERS]) <= set(inner)]
    assert len(own) == parts and {n for o in own for n in o[names.LABEL_LAYERS]} == set(inner)
    if parts > 1:
        assert [o.data.body.split("\n")[0] for o in own] == [f"block{k}"
                                                              for k in range(1, parts + 1)]
    assert bpy.context.view_layer.objects.active.get(names.EXPANDED_BLOCK) == stage
    scene = bpy.context.scene
    for frame in (scene.frame_start, scene.frame_end):
        scene.frame_set(frame)
        check_frame(scene, scene.camera, deep=True)
        check_labels_apart(scene, scene.camera)
        check_labels_clear(scene, scene.camera)


def test_expand_block_by_a_name_it_knows_or_an_error(deep_model, addon):
    """A name that is no folded block is refused before any rebuild (it rebuilt the run for
    seconds, expanded nothing and said nothing); a layer or block inside a folded stage expands
    that stage."""
    import bpy
    from nnvis_addon import names
    run = _import_deep(deep_model)
    bpy.context.view_layer.objects.active = next(iter(layer_objects(run).values()))
    before = sorted(o.name for o in bpy.data.objects)
    with pytest.raises(RuntimeError, match="no folded block 'conv4_block27'.*conv4"):
        bpy.ops.nnvis.expand_block(block="conv4_block27")
    assert sorted(o.name for o in bpy.data.objects) == before
    assert bpy.ops.nnvis.expand_block(block="conv4_block2") == {"FINISHED"}
    (run,) = [c for c in bpy.data.collections if names.RUN in c]
    assert "conv4_block2_conv" in layer_objects(run)
    assert bpy.context.view_layer.objects.active.get(names.EXPANDED_BLOCK) == "conv4"
    with pytest.raises(RuntimeError, match="already drawn layer by layer"):
        bpy.ops.nnvis.expand_block(block="conv4")
