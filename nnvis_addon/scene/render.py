"""Rendering the training: settings for this machine, MP4 or image-sequence output, the render,
joining a finished sequence into an MP4, and a farm-ready .blend.

Image sequences are written with Blender's own placeholders (`use_placeholder`, no overwrite):
before a frame renders, Blender creates its empty file, and every other process or machine that
renders into the same folder skips frames whose file exists. So N machines pointed at one shared
folder split the work without talking to each other, and a cancelled render resumes where it
stopped. The saved .blend carries these settings, so a plain `blender -b scene.blend -a` does the
same on a farm node without nnvis.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import bpy

from ..errors import NNVisError
from . import animation, camera_moves, compat, stage
from .. import names

RESOLUTIONS = {"720p": (1280, 720), "1080p": (1920, 1080), "4K": (3840, 2160)}
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov")
SEQUENCE_FORMATS = {"PNG": "PNG", "EXR": "OPEN_EXR"}
FRAME_PATTERN = "frame_####"          # Blender replaces #### by the frame and adds the extension
FRAME_FILE = re.compile(r"^frame_(\d+)\.(png|exr)$")
SOFTWARE_GL = ("llvmpipe", "softpipe", "swiftshader", "software rasterizer")


@dataclass
class VideoOptions:
    """What Render Training Video sets before rendering."""
    engine: str = "AUTO"            # AUTO: EEVEE where a GPU is present, Cycles CPU otherwise
    quality: str = stage.DEFAULT_QUALITY   # a stage.QUALITY preset
    samples: int = 0                # 0: the preset's
    resolution: str = "SCENE"       # a RESOLUTIONS key, or SCENE to keep the scene's
    fps: int = 0                    # 0: keep the scene's
    frames_per_epoch: int = 0       # 0: keep the imported timing; > 0 re-times with the holds
    hold_first: int = 0             # frames showing the untrained network before training starts
    hold_last: int = 12             # frames showing the last epoch
    file_format: str = "MP4"        # MP4, PNG or EXR


def has_gpu() -> bool:
    """True when EEVEE would run on real graphics hardware. With a window, ask the GPU module
    (software OpenGL such as llvmpipe does not count); headless the GPU module is unavailable
    (SystemError), so ask Cycles whether it sees a CUDA/OptiX/HIP/oneAPI/Metal device."""
    import gpu
    try:
        renderer = gpu.platform.renderer_get().lower()
        return (gpu.platform.device_type_get() != "SOFTWARE"
                and not any(name in renderer for name in SOFTWARE_GL))
    except SystemError:
        pass
    try:
        prefs = bpy.context.preferences.addons["cycles"].preferences
        prefs.refresh_devices()
        return any(device.type != "CPU" for device in prefs.devices)
    except (KeyError, AttributeError, RuntimeError):
        return False


def pick_engine(choice: str = "AUTO") -> str:
    """Render engine id for AUTO/CYCLES/EEVEE (EEVEE's id differs between 4.2 and 5.0)."""
    if choice == "AUTO":
        choice = "EEVEE" if has_gpu() else "CYCLES"
    return compat.EEVEE if choice == "EEVEE" else "CYCLES"


def set_engine(scene, engine: str, samples: int = 0, quality: str | None = None) -> None:
    """`engine` at the `quality` preset (None: keep the scene's settings); `samples` > 0
    overrides the preset's samples."""
    if quality is not None and quality not in stage.QUALITY:
        raise NNVisError(f"quality {quality!r}: expected one of {list(stage.QUALITY)}")
    scene.render.engine = engine
    if engine == "CYCLES":
        if quality:
            stage.apply_cycles(scene, stage.QUALITY[quality])
        scene.cycles.device = "CPU"
        if samples:
            scene.cycles.samples = samples
    elif samples or quality:
        scene.eevee.taa_render_samples = samples or stage.EEVEE_SAMPLES[quality]


def apply_video_options(scene, collection, options: VideoOptions) -> tuple[int, int]:
    """Engine and quality preset, samples, resolution, fps and the run's timing (re-timed Epoch
    keyframes and hold frames, the camera move re-applied); returns the new frame range, also set
    on the scene."""
    if options.resolution != "SCENE" and options.resolution not in RESOLUTIONS:
        raise NNVisError(f"resolution {options.resolution!r}: expected SCENE or one of "
                         f"{list(RESOLUTIONS)}")
    set_engine(scene, pick_engine(options.engine), options.samples, options.quality)
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
            raise NNVisError(f"output format {file_format!r}: expected MP4, PNG or EXR")
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


def render_animation(scene, out, on_frame=None, file_format: str | None = None) -> Path:
    """Render scene.frame_start..frame_end to `out` (an .mp4 → H.264 video; else a folder of
    PNG/EXR frames, skipping frames another process has claimed). `on_frame(frame)` is called after
    each frame this process rendered."""
    set_output(scene, out, file_format)
    handler = (lambda sc, *args: on_frame(sc.frame_current)) if on_frame else None
    if handler:
        bpy.app.handlers.render_post.append(handler)
    try:
        bpy.ops.render.render(animation=True, scene=scene.name)
    finally:
        if handler:
            bpy.app.handlers.render_post.remove(handler)
    return Path(out)


def sequence_frames(folder) -> dict[int, Path]:
    """frame number → file of the frame_####.png (or .exr) files in `folder`."""
    found: dict[str, dict[int, Path]] = {}
    for path in Path(folder).iterdir():
        match = FRAME_FILE.match(path.name)
        if match:
            found.setdefault(match[2], {})[int(match[1])] = path
    if len(found) > 1:
        raise NNVisError(f"{folder}: holds both PNG and EXR frames; keep one sequence per folder")
    return next(iter(found.values()), {})


def finished_frames(folder, frames: tuple[int, int] | None = None) -> list[Path]:
    """The sequence's files in frame order; raises if a frame is missing or still a placeholder."""
    found = sequence_frames(folder)
    if not found:
        raise NNVisError(f"{folder}: no frame_####.png/.exr files to encode")
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


def save_farm_ready(scene, blend, frames_folder: str = "//frames/") -> Path:
    """Save `scene`'s file as a .blend any Blender renders alone: every image packed, remaining
    paths relative, output an image sequence next to the .blend with placeholders (Flamenco's
    Simple Blender Render job type renders images only). The session continues in the saved file."""
    blend = Path(blend).resolve()
    blend.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.file.pack_all()
    set_output(scene, frames_folder, "PNG")
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    if _absolute_paths():   # needs the file saved: relative means relative to the .blend
        bpy.ops.file.make_paths_relative()
        if _absolute_paths():
            raise NNVisError(f"{blend}: still refers to files outside it: {_absolute_paths()}")
        bpy.ops.wm.save_mainfile()
    return blend


def _absolute_paths() -> list[str]:
    """External files the open .blend refers to by an absolute path (packed ones don't count)."""
    return [p for p in bpy.utils.blend_paths(packed=True) if not p.startswith("//")]
