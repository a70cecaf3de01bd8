"""Training overlays from a recording: present, true to the metrics, and animated by the epoch."""
from __future__ import annotations

import numpy as np
import pytest
from test_scene import import_run

TIER = "blender"


def evaluated_vertices(obj):
    import bpy
    depsgraph = bpy.context.evaluated_depsgraph_get()
    mesh = obj.evaluated_get(depsgraph).data
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    return co.reshape(-1, 3)


@pytest.fixture(scope="module")
def recorded(digits_run, addon):
    import bpy
    bpy.ops.wm.read_homefile(use_empty=True)
    folder, history = digits_run
    collection = import_run(folder / "recording", frames_per_epoch=4, probe_index=1,
                            show_probe=False)
    return collection, history


def overlay(collection, kind):
    (obj,) = [o for o in collection.objects if o.get("nnvis_overlay_kind") == kind
              and "nnvis_overlay" in o and o["nnvis_overlay"] == kind]
    return obj


def test_every_overlay_exists_and_the_toggled_off_one_is_hidden(recorded):
    collection, _ = recorded
    kinds = {o.get("nnvis_overlay_kind") for o in collection.objects} - {None}
    assert kinds == {"title", "counter", "curves", "probe", "predictions", "legend"}
    assert overlay(collection, "probe").hide_render
    assert not overlay(collection, "counter").hide_render


def test_counter_lines_carry_the_recorded_metrics(recorded):
    collection, history = recorded
    group = overlay(collection, "counter").modifiers["NNVis"].node_group
    switch = next(n for n in group.nodes if n.bl_idname == "GeometryNodeIndexSwitch")
    lines = [s.default_value for s in switch.inputs[1:] if s.bl_idname != "NodeSocketVirtual"]
    assert lines[0] == "Epoch 0 / 3"
    assert lines[3] == (f"Epoch 3 / 3   loss {history.history['loss'][2]:.3f}   "
                        f"accuracy {history.history['accuracy'][2]:.1%}")


@pytest.mark.parametrize("kind", ["counter", "curves", "predictions"])
def test_overlay_geometry_changes_between_first_and_last_epoch(recorded, kind):
    import bpy
    collection, _ = recorded
    obj = overlay(collection, kind)
    scene = bpy.context.scene
    scene.frame_set(1)
    first = evaluated_vertices(obj)
    scene.frame_set(1 + 4 * 3)
    last = evaluated_vertices(obj)
    assert len(first) > 0 and len(last) > 0
    assert first.shape != last.shape or not np.allclose(first, last)


def test_curves_grow_with_the_epoch(recorded):
    import bpy
    collection, _ = recorded
    obj = overlay(collection, "curves")
    scene = bpy.context.scene
    widths = []
    for frame in (1, 5, 9, 13):
        scene.frame_set(frame)
        widths.append(float(np.ptp(evaluated_vertices(obj) @ np.array([1.0, 0, 0]))))
    assert widths == sorted(widths) and widths[-1] > widths[0] * 2


def test_bars_show_the_recorded_scores(recorded, digits_run):
    import bpy
    from nnvis_addon import load_run
    collection, _ = recorded
    folder, _ = digits_run
    run = load_run(folder / "recording", probe_index=1)
    obj = overlay(collection, "predictions")
    mod = obj.modifiers["NNVis"]
    from nnvis_addon.scene.nodes import input_ids
    height = mod[input_ids(mod.node_group)["Height"]]
    bpy.context.scene.frame_set(1 + 4 * 3)
    v = evaluated_vertices(obj).reshape(10, 8, 3)          # one cube (8 vertices) per class
    bar = v[:, :, 1].max(axis=1) - v[:, :, 1].min(axis=1)
    np.testing.assert_allclose(bar, np.maximum(run.predictions(3)[1] * height, 1e-3), rtol=1e-4,
                               atol=1e-5)


def test_epoch_marker_moves_along_the_curves(recorded):
    """The marker on the curves' epoch axis stands on the shown epoch: the first at the axis'
    start, the last at its end."""
    import bpy
    from nnvis_addon.scene.camera_moves import epoch_frames
    collection, _ = recorded
    curves = overlay(collection, "curves")
    (marker,) = [o for o in collection.objects if o.get("nnvis_overlay") == "marker"]
    width = max(v.co.x for v in curves.data.vertices)
    scene = bpy.context.scene
    at = []
    for frame in (epoch_frames(collection)[0], epoch_frames(collection)[-1]):
        scene.frame_set(int(round(frame)))
        at.append(marker.location.x - curves.location.x)
    assert at == pytest.approx([0.0, width], abs=1e-4) and width > 0.1
