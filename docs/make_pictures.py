"""Render the pictures in docs/ from the digits demo, so they always show what the code does.

    .venv/bin/python docs/make_pictures.py

Trains the demo CNN (cached in build/pictures/), imports its recording with the library, and renders
640×360 stills into docs/images/: the first and last epoch, each control of the layer modifiers
(set on every layer, as the sidebar's "all layers" button does), the looks, a camera move and the
edge bundling modes.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "images"
CACHE = ROOT / "build" / "pictures"
RESOLUTION = (640, 360)

# picture → (inputs, layers they are set on (None: every layer, as the sidebar's "all layers" button
# does), layers to frame (None: the whole network), objects hidden)
MAPS = ("conv1", "pool1", "conv2", "pool2")
CONTROLS = {
    "expansion_0": ({"Expansion": 0.0}, None, None, ()),
    "expansion_1": ({"Expansion": 1.0}, None, None, ()),
    "expansion_3": ({"Expansion": 3.0, "Focus X": 6, "Focus Y": 4, "Focus Map": 2}, ("conv2",),
                    ("pool1", "conv2"), ("pool1 → conv2", "conv2 → pool2")),
    "morph_line": ({"Morph": 0.0}, MAPS, MAPS, ()),
    "morph_circle": ({"Morph": 0.5}, MAPS, MAPS, ()),
    "spacing": ({"Spacing": 1.6, "Scale": 0.8}, MAPS, MAPS, ()),
    "highlight": ({"Highlight": 1.0}, None, MAPS, ()),
    "colour_map_magma": ({"Colour Map": 3.0}, None, MAPS, ()),
    "normalise_per_map": ({"Normalise Per Map": 1.0}, None, MAPS, ()),
}

def render(scene, name: str) -> None:
    """Render to docs/images/<name>.png, kept small: 256 colours (≈ 20-60 KB a picture)."""
    import bpy
    from PIL import Image
    path = OUT / f"{name}.png"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    Image.open(path).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(
        path, optimize=True)
    print("wrote", path)


@contextmanager
def layer_inputs(collection, values: dict, layers=None):
    """Set `values` on the NNVis modifier of `layers` (None: all) where it has them; restore."""
    from nnvis_addon.scene.nodes import input_ids
    saved = []
    for obj in collection.objects:
        mod = obj.modifiers.get("NNVis")
        if mod is None or "nnvis_layer" not in obj or layers and obj.name not in layers:
            continue
        ids = input_ids(mod.node_group)
        for name, value in values.items():
            if name in ids:
                saved.append((obj, mod, ids[name], mod[ids[name]]))
                mod[ids[name]] = value
                obj.update_tag()
    try:
        yield
    finally:
        for obj, mod, ident, value in saved:
            mod[ident] = value
            obj.update_tag()


@contextmanager
def framing(scene, collection, layers, hidden):
    """A camera framing `layers` (all: the run's own camera); `hidden` objects not rendered."""
    import bpy
    from nnvis_addon.scene import stage
    old, cam = scene.camera, None
    if layers:                      # a close-up: the overlays around the network are not in it
        hidden = (*hidden, *(o.name for o in collection.objects if "nnvis_overlay" in o
                             or "nnvis_legend_layer" in o))
        corners = stage.instance_corners([collection.objects[n] for n in layers])
        cam = scene.camera = stage.add_camera(collection, corners, RESOLUTION, "NNVis Close-up")
    shown = {name: collection.objects[name].hide_render for name in hidden}
    for name in hidden:
        collection.objects[name].hide_render = True
    try:
        yield
    finally:
        for name, state in shown.items():
            collection.objects[name].hide_render = state
        scene.camera = old
        if cam is not None:
            bpy.data.objects.remove(cam)


def main() -> None:
    if not (CACHE / "recording" / "manifest.json").exists():
        import shutil
        from nnvis_addon.demo import train_digits
        shutil.rmtree(CACHE, ignore_errors=True)
        train_digits(CACHE, epochs=10)
    import bpy
    from nnvis_addon import load_run
    from nnvis_addon.scene import SceneOptions, build_scene, camera_moves, compat, looks
    bpy.ops.wm.read_factory_settings(use_empty=True)
    run = load_run(CACHE / "recording")
    collection = build_scene(run, SceneOptions(resolution=RESOLUTION, samples=16, legend=True))
    scene = bpy.context.scene
    compat.set_image_output(scene)
    OUT.mkdir(parents=True, exist_ok=True)
    scene.frame_set(scene.frame_start)
    render(scene, "demo_first_epoch")
    scene.frame_set(scene.frame_end)
    render(scene, "demo")
    for name, (values, on, layers, hidden) in CONTROLS.items():
        with layer_inputs(collection, values, on), framing(scene, collection, layers, hidden):
            render(scene, name)
    for look in ("paper", "dark_studio", "blueprint"):
        looks.apply_look(collection, look, scene)
        render(scene, f"look_{look}")
    looks.apply_look(collection, "default", scene)
    camera_moves.apply_move(collection, "fly_through", scene)
    frames = camera_moves.epoch_frames(collection)
    scene.frame_set(int(frames[len(frames) // 2]))
    render(scene, "camera_fly_through")
    camera_moves.apply_move(collection, "still", scene)
    bundling_pictures(run)


def bundling_pictures(run) -> None:
    """The edge bundling modes on the dense part of the network (docs/bundling.md)."""
    import bpy
    from nnvis_addon.scene import SceneOptions, build_scene, compat
    for name, options in (("bundling_straight", {"bundle_strength": 0.0}),
                          ("bundling_structural", {"bundler": "structural"}),
                          ("bundling_density", {"bundler": "density"})):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        collection = build_scene(run, SceneOptions(resolution=RESOLUTION, samples=16, overlays=(),
                                                   **options))
        scene = bpy.context.scene
        compat.set_image_output(scene)
        scene.frame_set(scene.frame_end)
        with framing(scene, collection, ("pool2", "flatten", "dense", "classes"), ()):
            render(scene, name)


if __name__ == "__main__":
    main()
