"""Render pipeline and farms: chunk arithmetic, Render Training Video, a farm-ready .blend that two
processes without the add-on render into one folder (each frame once), and encoding to MP4."""
from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnvis_addon.tools.chunks import chunk_range, parse_chunk, parse_frames
from nnvis_addon.errors import NNVisError
from test_scene import epoch_fcurve, import_run

TIER = "render"

ROOT = Path(__file__).resolve().parent.parent


def read_image(path):
    import imageio.v3 as iio
    return iio.imread(path)[..., :3].astype(np.float32)


def node(user_folder, *args):
    """`nnvis ...` in a fresh process whose Blender user folder is empty: no add-on there."""
    return subprocess.Popen([sys.executable, "-m", "nnvis_addon.tools.cli", *map(str, args),
                             "--user-folder", str(user_folder)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc, timeout=300):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def saved_frames(log: str) -> list[int]:
    """Frames an `nnvis render` process wrote, from its 'rendered frames: 1 2 3' line."""
    found = re.search(r"^rendered frames: ([\d ]+)$", log, re.M)
    return [int(f) for f in found[1].split()] if found else []


# --- chunk arithmetic (pure Python) ---------------------------------------------------------------

def test_chunks_cover_every_frame_exactly_once():
    rng = random.Random(7)
    cases = [(1, 1, 1), (1, 8, 8), (1, 8, 9), (0, 0, 5), (1, 250, 7)]
    cases += [(s, s + rng.randrange(0, 300), rng.randrange(1, 64))
              for s in (rng.randrange(-50, 100) for _ in range(500))]
    for start, end, n in cases:
        parts = [chunk_range(start, end, k, n) for k in range(1, n + 1)]
        frames = [f for p in parts if p for f in range(p[0], p[1] + 1)]
        assert frames == list(range(start, end + 1)), (start, end, n)   # in order, no gap, no repeat
        sizes = [p[1] - p[0] + 1 if p else 0 for p in parts]
        assert max(sizes) - min(sizes) <= 1, (start, end, n, sizes)
        assert sizes == sorted(sizes, reverse=True)  # empty chunks only at the end


def test_chunk_and_frame_arguments():
    assert chunk_range(1, 8, 2, 3) == (4, 6)
    assert chunk_range(1, 2, 3, 3) is None
    assert parse_frames("1-120") == (1, 120) and parse_frames("7") == (7, 7)
    assert parse_chunk("2/4") == (2, 4)
    for bad in ("8-1", "a-b", "1-2-3", ""):
        with pytest.raises(NNVisError, match="--frames"):
            parse_frames(bad)
    for bad in ("0/4", "5/4", "1", "x/y"):
        with pytest.raises(NNVisError, match="--chunk"):
            parse_chunk(bad)


# --- Blender --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_scene(digits_run, addon):
    import bpy
    bpy.ops.wm.read_homefile(use_empty=True)
    collection = import_run(digits_run[0], frames_per_epoch=2)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 64, 36
    scene.cycles.samples = 1
    return scene, collection


def test_engine_presets_and_retiming(run_scene):
    from nnvis_addon.scene import animation, camera_moves, compat
    from nnvis_addon.scene.render import VideoOptions, apply_video_options, pick_engine
    scene, collection = run_scene
    epochs = list(collection["nnvis_epochs"])
    # no GPU on this machine (headless, software GL only): Cycles on the CPU
    assert pick_engine("AUTO") == "CYCLES"
    scene.render.engine = pick_engine("EEVEE")          # a valid engine id on this Blender
    assert scene.render.engine == compat.EEVEE
    camera_moves.apply_move(collection, "fly_through", scene)   # timed to the epochs
    start, end = apply_video_options(scene, collection, VideoOptions(
        engine="AUTO", samples=3, resolution="720p", fps=30, frames_per_epoch=5, hold_first=4,
        hold_last=6))
    assert (scene.render.engine, scene.cycles.device, scene.cycles.samples) == ("CYCLES", "CPU", 3)
    assert (scene.render.resolution_x, scene.render.resolution_y, scene.render.fps) == (1280, 720, 30)
    assert (start, end) == (scene.frame_start, scene.frame_end) == (1, 1 + 4 + 5 * epochs[-1] + 6)
    keyed = [o for o in collection.objects if animation.epoch_path(o) is not None]
    assert len(keyed) > len(epochs)
    for obj in keyed:
        points = epoch_fcurve(obj).keyframe_points
        assert [tuple(p.co) for p in points] == [(5 + 5 * e, float(i)) for i, e in enumerate(epochs)]
    cam = camera_moves.run_camera(collection)
    (x,) = [f for f in compat.fcurves_of(cam) if f.data_path == "location" and f.array_index == 0]
    keys = [p.co[0] for p in x.keyframe_points]                     # moved along: re-timed too
    assert (keys[0], keys[-1]) == pytest.approx((5 + 5 * epochs[0], 5 + 5 * epochs[-1]))
    camera_moves.apply_move(collection, "static", scene)
    fcurve = epoch_fcurve(keyed[0])
    scene.frame_set(3)                                  # inside the hold: the first epoch
    assert fcurve.evaluate(3) == 0.0
    scene.frame_set(5 + 5 + 2)                          # 2/5 from epoch 1 to epoch 2
    assert keyed[0].path_resolve(fcurve.data_path) == pytest.approx(1.4, abs=1e-5)
    with pytest.raises(NNVisError, match="resolution"):
        apply_video_options(scene, collection, VideoOptions(resolution="8K"))


def test_operator_renders_a_sequence_with_hold_frames(run_scene, tmp_path):
    import bpy
    scene, collection = run_scene
    scene.render.resolution_x, scene.render.resolution_y = 64, 36
    result = bpy.ops.nnvis.render_video(
        engine="CYCLES", samples=1, resolution="SCENE", frames_per_epoch=1, hold_first=1,
        hold_last=1, file_format="PNG", directory=str(tmp_path))
    assert result == {"FINISHED"}
    last = 1 + 1 + list(collection["nnvis_epochs"])[-1] + 1
    files = sorted((tmp_path / bpy.path.clean_name(collection.name)).iterdir())
    assert [f.name for f in files] == [f"frame_{i:04d}.png" for i in range(1, last + 1)]
    frames = [read_image(f) for f in files]
    assert frames[0].shape == (36, 64, 3) and frames[0].std() > 1.0
    held = np.abs(frames[0] - frames[1]).mean()         # frames 1-2 both show the first epoch
    trained = np.abs(frames[0] - frames[-1]).mean()
    assert trained > 0.5 and held < trained / 5


@pytest.fixture(scope="module")
def farm_blend(run_scene, tmp_path_factory):
    """The scene (2 frames per epoch, 64×36, 1 sample) saved farm-ready; the session continues
    in that file."""
    from nnvis_addon.scene.animation import retime
    from nnvis_addon.tools.headless import save_farm_ready
    scene, collection = run_scene
    scene.render.resolution_x, scene.render.resolution_y = 64, 36
    scene.frame_start, scene.frame_end = retime(collection, 2, hold_last=12)
    return save_farm_ready(scene, tmp_path_factory.mktemp("farm") / "training.blend")


def test_saved_blend_is_farm_ready(farm_blend):
    import bpy
    scene = bpy.context.scene
    assert Path(bpy.data.filepath) == farm_blend
    images = [i for i in bpy.data.images if i.source == "FILE"]
    assert images and all(i.packed_file for i in images)
    assert bpy.utils.blend_paths(packed=True) == []            # nothing outside the .blend
    assert scene.render.filepath == "//frames/frame_####"
    assert scene.render.image_settings.file_format == "PNG"
    assert scene.render.use_placeholder and not scene.render.use_overwrite
    assert (scene.frame_start, scene.frame_end) == (1, 19)


def test_two_processes_render_one_range_into_one_folder(farm_blend, tmp_path):
    """Two farm nodes (no add-on installed) on the same 8 frames: each frame exactly once. On a
    loaded machine one node can finish all 8 before the other has loaded the file; the nodes
    then never met, so the pair runs again (at most 3 times) until both rendered something."""
    for attempt in range(3):
        shared = tmp_path / f"frames{attempt}"
        nodes = [node(tmp_path / f"user{attempt}_{i}", "render", farm_blend, "--frames", "1-8",
                      "--sequence", "--out", shared) for i in range(2)]
        logs = [finish(node) for node in nodes]
        done = [saved_frames(log) for log in logs]
        assert sorted(done[0] + done[1]) == list(range(1, 9))      # none twice, none missing
        files = sorted(shared.iterdir())
        assert [f.name for f in files] == [f"frame_{i:04d}.png" for i in range(1, 9)]
        if all(done):
            break
    assert all(done), f"a node rendered nothing in 3 tries, so they never ran together: {done}"
    first, last = read_image(files[0]), read_image(files[-1])
    assert first.std() > 1.0 and np.abs(first - last).mean() > 0.5   # the animation played
    for log, frames in zip(logs, done):
        assert f"render {len(frames)} frames" in log and f"skipped {8 - len(frames)} frames" in log


def test_chunk_renders_only_its_part(farm_blend, tmp_path):
    out = tmp_path / "frames"
    log = finish(node(tmp_path / "user", "render", farm_blend, "--frames", "1-8", "--chunk", "2/3",
                      "--sequence", "--out", out))
    assert saved_frames(log) == [4, 5, 6]
    assert sorted(f.name for f in out.iterdir()) == [f"frame_{i:04d}.png" for i in (4, 5, 6)]


def test_encode_joins_a_finished_sequence(run_scene, tmp_path):
    import imageio.v3 as iio
    from nnvis_addon.scene.animation import retime
    from nnvis_addon.scene.render import encode_sequence, render_animation
    scene, collection = run_scene
    frames = tmp_path / "frames"
    scene.frame_start, scene.frame_end = retime(collection, 1)   # one epoch per frame: 1-4
    render_animation(scene, frames, file_format="PNG")
    video = encode_sequence(frames, tmp_path / "training.mp4", fps=12)
    decoded = list(iio.imiter(video))
    assert len(decoded) == 4 and iio.immeta(video)["fps"] == 12
    assert decoded[0].shape == (36, 64, 3)
    assert np.abs(decoded[0] - read_image(frames / "frame_0001.png")).mean() < 4.0


def test_encode_keeps_order_and_colours_and_refuses_gaps(tmp_path):
    import imageio.v3 as iio
    from nnvis_addon.scene.render import encode_sequence
    levels = [10, 70, 130, 190, 250]
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, level in enumerate(levels):
        iio.imwrite(frames / f"frame_{i + 7:04d}.png", np.full((36, 64, 3), level, np.uint8))
    decoded = list(iio.imiter(encode_sequence(frames, tmp_path / "grey.mp4", fps=24)))
    np.testing.assert_allclose([f.mean() for f in decoded], levels, atol=2.5)
    (frames / "frame_0009.png").unlink()
    (frames / "frame_0010.png").write_bytes(b"")        # a placeholder: still rendering
    with pytest.raises(NNVisError, match=r"missing frames 9; placeholders .* 10"):
        encode_sequence(frames, tmp_path / "broken.mp4")
