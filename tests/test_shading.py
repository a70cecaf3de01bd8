"""What the camera sees is the activation: render one feature map head-on with an emission shader
and compare every pixel with the colour map applied to TensorFlow-equal activations."""
from __future__ import annotations

import numpy as np
import pytest
from test_scene import import_run, modifier_input

from nnvis_addon import colormaps, load_run

TIER = "render"


def linear_colormap(name, t):
    """The scene's ramp: matplotlib's stops in linear light, interpolated linearly."""
    stops = colormaps.srgb_to_linear(colormaps.STOPS[name])
    x = np.linspace(0.0, 1.0, len(stops))
    t = np.clip(t, 0.0, 1.0)
    return np.stack([np.interp(t, x, stops[:, k]) for k in range(3)], axis=-1)


def render_map(scene, obj, cell, frame, path):
    """Orthographic close-up of one feature map plane, one render pixel per activation."""
    import bpy
    from mathutils import Vector
    from nnvis_addon.scene import compat
    mod, width_id = modifier_input(obj, "Width")
    _, height_id = modifier_input(obj, "Height")
    h, w = obj["nnvis_shape"][:2]
    centre = obj.matrix_world @ Vector(obj.data.vertices[cell].co)
    cam = bpy.data.objects.new("close-up", bpy.data.cameras.new("close-up"))
    scene.collection.objects.link(cam)
    cam.data.type = "ORTHO"
    cam.data.ortho_scale = mod[width_id]
    cam.location = centre - Vector((3.0, 0.0, 0.0))
    cam.rotation_euler = Vector((1.0, 0.0, 0.0)).to_track_quat("-Z", "Y").to_euler()
    scene.camera = cam
    scene.render.resolution_x, scene.render.resolution_y = w, h
    scene.cycles.samples, scene.cycles.use_denoising = 4, False
    scene.cycles.filter_width = 0.01
    scene.view_settings.view_transform = "Standard"
    compat.set_image_output(scene, "OPEN_EXR")
    scene.render.image_settings.color_depth = "32"
    scene.frame_set(frame)
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    image = bpy.data.images.load(str(path))
    px = np.empty(w * h * 4, np.float32)
    image.pixels.foreach_get(px)
    return px.reshape(h, w, 4)[::-1, :, :3]   # row 0 = top, like the activation


@pytest.fixture(scope="module")
def emissive_conv1(digits_run, addon):
    """The digits run imported (2 frames per epoch) with conv1 shown alone, emission only."""
    import bpy
    bpy.ops.wm.read_homefile(use_empty=True)
    folder, _ = digits_run
    collection = import_run(folder, frames_per_epoch=2)
    for o in collection.objects:
        o.hide_render = o.get("nnvis_layer") != "conv1"
    obj = collection.objects[f"{collection.name}:conv1"]
    mod, mat_id = modifier_input(obj, "Material")
    tree = mod[mat_id].node_tree
    emission = tree.nodes.new("ShaderNodeEmission")
    tree.links.new(tree.nodes["nnvis_ramp"].outputs["Color"], emission.inputs["Color"])
    tree.links.new(emission.outputs[0], tree.nodes["Material Output"].inputs["Surface"])
    bpy.context.scene.world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0
    scale = tree.nodes["nnvis_scale"].outputs[0].default_value
    offset = tree.nodes["nnvis_offset"].outputs[0].default_value
    return bpy.context.scene, obj, load_run(folder), scale, offset, mod[mat_id]["nnvis_ramp_name"]


@pytest.mark.parametrize("cell, epoch_value", [(3, 2.0), (6, 1.5)])
def test_rendered_pixels_are_the_colour_mapped_activations(emissive_conv1, tmp_path, cell,
                                                            epoch_value):
    scene, obj, run, scale, offset, cmap = emissive_conv1
    frame = 1 + epoch_value * 2
    got = render_map(scene, obj, cell, int(frame), tmp_path / "map.exr")
    lo, hi = int(np.floor(epoch_value)), int(np.ceil(epoch_value))
    f = epoch_value - lo
    a = (1 - f) * run.activations("conv1", run.epochs[lo]) + f * run.activations("conv1", run.epochs[hi])
    expected = linear_colormap(cmap, a[..., cell] * scale + offset)
    np.testing.assert_allclose(got, expected, atol=2e-3)
    assert np.ptp(a[..., cell]) > 0          # a real picture, not a flat map
