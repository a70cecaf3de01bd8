"""One frame range rendered by N worker processes at once: how a GPU stays busy.

A process rendering frames in a row leaves the GPU idle during each frame's CPU side (scene
update and sync, the denoiser's prefilter, writing the image): on an H200 that side is most of a
1080p frame (docs/benchmarks.md). N workers overlap it. The scene as it stands is saved as a copy
into a private temp folder; each worker is a headless Blender (this bpy module's Python, or the
Blender binary when running inside one) that opens that copy, renders on the same device (GPU
backend) with its share of the CPU threads, and takes frames through `frames.render_sequence`'s
claims, so they split the range without talking to each other and a frame file is never
half-written. This process watches the folder for finished frames (progress) and the workers'
exit codes, and meanwhile may encode the frames as they come (an MP4: `alongside`): a worker that
fails stops the others and raises NNVisError with its log; Ctrl-C (or any error) kills them, and
their claims and temporary files go with them.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bpy

from ..errors import NNVisError
from . import devices, frames
from .frames import finished_frame_numbers, set_output

AUTO_GPU_WORKERS = 2          # H200, the demo's 175 frames at 1080p final: 1 worker ≈ 1.1 s a frame,
                              # 2 workers 0.59 s, 4 workers 0.63 s; through CUDA 2 workers 50.5 s,
                              # 3 workers 51.0 s (docs/benchmarks.md): two keep the GPU busy
                              # through each other's CPU side, more only contend
POLL_SECONDS = 0.2
WAIT_SECONDS = 0.02           # how often `alongside`'s wait looks for its frame (encoding keeps pace)
LOG_TAIL = 3000               # characters of a failed worker's log in the error
PACKAGE_ROOT = Path(__file__).resolve().parents[2]     # the folder holding nnvis_addon/


def count(choice, device_kind: str, cpus: int | None = None) -> int:
    """Workers for `choice` ('auto' or 0, or a number): AUTO is one on the CPU (its cores are
    busy rendering already: nothing may get slower) and min(2, cores / 2) on a GPU."""
    text = str(choice).strip().lower()
    if text not in ("auto", "0"):
        if not text.isdigit():
            raise NNVisError(f"workers {choice!r}: expected auto or a number ≥ 1")
        return int(text)
    if device_kind != "GPU":
        return 1
    return max(1, min(AUTO_GPU_WORKERS, (cpus or os.cpu_count() or 2) // 2))


def command(args: list[str]) -> list[str]:
    """The command line of a worker running `main(args)`: this Python when bpy is a module of it,
    else (inside Blender, whose Python cannot import bpy alone) the Blender binary, headless."""
    code = (f"import sys; sys.path.insert(0, {str(PACKAGE_ROOT)!r}); "
            "from nnvis_addon.scene.workers import main; "
            "sys.exit(main(sys.argv[sys.argv.index('--') + 1:]))")
    if bpy.app.binary_path:
        return [bpy.app.binary_path, "-b", "--factory-startup", "--python-exit-code", "1",
                "--python-expr", code, "--", *args]
    return [sys.executable, "-c", code, "--", *args]


def render(scene, folder: Path, file_format: str, workers: int, on_frame=None,
           alongside=None) -> list[int]:
    """Render scene.frame_start..frame_end into `folder` (`frames.render_sequence`'s layout) with
    `workers` processes; `on_frame(frame)` as each frame file appears. Returns the frames they
    rendered (those already in the folder are skipped, as by one process). `alongside(wait)`
    runs in this process while they render (an MP4's encoder, so encoding ends with the last
    frame): `wait(frame)` returns once that frame's file is written, and raises NNVisError
    when a worker failed or all ended without writing it."""
    set_output(scene, folder, file_format)     # creates the folder
    folder = Path(bpy.path.abspath(str(folder)))
    before = set(finished_frame_numbers(folder))
    threads = max(1, (os.cpu_count() or 2) // workers)
    device = devices.choice(devices.used(scene))    # the backend the scene renders through
    private = Path(tempfile.mkdtemp(prefix="nnvis-workers-"))
    procs: list[tuple[subprocess.Popen, Path]] = []
    done: list[int] = []

    def report_new():
        for frame in sorted(set(finished_frame_numbers(folder)) - before - set(done)):
            done.append(frame)
            if on_frame:
                on_frame(frame)

    try:
        blend = private / "scene.blend"
        bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True)
        for k in range(workers):
            log = private / f"worker{k + 1}.log"
            env = dict(os.environ, BLENDER_USER_RESOURCES=str(private / f"user{k + 1}"))
            with open(log, "w") as out:
                procs.append((subprocess.Popen(
                    command([str(blend), scene.name, str(folder), file_format, device,
                             str(threads), str(os.getpid())]),
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                    start_new_session=True), log))   # Ctrl-C reaches this process only

        def wait(frame):
            path = frames.frame_file(folder, frame, file_format)
            while not frames.is_rendered(path):
                _raise_if_failed(procs)
                if all(p.poll() is not None for p, _ in procs) and not frames.is_rendered(path):
                    raise NNVisError(f"{path}: the render workers ended without writing it")
                report_new()
                time.sleep(WAIT_SECONDS)
            report_new()

        if alongside is not None:
            alongside(wait)
        while any(p.poll() is None for p, _ in procs):
            _raise_if_failed(procs)
            report_new()
            time.sleep(POLL_SECONDS)
        _raise_if_failed(procs)
        report_new()
    finally:
        _stop(procs, folder)
        shutil.rmtree(private, ignore_errors=True)
    return done


def _raise_if_failed(procs) -> None:
    for k, (proc, log) in enumerate(procs):
        if proc.poll():
            tail = log.read_text(errors="replace")[-LOG_TAIL:]
            raise NNVisError(f"render worker {k + 1} of {len(procs)} failed (exit code "
                             f"{proc.returncode}); the others were stopped. Its log ends:\n{tail}")


def _stop(procs, folder: Path) -> None:
    """Kill the workers still running, then remove what they left half-done (`frames.release`)."""
    for proc, _ in procs:
        if proc.poll() is None:
            proc.kill()
    for proc, _ in procs:
        proc.wait()
    frames.release(folder, [proc.pid for proc, _ in procs])


def main(args: list[str]) -> int:
    """A worker: open the saved copy, render on `device` (a `devices.choose` argument: CPU or
    the backend its parent rendered through) with `threads` CPU threads,
    take frames by claims; prints each frame it finished, and stops after one when the process
    that started it is gone (killed without the chance to stop its workers)."""
    blend, scene_name, folder, file_format, device, threads, parent = args
    bpy.ops.wm.open_mainfile(filepath=blend)
    scene = bpy.data.scenes[scene_name]
    if scene.render.engine == "CYCLES":
        devices.use(scene, devices.choose(device))   # device preferences are not in a .blend
    scene.render.threads_mode, scene.render.threads = "FIXED", int(threads)

    def finished(frame):
        print(f"nnvis worker: frame {frame}", flush=True)
        if os.getppid() != int(parent):
            raise SystemExit(f"nnvis worker: process {parent} that started it is gone")

    frames.render_sequence(scene, Path(folder), file_format, on_frame=finished)
    return 0
