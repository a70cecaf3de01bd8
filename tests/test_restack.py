"""A control set on all layers of a wrapped network (the sidebar's Set on All Layers): the ranks
move apart as the layers grow, the rows hang at least their laid-out gap apart, the labels hang on
the layers as drawn and the camera frames the run again (scene/restack.py)."""
from __future__ import annotations

import numpy as np
import pytest

TIER = "blender"


@pytest.fixture(scope="module")
def wrapped_model(tmp_path_factory):
    """A 22-layer CNN in three stages (16², 8², 4² maps): it wraps into two rows, labelled by
    stage."""
    keras = pytest.importorskip("keras")
    from keras import layers as L
    keras.utils.set_random_seed(1)
    x = inp = keras.Input((16, 16, 1), name="image")
    for stage, count in enumerate((4, 6, 6)):
        if stage:
            x = L.MaxPooling2D(name=f"pool{stage}")(x)
        for k in range(count):
            x = L.Conv2D(4, 3, padding="same", activation="relu", name=f"conv{stage}_{k}")(x)
    out = L.Dense(10, activation="softmax", name="classes")(
        L.Dense(32, name="dense")(L.Flatten(name="flatten")(x)))
    path = tmp_path_factory.mktemp("wrapped") / "wrapped.keras"
    keras.Model(inp, out, name="wrapped").save(path)
    return path


def rows_crossing(scene, cam, row: dict) -> list:
    """Pairs of layers of different rows (`row`: object name → row) whose boxes overlap on
    screen."""
    from test_picture import layer_boxes, overlap
    boxes = layer_boxes(scene, cam)
    return [(a, b) for a in boxes for b in boxes
            if a < b and row[a] != row[b] and overlap(boxes[a], boxes[b])]


@pytest.mark.parametrize("settings", [(("Morph", 0.5), ("Spacing", 1.6)), (("Spacing", 2.5),),
                                      (("Expansion", 0.0),)])
def test_controls_set_on_all_layers_keep_a_wrapped_network_apart(wrapped_model, addon, settings):
    """Morph 0.5 and Spacing 1.6 on all layers, as the user guide suggests: the rings of the
    first row sank into the second (5 pairs of layers of the two rows overlapped on screen;
    Spacing 2.5: 20). Now the rows stay apart, the picture checks hold (Expansion 0: the shrunk
    layers keep the layout), and the default values set again bring back the imported layout."""
    import bpy
    from test_picture import check_frame, check_labels_apart, check_labels_by_their_rows, \
        check_labels_clear
    from test_scene import modifier_input
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 640, 360
    assert bpy.ops.import_scene.nnvis_checkpoint(filepath=str(wrapped_model)) == {"FINISHED"}
    layers = [o for o in scene.objects if "nnvis_layer" in o]
    laid_out = {o.name: tuple(o.location) for o in layers}
    row = {o.name: round(o.location.z, 3) for o in layers}      # a row's layers: one height
    assert len(set(row.values())) == 2, "not wrapped into two rows"
    conv = next(o for o in layers if o["nnvis_layer"] == "conv0_1")
    bpy.context.view_layer.objects.active = conv

    def set_all(name, value):
        mod, ident = modifier_input(conv, name)
        mod[ident] = value
        assert bpy.ops.nnvis.input_to_run(input_name=name) == {"FINISHED"}

    for name, value in settings:
        set_all(name, value)
    cam = scene.camera
    for frame in (scene.frame_start, (scene.frame_start + scene.frame_end) // 2):
        scene.frame_set(frame)
        assert not rows_crossing(scene, cam, row)
        check_frame(scene, cam, deep=True)
        check_labels_apart(scene, cam)
        check_labels_clear(scene, cam)
        check_labels_by_their_rows(scene, cam)
    for name, _ in settings:
        set_all(name, {"Morph": 1.0, "Spacing": 1.0, "Expansion": 2.0}[name])
    for obj in layers:
        np.testing.assert_allclose(obj.location, laid_out[obj.name], atol=1e-4)
