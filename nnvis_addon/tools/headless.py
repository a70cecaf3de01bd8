"""Headless import + render, the path `nnvis render` and `nnvis demo` take: a private Blender user
folder, the built extension installed through Blender's installer, the import operator (or a saved
.blend opened as it is), then a video or an image sequence, whole or one chunk of it."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .chunks import chunk_range
from ..errors import NNVisError
from .packaging import install_extension, start_blender


@dataclass
class RenderResult:
    video: Path                       # the MP4, or the folder of frames
    blend: Path | None
    frames: int                       # frames this process rendered
    import_seconds: float
    render_seconds: float
    skipped: int = 0                  # frames of its range already there or claimed by another
    rendered: tuple[int, ...] = ()    # the frames this process rendered
    device: str = "CPU"               # what rendered them: "CPU", "GPU (OptiX: ...)" or EEVEE
    workers: int = 1                  # processes that rendered them at once


def import_with_operator(path, **options):
    """Run File > Import > CNN Checkpoint on `path` with the dialog's `options` (`options.py`
    names); raise NNVisError with its report if it fails."""
    import bpy
    from ..scene.run_record import is_run
    before = set(bpy.data.collections)
    try:  # headless, an operator's error report arrives as a RuntimeError("Error: ...")
        result = bpy.ops.import_scene.nnvis_checkpoint(filepath=str(path), **options)
    except RuntimeError as exc:
        raise NNVisError(str(exc).removeprefix("Error: ").strip()) from None
    if result != {"FINISHED"}:
        raise NNVisError(f"{path}: import failed ({result})")
    new = [c for c in bpy.data.collections if c not in before and is_run(c)]
    return new[0]


def open_scene(path, zip_path, user_folder, resolution=None, **options):
    """The scene to render: a saved .blend opened as it is (needs no add-on), else `path`'s
    checkpoints imported by the extension installed from `zip_path` at `resolution` (framing
    and overlays are made for its aspect ratio) with the dialog's `options`."""
    bpy = start_blender(user_folder)
    if Path(path).suffix.lower() == ".blend":
        if not Path(path).is_file():
            raise NNVisError(f"{path}: no such .blend file")
        bpy.ops.wm.open_mainfile(filepath=str(path))
    else:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        install_extension(zip_path)
        if resolution:
            render = bpy.context.scene.render
            render.resolution_x, render.resolution_y = resolution
        import_with_operator(path, **options)
    return bpy.context.scene


def render_checkpoint(path, out, zip_path, user_folder, blend=None,
                      resolution=None, samples=None, quality=None, on_frame=None,
                      frames: tuple[int, int] | None = None, chunk: tuple[int, int] | None = None,
                      sequence: str | None = None, fps: int | None = None,
                      import_options: dict | None = None, device: str = "AUTO",
                      workers="auto", settings=None) -> RenderResult:
    """Import (or open) `path` and render it to `out`: an MP4, or with `sequence` ('PNG'/'EXR') a
    folder of frames that several processes may share. `frames` narrows the scene's range and
    `chunk` (k, n) renders only the k-th of n parts of it. `blend` is saved farm-ready first, with
    the full range. `quality` is a `stage.QUALITY` preset (None: the draft for an import, the
    saved settings for a .blend); `resolution`/`samples`/`fps` of None keep the scene's or the
    preset's; `import_options` are the import dialog's (`options.py`: look, bundler, ...).
    Cycles renders on `device` (AUTO: the best GPU backend Cycles lists, else the CPU; CPU; GPU),
    at that device's preset, in `workers` processes at once ('auto': `scene.workers.count`).
    `settings` (a `stage.CyclesSettings`) replace the preset: `nnvis bench render --video`."""
    start = time.perf_counter()
    scene = open_scene(path, zip_path, user_folder, resolution, **(import_options or {}))
    from ..scene import workers as parallel  # bpy is up now
    from ..scene.render import render_animation, set_engine
    from ..scene.stage import DEFAULT_QUALITY
    import_seconds = time.perf_counter() - start
    if resolution:
        scene.render.resolution_x, scene.render.resolution_y = resolution
    if quality is None and Path(path).suffix.lower() != ".blend":
        quality = DEFAULT_QUALITY
    chosen = set_engine(scene, scene.render.engine, samples or 0, quality, device, settings)
    workers = parallel.count(workers, chosen.kind if chosen else "CPU")
    if fps:
        scene.render.fps, scene.render.fps_base = fps, 1.0
    if blend:
        blend = save_farm_ready(scene, blend)
    first, last = frames or (scene.frame_start, scene.frame_end)
    if chunk:
        part = chunk_range(first, last, *chunk)
        if part is None:   # more chunks than frames: this one has nothing to do
            return RenderResult(Path(out), blend, 0, import_seconds, 0.0,
                                device=str(chosen or scene.render.engine), workers=workers)
        first, last = part
    scene.frame_start, scene.frame_end = first, last
    done = []

    def rendered(frame):
        done.append(frame)
        if on_frame:
            on_frame(frame)

    start = time.perf_counter()
    render_animation(scene, out, rendered, sequence or "MP4", workers)
    return RenderResult(Path(out), blend, len(done), import_seconds, time.perf_counter() - start,
                        skipped=last - first + 1 - len(done), rendered=tuple(done),
                        device=str(chosen or scene.render.engine), workers=workers)


def save_farm_ready(scene, blend, frames_folder: str = "//frames/") -> Path:
    """Save `scene`'s file as a .blend any Blender renders alone: every image packed, remaining
    paths relative, output an image sequence next to the .blend with placeholders (Flamenco's
    Simple Blender Render job type renders images only). The session continues in the saved file."""
    import bpy
    from ..scene.frames import set_output
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
    import bpy
    return [p for p in bpy.utils.blend_paths(packed=True) if not p.startswith("//")]
