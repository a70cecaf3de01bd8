"""Every Blender 4.2 LTS vs 5.0 difference nnvis meets, in one place.

5.0 removed `Action.fcurves` (layered actions: layers → strips → channelbags, reached with
`fcurve_ensure_for_datablock`), renamed EEVEE's id (`BLENDER_EEVEE_NEXT` in 4.2), moved video
settings behind `media_type`, and renamed the sequencer's `sequences` to `strips` (4.4).
"""
from __future__ import annotations

import bpy

IS_5 = bpy.app.version >= (5, 0, 0)
EEVEE = "BLENDER_EEVEE" if IS_5 else "BLENDER_EEVEE_NEXT"


def use_nodes(id_block) -> None:
    """Give a material/world its node tree (4.2 needs `use_nodes`; 5.0 always has one and
    deprecates the flag)."""
    if not IS_5:
        id_block.use_nodes = True


def new_fcurve(id_data, data_path: str, index: int = 0):
    """An empty F-curve animating `id_data.<data_path>` in the ID's own (new) action."""
    anim = id_data.animation_data or id_data.animation_data_create()
    if anim.action is None:
        anim.action = bpy.data.actions.new(f"{id_data.name} Action")
    action = anim.action
    if IS_5:
        return action.fcurve_ensure_for_datablock(id_data, data_path, index=index)
    return action.fcurves.new(data_path, index=index)


def fcurves_of(id_data) -> list:
    """All F-curves animating `id_data` (layered or legacy action)."""
    anim = id_data.animation_data
    if anim is None or anim.action is None:
        return []
    action = anim.action
    if not IS_5:
        return list(action.fcurves)
    curves = []
    for layer in action.layers:
        for strip in layer.strips:
            bag = strip.channelbag(anim.action_slot) if anim.action_slot else None
            if bag is not None:
                curves.extend(bag.fcurves)
    return curves


def set_video_output(scene, codec: str = "H264") -> None:
    """FFmpeg MP4 output (5.0 needs media_type='VIDEO' before file_format='FFMPEG')."""
    settings = scene.render.image_settings
    if IS_5:
        settings.media_type = "VIDEO"
    settings.file_format = "FFMPEG"
    ffmpeg = scene.render.ffmpeg
    ffmpeg.format = "MPEG4"
    ffmpeg.codec = codec
    ffmpeg.constant_rate_factor = "HIGH"
    ffmpeg.gopsize = max(1, scene.render.fps // 2)


def set_image_output(scene, file_format: str = "PNG") -> None:
    settings = scene.render.image_settings
    if IS_5:
        settings.media_type = "IMAGE"
    settings.file_format = file_format


def sequencer_strips(editor):
    """The sequence editor's top-level strips collection (`strips` from 4.4, `sequences` before)."""
    return editor.strips if hasattr(editor, "strips") else editor.sequences
