"""Headless import + render, the path `nnvis render` and `nnvis demo` take: a private Blender user
folder, the built extension installed through Blender's installer, the import operator, a video."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .errors import NNVisError
from .packaging import install_extension, start_blender


@dataclass
class RenderResult:
    video: Path
    blend: Path | None
    frames: int
    import_seconds: float
    render_seconds: float


def import_with_operator(path, probe=None, frames_per_epoch: int = 4):
    """Run File > Import > CNN Checkpoint on `path`; raise NNVisError with its report if it fails."""
    import bpy
    before = set(bpy.data.collections)
    try:  # headless, an operator's error report arrives as a RuntimeError("Error: ...")
        result = bpy.ops.import_scene.nnvis_checkpoint(
            filepath=str(path), probe=str(probe or ""), frames_per_epoch=frames_per_epoch,
            all_epochs=False)
    except RuntimeError as exc:
        raise NNVisError(str(exc).removeprefix("Error: ").strip()) from None
    if result != {"FINISHED"}:
        raise NNVisError(f"{path}: import failed ({result})")
    new = [c for c in bpy.data.collections if c not in before and "nnvis_run" in c]
    return new[0]


def render_checkpoint(path, out, zip_path, user_folder, probe=None, blend=None,
                      resolution=(640, 360), frames_per_epoch: int = 4, samples: int = 8,
                      on_frame=None) -> RenderResult:
    bpy = start_blender(user_folder)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    install_extension(zip_path)
    start = time.perf_counter()
    import_with_operator(path, probe, frames_per_epoch)
    import_seconds = time.perf_counter() - start
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = resolution
    scene.cycles.samples = samples
    from .scene.render import render_animation
    start = time.perf_counter()
    render_animation(scene, Path(out), on_frame)
    render_seconds = time.perf_counter() - start
    if blend:
        Path(blend).parent.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    return RenderResult(Path(out), Path(blend) if blend else None,
                        scene.frame_end - scene.frame_start + 1, import_seconds, render_seconds)
