"""Sidebar "NNVis > Design": the layer-stack editor, and the Add > NNVis menu.

Each row shows its type, its main numbers and the output shape it computes, or why it is
impossible; the active row's full settings sit under the list. The checks run on every redraw
(pure shape arithmetic, microseconds a row), so the stack is validated as you type.
"""
import bpy

from ..nnvis_addon import design_stack
from ..nnvis_addon.model.kinds import DESIGN
from ..nnvis_addon.scene.props import stack_layers

_shown: dict[int, list] = {}     # stack pointer -> the checks of the panel's current redraw


def _checks(stack) -> list:
    key = stack.as_pointer()
    if key not in _shown or len(_shown[key]) != len(stack.layers):
        _shown[key] = design_stack.check(stack_layers(stack)) if len(stack.layers) else []
    return _shown[key]


def _status_text(status) -> tuple[str, str]:
    if status.error:
        return status.error, "ERROR"
    if status.shape is None:
        return "?", "BLANK1"
    return " × ".join(str(d) for d in status.shape), "BLANK1"


class NNVIS_UL_design_layers(bpy.types.UIList):
    """Rows of the layer stack: type, main numbers, output shape or error."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname,
                  index=0, flt_flag=0):
        checks = _checks(data)
        row = layout.row(align=True)
        row.alert = index < len(checks) and checks[index].error is not None
        row.prop(item, "type", text="")
        for field in DESIGN[item.type].row:        # inline; the active row shows all
            row.prop(item, field, text="")
        if index < len(checks):
            text, status_icon = _status_text(checks[index])
            row.label(text=text, icon=status_icon)


class NNVIS_PT_design(bpy.types.Panel):
    bl_label = "Design"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "NNVis"

    def draw(self, context):
        layout = self.layout
        stack = context.scene.nnvis_design
        _shown[stack.as_pointer()] = design_stack.check(stack_layers(stack)) if len(stack.layers) else []
        row = layout.row()
        row.template_list("NNVIS_UL_design_layers", "", stack, "layers", stack, "active", rows=6)
        side = row.column(align=True)
        side.operator_menu_enum("nnvis.design_add_layer", "type", text="", icon="ADD")
        side.operator("nnvis.design_remove_layer", text="", icon="REMOVE")
        side.separator()
        side.operator("nnvis.design_move_layer", text="", icon="TRIA_UP").direction = "UP"
        side.operator("nnvis.design_move_layer", text="", icon="TRIA_DOWN").direction = "DOWN"
        if 0 <= stack.active < len(stack.layers):
            self.draw_row(layout, stack.layers[stack.active], _checks(stack)[stack.active])
        errors = sum(1 for status in _checks(stack) if status.error)
        if errors:
            layout.label(text=f"{errors} row(s) to fix before the scene can change", icon="ERROR")
        col = layout.column(align=True)
        col.prop(stack, "model_name")
        col.operator("nnvis.add_designed_cnn", text="Build Scene", icon="MESH_GRID")
        row = col.row(align=True)
        row.operator("nnvis.rebuild_design", icon="FILE_REFRESH")
        row.prop(stack, "auto_rebuild", text="Auto")
        row = col.row(align=True)
        row.operator("nnvis.load_keras_design", text="Load Keras", icon="IMPORT")
        row.operator("nnvis.export_keras_json", text="Export Keras JSON", icon="EXPORT")

    @staticmethod
    def draw_row(layout, item, status):
        box = layout.box()
        box.prop(item, "name", text="Name", placeholder="automatic")
        for field in DESIGN[item.type].main:
            box.prop(item, field)
        if item.extra:
            box.prop(item, "extra", text="Other")
        text, icon = _status_text(status)
        box.alert = status.error is not None
        box.label(text=("Output: " if not status.error else "") + text, icon=icon)


class NNVIS_MT_add(bpy.types.Menu):
    bl_idname = "NNVIS_MT_add"
    bl_label = "NNVis"

    def draw(self, context):
        self.layout.operator("nnvis.add_designed_cnn", text="CNN", icon="MESH_GRID")


def menu_add(self, context):
    self.layout.menu(NNVIS_MT_add.bl_idname, icon="NETWORK_DRIVE")


CLASSES = (NNVIS_UL_design_layers, NNVIS_PT_design, NNVIS_MT_add)
