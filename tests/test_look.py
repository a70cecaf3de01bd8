"""The look and the controls (issue 6): every control is an animatable modifier input that changes
the evaluated geometry; expansion, morph and colour do what they say, with true values; kernel
windows agree with TensorFlow; looks and camera moves render and move."""
from __future__ import annotations

import numpy as np
import pytest
from test_picture import check_frame, check_labels_clear, check_labels_through_the_move, \
    shown_labels
from test_scene import import_run, modifier_input
from test_shading import linear_colormap, render_map

from nnvis_addon import arrange, colormaps, layout, load_run, names
from nnvis_addon.model.network import Layer, Network
from nnvis_addon.model.trace import trace
from nnvis_addon.model.window import kernel_window

TIER = "render"

# Rows of matplotlib's own tables (matplotlib/_cm_listed.py, 256 rows; t = row / 255).
MATPLOTLIB = {
    "viridis": {0: (0.267004, 0.004874, 0.329415), 60: (0.237441, 0.305202, 0.541921),
                128: (0.127568, 0.566949, 0.550556), 255: (0.993248, 0.906157, 0.143936)},
    "inferno": {0: (0.001462, 0.000466, 0.013866), 60: (0.316282, 0.05349, 0.425116),
                128: (0.735683, 0.215906, 0.330245), 255: (0.988362, 0.998364, 0.644924)},
    "magma": {0: (0.001462, 0.000466, 0.013866), 60: (0.291366, 0.064553, 0.475462),
              128: (0.716387, 0.214982, 0.47529), 255: (0.987053, 0.991438, 0.749504)},
    "cividis": {0: (0.0, 0.135112, 0.304751), 60: (0.247605, 0.296986, 0.422917),
                128: (0.488697, 0.485318, 0.471008), 255: (0.995737, 0.909344, 0.217772)},
}
PLANE_CONTROLS = {"Expansion", "Morph", "Spacing", "Scale", "Colour Map",
                  "Normalise Per Map", "Highlight", "Trace Unit", "Focus X", "Focus Y",
                  "Focus Map", "Inbound", "Width", "Height", "Max Cells", "Material"}
# (layer, input, value keyed at frame 1, at frame 3, other inputs set meanwhile)
KEYED = [("conv2", "Expansion", 2.0, 0.5, {}), ("conv2", "Morph", 1.0, 0.0, {}),
         ("conv2", "Spacing", 1.0, 1.7, {}), ("conv2", "Scale", 1.0, 0.6, {}),
         ("conv2", "Colour Map", 0.0, 3.0, {}), ("conv2", "Normalise Per Map", 0.0, 1.0, {}),
         ("conv2", "Highlight", 0.0, 1.0, {}), ("conv2", "Trace Unit", 0, 7, {"Highlight": 1.0}),
         ("conv2", "Focus X", 0, 9, {"Expansion": 3.0}),
         ("conv2", "Focus Y", 0, 9, {"Expansion": 3.0}),
         ("conv2", "Focus Map", 0, 5, {"Expansion": 3.0}), ("conv2", "Max Cells", 16, 4, {}),
         ("dense", "Expansion", 2.0, 0.0, {}), ("dense", "Morph", 1.0, 0.5, {}),
         ("dense", "Spacing", 1.0, 0.5, {}), ("dense", "Colour Map", 0.0, 5.0, {})]


@pytest.fixture(scope="module")
def imported(digits_run, addon):
    import bpy
    bpy.ops.wm.read_homefile(use_empty=True)
    folder, _ = digits_run
    collection = import_run(folder, frames_per_epoch=2)
    return collection, load_run(folder)


def set_input(obj, name, value):
    mod, ident = modifier_input(obj, name)
    mod[ident] = value
    obj.update_tag()


def geometry(obj) -> dict[str, np.ndarray]:
    """The evaluated object's instances (transforms and attributes) and realized mesh vertices."""
    import bpy
    geo = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).evaluated_geometry()
    out = {}
    cloud = geo.instances_pointcloud()
    for attr in (cloud.attributes if cloud is not None else []):
        if attr.name.startswith(".") or attr.name == "position" or \
                attr.data_type not in ("FLOAT", "FLOAT_VECTOR", "FLOAT4X4"):
            continue          # (position: read from the transforms, its foreach_get is empty)
        width = {"FLOAT": 1, "FLOAT_VECTOR": 3, "FLOAT4X4": 16}[attr.data_type]
        values = np.empty(len(attr.data) * width, np.float32)
        attr.data.foreach_get("vector" if width == 3 else "value", values)
        out[attr.name] = values.reshape(len(attr.data), width)
    if "instance_transform" in out:       # column-major 4×4: the translation is 12..14
        out["position"] = out["instance_transform"][:, 12:15]
    mesh = geo.mesh
    verts = np.empty(3 * len(mesh.vertices) if mesh else 0, np.float32)
    if mesh:
        mesh.vertices.foreach_get("co", verts)
    out["mesh"] = verts.reshape(-1, 3)
    return out


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and np.allclose(a[k], b[k])
                                        for k in a)


def positions(obj) -> np.ndarray:
    return geometry(obj)["position"].astype(np.float64)


def test_every_control_is_an_input_of_the_layer_modifier(imported):
    collection, _ = imported
    from nnvis_addon.scene.nodes import input_ids
    conv = collection.objects[f"{collection.name}:conv2"].modifiers["NNVis"].node_group
    assert set(input_ids(conv)) == PLANE_CONTROLS | {"Geometry"}
    dense = collection.objects[f"{collection.name}:dense"].modifiers["NNVis"].node_group
    assert set(input_ids(dense)) == PLANE_CONTROLS - {"Focus X", "Focus Y", "Focus Map",
                                                      "Inbound"} | {"Geometry"}


@pytest.mark.parametrize("layer, name, a, b, others", KEYED,
                         ids=[f"{k[0]}-{k[1]}" for k in KEYED])
def test_a_keyframed_control_changes_the_evaluated_geometry(imported, layer, name, a, b, others):
    import bpy
    collection, _ = imported
    obj = collection.objects[f"{collection.name}:{layer}"]
    mod, ident = modifier_input(obj, name)
    for other, value in others.items():
        set_input(obj, other, value)
    for frame, value in ((1, a), (3, b)):
        mod[ident] = value
        assert mod.keyframe_insert(f'["{ident}"]', frame=frame)
    try:
        scene = bpy.context.scene
        scene.frame_set(1)
        first = geometry(obj)
        scene.frame_set(3)
        assert mod[ident] == pytest.approx(b)
        assert not same(first, geometry(obj)), f"{name} {a} → {b} changed nothing"
    finally:
        for frame in (1, 3):
            mod.keyframe_delete(f'["{ident}"]', frame=frame)
        defaults = {"Highlight": 0.0, "Expansion": 2.0}
        for reset in (name, *others):
            item = next(i for i in mod.node_group.interface.items_tree
                        if i.item_type == "SOCKET" and i.name == reset)
            set_input(obj, reset, defaults.get(reset, item.default_value))
        if name == "Trace Unit":
            set_input(obj, name, 0)


def test_expansion_0_shows_each_layer_as_one_box_of_its_shape(imported):
    import bpy
    from nnvis_addon.scene import compat
    collection, run = imported
    layers = [o for o in collection.objects if "nnvis_layer" in o]
    bpy.context.view_layer.objects.active = layers[0]
    set_input(layers[0], "Expansion", 0.0)
    assert bpy.ops.nnvis.input_to_run(input_name="Expansion", keyframe=True) == {"FINISHED"}
    placements = {p.name: p for p in layout.layout_network(run.network)}
    try:
        depsgraph = bpy.context.evaluated_depsgraph_get()
        for obj in layers:
            assert geometry(obj)["position"].shape[0] == 1, obj.name
            (box,) = [i.object.data for i in depsgraph.object_instances
                      if i.is_instance and i.parent.original == obj]
            corners = np.array([v.co for v in box.vertices])
            layer = run.network.layer(obj["nnvis_layer"])
            expected = arrange.arrangements(placements[layer.name], layer.output_shape).block
            np.testing.assert_allclose(np.ptp(corners, axis=0), expected, rtol=1e-5)
            if layer.is_spatial:        # Y, Z: one feature map; X: one pixel per channel, capped
                h, w, c = layer.output_shape
                size = placements[layer.name].cell_size
                assert expected[0] == pytest.approx(min(c * size / max(h, w), size), rel=1e-5)
                mod, ident = modifier_input(obj, "Width")
                assert expected[1] == pytest.approx(mod[ident], rel=1e-5)
            mod, ident = modifier_input(obj, "Expansion")
            (keys,) = [f.keyframe_points for f in compat.fcurves_of(obj)
                       if f.data_path == f'modifiers["NNVis"]["{ident}"]']
            assert [tuple(k.co) for k in keys] == [(bpy.context.scene.frame_current, 0.0)]
    finally:
        for obj in layers:
            mod, ident = modifier_input(obj, "Expansion")
            mod.keyframe_delete(f'["{ident}"]')
            set_input(obj, "Expansion", 2.0)
    assert [geometry(o)["position"].shape[0] for o in layers] == \
        [run.network.layer(o["nnvis_layer"]).cell_count for o in layers]


def test_morph_moves_the_maps_from_a_line_through_a_circle_to_the_grid(imported):
    collection, _ = imported
    obj = collection.objects[f"{collection.name}:conv2"]
    grid = np.array([v.co for v in obj.data.vertices], np.float64)
    try:
        set_input(obj, "Morph", 1.0)
        np.testing.assert_allclose(positions(obj), grid, atol=1e-5)       # the layout
        set_input(obj, "Morph", 0.0)
        line = positions(obj)
        centre = (grid.min(axis=0) + grid.max(axis=0)) / 2
        np.testing.assert_allclose(line[:, :2], np.broadcast_to(centre[:2], line[:, :2].shape),
                                   atol=1e-5)                               # one vertical line
        assert np.all(np.diff(line[:, 2]) < 0)                              # first map on top
        set_input(obj, "Morph", 0.5)
        ring = np.linalg.norm(positions(obj) - centre, axis=1)
        np.testing.assert_allclose(ring, ring[0], rtol=1e-5)                # a circle
        assert ring[0] > 0
        set_input(obj, "Morph", 1.0)
        set_input(obj, "Spacing", 2.0)
        np.testing.assert_allclose(positions(obj) - centre, 2 * (grid - centre), atol=1e-5)
    finally:
        set_input(obj, "Morph", 1.0)
        set_input(obj, "Spacing", 1.0)
    singular = np.linalg.svd(grid[:, 1:] - grid[:, 1:].mean(axis=0), compute_uv=False)
    assert singular[1] > 0.1                                                # the grid is 2D


def test_controls_set_on_all_layers_keep_the_shot(imported):
    """Morph 0.5 and Spacing 1.6 on all layers, as the user guide suggests: the Flatten's 800
    units made a ring 10 × its grid's width that swallowed the frame, and the camera stayed where
    it was, inside it. Now long layers ring into a disc and the camera frames the run again."""
    import bpy
    from nnvis_addon.framing import box_corners
    from nnvis_addon.scene import camera_moves
    from test_picture import layer_boxes
    collection, _ = imported
    scene = bpy.context.scene
    cam = camera_moves.run_camera(collection)
    conv2 = collection.objects[f"{collection.name}:conv2"]
    bpy.context.view_layer.objects.active = conv2
    try:
        for name, value in (("Morph", 0.5), ("Spacing", 1.6)):
            set_input(conv2, name, value)
            assert bpy.ops.nnvis.input_to_run(input_name=name) == {"FINISHED"}
        scene.frame_set(scene.frame_start)
        layers = [o for o in collection.all_objects if "nnvis_layer" in o]
        where = np.array(cam.matrix_world.translation)
        for name, (lo, hi) in camera_moves.evaluated_boxes(layers).items():
            assert not np.all((lo <= where) & (where <= hi)), f"the camera is inside {name}"
        check_frame(scene, cam, deep=False)      # inside the frame, filling it, overlays clear
        boxes = np.array(list(layer_boxes(scene, cam).values()))
        whole = (boxes[:, 2:].max(axis=0) - boxes[:, :2].min(axis=0)).prod()
        largest = ((boxes[:, 2:] - boxes[:, :2]).prod(axis=1)).max()
        assert largest < 0.6 * whole, f"one layer covers {largest / whole:.0%} of the network's box"
    finally:
        for name, value in (("Morph", 1.0), ("Spacing", 1.0)):
            set_input(conv2, name, value)
            bpy.ops.nnvis.input_to_run(input_name=name)


def test_expansion_3_draws_the_kernel_window_of_the_focus_pixel(imported):
    """conv2 (3×3 'same' on pool1's 16×16 maps): windows on pool1's 8 maps, a marker on the
    focus pixel, 4 lines a window; the window's corners are where the kernel covers pool1."""
    collection, run = imported
    obj, inbound = (collection.objects[f"{collection.name}:{n}"] for n in ("conv2", "pool1"))
    layer, source = run.network.layer("conv2"), run.network.layer("pool1")
    window = kernel_window(layer, source)
    assert (window.stride, window.offset, window.size) == ((1, 1), (-1, -1), (3, 3))
    settings = {"Expansion": 3.0, "Focus X": 5, "Focus Y": 3, "Focus Map": 2}
    try:
        for name, value in settings.items():
            set_input(obj, name, value)
        tubes = geometry(obj)["mesh"][layer.cell_count:]     # after the cells' anchors
    finally:
        for name, value in {"Expansion": 2.0, "Focus X": 0, "Focus Y": 0, "Focus Map": 0}.items():
            set_input(obj, name, value)
    to_obj = obj.matrix_world.inverted() @ inbound.matrix_world     # tubes: in conv2's space
    maps = np.array([to_obj @ v.co for v in inbound.data.vertices])
    mod, ident = modifier_input(inbound, "Width")
    side = mod[ident]
    r0, r1, c0, c1 = window.span(3, 5, 16, 16)
    corners = [maps[k] + np.array([0.0, (0.5 - c / 16) * side, (0.5 - r / 16) * side])
               for k in range(8) for r in (r0, r1) for c in (c0, c1)]
    for corner in corners:         # a tube passes by every window corner (tubes: 6-gon profile)
        assert np.min(np.linalg.norm(tubes - corner, axis=1)) < 0.03 * side
    assert tubes[:, 0].max() > maps[0, 0] + 1.0        # lines reach conv2, one rank further
    anchors = geometry(obj)["mesh"]                    # gone again at Expansion 2: only the
    np.testing.assert_allclose(anchors, positions(obj), atol=1e-6)     # cells' anchors stay


@pytest.mark.parametrize("kind, config", [
    ("Conv2D", dict(filters=1, kernel_size=3, padding="valid")),
    ("Conv2D", dict(filters=1, kernel_size=3, strides=2, padding="same")),
    ("Conv2D", dict(filters=1, kernel_size=(4, 2), strides=(2, 3), padding="same")),
    ("Conv2D", dict(filters=1, kernel_size=3, dilation_rate=2, padding="same")),
    ("AveragePooling2D", dict(pool_size=3, strides=2, padding="same")),
    ("ZeroPadding2D", dict(padding=((1, 2), (2, 0)))),
    ("Cropping2D", dict(cropping=((1, 0), (2, 1)))),
    ("UpSampling2D", dict(size=(2, 3))),
])
def test_kernel_windows_are_the_pixels_tensorflow_reads(kind, config):
    import keras
    import tensorflow as tf
    model = keras.Sequential([keras.Input((9, 8, 1)), getattr(keras.layers, kind)(**config)])
    keras_layer = model.layers[0]
    if keras_layer.weights:
        keras_layer.set_weights([np.random.default_rng(0).uniform(0.5, 1.5, w.shape)
                                 for w in keras_layer.get_weights()])
    out_h, out_w = keras_layer.output.shape[1:3]
    layer = Layer("l", kind, keras_layer.get_config(), ["in"], (out_h, out_w, 1))
    window = kernel_window(layer, Layer("in", "InputLayer", {}, [], (9, 8, 1)))
    x = tf.Variable(np.random.default_rng(1).uniform(0.5, 1.5, (1, 9, 8, 1)).astype(np.float32))
    for oy in range(out_h):
        for ox in range(out_w):
            with tf.GradientTape() as tape:
                y = model(x)[0, oy, ox, 0]
            rows, cols = np.nonzero(tape.gradient(y, x).numpy()[0, :, :, 0])
            r0, r1, c0, c1 = window.span(oy, ox, 9, 8)
            if r0 >= r1 or c0 >= c1:                    # all padding: reads no input pixel
                assert rows.size == 0, (oy, ox)
                continue
            assert rows.size and rows.min() >= r0 and rows.max() < r1, (oy, ox)
            assert cols.min() >= c0 and cols.max() < c1, (oy, ox)
            if config.get("dilation_rate", 1) == 1:   # dilated kernels read every other pixel
                assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (r0, r1, c0, c1)


def test_trace_shares_relevance_by_weight_times_activation():
    """In → Dense(2) → Dense(2): by hand, unit 1's relevance reaches the hidden units in
    proportion to |w[i, 1]| · a_i and the inputs in proportion to what the hidden units pass."""
    layers = [Layer("in", "InputLayer", {}, [], (3,)),
              Layer("h", "Dense", {"units": 2}, ["in"], (2,), [(3, 2), (2,)]),
              Layer("out", "Dense", {"units": 2}, ["h"], (2,), [(2, 2), (2,)])]
    w_h = np.array([[1.0, -2.0], [0.5, 0.0], [0.0, 3.0]])
    w_out = np.array([[2.0, 1.0], [-1.0, -4.0]])
    weights = {"h": [w_h, np.zeros(2)], "out": [w_out, np.zeros(2)]}
    acts = {"in": np.array([1.0, 2.0, -1.0]), "h": np.array([0.5, 0.25]),
            "out": np.array([0.0, 1.0])}
    found = trace(Network("n", layers), weights, acts, [1], with_edges=True)
    hidden = np.abs(w_out[:, 1]) * np.abs(acts["h"])          # [0.5, 1.0]
    hidden = hidden / hidden.sum()
    share = np.abs(w_h) * np.abs(acts["in"])[:, None]         # input i → hidden j
    inputs = (share / share.sum(axis=0)) @ hidden
    np.testing.assert_allclose(found.cells["out"], [[0.0, 1.0]])
    np.testing.assert_allclose(found.cells["h"][0], hidden / hidden.max(), rtol=1e-6)
    np.testing.assert_allclose(found.cells["in"][0], inputs / inputs.max(), rtol=1e-6)
    flows = (share / share.sum(axis=0) * hidden).ravel()       # layer_edges' order: i-major
    np.testing.assert_allclose(found.edges[("in", "h")][0], flows / flows.max(), rtol=1e-6)


def test_highlight_shows_the_trace_of_the_chosen_class(imported):
    collection, run = imported
    last = run.epochs[-1]
    dense = run.network.layer("dense")
    a = run.activations("dense", last).ravel()
    w = run.weights("classes", last)[0]
    unit = int(np.argmax(run.activations("classes", last)))
    expected = np.abs(w[:, unit]) * np.abs(a)
    obj = collection.objects[f"{collection.name}:dense"]
    mod, ident = modifier_input(obj, "Trace Unit")
    assert mod[ident] == unit                                 # starts on the predicted class
    set_input(obj, "Highlight", 1.0)
    try:
        got = geometry(obj)
    finally:
        set_input(obj, "Highlight", 0.0)
    np.testing.assert_allclose(got["nnvis_lit"][:, 0], expected / expected.max(), atol=1e-6)
    np.testing.assert_allclose(got["nnvis_dim"][:, 0], 1 - expected / expected.max(), atol=1e-6)
    assert dense.cell_count == got["nnvis_lit"].shape[0]


@pytest.mark.parametrize("name", sorted(MATPLOTLIB))
def test_colour_maps_are_matplotlibs(name, addon):
    from nnvis_addon.scene.nodes import colour_maps_group
    image = colour_maps_group().nodes[names.COLOUR_MAPS_IMAGE].image
    width, rows = image.size
    lut = np.asarray(image.pixels[:], np.float32).reshape(rows, width, 4)[colormaps.index(name) - 1]
    for row, srgb in MATPLOTLIB[name].items():
        t = row / 255
        tol = 1e-6 if row % 15 == 0 else 4e-3        # between stops: linear interpolation
        np.testing.assert_allclose(colormaps.sample(name, t), srgb, atol=tol)
        np.testing.assert_allclose(lut[row, :3], colormaps.srgb_to_linear(srgb), atol=tol + 1e-5)


@pytest.fixture
def flat_conv1(imported):
    """conv1 alone, the Paper look (pure emission: exact colours), restored afterwards."""
    import bpy
    collection, run = imported
    assert bpy.ops.nnvis.apply_look(look="paper") == {"FINISHED"}
    hidden = {o: o.hide_render for o in collection.objects}
    for o in collection.objects:
        o.hide_render = o.get("nnvis_layer") != "conv1"
    obj = collection.objects[f"{collection.name}:conv1"]
    mod, ident = modifier_input(obj, "Material")
    nodes = mod[ident].node_tree.nodes
    yield bpy.context.scene, obj, run, (nodes["nnvis_scale"].outputs[0].default_value,
                                        nodes["nnvis_offset"].outputs[0].default_value)
    for o, state in hidden.items():
        o.hide_render = state
    for name, value in (("Colour Map", 0.0), ("Normalise Per Map", 0.0)):
        set_input(obj, name, value)
    bpy.ops.nnvis.apply_look(look="default")


@pytest.mark.parametrize("colour_map, per_map", [(3.0, 0.0), (3.5, 0.0), (0.0, 1.0)])
def test_rendered_pixels_use_the_chosen_colour_map_and_normalisation(flat_conv1, tmp_path,
                                                                     colour_map, per_map):
    """Colour Map 3 = magma, 3.5 = half magma half cividis; Normalise Per Map scales each map to
    the layer's peak over all epochs (shown on the quietest map, where it matters most)."""
    scene, obj, run, (scale, offset) = flat_conv1
    acts = np.stack([run.activations("conv1", e) for e in run.epochs])
    peaks = np.abs(acts).max(axis=(0, 1, 2))
    cell = int(np.argmin(np.where(peaks > 0, peaks, np.inf)) if per_map else
               np.argmax(np.ptp(acts[-1], axis=(0, 1))))
    set_input(obj, "Colour Map", colour_map)
    set_input(obj, "Normalise Per Map", per_map)
    got = render_map(scene, obj, cell, 7, tmp_path / "map.exr")         # frame 7 = last epoch
    gain = peaks.max() / peaks[cell] if per_map else 1.0
    t = acts[-1][..., cell] * gain * scale + offset
    maps = [colormaps.NAMES[int(k) - 1] for k in {np.floor(colour_map), np.ceil(colour_map)}]
    expected = np.mean([linear_colormap(m, t) for m in maps], axis=0) if colour_map else \
        linear_colormap("viridis", t)
    np.testing.assert_allclose(got, expected, atol=2e-3)
    assert np.ptp(t) > 0.3 and (gain > 1.5 if per_map else len(maps) == 1 + (colour_map % 1 > 0))


def test_legend_labels_the_layer_scale(imported):
    collection, run = imported
    legends = {o["nnvis_legend_layer"]: o for o in collection.objects if "nnvis_legend_layer" in o}
    assert set(legends) == {"conv1", "digit → conv1"}   # the maps', the first weighted edges'
    legend = legends["conv1"]
    assert not legend.hide_render                                 # shown by default
    peak = max(np.abs(run.activations("conv1", e)).max() for e in run.epochs)
    values = {name: modifier_input(legend, name) for name in ("Min", "Max")}
    assert {k: m[i] for k, (m, i) in values.items()} == {"Min": "0", "Max": f"{peak:.3g}"}


@pytest.mark.parametrize("look", ["paper", "dark_studio", "blueprint"])
def test_presets_render_a_non_blank_frame(imported, tmp_path, look):
    import bpy
    from nnvis_addon.scene import compat, looks
    collection, _ = imported
    scene = bpy.context.scene
    scene.camera = next(o for o in collection.objects if o.type == "CAMERA")
    assert bpy.ops.nnvis.apply_look(look=look) == {"FINISHED"}
    scene.render.resolution_x, scene.render.resolution_y = 64, 36
    scene.cycles.samples, scene.cycles.use_denoising = 2, False
    compat.set_image_output(scene, "PNG")
    scene.render.filepath = str(tmp_path / f"{look}.png")
    try:
        bpy.ops.render.render(write_still=True)
    finally:
        bpy.ops.nnvis.apply_look(look="default")
    image = bpy.data.images.load(scene.render.filepath)
    px = np.empty(64 * 36 * 4, np.float32)
    image.pixels.foreach_get(px)
    rgb = px.reshape(36, 64, 4)[..., :3]
    assert rgb.std() > 0.02                                  # something drawn
    background = np.median(rgb.reshape(-1, 3), axis=0)     # (pixels read back linear)
    tol = 0.01 if look != "dark_studio" else 0.03            # AgX maps black to near black
    np.testing.assert_allclose(background, looks.LOOKS[look].world, atol=tol)


@pytest.mark.parametrize("look", ["default", "dark_studio"])
def test_edges_shine_alone_and_cast_no_shadow_in_a_lit_look(imported, tmp_path, look):
    """Edges are emission only in every look, also where cells are lit (issue 27: lit, they
    paid for light samples at every transparent edge a ray passes): with the cells hidden, the
    lights off change no edge pixel; and no shadow ray stops at an edge."""
    import bpy
    from nnvis_addon.scene import compat
    collection, _ = imported
    scene = bpy.context.scene
    scene.camera = next(o for o in collection.objects if o.type == "CAMERA")
    edges = [o for o in collection.all_objects if names.EDGES in o]
    assert edges and not any(o.visible_shadow for o in edges)
    hidden = [o for o in collection.all_objects if not o.hide_render and (
        names.EDGES not in o or o.type == "LIGHT")]
    lights = [o for o in hidden if o.type == "LIGHT"]
    assert lights
    scene.render.resolution_x, scene.render.resolution_y = 64, 36
    scene.cycles.samples, scene.cycles.use_denoising = 4, False
    compat.set_image_output(scene, "PNG")
    assert bpy.ops.nnvis.apply_look(look=look) == {"FINISHED"}
    frames = []
    try:
        for lit in (True, False):
            for obj in hidden:
                obj.hide_render = obj.type != "LIGHT" or not lit
            scene.render.filepath = str(tmp_path / f"{look}-{lit}.png")
            bpy.ops.render.render(write_still=True)
            image = bpy.data.images.load(scene.render.filepath)
            px = np.empty(64 * 36 * 4, np.float32)
            image.pixels.foreach_get(px)
            frames.append(px.reshape(-1, 4)[:, :3])
    finally:
        for obj in hidden:
            obj.hide_render = False
        bpy.ops.nnvis.apply_look(look="default")
    background = np.median(frames[0], axis=0)
    assert (np.abs(frames[0] - background).max(axis=1) > 0.05).sum() > 50   # edges drawn
    np.testing.assert_allclose(frames[1], frames[0], atol=1e-6)


def test_camera_orbits_and_flies_through_timed_to_the_epochs(imported):
    """Orbit: a swing about the network and back home; fly-through: from behind the input round
    to the output's side, arriving with the last epoch; static again: the home view."""
    import bpy
    from nnvis_addon import framing
    from nnvis_addon.scene import camera_moves
    collection, _ = imported
    scene = bpy.context.scene
    cam = camera_moves.run_camera(collection)
    home = cam.matrix_world.copy()
    bpy.context.view_layer.objects.active = collection.objects[f"{collection.name}:conv1"]
    points = camera_moves.network_points(collection)
    centre = (points.min(axis=0) + points.max(axis=0)) / 2

    def azimuth():
        d = np.array(cam.matrix_world.translation) - centre
        return np.degrees(np.arctan2(d[1], d[0]))

    try:
        assert bpy.ops.nnvis.camera_move(move="orbit") == {"FINISHED"}
        start, end = scene.frame_start, scene.frame_end
        angles = []
        for frame in (start, start + (end - start) / 4, start + 3 * (end - start) / 4, end):
            scene.frame_set(int(round(frame)))
            angles.append(azimuth())
        home_angle = np.degrees(np.arctan2(*framing.VIEW_DIRECTION[1::-1]))
        assert abs(angles[0] - home_angle) < 1 and abs(angles[3] - home_angle) < 1
        toward, away, _ = framing.orbit_swing(framing.VIEW_DIRECTION)      # 30°, 30°
        assert angles[1] - home_angle == pytest.approx(-toward, abs=4)  # round to the maps' faces
        assert angles[2] - home_angle == pytest.approx(away, abs=4)     # ... and the other way
        swept = []                    # a swing a viewer notices, framed at every key
        for frame in np.linspace(start, end, 13):           # every 4th key, on its subframe
            scene.frame_set(int(frame), subframe=float(frame % 1))
            back = np.array(cam.matrix_world.to_3x3())[:, 2]       # the view direction, reversed
            swept.append(np.degrees(np.arctan2(back[1], back[0])))
            check_frame(scene, cam, deep=False)
        assert max(swept) - min(swept) >= 59.5
        check_labels_through_the_move(scene, cam, step=4)     # placed again in every view
        assert bpy.ops.nnvis.camera_move(move="fly_through") == {"FINISHED"}
        seen = []
        for frame in camera_moves.epoch_frames(collection):
            scene.frame_set(int(round(frame)))
            seen.append(azimuth())
        assert np.all(np.diff(seen) > 0) and seen[0] < -140 and seen[-1] > -80
        check_labels_through_the_move(scene, cam, step=4, clear=False)
    finally:
        bpy.ops.nnvis.camera_move(move="static")
    labels = [o for o in collection.all_objects if "nnvis_label" in o]
    assert labels and not any(block.animation_data for o in labels for block in (o, o.data))
    scene.frame_set(5)
    # home again (framed from the evaluated cells now, the layout at import: within 0.1 %)
    np.testing.assert_allclose(np.array(cam.matrix_world), np.array(home), rtol=1e-3, atol=1e-3)



def test_camera_tours_the_stages(imported):
    """Tour: the whole view held at both ends; in between each stage (input, stage 1, head), in
    network order, framed inside the frame and shown at least as large as in the whole view (the
    small input and head larger)."""
    import json

    import bpy
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector
    from nnvis_addon import framing, names
    from nnvis_addon.scene import camera_moves
    collection, _ = imported
    scene = bpy.context.scene
    cam = camera_moves.run_camera(collection)
    home = np.array(cam.matrix_world)
    stops = json.loads(collection[names.STOPS])
    assert [name for name, _ in stops] == ["input", "stage 1", "head"]
    layers = {o[names.LAYER]: o for o in collection.all_objects if names.LAYER in o}
    boxes = camera_moves.evaluated_boxes(list(layers.values()))

    def screen_box(members):
        pts = np.concatenate([framing.box_corners(*boxes[layers[n].name]) for n in members])
        uv = np.array([tuple(world_to_camera_view(scene, cam, Vector(p)))[:2] for p in pts])
        return uv.min(axis=0), uv.max(axis=0)

    whole = {name: screen_box(members) for name, members in stops}
    try:
        assert bpy.ops.nnvis.camera_move(move="tour") == {"FINISHED"}
        start, end = scene.frame_start, scene.frame_end
        keys = camera_moves.tour_frames(start, end, len(stops))
        zoom = {}
        for k, (name, members) in enumerate(stops):
            scene.frame_set(int(round((keys[2 + 2 * k] + keys[3 + 2 * k]) / 2)))
            lo, hi = screen_box(members)
            assert lo.min() > -0.01 and hi.max() < 1.01, (name, lo, hi)       # in the frame
            zoom[name] = (hi - lo).max() / (whole[name][1] - whole[name][0]).max()
            area = np.array(framing.NETWORK)
            centre = (area[:2] + area[2:]) / 2      # the stage is what the camera centres (with
            # its label: 12 px at 640×360 in the whole view, larger close up, it moves the
            # stage's maps off centre by up to half its height)
            np.testing.assert_allclose((lo + hi) / 2, centre, atol=0.08, err_msg=name)
            # at each stop the labels shown stand off the overlays, and the labels of stages
            # out of the network's area of the frame are not shown (they lay over the margins)
            check_labels_clear(scene, cam)
            shown = [set(o[names.LABEL_LAYERS]) for o in shown_labels(scene)]
            assert any(s & set(members) for s in shown), f"{name}: its label not shown"
            if name == "head":
                assert not any(s <= set(stops[0][1]) for s in shown), "the input's label shown"
        # (stage 1 is nearly the whole digits network: framed with its 12 px label, a little
        # smaller than in the whole view)
        assert min(zoom.values()) > 0.95 and zoom["input"] > 1.5 and zoom["head"] > 1.2, zoom
        for frame in (start, end):
            scene.frame_set(frame)
            np.testing.assert_allclose(np.array(cam.matrix_world), home, rtol=1e-3, atol=1e-3)
        check_labels_through_the_move(scene, cam, step=4, clear=False)
    finally:
        bpy.ops.nnvis.camera_move(move="static")
