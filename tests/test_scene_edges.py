"""Edge curves in the scene: exact ends, live bundle strength, true weights, level of detail."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_scene import import_run, modifier_input

from nnvis_addon import load_run
from nnvis_addon.atlas import as_cells, pack
from nnvis_addon.layout import layout_network
from nnvis_addon.model.edges import layer_edges

TIER = "blender"

HERE = Path(__file__).parent


def evaluated_points(obj):
    import bpy
    depsgraph = bpy.context.evaluated_depsgraph_get()
    curves = obj.evaluated_get(depsgraph).data
    pts = np.empty(len(curves.points) * 3, np.float32)
    curves.attributes["position"].data.foreach_get("vector", pts)
    return pts.reshape(len(curves.curves), -1, 3)


@pytest.fixture(scope="module")
def edges_scene(digits_run, addon):
    import bpy
    bpy.ops.wm.read_homefile(use_empty=True)
    folder, _ = digits_run
    # every input of every cell drawn (not a one-row network's ROW_INPUTS strongest): the tests
    # below compare the curves with every weight of a connection
    collection = import_run(folder, frames_per_epoch=2, bundle_strength=0.7, inputs_per_cell=0)
    return collection, load_run(folder)


def edge_obj(collection, src, dst):
    return next(o for o in collection.objects if list(o.get("nnvis_edges", [])) == [src, dst])


def test_curves_start_and_end_on_their_cells_and_bundle_in_between(edges_scene):
    collection, run = edges_scene
    obj = edge_obj(collection, "flatten", "dense")
    pts = evaluated_points(obj)
    weights = [{l.name: run.weights(l.name, e) for l in run.layers} for e in run.epochs]
    edges = layer_edges(run.network, "dense", weights)["flatten"]
    place = {p.name: p for p in layout_network(run.network)}
    order = np.argsort(-np.abs(edges.weight).max(axis=0), kind="stable")
    np.testing.assert_allclose(pts[:, 0], place["flatten"].centers[edges.src[order]], atol=1e-5)
    np.testing.assert_allclose(pts[:, -1], place["dense"].centers[edges.dst[order]], atol=1e-5)
    straight = pts[:, 0] + (pts[:, -1] - pts[:, 0]) * 0.5
    assert np.abs(pts[:, pts.shape[1] // 2] - straight).max() > 0.05     # bent: bundled


def test_bundle_strength_is_a_live_input(edges_scene):
    import bpy
    collection, _ = edges_scene
    obj = edge_obj(collection, "flatten", "dense")
    mod, ident = modifier_input(obj, "Bundle Strength")
    assert mod[ident] == pytest.approx(0.7)
    mod[ident] = 0.0
    obj.update_tag()
    pts = evaluated_points(obj)
    t = np.linspace(0, 1, pts.shape[1])[None, :, None]
    np.testing.assert_allclose(pts, pts[:, :1] + (pts[:, -1:] - pts[:, :1]) * t, atol=1e-4)
    mod[ident] = 0.7
    obj.update_tag()
    bpy.context.view_layer.update()


def test_edge_colours_read_the_true_weights(edges_scene):
    collection, run = edges_scene
    obj = edge_obj(collection, "dense", "classes")
    mod, ident = modifier_input(obj, "Material")
    image = next(n.image for n in mod[ident].node_tree.nodes if n.bl_idname == "ShaderNodeTexImage")
    px = np.empty(image.size[0] * image.size[1] * 4, np.float32)
    image.pixels.foreach_get(px)
    per_epoch = px.reshape(len(run.epochs), -1, 4)[:, :, :3].reshape(len(run.epochs), -1)
    kernels = np.stack([run.weights("classes", e)[0] for e in run.epochs])     # (E, 32, 10)
    flat = kernels.reshape(len(run.epochs), -1)
    order = np.argsort(-np.abs(flat).max(axis=0), kind="stable")
    # colour mode blocks: weight, |weight|, weight × activation, importance (|w|·|a|)
    act = np.stack([run.activations("dense", e) for e in run.epochs])[:, None]   # (E, 1, 32)
    src = np.repeat(np.arange(32), 10)[order]
    expected = [flat[:, order], np.abs(flat[:, order]), flat[:, order] * act[:, 0, src],
                np.abs(flat[:, order]) * np.abs(act[:, 0, src])]
    for k, block in enumerate(expected):
        np.testing.assert_allclose(per_epoch[:, k * 320:(k + 1) * 320], block, rtol=1e-6)
    index = np.empty(len(obj.data.curves), np.float32)
    obj.data.attributes["nnvis_edge"].data.foreach_get("value", index)
    np.testing.assert_array_equal(index, np.arange(320))


def test_colour_mode_is_an_input_the_curves_carry(edges_scene):
    import bpy
    collection, _ = edges_scene
    obj = edge_obj(collection, "dense", "classes")
    mod, ident = modifier_input(obj, "Colour Mode")
    mod[ident] = 3
    obj.update_tag()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    curves = obj.evaluated_get(depsgraph).data
    mode = np.empty(len(curves.curves), np.float32)
    curves.attributes["nnvis_mode"].data.foreach_get("value", mode)
    assert set(mode) == {3.0}
    mat = modifier_input(obj, "Material")[0][modifier_input(obj, "Material")[1]]
    scales = [mat.node_tree.nodes[f"nnvis_mode_scale_{k}"].outputs[0].default_value
              for k in range(4)]
    assert all(s > 0 for s in scales) and len(set(scales)) > 1
    mod[ident] = 0
    obj.update_tag()


def test_max_edges_keeps_the_strongest(edges_scene):
    collection, _ = edges_scene
    obj = edge_obj(collection, "flatten", "dense")
    mod, ident = modifier_input(obj, "Max Edges")
    full = evaluated_points(obj)
    mod[ident] = 100
    obj.update_tag()
    shown = evaluated_points(obj)
    assert len(shown) == 100
    np.testing.assert_allclose(shown, full[:100], atol=1e-6)
    mod[ident] = 1 << 30
    obj.update_tag()


def test_highlight_lights_the_traced_edges(edges_scene):
    import bpy
    from nnvis_addon.model.trace import trace
    collection, run = edges_scene
    obj = edge_obj(collection, "dense", "classes")
    mod, unit_id = modifier_input(obj, "Trace Unit")
    _, on_id = modifier_input(obj, "Highlight")
    unit = mod[unit_id]
    mod[on_id] = 1.0
    obj.update_tag()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    curves = obj.evaluated_get(depsgraph).data
    lit = np.empty(len(curves.curves), np.float32)
    curves.attributes["nnvis_lit"].data.foreach_get("value", lit)
    epoch = run.epochs[-1]
    found = trace(run.network, {l.name: run.weights(l.name, epoch) for l in run.layers},
                  {l.name: run.activations(l.name, epoch) for l in run.layers}, [unit],
                  with_edges=True)
    flat = np.stack([run.weights("classes", e)[0] for e in run.epochs]).reshape(len(run.epochs), -1)
    order = np.argsort(-np.abs(flat).max(axis=0), kind="stable")
    np.testing.assert_allclose(lit, found.edges[("dense", "classes")][0][order], atol=1e-6)
    assert lit.max() > 0 and (lit == 0).sum() > 0     # some edges lit, others not
    mod[on_id] = 0.0
    obj.update_tag()


def test_import_cap_keeps_exactly_the_top_edges(digits_run, empty_scene):
    import bpy
    from nnvis_addon.scene import SceneOptions, build_scene
    folder, _ = digits_run
    run = load_run(folder)
    collection = build_scene(run, SceneOptions(max_edges=500, inputs_per_cell=0,
                                                    overlays=()), bpy.context.scene)
    obj = edge_obj(collection, "flatten", "dense")
    assert len(obj.data.curves) == 500
    kernels = np.stack([run.weights("dense", e)[0] for e in run.epochs])
    score = np.sort(np.abs(kernels).max(axis=0).ravel())[::-1]
    mod, ident = modifier_input(obj, "Material")
    image = next(n.image for n in mod[ident].node_tree.nodes if n.bl_idname == "ShaderNodeTexImage")
    px = np.empty(image.size[0] * image.size[1] * 4, np.float32)
    image.pixels.foreach_get(px)
    per_epoch = px.reshape(len(run.epochs), -1, 4)[:, :, :3].reshape(len(run.epochs), -1)
    values = per_epoch[:, :500]
    np.testing.assert_allclose(np.abs(values).max(axis=0), score[:500])


def test_density_bundler_keeps_ends_and_bends_differently(digits_run, empty_scene):
    import bpy
    from nnvis_addon.scene import SceneOptions, build_scene
    from nnvis_addon.scene.runs import remove_run
    folder, _ = digits_run
    run = load_run(folder)
    shapes = {}
    for bundler in ("structural", "density"):     # one at a time: a second run stands aside
        collection = build_scene(run, SceneOptions(bundler=bundler, overlays=()),
                                 bpy.context.scene)
        shapes[bundler] = evaluated_points(edge_obj(collection, "flatten", "dense"))
        remove_run(collection)
    a, b = shapes["structural"], shapes["density"]
    np.testing.assert_allclose(a[:, [0, -1]], b[:, [0, -1]], atol=1e-5)
    assert np.abs(a[:, 1:-1] - b[:, 1:-1]).max() > 1e-3


def key(obj, frames: dict, name=None, path=None):
    """Keyframe modifier input `name` (or object property `path`) at {frame: value}."""
    mod, ident = modifier_input(obj, name) if name else (obj, path)
    for frame, value in frames.items():
        if name:
            mod[ident] = value
            obj.keyframe_insert(f'modifiers["NNVis"]["{ident}"]', frame=frame)
        else:
            setattr(obj, path, value)
            obj.keyframe_insert(path, frame=frame)


def test_edges_follow_the_cells_also_without_the_addon(digits_run, empty_scene, tmp_path):
    """Morph 0 → 0.5 → 1, Spacing, Expansion and moving/turning layer objects, keyed on the
    timeline: at every frame every curve's ends sit on the centres of the cells they join, in
    this process and in a saved .blend opened by a Blender without nnvis."""
    import bpy
    from edges_without_addon import end_gaps
    from nnvis_addon.scene import SceneOptions, build_scene
    folder, _ = digits_run
    run = load_run(folder)
    collection = build_scene(run, SceneOptions(overlays=(), max_edges=400), bpy.context.scene)
    layer = {o["nnvis_layer"]: o for o in collection.objects if "nnvis_layer" in o}
    key(layer["conv2"], {1: 1.0, 2: 0.0, 3: 0.5, 4: 1.0}, "Morph")
    key(layer["conv2"], {4: 1.0, 5: 2.0}, "Spacing")
    key(layer["conv2"], {5: 2.0, 6: 1.5, 7: 0.5, 8: 2.0}, "Expansion")
    key(layer["dense"], {1: 1.0, 3: 0.0}, "Morph")
    key(layer["dense"], {4: 1.0, 5: 0.4}, "Spacing")
    for name, turn in (("pool1", 0.5), ("conv2", -0.3)):
        start = tuple(layer[name].location)
        key(layer[name], {8: start, 9: (start[0], start[1] + 1.0, start[2] + 0.5)},
            path="location")
        key(layer[name], {8: (0.0, 0.0, 0.0), 9: (0.0, 0.2, turn)}, path="rotation_euler")
    frames = range(1, 10)
    tolerance = 0.01 * min(max(p.extent) for p in layout_network(run.network))
    edge_objs = [o for o in collection.objects if "nnvis_edges" in o]
    bpy.context.scene.frame_set(1)
    rest = {o.name: evaluated_points(o)[:, [0, -1]] for o in edge_objs}
    moved = {}
    for frame in frames:
        bpy.context.scene.frame_set(frame)
        gaps = end_gaps(bpy)
        assert set(gaps) == {o.name for o in edge_objs}
        assert max(g for g, _ in gaps.values()) < tolerance, (frame, gaps)
        assert all(n > 0 for _, n in gaps.values())
        moved[frame] = max(float(np.abs(evaluated_points(o)[:, [0, -1]] - rest[o.name]).max())
                           for o in edge_objs)
    assert all(moved[f] > 0.1 for f in frames[1:]), moved     # the ends really travelled
    blend = tmp_path / "follow.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True)
    done = subprocess.run([sys.executable, str(HERE / "edges_without_addon.py"), str(blend),
                           *map(str, frames)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.split("REPORT", 1)[1])
    assert not any("nnvis" in a for a in report["addons"])
    for frame in frames:
        gaps = report["gaps"][str(frame)]
        assert set(gaps) == {o.name for o in edge_objs}
        assert max(g for g, _ in gaps.values()) < tolerance, (frame, gaps)
        assert all(n > 0 for _, n in gaps.values())
