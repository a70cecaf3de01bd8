"""Render the pictures in docs/ from the digits demo, so they always show what the code does.

    .venv/bin/python docs/make_pictures.py [NAME ...]     # all pictures, or only these

Trains the demo CNN (cached in build/pictures/), imports its recording with the library, and renders
1280×720 stills into docs/images/: the first, middle and last epoch, each control of the layer
modifiers (set on every layer, as the sidebar's "all layers" button does), the looks, the camera
moves, the edge bundling modes, and a gallery of keras.applications networks (random weights).
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "images"
CACHE = ROOT / "build" / "pictures"
RESOLUTION = (1280, 720)
SAMPLES = 8

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

ONLY = set(sys.argv[1:])


def render(scene, name: str) -> None:
    """Render to docs/images/<name>.png, kept small: 256 colours (≈ 50-150 KB a picture)."""
    import bpy
    from PIL import Image
    if ONLY and name not in ONLY:
        return
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
        if mod is None or "nnvis_layer" not in obj or layers and obj["nnvis_layer"] not in layers:
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


def find(collection, name: str):
    """The run's object for layer or edge `name` (object names are scoped: 'run:conv1')."""
    return next(o for o in collection.objects if o.name.rsplit(":", 1)[-1] == name)


@contextmanager
def framing(scene, collection, layers, hidden):
    """A camera framing `layers` (all: the run's own camera), without overlays and labels (made
    for the whole network's view); `hidden` objects not rendered either."""
    import bpy
    import numpy as np
    from nnvis_addon import framing as fit
    from nnvis_addon.scene import camera_moves
    old, cam = scene.camera, None
    hidden = [find(collection, n) for n in hidden]
    if layers:
        hidden += [o for o in collection.objects if "nnvis_overlay" in o or "nnvis_label" in o]
        boxes = camera_moves.evaluated_boxes([find(collection, n) for n in layers]).values()
        points = np.concatenate([fit.box_corners(lo, hi) for lo, hi in boxes])
        aspect = camera_moves.aspect_of(scene)
        cam = scene.camera = camera_moves.add_camera(collection, "NNVis Close-up")
        camera_moves.apply_view(cam, fit.fit(points, fit.VIEW_DIRECTION, aspect,
                                             area=(0.06, 0.08, 0.94, 0.92)), aspect)
    shown = {obj: obj.hide_render for obj in hidden}
    for obj in hidden:
        obj.hide_render = True
    try:
        yield
    finally:
        for obj, state in shown.items():
            obj.hide_render = state
        scene.camera = old
        if cam is not None:
            bpy.data.objects.remove(cam)


def main() -> None:
    if not (CACHE / "recording" / "manifest.json").exists():
        import shutil
        from nnvis_addon.tools.demo import train_digits
        shutil.rmtree(CACHE, ignore_errors=True)
        train_digits(CACHE, epochs=10)
    import bpy
    from nnvis_addon import load_run
    from nnvis_addon.scene import SceneOptions, build_scene, camera_moves, compat, looks
    bpy.ops.wm.read_factory_settings(use_empty=True)
    run = load_run(CACHE / "recording")
    collection = build_scene(run, SceneOptions(resolution=RESOLUTION, samples=SAMPLES))
    scene = bpy.context.scene
    compat.set_image_output(scene)
    OUT.mkdir(parents=True, exist_ok=True)
    scene.frame_set(scene.frame_start)
    render(scene, "demo_first_epoch")
    scene.frame_set((scene.frame_start + scene.frame_end) // 2)
    render(scene, "demo_middle")
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
    scene.frame_set(int(frames[len(frames) // 3]))
    render(scene, "camera_fly_through")
    camera_moves.apply_move(collection, "orbit", scene)
    scene.frame_set(scene.frame_start + (scene.frame_end - scene.frame_start) // 4)
    render(scene, "camera_orbit")
    camera_moves.apply_move(collection, "tour", scene)
    keys = camera_moves.tour_frames(scene.frame_start, scene.frame_end,
                                    len(camera_moves.stop_points(collection)))
    scene.frame_set(int((keys[-4] + keys[-3]) / 2))       # held on the last stage, the head
    render(scene, "camera_tour")
    camera_moves.apply_move(collection, "static", scene, orthographic=True)
    scene.frame_set(scene.frame_end)
    render(scene, "camera_orthographic")
    bundling_pictures(run)
    gallery()
    wrapped_controls()
    families()
    live_picture()


def bundling_pictures(run) -> None:
    """The edge bundling modes on the dense part of the network (docs/bundling.md)."""
    import bpy
    from nnvis_addon.scene import SceneOptions, build_scene, compat
    for name, options in (("bundling_straight", {"bundle_strength": 0.0}),
                          ("bundling_structural", {"bundler": "structural"}),
                          ("bundling_density", {"bundler": "density"})):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        collection = build_scene(run, SceneOptions(resolution=RESOLUTION, samples=SAMPLES,
                                                   overlays=(), labels="none", **options))
        scene = bpy.context.scene
        compat.set_image_output(scene)
        scene.frame_set(scene.frame_end)
        with framing(scene, collection, ("pool2", "flatten", "dense", "classes"), ()):
            render(scene, name)


def live_picture() -> None:
    """A run imported while its recording held 4 of the 10 epochs, refreshed once the rest were
    there (user guide, Live): at the newest epoch, 640×360."""
    import json
    import shutil
    import bpy
    from nnvis_addon import load_run
    from nnvis_addon.scene import SceneOptions, build_scene, compat
    from nnvis_addon.scene.refresh import newest_frame, refresh_run
    if ONLY and "live" not in ONLY:
        return
    live = CACHE / "live"
    shutil.rmtree(live, ignore_errors=True)
    shutil.copytree(CACHE / "recording", live)
    manifest = live / "manifest.json"
    whole = manifest.read_text()
    early = json.loads(whole)
    early["epochs"] = early["epochs"][:4]
    manifest.write_text(json.dumps(early))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    collection = build_scene(load_run(live), SceneOptions(resolution=(640, 360), samples=SAMPLES))
    manifest.write_text(whole)                  # the training went on
    print(refresh_run(collection))
    scene = bpy.context.scene
    compat.set_image_output(scene)
    scene.frame_set(newest_frame(collection))
    render(scene, "live")


def gallery() -> None:
    """keras.applications networks at nnvis' defaults (random weights, 2 epochs: the untrained
    one and a nudged copy), probed with a synthetic colour image; needs TensorFlow."""
    import bpy
    import numpy as np
    from nnvis_addon import load_run
    from nnvis_addon.tools.bench.forward import build_application
    from nnvis_addon.scene import SceneOptions, build_scene, compat
    for name, size in (("resnet50", 224), ("mobilenetv2", 224), ("densenet121", 224)):
        if ONLY and f"gallery_{name}" not in ONLY:
            continue
        folder = CACHE / name
        if not (folder / f"{name}.keras").exists():
            folder.mkdir(parents=True, exist_ok=True)
            build_application(name, size, classes=10).save(folder / f"{name}.keras")
        y, x = np.mgrid[0:size, 0:size] / size
        probe = np.stack([np.sin(9 * x + 3 * y), np.cos(7 * y - 2 * x), np.sin(5 * (x + y))],
                         axis=-1).astype(np.float32)
        bpy.ops.wm.read_factory_settings(use_empty=True)
        run = load_run(folder / f"{name}.keras", probe=probe)
        build_scene(run, SceneOptions(resolution=RESOLUTION, samples=SAMPLES))
        scene = bpy.context.scene
        compat.set_image_output(scene)
        scene.frame_set(scene.frame_end)
        render(scene, f"gallery_{name}")


def wrapped_controls() -> None:
    """MobileNetV2 (96², random weights, wrapped into two rows) with Morph 0.5 and Spacing 1.6
    set on all layers as the sidebar's Set on All Layers does (scene/restack.py lays it out again
    and frames it); needs TensorFlow."""
    import bpy
    from nnvis_addon import load_run
    from nnvis_addon.tools.bench.forward import build_application
    from nnvis_addon.scene import SceneOptions, build_scene, compat, layers, restack
    if ONLY and "controls_wrapped" not in ONLY:
        return
    path = CACHE / "mobilenetv2_96" / "mobilenetv2.keras"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        build_application("mobilenetv2", 96, classes=10).save(path)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    collection = build_scene(load_run(path), SceneOptions(resolution=RESOLUTION, samples=SAMPLES))
    layers.set_run_inputs(collection.all_objects, {"Morph": 0.5, "Spacing": 1.6})
    scene = bpy.context.scene
    restack.refit(collection, scene)
    compat.set_image_output(scene)
    scene.frame_set((scene.frame_start + scene.frame_end) // 2)
    render(scene, "controls_wrapped")


def _signal_net():
    """A small Conv1D classifier of 3-channel signals 128 samples long."""
    import keras
    from keras import layers as L
    inp = keras.Input((128, 3), name="signal")
    x = L.Conv1D(12, 7, activation="relu", name="conv1")(inp)
    x = L.MaxPooling1D(2, name="pool1")(x)
    x = L.Conv1D(24, 5, activation="relu", name="conv2")(x)
    x = L.MaxPooling1D(2, name="pool2")(x)
    x = L.Conv1D(24, 3, activation="relu", name="conv3")(x)
    x = L.GlobalAveragePooling1D(name="gap")(x)
    return keras.Model(inp, L.Dense(5, activation="softmax", name="classes")(x), name="signals")


def families() -> None:
    """The layer families of the user guide's table beside the gallery, 640×360: a network of
    Keras 3 ops (MobileNetV3Small at 96×96), LayerNorm/LayerScale (ConvNeXtTiny at 64×64) and
    a Conv1D network, whose 1D maps are strips (random weights, BatchNorm statistics randomised);
    needs TensorFlow."""
    import bpy
    import keras
    import numpy as np
    from nnvis_addon import load_run
    from nnvis_addon.tools.bench.forward import randomize_batchnorm
    from nnvis_addon.scene import SceneOptions, build_scene, compat
    builders = {
        "mobilenetv3small": (lambda: keras.applications.MobileNetV3Small(
            input_shape=(96, 96, 3), weights=None, classes=10, minimalistic=False), 96),
        "convnexttiny": (lambda: keras.applications.ConvNeXtTiny(
            input_shape=(64, 64, 3), weights=None, classes=10), 64),
        "conv1d": (_signal_net, None),
    }
    for name, (build, size) in builders.items():
        if ONLY and f"family_{name}" not in ONLY:
            continue
        folder = CACHE / name
        path = folder / f"{name}.keras"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            keras.utils.set_random_seed(0)
            model = build()
            randomize_batchnorm(model, np.random.default_rng(0))
            for variable in model.weights:          # LayerScale's 1e-6 start hides its branch
                if "layer_scale" in variable.path:
                    variable.assign(np.full(variable.shape, 0.5, np.float32))
            model.save(path)
        if size:
            y, x = np.mgrid[0:size, 0:size] / size
            probe = np.stack([np.sin(9 * x + 3 * y), np.cos(7 * y - 2 * x),
                              np.sin(5 * (x + y))], axis=-1).astype(np.float32)
        else:
            t = np.linspace(0, 1, 128)[:, None]
            probe = np.sin(2 * np.pi * t * [3, 7, 13] + [0, 1, 2]).astype(np.float32)
        bpy.ops.wm.read_factory_settings(use_empty=True)
        build_scene(load_run(path, probe=probe), SceneOptions(resolution=(640, 360),
                                                              samples=SAMPLES))
        scene = bpy.context.scene
        compat.set_image_output(scene)
        scene.frame_set(scene.frame_end)
        render(scene, f"family_{name}")


if __name__ == "__main__":
    main()
