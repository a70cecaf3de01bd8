"""Rendering the training: settings for this machine, MP4 or image-sequence output, the render,
and joining a finished sequence into an MP4 (the farm-ready .blend is saved by
`tools/headless.py`). Frames are written by `frames.render_sequence` (its docstring tells the
rules), in this process or in `workers`; an MP4 is rendered as such a sequence in
`<video>.frames/`, then encoded, so it resumes too.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import bpy

from ..errors import NNVisError
from . import animation, camera_moves, compat, devices, stage, workers as parallel
from .frames import (VIDEO_FRAMES, finished_frames, output_format, render_sequence,
                     sequence_frames, set_output)
from .run_record import RunRecord, is_run

RESOLUTIONS = {"720p": (1280, 720), "1080p": (1920, 1080), "4K": (3840, 2160)}


@dataclass
class VideoOptions:
    """What Render Training Video sets before rendering."""
    engine: str = "AUTO"            # AUTO: Cycles (EEVEE only when asked for)
    device: str = "AUTO"            # Cycles: AUTO (best GPU backend, else CPU), CPU or GPU
    quality: str = stage.DEFAULT_QUALITY   # a stage.QUALITY preset
    samples: int = 0                # 0: the preset's
    resolution: str = "SCENE"       # a RESOLUTIONS key, or SCENE to keep the scene's
    fps: int = 0                    # 0: keep the scene's
    frames_per_epoch: int = 0       # 0: keep the imported timing; > 0 re-times with the holds
    hold_first: int = 0             # frames showing the untrained network before training starts
    hold_last: int = 12             # frames showing the last epoch
    file_format: str = "MP4"        # MP4, PNG or EXR
    workers: int = 0                # render processes at once; 0: auto (GPU 2, CPU 1)


def pick_engine(choice: str = "AUTO") -> str:
    """Render engine id for AUTO/CYCLES/EEVEE: AUTO is Cycles (on the device `devices.choose`
    picks); EEVEE only when asked for (its id differs between 4.2 and 5.0)."""
    return compat.EEVEE if choice == "EEVEE" else "CYCLES"


def set_engine(scene, engine: str, samples: int = 0, quality: str | None = None,
               device: str = "AUTO", settings: stage.CyclesSettings | None = None
               ) -> devices.Device | None:
    """`engine` at the `quality` preset of the device it renders on (None: keep the scene's
    settings), or at Cycles `settings` given instead (`nnvis bench render --video --variant`);
    `samples` > 0 overrides their samples. Cycles renders on `device` (AUTO: the best GPU
    backend Cycles lists, else the CPU); returns that device (None for EEVEE)."""
    if quality is not None and quality not in stage.QUALITY:
        raise NNVisError(f"quality {quality!r}: expected one of {list(stage.QUALITY)}")
    scene.render.engine = engine
    if engine != "CYCLES":
        if samples or quality:
            scene.eevee.taa_render_samples = samples or stage.EEVEE_SAMPLES[quality]
        return None
    chosen = devices.choose(device)
    if settings or quality:
        stage.apply_cycles(scene, settings or stage.preset(quality, chosen.kind))
    devices.use(scene, chosen)
    if samples:
        scene.cycles.samples = samples
    return chosen


def apply_video_options(scene, collection, options: VideoOptions) -> tuple[int, int]:
    """Engine and quality preset, samples, resolution, fps and the run's timing (re-timed Epoch
    keyframes and hold frames, the camera move re-applied); returns the new frame range, also set
    on the scene."""
    if options.resolution != "SCENE" and options.resolution not in RESOLUTIONS:
        raise NNVisError(f"resolution {options.resolution!r}: expected SCENE or one of "
                         f"{list(RESOLUTIONS)}")
    set_engine(scene, pick_engine(options.engine), options.samples, options.quality,
               options.device)
    before = (camera_moves.aspect_of(scene), scene.frame_start, scene.frame_end)
    if options.resolution != "SCENE":
        scene.render.resolution_x, scene.render.resolution_y = RESOLUTIONS[options.resolution]
        scene.render.resolution_percentage = 100
    if options.fps:
        scene.render.fps, scene.render.fps_base = options.fps, 1.0
    if options.frames_per_epoch:
        scene.frame_start, scene.frame_end = animation.retime(
            collection, options.frames_per_epoch, options.hold_first, options.hold_last,
            scene.frame_start)
    move = RunRecord(collection).camera_move
    if (camera_moves.aspect_of(scene), scene.frame_start, scene.frame_end) != before \
            and move:                     # framed and timed for the old settings
        camera_moves.apply_move(collection, move, scene)
    return scene.frame_start, scene.frame_end


def find_run(scene, obj=None):
    """The imported run to render: the one holding `obj`, else the first in the scene."""
    runs = [c for c in scene.collection.children_recursive if is_run(c)]
    for coll in runs:
        if obj is not None and obj.name in coll.all_objects:
            return coll
    return runs[0] if runs else None


def render_animation(scene, out, on_frame=None, file_format: str | None = None,
                     workers: int = 1) -> Path:
    """Render scene.frame_start..frame_end to `out`: a folder of PNG/EXR frames (`render_sequence`:
    resumable, shared with other processes), or for an .mp4 that sequence (BMP) in
    `<out>.frames/`, then encoded to H.264 and removed. `workers` > 1 renders the frames in that
    many processes at once (`workers.render`) while this one encodes each frame as it appears.
    `on_frame(frame)` is called after each frame rendered here."""
    file_format = output_format(Path(out), file_format)
    if file_format != "MP4":
        render_frames(scene, out, file_format, on_frame, workers)
        return Path(out)
    frames, fps, span = video_frames_folder(out), scene.render.fps, (scene.frame_start,
                                                                     scene.frame_end)
    if workers > 1:    # encoded while the workers render: the MP4 is done with the last frame
        parallel.render(scene, frames, VIDEO_FRAMES, workers, on_frame,
                        alongside=lambda wait: encode_sequence(frames, out, fps, span, wait))
    else:
        render_sequence(scene, frames, VIDEO_FRAMES, on_frame)
        encode_sequence(frames, out, fps, span)
    shutil.rmtree(frames)
    set_output(scene, out, "MP4")
    return Path(out)


def video_frames_folder(video) -> Path:
    """Where the frames of the MP4 `video` wait to be encoded."""
    return Path(str(video) + ".frames")


def render_frames(scene, folder, file_format: str, on_frame=None, workers: int = 1) -> list[int]:
    """`render_sequence` in this process, or in `workers` processes at once."""
    if workers > 1:
        return parallel.render(scene, folder, file_format, workers, on_frame)
    return render_sequence(scene, folder, file_format, on_frame)


def encode_sequence(folder, video, fps: int = 24, frames: tuple[int, int] | None = None,
                    wait=None) -> Path:
    """Join a finished frame sequence into an H.264 MP4 with FFmpeg through Blender's sequencer
    (a throw-away scene holding one image strip). Colours pass through unchanged for PNG frames
    (Standard view transform, as nnvis scenes use). With `wait` (`workers.render`'s) the
    `frames` need not be written yet: each is waited for before the encoder reads it."""
    if wait is None:
        files = finished_frames(folder, frames)
    else:
        wait(frames[0])
        head = sequence_frames(folder)[frames[0]]
        files = [head.with_name(f"frame_{f:04d}{head.suffix}")
                 for f in range(frames[0], frames[1] + 1)]
    video = Path(video)
    video.parent.mkdir(parents=True, exist_ok=True)
    probe = bpy.data.images.load(str(files[0]), check_existing=False)
    width, height = probe.size
    bpy.data.images.remove(probe)
    if not width or not height:
        raise NNVisError(f"{files[0]}: not an image Blender can read")
    scene = bpy.data.scenes.new("nnvis encode")
    try:
        strips = compat.sequencer_strips(scene.sequence_editor_create())
        strip = strips.new_image(name="frames", filepath=str(files[0]), channel=1, frame_start=1,
                                 fit_method="ORIGINAL")
        for path in files[1:]:
            strip.elements.append(path.name)
        render = scene.render
        # H.264 (yuv420p) needs even sizes: an odd frame gets a one-pixel border
        render.resolution_x, render.resolution_y = width + width % 2, height + height % 2
        render.resolution_percentage = 100
        render.fps, render.fps_base = fps, 1.0
        scene.frame_start, scene.frame_end = 1, len(files)
        scene.view_settings.view_transform = "Standard"
        compat.set_video_output(scene)
        render.filepath = str(video)
        _render_waiting(scene, video, files, wait and (lambda frame: wait(frames[0] + frame - 1)))
    finally:
        bpy.data.scenes.remove(scene)
    return video


def _render_waiting(scene, video: Path, files: list[Path], wait=None) -> None:
    """Render `scene`'s animation of `files` to `video`, calling `wait(frame)` before each frame.
    An error there (a failed worker, Ctrl-C) cannot stop Blender's render loop, which prints it
    and goes on: the frames left are linked to the first one (Blender 5.0's sequencer crashed on
    a missing frame file), then they and the unfinished video are removed and it is raised."""
    errors, fillers = [], []

    def before_frame(rendering, *_):
        if wait is None or rendering != scene:
            return
        if not errors:
            try:
                wait(rendering.frame_current)
                return
            except BaseException as exc:    # KeyboardInterrupt too: Blender would swallow it
                errors.append(exc)
        for path in files[rendering.frame_current - 1:]:
            if not path.exists():
                try:
                    os.link(files[0], path)
                except OSError:                # a file system without hard links
                    shutil.copyfile(files[0], path)
                fillers.append(path)

    bpy.app.handlers.render_pre.append(before_frame)
    try:
        bpy.ops.render.render(animation=True, scene=scene.name)
    finally:
        bpy.app.handlers.render_pre.remove(before_frame)
        for path in fillers:
            path.unlink(missing_ok=True)
    if errors:
        video.unlink(missing_ok=True)
        raise errors[0]
