"""Rendering: epochs look different, the video has every frame, the .blend stands on its own."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_scene import import_run

TIER = "render"

HERE = Path(__file__).parent


def read_png(path):
    import imageio.v3 as iio
    return iio.imread(path).astype(np.float32)


@pytest.fixture(scope="module")
def small_scene(digits_run, addon):
    import bpy
    bpy.ops.wm.read_homefile(use_empty=True)
    folder, _ = digits_run
    collection = import_run(folder, frames_per_epoch=2)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 96, 54
    scene.cycles.samples = 2
    return scene, collection


def render_frame(scene, frame, path):
    import bpy
    from nnvis_addon.scene import compat
    compat.set_image_output(scene)
    scene.frame_set(frame)
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return read_png(path)


def test_first_and_last_epoch_frames_differ(small_scene, tmp_path):
    scene, _ = small_scene
    first = render_frame(scene, scene.frame_start, tmp_path / "first.png")
    last = render_frame(scene, scene.frame_end, tmp_path / "last.png")
    assert first.std() > 1.0, "blank frame"
    assert np.abs(first - last).mean() > 0.5


def test_video_has_every_frame(small_scene, tmp_path):
    import imageio.v3 as iio
    from nnvis_addon.scene.render import render_animation
    scene, _ = small_scene
    seen = []
    scene.frame_end = scene.frame_start + 4
    out = render_animation(scene, tmp_path / "clip.mp4", on_frame=seen.append)
    frames = list(iio.imiter(out))
    assert len(frames) == 5
    assert seen == list(range(scene.frame_start, scene.frame_start + 5))


def test_saved_blend_plays_and_renders_without_the_addon(small_scene, tmp_path):
    import bpy
    scene, collection = small_scene
    blend = tmp_path / "run.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True)
    epochs = len(collection["nnvis_epochs"])
    done = subprocess.run([sys.executable, str(HERE / "blend_without_addon.py"), str(blend),
                           str(scene.frame_end), str(tmp_path / "again.png")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.split("REPORT", 1)[1])
    assert not any("nnvis" in a for a in report["addons"])
    animated = {name: n for name, n in report["keyframes"].items()}
    assert len(animated) == len([o for o in collection.objects if "NNVis" in o.modifiers])
    assert set(animated.values()) == {epochs}
    # the packed atlases come back with the exact float32 values (EXR, lossless)
    expected = {}
    for image in bpy.data.images:
        if image.packed_file:
            px = np.empty(image.size[0] * image.size[1] * 4, np.float32)
            image.pixels.foreach_get(px)
            expected[image.name] = float(np.abs(px[0::4]).sum())
    assert report["images"] == expected and all(v > 0 for v in expected.values())
    assert read_png(tmp_path / "again.png").std() > 1.0
