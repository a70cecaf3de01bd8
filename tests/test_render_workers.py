"""Rendering one frame range in several worker processes (issue 27): the same frames as one
process, every frame once, a failed worker reported with its log and nothing half-written left."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from nnvis_addon.errors import NNVisError
from nnvis_addon.scene import workers
from test_scene import import_run

TIER = "render"


def test_auto_is_one_on_the_cpu_and_up_to_four_on_a_gpu():
    assert workers.count("auto", "CPU", cpus=16) == 1
    assert workers.count("auto", "GPU", cpus=16) == 4
    assert workers.count("auto", "GPU", cpus=6) == 3
    assert workers.count("auto", "GPU", cpus=2) == 1
    assert workers.count(0, "GPU", cpus=16) == 4          # the dialog's 0
    assert workers.count("3", "CPU") == 3
    for bad in ("x", "-1", "2.5"):
        with pytest.raises(NNVisError, match="workers"):
            workers.count(bad, "GPU")


@pytest.fixture(scope="module")
def tiny_scene(digits_run, addon):
    import bpy
    bpy.ops.wm.read_homefile(use_empty=True)
    import_run(digits_run[0], frames_per_epoch=2)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 64, 36
    scene.frame_end = scene.frame_start + 4
    return scene


def pixels(path: Path) -> np.ndarray:
    import bpy
    image = bpy.data.images.load(str(path), check_existing=False)
    out = np.empty(len(image.pixels), np.float32)
    image.pixels.foreach_get(out)
    bpy.data.images.remove(image)
    return out


def test_two_workers_render_the_frames_one_process_renders(tiny_scene, tmp_path):
    from nnvis_addon.scene.render import render_frames, sequence_frames
    scene = tiny_scene
    frames = list(range(scene.frame_start, scene.frame_end + 1))
    one = render_frames(scene, tmp_path / "one", "BMP")
    seen = []
    two = render_frames(scene, tmp_path / "two", "BMP", seen.append, workers=2)
    assert one == frames and sorted(two) == frames and sorted(seen) == frames
    single, parallel = sequence_frames(tmp_path / "one"), sequence_frames(tmp_path / "two")
    assert sorted(parallel) == frames
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == \
        sorted(p.name for p in single.values())        # no claims or temporary files left
    first = pixels(single[frames[0]])
    assert first.std() > 0.05 and np.abs(first - pixels(single[frames[-1]])).mean() > 1e-3
    for frame in frames:                                # pixel-exact: same seed, same settings
        np.testing.assert_array_equal(pixels(parallel[frame]), pixels(single[frame]))
    assert render_frames(scene, tmp_path / "two", "BMP", workers=2) == []   # all there: resumes


FAKE_WORKER = """
import os, socket, sys, time
folder, me = sys.argv[-4], os.environ["BLENDER_USER_RESOURCES"][-1]
tag = f"{socket.gethostname()} {os.getpid()}"
open(os.path.join(folder, f"frame_000{me}.bmp.claim"), "w").write(tag)
open(os.path.join(folder, f".frame_000{me}.{tag.replace(' ', '-')}.bmp"), "w").write("half")
if me == "2":
    time.sleep(1)
    print("worker 2: out of GPU memory")
    sys.exit(3)
time.sleep(120)
"""


def test_a_failed_worker_stops_the_others_and_leaves_nothing_half_written(
        tiny_scene, tmp_path, monkeypatch):
    """Worker 2 fails while worker 1 still renders: the error carries worker 2's log, worker 1
    is killed, and their claims and temporary files are gone (finished frames would stay)."""
    import tempfile
    monkeypatch.setattr(workers, "command",
                        lambda args: [sys.executable, "-c", FAKE_WORKER, *args])
    before = set(Path(tempfile.gettempdir()).glob("nnvis-workers-*"))
    folder = tmp_path / "frames"
    with pytest.raises(NNVisError, match=r"(?s)worker 2 of 2 failed \(exit code 3\).*out of GPU"):
        workers.render(tiny_scene, folder, "BMP", 2)
    assert list(folder.iterdir()) == []
    assert set(Path(tempfile.gettempdir()).glob("nnvis-workers-*")) == before
    for line in os.popen("ps -eo pid,args").read().splitlines():   # worker 1 is gone
        assert "out of GPU memory" not in line
