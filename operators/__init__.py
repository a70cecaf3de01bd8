"""Thin bpy.types.Operator wrappers over nnvis_addon."""
import bpy

from . import controls, design, import_checkpoint, live, render_video

CLASSES = (import_checkpoint.NNVIS_OT_import_checkpoint, render_video.NNVIS_OT_render_video,
           *design.CLASSES, *controls.CLASSES, *live.CLASSES)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    live.register()


def unregister():
    live.unregister()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
