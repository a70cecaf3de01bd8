"""Rendering the training: settings for this machine, MP4 or image-sequence output, the render,
and joining a finished sequence into an MP4 (the farm-ready .blend is saved by
`tools/headless.py`).

nnvis renders image sequences with its own frame loop (`render_sequence`): a frame whose file
exists is done; otherwise the process claims it with `frame_####.png.claim` (created atomically,
holding host and pid), renders it to a hidden temporary name in the same folder and renames that
onto the final name, so a frame file is never half-written. N processes or machines sharing one
folder split the work without talking to each other, and a killed render resumes at the first
missing frame: a claim whose process is gone (same host: pid not running; another host: older
than `STALE_CLAIM_SECONDS`) is taken over. An MP4 is rendered as such a sequence in
`<video>.frames/`, then encoded, so it resumes too. The output settings also carry Blender's own
placeholders, so a saved .blend rendered by a plain `blender -b scene.blend -a` shares a folder on
a farm node without nnvis (placeholders, not claims: see docs/render-farm.md).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import bpy

from ..errors import NNVisError
from . import animation, camera_moves, compat, devices, stage
from .. import names

RESOLUTIONS = {"720p": (1280, 720), "1080p": (1920, 1080), "4K": (3840, 2160)}
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov")
SEQUENCE_FORMATS = {"PNG": "PNG", "EXR": "OPEN_EXR", "BMP": "BMP"}
SUFFIXES = {"PNG": ".png", "EXR": ".exr", "BMP": ".bmp"}
# An MP4's frames before encoding: the cheapest lossless 8-bit file Blender writes (1920×1080,
# measured: BMP 0.11 s, PNG uncompressed 0.21 s, PNG at Blender's 15 % 0.41 s)
VIDEO_FRAMES = "BMP"
FRAME_PATTERN = "frame_####"          # Blender replaces #### by the frame and adds the extension
FRAME_FILE = re.compile(r"^frame_(\d+)\.(png|exr|bmp)$")
STALE_CLAIM_SECONDS = 3 * 3600    # a claim from another host older than this: its node died


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
    workers: int = 0                # render processes at once; 0: auto (GPU up to 4, CPU 1)


def pick_engine(choice: str = "AUTO") -> str:
    """Render engine id for AUTO/CYCLES/EEVEE: AUTO is Cycles (on the device `devices.choose`
    picks); EEVEE only when asked for (its id differs between 4.2 and 5.0)."""
    return compat.EEVEE if choice == "EEVEE" else "CYCLES"


def set_engine(scene, engine: str, samples: int = 0, quality: str | None = None,
               device: str = "AUTO") -> devices.Device | None:
    """`engine` at the `quality` preset of the device it renders on (None: keep the scene's
    settings); `samples` > 0 overrides the preset's samples. Cycles renders on `device` (AUTO:
    the best GPU backend Cycles lists, else the CPU); returns that device (None for EEVEE)."""
    if quality is not None and quality not in stage.QUALITY:
        raise NNVisError(f"quality {quality!r}: expected one of {list(stage.QUALITY)}")
    scene.render.engine = engine
    if engine != "CYCLES":
        if samples or quality:
            scene.eevee.taa_render_samples = samples or stage.EEVEE_SAMPLES[quality]
        return None
    chosen = devices.choose(device)
    if quality:
        stage.apply_cycles(scene, stage.preset(quality, chosen.kind))
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
    if (camera_moves.aspect_of(scene), scene.frame_start, scene.frame_end) != before \
            and collection.get(names.CAMERA_MOVE):   # framed and timed for the old settings
        camera_moves.apply_move(collection, collection[names.CAMERA_MOVE], scene)
    return scene.frame_start, scene.frame_end


def find_run(scene, obj=None):
    """The imported run to render: the one holding `obj`, else the first in the scene."""
    runs = [c for c in scene.collection.children_recursive if names.RUN in c]
    for coll in runs:
        if obj is not None and obj.name in coll.all_objects:
            return coll
    return runs[0] if runs else None


def output_format(out: Path, file_format: str | None = None) -> str:
    """MP4 for a video file name, else the sequence format (PNG unless told)."""
    if file_format:
        if file_format != "MP4" and file_format not in SEQUENCE_FORMATS:
            raise NNVisError(f"output format {file_format!r}: expected MP4 or one of "
                              f"{list(SEQUENCE_FORMATS)}")
        return file_format
    return "MP4" if Path(out).suffix.lower() in VIDEO_SUFFIXES else "PNG"


def set_output(scene, out, file_format: str | None = None) -> str:
    """Point the scene's output at `out`: an MP4 file, or a folder of frame_####.png/.exr written
    with placeholders and without overwriting. `out` may be Blender-relative ('//frames/')."""
    out = str(out)
    file_format = output_format(Path(out), file_format)
    if not out.startswith("//"):
        target = Path(out) if file_format != "MP4" else Path(out).parent
        target.mkdir(parents=True, exist_ok=True)
    render = scene.render
    if file_format == "MP4":
        compat.set_video_output(scene)
        render.filepath = out
        return file_format
    compat.set_image_output(scene, SEQUENCE_FORMATS[file_format])
    render.filepath = out.rstrip("/\\") + "/" + FRAME_PATTERN
    render.use_file_extension = True
    render.use_placeholder = True
    render.use_overwrite = False
    return file_format


def render_animation(scene, out, on_frame=None, file_format: str | None = None,
                     workers: int = 1) -> Path:
    """Render scene.frame_start..frame_end to `out`: a folder of PNG/EXR frames (`render_sequence`:
    resumable, shared with other processes), or for an .mp4 that sequence (BMP) in
    `<out>.frames/`, then encoded to H.264 and removed. `workers` > 1 renders the frames in that
    many processes at once (`workers.render`). `on_frame(frame)` is called after each frame
    rendered here."""
    file_format = output_format(Path(out), file_format)
    if file_format != "MP4":
        render_frames(scene, out, file_format, on_frame, workers)
        return Path(out)
    frames = video_frames_folder(out)
    render_frames(scene, frames, VIDEO_FRAMES, on_frame, workers)
    encode_sequence(frames, out, scene.render.fps, (scene.frame_start, scene.frame_end))
    shutil.rmtree(frames)
    set_output(scene, out, "MP4")
    return Path(out)


def video_frames_folder(video) -> Path:
    """Where the frames of the MP4 `video` wait to be encoded."""
    return Path(str(video) + ".frames")


def render_frames(scene, folder, file_format: str, on_frame=None, workers: int = 1) -> list[int]:
    """`render_sequence` in this process, or in `workers` processes at once."""
    if workers > 1:
        from . import workers as parallel
        return parallel.render(scene, folder, file_format, workers, on_frame)
    return render_sequence(scene, folder, file_format, on_frame)


def render_sequence(scene, folder, file_format: str = "PNG", on_frame=None) -> list[int]:
    """Render the frames of scene.frame_start..frame_end that are neither in `folder` nor claimed
    by a live process, each to a temporary name then renamed into place; returns them."""
    set_output(scene, folder, file_format)
    folder, pattern = Path(bpy.path.abspath(str(folder))), scene.render.filepath
    suffix = SUFFIXES[file_format]
    tag = f"{socket.gethostname()}-{os.getpid()}"
    done = []
    try:
        scene.render.use_file_extension = False
        for frame in range(scene.frame_start, scene.frame_end + 1):
            final = folder / f"frame_{frame:04d}{suffix}"
            if _rendered(final) or not claim(final):
                continue
            temp = folder / f".{final.stem}.{tag}{suffix}"
            try:
                for leftover in folder.glob(f".{final.stem}.*"):   # from a process that died
                    leftover.unlink(missing_ok=True)
                scene.frame_set(frame)
                scene.render.filepath = str(temp)
                bpy.ops.render.render(write_still=True, scene=scene.name)
                os.replace(temp, final)
            finally:
                temp.unlink(missing_ok=True)
                _claim_file(final).unlink(missing_ok=True)
            done.append(frame)
            if on_frame:
                on_frame(frame)
    finally:
        scene.render.filepath, scene.render.use_file_extension = pattern, True
    return done


def _rendered(path: Path) -> bool:
    """A finished frame: a non-empty file (an empty one is a placeholder plain Blender left)."""
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def _claim_file(frame_file: Path) -> Path:
    return frame_file.with_name(frame_file.name + ".claim")


def claim(frame_file: Path) -> bool:
    """Claim `frame_file` for this process: create its .claim file atomically (O_EXCL) with
    'host pid'. A stale claim (`claim_is_stale`) is taken over; False while a live one holds it."""
    path = _claim_file(frame_file)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not claim_is_stale(path):
                return False
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{socket.gethostname()} {os.getpid()}\n")
        return True
    return False


def claim_is_stale(path: Path) -> bool:
    """True when the process that wrote claim `path` is gone: on this host its pid is not running;
    from another host (we cannot see its processes) the claim is older than STALE_CLAIM_SECONDS."""
    try:
        host, pid = path.read_text().split()
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    except ValueError:          # being written right now, or garbage
        host, pid, age = None, "0", time.time() - path.stat().st_mtime
    if host == socket.gethostname():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError):
            pass
        else:
            return False
    return age > STALE_CLAIM_SECONDS


def sequence_frames(folder) -> dict[int, Path]:
    """frame number → file of the frame_####.png (or .exr, .bmp) files in `folder`."""
    found: dict[str, dict[int, Path]] = {}
    for path in Path(folder).iterdir():
        match = FRAME_FILE.match(path.name)
        if match:
            found.setdefault(match[2], {})[int(match[1])] = path
    if len(found) > 1:
        raise NNVisError(f"{folder}: holds frames in more than one format "
                         f"({', '.join(sorted(found))}); keep one sequence per folder")
    return next(iter(found.values()), {})


def finished_frame_numbers(folder) -> list[int]:
    """The frames of the sequence in `folder` whose file is written (not a placeholder)."""
    return [frame for frame, path in sequence_frames(folder).items() if _rendered(path)]


def finished_frames(folder, frames: tuple[int, int] | None = None) -> list[Path]:
    """The sequence's files in frame order; raises if a frame is missing or still a placeholder."""
    found = sequence_frames(folder)
    if not found:
        raise NNVisError(f"{folder}: no frame_####.png/.exr/.bmp files to encode")
    start, end = frames or (min(found), max(found))
    missing = [f for f in range(start, end + 1) if f not in found]
    empty = [f for f in range(start, end + 1) if f in found and found[f].stat().st_size == 0]
    if missing or empty:
        raise NNVisError(
            f"{folder}: sequence {start}-{end} is not finished: missing frames {_spans(missing)}; "
            f"placeholders (still rendering, or left by a render that died: delete them and render "
            f"again) {_spans(empty)}")
    return [found[f] for f in range(start, end + 1)]


def _spans(frames: list[int]) -> str:
    if not frames:
        return "none"
    spans, first = [], frames[0]
    for a, b in zip(frames, frames[1:] + [None]):
        if b != a + 1:
            spans.append(f"{first}-{a}" if a != first else str(a))
            first = b
    return ", ".join(spans)


def encode_sequence(folder, video, fps: int = 24, frames: tuple[int, int] | None = None) -> Path:
    """Join a finished frame sequence into an H.264 MP4 with FFmpeg through Blender's sequencer
    (a throw-away scene holding one image strip). Colours pass through unchanged for PNG frames
    (Standard view transform, as nnvis scenes use)."""
    files = finished_frames(folder, frames)
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
        bpy.ops.render.render(animation=True, scene=scene.name)
    finally:
        bpy.data.scenes.remove(scene)
    return video
