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
    # the second run's own data is saved too: every run has its own packed atlases (the file grows
    # by less than their bytes: Blender 5 stores the same recording's identical packed data once)
    atlases = [{i.name.split(":", 1)[1]: i for i in bpy.data.images if i.name.startswith(f"{run.name}:")}
               for run in (first, second)]
    assert atlases[0].keys() == atlases[1].keys()
    assert sum(name.endswith(" activations") for name in atlases[0]) == 8     # one per layer
    assert all(i.packed_file for run in atlases for i in run.values())
    assert two_size > one_size
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


def in_view(scene, cam, obj) -> bool:
    """Whether any corner of `obj`'s evaluated box lies in `cam`'s frame, in front of it."""
    import bpy
    from bpy_extras.object_utils import world_to_camera_view
    ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    uvz = np.array([tuple(world_to_camera_view(scene, cam, ev.matrix_world @ __import__(
        "mathutils").Vector(c))) for c in ev.bound_box])
    return bool(((uvz[:, 2] > 0) & (np.abs(uvz[:, :2] - 0.5) <= 0.5).all(axis=1)).any())


def test_a_run_imported_into_the_startup_scene_renders_alone(digits_run, addon):
    """Blender's untouched startup file: its Cube stood before the input layer in every frame.
    The untouched Cube, Light and Camera go; a startup scene the user changed keeps them all."""
    import bpy
    folder, _ = digits_run
    bpy.ops.wm.read_homefile(use_empty=False)
    scene = bpy.context.scene
    cube = scene.objects["Cube"]
    assert in_view(scene, scene.camera, cube)        # the startup camera sees it, of course
    run = import_run(folder / "recording", frames_per_epoch=2)
    for frame in (scene.frame_start, scene.frame_end):
        scene.frame_set(frame)
        seen = [o.name for o in scene.objects if run not in o.users_collection
                and o.type == "MESH" and in_view(scene, scene.camera, o)]
        assert seen == [], f"frame {frame}: {seen} in the shot"
    assert set(scene.objects) <= set(run.all_objects)
    assert "Cube" not in bpy.data.meshes

    bpy.ops.wm.read_homefile(use_empty=False)
    scene = bpy.context.scene
    scene.objects["Cube"].location.x = -3.0           # the user's own cube now
    run = import_run(folder / "recording", frames_per_epoch=2)
    assert {"Cube", "Light", "Camera"} <= set(scene.objects.keys())


def test_the_import_dialog_and_the_sidebar_speak_the_users_language(digits_run, empty_scene):
    """Human names ('Blues R', 'Weight X Activation', 'Abs' were the keys title-cased), "Auto"
    and "All" as choices instead of -1 and 0, Recorded Probe bounded, and a sidebar without the
    build's wiring (Material, Source, Target pickers) that names the Colour Mode and the epoch."""
    import json

    import bpy
    from nnvis_addon import names
    from nnvis_addon.options import OPTIONS
    props = bpy.ops.import_scene.nnvis_checkpoint.get_rna_type().properties

    def items(name):
        return [item.name for item in props[name].enum_items]

    assert "Blues (reversed)" in items("colormap")
    assert items("edge_colour") == ["Weight", "|Weight|", "Weight × Activation", "Importance"]
    assert items("inputs_per_cell_choice") == ["Auto", "All", "Number"]
    assert props["inputs_per_cell_choice"].default == "auto"
    assert items("frames_per_epoch_choice")[0] == "Auto (12 s)"
    assert items("samples_choice")[0] == "Auto (draft)"
    assert props["probe_index"].hard_max < 2 ** 10
    assert [OPTIONS["inputs_per_cell"].parse(t) for t in ("auto", "All", "7")] == [-1, 0, 7]
    with pytest.raises(ValueError, match="auto, all"):
        OPTIONS["inputs_per_cell"].parse("many")

    folder, _ = digits_run
    run = import_run(folder / "recording", inputs_per_cell_choice="all", frames_per_epoch=2)
    recorded = json.loads(run[names.OPTIONS])
    assert recorded["inputs_per_cell"] == 0 and recorded["frames_per_epoch"] == 2

    panel = bpy.types.Panel.bl_rna_get_subclass_py("NNVIS_PT_layer")
    edges = next(o for o in run.objects if names.EDGES in o)
    log = []

    class Layout:
        def label(self, text="", **_):
            log.append(("label", text))

        def prop(self, *_, text="", **__):
            log.append(("prop", text))

        def operator(self, *_, **__):
            return type("Props", (), {})()

        def row(self, **_):
            return self

    bpy.context.scene.frame_set(3)             # between epochs 0 and 1 (keys at 1, 3, 5, 7)
    panel.draw(type("Panel", (), {"layout": Layout()})(),
               type("Context", (), {"active_object": edges})())
    shown = [text for kind, text in log if kind == "prop"]
    assert "Colour Mode" in shown and "Bundle Strength" in shown
    assert not {"Epoch", "Material", "Source", "Target"} & set(shown), shown
    assert ("label", "Weight") in log and ("label", "Epoch 1 of 0–3") in log, log
