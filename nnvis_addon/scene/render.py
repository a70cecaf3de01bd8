"""Rendering the animation to a video (or frames), with progress per frame."""
from __future__ import annotations

from pathlib import Path

import bpy

from . import compat


def render_animation(scene, out: Path, on_frame=None) -> Path:
    """Render scene.frame_start..frame_end to `out` (.mp4 → H.264 video; else a PNG sequence
    where `out` is the file name pattern). `on_frame(frame)` is called after each frame."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in (".mp4", ".mkv", ".mov"):
        compat.set_video_output(scene)
    else:
        compat.set_image_output(scene, "PNG")
    scene.render.filepath = str(out)
    handler = (lambda sc, *args: on_frame(sc.frame_current)) if on_frame else None
    if handler:
        bpy.app.handlers.render_post.append(handler)
    try:
        bpy.ops.render.render(animation=True, scene=scene.name)
    finally:
        if handler:
            bpy.app.handlers.render_post.remove(handler)
    return out
