"""Thin bpy.types.Operator wrappers over nnvis_addon."""
import bpy

from . import controls, design_editor, import_checkpoint, refresh_run, render_video

CLASSES = (import_checkpoint.NNVIS_OT_import_checkpoint, render_video.NNVIS_OT_render_video,
           *design_editor.CLASSES, *controls.CLASSES, *refresh_run.CLASSES)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    refresh_run.register()


def unregister():
    refresh_run.unregister()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
