"""Training overlays from a recording: present, true to the metrics, and animated by the epoch."""
from __future__ import annotations

import numpy as np
import pytest
from test_scene import import_run, modifier_input

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


def test_every_text_reads_at_640x360(recorded):
    """Layer labels, captions, the counter and the legend at least 12 px tall in the demo's
    640×360 video (labels were 8.6 px, the curves' ticks and legend 8), at the first and last
    frame."""
    import bpy
    from test_picture import check_text_size, text_sizes
    scene = bpy.context.scene
    for frame in (scene.frame_start, scene.frame_end):
        scene.frame_set(frame)
        assert len(text_sizes(scene, scene.camera)) >= 20
        check_text_size(scene, scene.camera)


def test_validation_curves_stand_apart_from_training(recorded):
    """val_loss beside loss was a darker twin of the same orange: now each validation curve has a
    hue at least 60° from its training curve's, and its own legend entry in its own colour."""
    import colorsys
    from nnvis_addon.scene.overlays import METRIC_COLOURS
    collection, _ = recorded
    curves = overlay(collection, "curves")
    assert {"val_loss", "val_accuracy"} <= set(curves["nnvis_metrics"])
    hue = {k: colorsys.rgb_to_hsv(*c)[0] * 360 for k, c in METRIC_COLOURS.items()}
    for key in ("loss", "accuracy"):
        apart = abs(hue[key] - hue[f"val_{key}"])
        assert min(apart, 360 - apart) >= 60, (key, hue)
    texts = {o.data.body for o in collection.objects if o.type == "FONT"}
    assert "val_loss" in texts and "val_accuracy" in texts


def test_curve_end_meets_the_epoch_marker_at_every_frame(recorded):
    """The curves ran an epoch ahead of the marker (the recording has no metrics for epoch 0, so
    a curve's first point is the run's second epoch): now the growing tip stands on the marker at
    every frame, between epochs too."""
    import bpy
    collection, _ = recorded
    curves = overlay(collection, "curves")
    (marker,) = [o for o in collection.objects if o.get("nnvis_overlay") == "marker"]
    radius = curves.modifiers["NNVis"][modifier_input(curves, "Radius")[1]]
    scene = bpy.context.scene
    tips = []
    for frame in range(scene.frame_start, 1 + 4 * 3 + 2):
        scene.frame_set(frame)
        tip = float(evaluated_vertices(curves)[:, 0].max())
        tips.append(tip)
        assert tip == pytest.approx(marker.location.x - curves.location.x, abs=2 * radius), frame
    assert tips[-1] > tips[0] + 0.1


def test_logits_show_as_their_softmax_and_the_top_class_is_named():
    """Clipped to [0, 1], logits 1.0, 1.8 and 4.5 all showed full bars: logits go through a
    softmax (and the panel says so); probabilities stay as they are."""
    from nnvis_addon.scene.overlays import bar_scores, top_lines
    logits = np.array([[0.2, 1.0, -0.5, 0.0, 1.8, 0.1, -1.0, 0.3, 0.0, 4.5]])
    shown, softmax = bar_scores(logits)
    expected = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(shown, expected, rtol=1e-6)
    assert softmax and shown[0, 9] > 0.85 and shown[0, 4] < 0.1          # class 9 stands out
    assert top_lines(shown, [str(c) for c in range(10)]) == [f"top 9 · {expected[0, 9]:.0%}"]
    probabilities = np.array([[0.1, 0.7, 0.2], [0.3, 0.3, 0.4]], np.float32)
    shown, softmax = bar_scores(probabilities)
    assert not softmax and np.array_equal(shown, probabilities)


def test_one_legend_per_colour_scale_and_one_for_the_edges(addon, tmp_path):
    """A network of signed (convolutions without activation: coolwarm) and non-negative (ReLU:
    viridis) outputs drew both under one "conv1 activation" legend: now each colour map in use has
    its legend, with the range of a layer drawn in it, and the edges have theirs (−w … +w), all
    in the margins, readable."""
    import bpy
    from nnvis_addon import names
    from nnvis_addon.scene import legend
    from test_picture import check_frame
    keras = pytest.importorskip("keras")
    from keras import layers as L
    keras.utils.set_random_seed(5)
    inp = keras.Input((8, 8, 1), name="image")
    a = L.Activation("relu", name="activation")(L.Conv2D(4, 3, padding="same", name="conv1")(inp))
    b = L.Conv2D(4, 3, padding="same", name="conv2")(a)
    out = L.Dense(3, activation="softmax", name="classes")(L.GlobalAveragePooling2D(name="gap")(b))
    keras.Model(inp, out, name="mixed").save(tmp_path / "mixed.keras")
    bpy.ops.wm.read_homefile(use_empty=True)
    collection = import_run(tmp_path / "mixed.keras", all_epochs=False)
    legends = [o for o in collection.objects if "nnvis_legend_layer" in o]
    shown = {o["nnvis_legend_layer"]: legend.described(collection, o) for o in legends}
    ramps = {legend.material_of(o).get(names.RAMP_NAME) for o in collection.objects
             if "nnvis_layer" in o and "NNVis" in o.modifiers and o["nnvis_kind"] != "InputLayer"}
    assert ramps == {"viridis", "coolwarm"}
    assert {legend.material_of(o).get(names.RAMP_NAME) for o in shown.values()
            if "nnvis_layer" in o} == ramps
    (edges,) = [o for o in shown.values() if "nnvis_edges" in o]
    lo, hi = legend.range_of(edges)
    assert lo == pytest.approx(-hi) and hi > 0                 # weights: centred on zero
    titles = {o.modifiers["NNVis"][modifier_input(o, "Title")[1]] for o in legends}
    assert "edge weight" in titles and len(legends) == 3
    assert "activation" in titles, titles       # the ReLU layer Keras named `activation`: not
    assert not any("activation activation" in t for t in titles)      # "activation activation"
    scene = bpy.context.scene
    scene.frame_set(scene.frame_start)
    check_frame(scene, scene.camera, deep=False)
