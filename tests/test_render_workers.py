"""Rendering one frame range in several worker processes (issue 27): the same frames as one
process, every frame once, a failed worker reported with its log and nothing half-written left."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from nnvis_addon.errors import NNVisError
from nnvis_addon.scene import devices, workers
from test_scene import import_run

TIER = "render"


def test_auto_is_one_on_the_cpu_and_up_to_four_on_a_gpu():
    assert workers.count("auto", "CPU", cpus=16) == 1
    assert workers.count("auto", "GPU", cpus=16) == 2
    assert workers.count("auto", "GPU", cpus=6) == 2
    assert workers.count("auto", "GPU", cpus=2) == 1
    assert workers.count(0, "GPU", cpus=16) == 2          # the dialog's 0
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
    from nnvis_addon.scene.frames import sequence_frames
    from nnvis_addon.scene.render import render_frames
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
folder, me = sys.argv[-5], os.environ["BLENDER_USER_RESOURCES"][-1]
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


# --- the benchmark the lead runs on the GPU machine, run here on the CPU at a tiny size ----------

@pytest.fixture(scope="module")
def bench(digits_run, tmp_path_factory):
    """`nnvis bench render ARGS --write rows.json` on the test's digits recording, with a private
    cache (no reference from an earlier run); returns (stdout, rows)."""
    import json
    import subprocess
    cache = tmp_path_factory.mktemp("cache")

    def run(*args):
        out = cache / "rows.json"
        proc = subprocess.run(
            [sys.executable, "-m", "nnvis_addon.tools.cli", "bench", "render", *args,
             "--device", "cpu", "--recording", str(digits_run[0] / "recording"),
             "--write", str(out)], cwd=Path(__file__).parent.parent, text=True,
            capture_output=True, env=dict(os.environ, XDG_CACHE_HOME=str(cache)), timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout, json.loads(out.read_text())
    return run


def test_bench_video_renders_every_frame_through_workers_and_reports_seconds_and_psnr(bench):
    stdout, (row,) = bench("--video", "--resolution", "48x27", "--workers", "2", "--frames",
                           "3-7", "--reference-samples", "32", "--samples", "2")
    assert (row["mode"], row["device"], row["workers"], row["frames"]) == ("video", "CPU", 2, 5)
    assert row["samples"] == 2 and "final (2 spp)" in stdout    # the preset's 16 replaced
    assert row["total_seconds"] > 0 and row["seconds_per_frame"] == pytest.approx(
        row["total_seconds"] / 5, abs=2e-3)     # both rounded (0.01 s, 0.001 s)
    assert 0 < row["encode_seconds"] < row["total_seconds"]    # the MP4 after the last frame
    assert sorted(row["psnr_db"]) == ["3", "5", "7"]       # first, middle, last
    assert all(20 < db < 80 for db in row["psnr_db"].values()), row["psnr_db"]
    assert f"{row['seconds_per_frame']:.3f} s/frame" in stdout


def test_bench_gpu_table_runs_on_the_cpu(bench):
    """The GPU variants (here rendered on the CPU): each row timed and compared with the
    reference, a frame at fewer samples worse than at more."""
    from nnvis_addon.tools.bench.render import GPU_VARIANTS
    first, fewer = list(GPU_VARIANTS)[:2]
    _, rows = bench("--variants", "gpu", "--only", fewer, "--resolution", "48x27",
                    "--repeats", "1", "--reference-samples", "128")
    by_name = {r["variant"]: r for r in rows}
    assert by_name["reference"]["samples"] == 128
    assert by_name[first]["samples"] == 64 and by_name[fewer]["samples"] == 16
    assert all(by_name[n]["seconds_per_frame"] > 0 for n in (first, fewer))
    assert 20 < by_name[fewer]["psnr_db"] < by_name[first]["psnr_db"] < 80


def test_two_workers_make_the_same_video(tiny_scene, tmp_path):
    """The same H.264 stream, frame for frame (the files differ only in the date Blender writes
    into them)."""
    import imageio.v3 as iio
    from nnvis_addon.scene.render import render_animation
    one = list(iio.imiter(render_animation(tiny_scene, tmp_path / "one.mp4")))
    two = list(iio.imiter(render_animation(tiny_scene, tmp_path / "two.mp4", workers=2)))
    assert len(one) == len(two) == tiny_scene.frame_end - tiny_scene.frame_start + 1
    assert np.abs(one[0].astype(int) - one[-1]).mean() > 0.1       # the epochs change
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.mp4", "two.mp4"]


def test_the_encoder_takes_each_frame_as_it_is_written(tmp_path):
    """With `wait`, encoding starts before the frames exist: each is waited for (here: written
    then, as a worker would) just before the encoder reads it, and the video holds them all."""
    import bpy
    import imageio.v3 as iio
    from nnvis_addon.scene.render import encode_sequence

    def write(frame):
        image = bpy.data.images.new(f"frame {frame}", 64, 36)
        image.pixels.foreach_set(np.tile(np.float32([frame / 5, frame / 5, frame / 5, 1]),
                                         64 * 36))
        image.filepath_raw, image.file_format = str(tmp_path / f"frame_{frame:04d}.bmp"), "BMP"
        image.save()
        bpy.data.images.remove(image)

    waited = []

    def wait(frame):
        waited.append(frame)
        if not (tmp_path / f"frame_{frame:04d}.bmp").exists():
            write(frame)

    video = encode_sequence(tmp_path, tmp_path.parent / "waited.mp4", 12, (1, 5), wait)
    assert sorted(set(waited)) == [1, 2, 3, 4, 5] and waited == sorted(waited)
    levels = [float(frame.mean()) for frame in iio.imiter(video)]
    assert len(levels) == 5 and levels == sorted(levels) and levels[-1] - levels[0] > 100


GIVING_UP_WORKER = """
import sys
sys.path.insert(0, {root!r})
from nnvis_addon.scene import frames, workers
real = frames.render_sequence
def two_then_fail(scene, folder, file_format, on_frame=None):
    scene.frame_end = scene.frame_start + 1
    real(scene, folder, file_format, on_frame)
    print("worker gave up: out of GPU memory", flush=True)
    sys.exit(3)
frames.render_sequence = two_then_fail
workers.main(sys.argv[sys.argv.index("--") + 1:])
"""


def test_a_worker_failing_while_the_video_is_encoded_leaves_no_video(tiny_scene, tmp_path,
                                                                       monkeypatch):
    """The encoder takes each frame as the workers write it; when they fail after the first two
    frames, the error names the failure and no half-encoded MP4 is left (the two finished frames
    stay for a render started again)."""
    from nnvis_addon.scene.render import render_animation
    code = GIVING_UP_WORKER.format(root=str(Path(__file__).parent.parent))
    monkeypatch.setattr(workers, "command",
                        lambda args: [sys.executable, "-c", code, "--", *args])
    seen = []
    with pytest.raises(NNVisError, match=r"(?s)failed \(exit code 3\).*out of GPU memory"):
        render_animation(tiny_scene, tmp_path / "out.mp4", seen.append, workers=2)
    assert sorted(seen) == [tiny_scene.frame_start, tiny_scene.frame_start + 1]
    assert not (tmp_path / "out.mp4").exists()
    assert sorted(p.name for p in (tmp_path / "out.mp4.frames").iterdir()) == [
        f"frame_{f:04d}.bmp" for f in sorted(seen)]


def test_workers_render_on_the_parents_kind_of_device_with_their_share_of_threads(
        tiny_scene, tmp_path, monkeypatch):
    """Cycles' device preferences are not in the saved copy: each worker is told the kind (a GPU
    here, faked: the worker only echoes what it was told) and its CPU threads."""
    monkeypatch.setattr(workers, "command", lambda args: [
        sys.executable, "-c", "import sys; print('told', sys.argv[1:]); sys.exit(1)", *args])
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    gpu = SimpleNamespace(name="NVIDIA H200", use=True, type="CUDA")   # CUDA asked for by name
    monkeypatch.setattr(devices, "cycles_preferences",
                        lambda: SimpleNamespace(compute_device_type="CUDA", devices=[gpu]))
    tiny_scene.cycles.device = "GPU"
    try:
        with pytest.raises(NNVisError, match=r"told \[.*'BMP', 'CUDA', '4', '\d+'\]"):
            workers.render(tiny_scene, tmp_path / "frames", "BMP", 4)
    finally:
        tiny_scene.cycles.device = "CPU"
