"""File > Import menu entry and the 3D view sidebar tab "NNVis"."""
import bpy

from . import design_panel, sidebar

CLASSES = (sidebar.NNVIS_PT_run, sidebar.NNVIS_PT_layer, *design_panel.CLASSES)


def menu_import(self, context):
    self.layout.operator("import_scene.nnvis_checkpoint",
                         text="CNN Checkpoint (.keras/.h5/ckpt/.onnx)")


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.TOPBAR_MT_file_import.append(menu_import)
    bpy.types.VIEW3D_MT_add.append(design_panel.menu_add)


def unregister():
    bpy.types.VIEW3D_MT_add.remove(design_panel.menu_add)
    bpy.types.TOPBAR_MT_file_import.remove(menu_import)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
