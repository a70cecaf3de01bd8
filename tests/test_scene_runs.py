"""Each import is a self-contained run: apart from the others, sharing camera, lights and world,
and removable without leaving anything behind."""
from __future__ import annotations

import numpy as np
import pytest
from test_scene import import_run

TIER = "blender"

KINDS = ("objects", "collections", "meshes", "hair_curves", "curves", "images", "materials",
         "node_groups", "actions", "cameras", "lights", "worlds")


def counts():
    import bpy
    return {kind: len(getattr(bpy.data, kind)) for kind in KINDS}


def saved_size(path) -> int:
    import bpy
    bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True)
    return path.stat().st_size


def own(collection) -> set:
    return {o for o in collection.objects if "nnvis_shared" not in o}


def network_span(collection):
    """(lo, hi) corners of every cell the run draws now."""
    import numpy as np
    from nnvis_addon.scene.camera_moves import evaluated_boxes
    boxes = np.array(list(evaluated_boxes([o for o in collection.objects
                                           if "nnvis_layer" in o]).values()))
    return boxes[:, 0].min(axis=0), boxes[:, 1].max(axis=0)


def test_two_runs_stand_apart_share_the_stage_and_remove_cleanly(digits_run, empty_scene,
                                                                   tmp_path):
    import bpy
    folder, _ = digits_run
    empty = counts()
    first = import_run(folder / "recording", frames_per_epoch=2)
    one_run, one_size = counts(), saved_size(tmp_path / "one.blend")
    second = import_run(folder / "recording", frames_per_epoch=2)
    assert (first.name, second.name) == ("digits_cnn · recording", "digits_cnn · recording 2")
    assert own(first).isdisjoint(own(second))
    for run in (first, second):
        assert all(o.name.startswith(f"{run.name}:") for o in own(run)), sorted(own(run))
    # one camera, one set of lights, one world: shared, not duplicated; the camera frames the
    # newest run and shows its overlays, the first run's wait out of sight
    two_runs = counts()
    for kind in ("cameras", "lights", "worlds"):
        assert two_runs[kind] == one_run[kind], kind
    assert one_run["cameras"] == 1 and one_run["worlds"] == 1
    cam = bpy.context.scene.camera
    assert cam in first.objects.values() and cam in second.objects.values()
    screens = {run.name: next(o for o in run.objects if o.get("nnvis_screen"))
               for run in (first, second)}
    assert tuple(screens[first.name].scale) == (0, 0, 0) and screens[second.name].scale.x > 0
    # side by side along the width axis, not on top of each other
    (lo1, hi1), (lo2, hi2) = network_span(first), network_span(second)
    assert hi1[1] < lo2[1]
    np.testing.assert_allclose([lo1[0], hi1[0]], [lo2[0], hi2[0]], atol=1e-4)
    two_size = saved_size(tmp_path / "two.blend")
    assert two_size > 1.5 * one_size
    kept = sorted(o.name for o in first.all_objects)

    assert bpy.ops.nnvis.remove_run(collection=second.name) == {"FINISHED"}
    assert counts() == one_run
    assert sorted(o.name for o in first.all_objects) == kept
    assert network_span(first)[0] == pytest.approx(lo1)
    assert abs(saved_size(tmp_path / "again.blend") - one_size) < 0.02 * one_size

    bpy.context.view_layer.objects.active = next(o for o in first.objects if "nnvis_layer" in o)
    assert bpy.ops.nnvis.remove_run() == {"FINISHED"}
    left = counts()
    assert left == dict(empty, worlds=left["worlds"]), left   # the scene's world stays its world


def test_import_selects_the_new_runs_first_layer_and_overlays_toggle_by_kind(digits_run,
                                                                              empty_scene):
    import bpy
    from nnvis_addon.scene.runs import overlays_of
    folder, _ = digits_run
    first = import_run(folder / "recording", frames_per_epoch=2)
    second = import_run(folder / "recording", frames_per_epoch=2)
    active = bpy.context.view_layer.objects.active
    assert active.get("nnvis_layer") == "digit" and second in active.users_collection
    assert bpy.context.selected_objects == [active]
    kinds = overlays_of(second)
    assert len(kinds["predictions"]) > 10 and len(kinds) <= 6   # bars, labels: one sidebar row
    assert bpy.ops.nnvis.show_overlay(kind="predictions", show=False) == {"FINISHED"}
    assert all(o.hide_render and o.hide_viewport for o in kinds["predictions"])
    assert not any(o.hide_render for o in overlays_of(first)["predictions"])
    assert bpy.ops.nnvis.show_overlay(kind="predictions", show=True) == {"FINISHED"}
    assert not any(o.hide_render for o in kinds["predictions"])


def test_operator_tooltips_are_one_line_and_the_two_run_buttons_differ(addon):
    import bpy
    from nnvis_addon.options import IMPORT_OPTIONS
    ops = [getattr(getattr(bpy.ops, m), n) for m, n in (
        ("import_scene", "nnvis_checkpoint"), ("nnvis", "render_video"), ("nnvis", "remove_run"),
        ("nnvis", "apply_look"), ("nnvis", "camera_move"), ("nnvis", "load_keras_design"),
        ("nnvis", "show_overlay"), ("nnvis", "input_to_run"))]
    for op in ops:
        text = op.get_rna_type().description
        assert text and "\n" not in text and "  " not in text, op
    props = bpy.ops.import_scene.nnvis_checkpoint.get_rna_type().properties
    assert all(props[o.name].description for o in IMPORT_OPTIONS)
    labels = [props[o.name].name for o in IMPORT_OPTIONS]
    assert len(set(labels)) == len(labels)                       # no two "Probe Image"
    op_class = bpy.types.Operator.bl_rna_get_subclass_py("NNVIS_OT_input_to_run")
    texts = {op_class.description(bpy.context, type("P", (), {"keyframe": k})) for k in (0, 1)}
    assert len(texts) == 2
