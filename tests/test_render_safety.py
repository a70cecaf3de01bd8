"""Rendering is safe to run many times at once: each process builds nothing next to the package
(the zip comes from the per-user cache, built once per source with an atomic rename), installs
into its own private Blender user folder, and needs no network (pyfive from the installed copy)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nnvis_addon.errors import NNVisError

TIER = "render"

ROOT = Path(__file__).resolve().parent.parent


def tree(root: Path) -> set[str]:
    """The files under `root`, leaving out what Python and git write on their own."""
    skip = {"__pycache__", ".git", ".pytest_cache", ".venv", ".venv-blender42"}
    found = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip]
        found |= {str(Path(folder, f).relative_to(root)) for f in files}
    return found


def test_wheel_is_rebuilt_from_the_installed_pyfive(tmp_path):
    from importlib import metadata
    from nnvis_addon.tools.packaging import bundled_wheel
    wheel = bundled_wheel("./wheels/pyfive-0.9.0-py3-none-any.whl", tmp_path, root=tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    installed = [f.as_posix() for f in metadata.distribution("pyfive").files
                 if f.as_posix().endswith(".py") and "__pycache__" not in f.as_posix()]
    assert "pyfive/__init__.py" in names and set(installed) <= set(names)
    assert "pyfive-0.9.0.dist-info/METADATA" in names and "pyfive-0.9.0.dist-info/RECORD" in names


def test_four_renders_at_once_all_succeed_and_write_nothing_beside_the_package(digits_run,
                                                                                tmp_path):
    folder, _ = digits_run
    cwd, cache = tmp_path / "cwd", tmp_path / "cache"
    cwd.mkdir()
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONPATH": str(ROOT),
           "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("BLENDER_USER_RESOURCES", None)      # each node picks its own private folder
    before = tree(ROOT)
    procs = [subprocess.Popen(
        [sys.executable, "-m", "nnvis_addon.tools.cli", "render", str(folder), "--frames", "1-1",
         "--resolution", "64x36", "--samples", "1", "--out", str(tmp_path / f"v{i}.mp4")],
        cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for i in range(4)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, log in zip(procs, logs):
        assert proc.returncode == 0, log[-3000:]
        assert "render 1 frames" in log
    assert all((tmp_path / f"v{i}.mp4").stat().st_size > 0 for i in range(4))
    assert tree(ROOT) == before                  # no dist/, wheels/, build/ next to the package
    assert list(cwd.iterdir()) == []
    zips = list((cache / "nnvis").iterdir())     # one zip, no staging folder left behind
    assert len(zips) == 1 and zips[0].suffix == ".zip"


def test_quality_presets_come_from_one_table(empty_scene, addon):
    import bpy
    from nnvis_addon.tools import cli
    from nnvis_addon.scene import stage
    from nnvis_addon.scene.render import VideoOptions, set_engine
    assert tuple(stage.QUALITY) == cli.QUALITY
    assert VideoOptions().quality == stage.DEFAULT_QUALITY == "draft"
    props = bpy.ops.nnvis.render_video.get_rna_type().properties
    assert [i.identifier for i in props["quality"].enum_items] == list(stage.QUALITY)
    cycles = empty_scene.cycles
    for name, preset in stage.QUALITY.items():
        set_engine(empty_scene, "CYCLES", 0, name)
        assert (cycles.samples, cycles.use_adaptive_sampling, cycles.use_denoising,
                cycles.max_bounces, cycles.filter_width) == pytest.approx(
            (preset.samples, preset.adaptive, preset.denoise is not None, preset.bounces,
             preset.filter_width))
        assert empty_scene.render.use_persistent_data == preset.persistent
    set_engine(empty_scene, "CYCLES", 5, "final")        # explicit samples win over the preset's
    assert cycles.samples == 5 and cycles.denoising_quality == "HIGH"
    row = stage.CyclesSettings(samples=7, adaptive=True, denoise="FAST", light_tree=False)
    set_engine(empty_scene, "CYCLES", 0, "final", settings=row)   # a bench row, not the preset
    assert (cycles.samples, cycles.use_adaptive_sampling, cycles.denoising_quality,
            cycles.use_light_tree) == (7, True, "FAST", False)
    set_engine(empty_scene, "CYCLES", 5, "final", settings=row)   # samples win over its samples
    assert cycles.samples == 5 and cycles.denoising_quality == "FAST"
    with pytest.raises(NNVisError, match="quality 'best'"):
        set_engine(empty_scene, "CYCLES", 0, "best")


def test_render_video_reports_what_it_rendered(digits_run, addon, tmp_path, capfd):
    """A second run over a finished PNG sequence renders nothing and says so, rather than
    'Rendered frames 1-N'; with one frame deleted it renders exactly that one."""
    import bpy
    from test_scene import import_run
    bpy.ops.wm.read_homefile(use_empty=True)
    collection = import_run(digits_run[0], frames_per_epoch=1)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 32, 18
    options = dict(engine="CYCLES", samples=1, resolution="SCENE", frames_per_epoch=1,
                   hold_first=0, hold_last=0, file_format="PNG", directory=str(tmp_path))
    assert bpy.ops.nnvis.render_video(**options) == {"FINISHED"}
    frames = sorted((tmp_path / bpy.path.clean_name(collection.name)).iterdir())
    n = len(frames)
    assert n >= 4 and f"Rendered {n} of frames 1-{n}" in capfd.readouterr().out
    assert bpy.ops.nnvis.render_video(**options) == {"FINISHED"}
    assert f"No frames rendered: frames 1-{n} are already in" in capfd.readouterr().out
    frames[1].unlink()
    assert bpy.ops.nnvis.render_video(**options) == {"FINISHED"}
    assert f"Rendered 1 of frames 1-{n} with CYCLES on CPU, 1 worker to" in capfd.readouterr().out
    assert frames[1].stat().st_size > 0
    # a render killed mid-frame: plain Blender's empty placeholder, or our dead claim and its
    # half-written temporary file; the next run re-renders both frames and leaves neither behind
    import socket
    import imageio.v3 as iio
    frames[2].write_bytes(b"")
    frames[3].unlink()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (frames[3].parent / (frames[3].name + ".claim")).write_text(f"{socket.gethostname()} {dead}")
    (frames[3].parent / f".{frames[3].stem}.{socket.gethostname()}-{dead}.png").write_bytes(b"\x89PNG")
    assert bpy.ops.nnvis.render_video(**options) == {"FINISHED"}
    assert (f"Rendered 2 of frames 1-{n} with CYCLES on CPU, 1 worker to" in capfd.readouterr().out)
    assert sorted(frames[0].parent.iterdir()) == frames
    assert all(iio.imread(f).shape[:2] == (18, 32) for f in frames)


def test_a_killed_render_resumes_at_the_missing_frames(digits_run, tmp_path):
    """SIGKILL an `nnvis render --sequence` after some frames exist; the restart renders exactly
    the missing ones (the dead process's claim is stale, a live process's claim is respected), and
    every frame file is a whole PNG: frames are renamed into place, never written in place."""
    import signal
    import socket
    import time
    import imageio.v3 as iio
    folder, frames = digits_run[0], tmp_path / "frames"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "nnvis_addon.tools.cli", "render", str(folder), "--sequence",
               "--out", str(frames), "--frames", "1-24", "--resolution", "32x18", "--samples", "1"]
    frames.mkdir()
    live = frames / "frame_0024.png.claim"      # held by a live process: this test's
    live.write_text(f"{socket.gethostname()} {os.getpid()}\n")
    first = subprocess.Popen(command, cwd=tmp_path, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while len(list(frames.glob("frame_*.png"))) < 3 and first.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    log = first.communicate()[0]
    assert first.returncode == -signal.SIGKILL, log[-3000:]
    kept = sorted(int(f.name[6:10]) for f in frames.glob("frame_*.png"))
    assert 3 <= len(kept) < 23
    left = [f.name for f in frames.glob("*.claim") if f != live]   # the frame it died on
    assert left in ([], [f"frame_{kept[-1]:04d}.png.claim"], [f"frame_{kept[-1] + 1:04d}.png.claim"])
    second = subprocess.run(command, cwd=tmp_path, env=env, text=True, timeout=600,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert second.returncode == 0, second.stdout[-3000:]
    rendered = re.search(r"^rendered frames: ([\d ]+)$", second.stdout, re.M)[1].split()
    assert [int(f) for f in rendered] == [f for f in range(1, 24) if f not in kept]
    assert f"skipped {len(kept) + 1} frames" in second.stdout
    assert sorted(f.name for f in frames.iterdir()) == \
        [f"frame_{i:04d}.png" for i in range(1, 24)] + [live.name]   # no temp file, no claim
    for path in frames.glob("frame_*.png"):
        assert iio.imread(path).shape[:2] == (18, 32)


def test_claims_tell_a_dead_process_from_a_live_one(tmp_path):
    import socket
    import time
    from nnvis_addon.scene.frames import STALE_CLAIM_SECONDS, claim, claim_is_stale
    here = socket.gethostname()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    cases = {f"{here} {os.getpid()}": False, f"{here} {dead}": True, "farm-node-7 4242": False}
    for i, (text, stale) in enumerate(cases.items()):
        path = tmp_path / f"frame_{i:04d}.png.claim"
        path.write_text(text)
        assert claim_is_stale(path) is stale, text
        assert claim(path.with_suffix("")) is stale, text     # a stale claim is taken over
    old = tmp_path / "frame_0002.png.claim"                   # the other host's, hours later
    old.write_text("farm-node-7 4242")
    os.utime(old, (time.time() - STALE_CLAIM_SECONDS - 60,) * 2)
    assert claim(old.with_suffix(""))
    assert old.read_text() == f"{here} {os.getpid()}\n"
