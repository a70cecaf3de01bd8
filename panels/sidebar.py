"""Sidebar (N panel) tab "NNVis": the active run (look, camera move, overlays) and the active
layer's animatable inputs, each with buttons that set it — and key it — on all layers of the run."""
import bpy

from ..nnvis_addon import colormaps
from ..nnvis_addon.model.edges import EDGE_VALUE_MODES
from ..nnvis_addon.scene.animation import epoch_path
from ..nnvis_addon.options import OPTIONS, choice_label
from ..nnvis_addon.scene.follow import following
from ..nnvis_addon.scene.layers import MODIFIER, run_collection
from ..nnvis_addon.scene.rebuild import expanded
from ..nnvis_addon.scene.runs import overlays_of
from ..nnvis_addon.scene.nodes import input_ids
from ..nnvis_addon.scene.run_record import RunRecord
from ..nnvis_addon import names

# Inputs the build sets from the data: shown, but not copied to other layers.
PER_LAYER = {"Width", "Height", "Min", "Max", "Title"}
# The build's wiring (materials, the objects an input reads) and an overlay's keyed Epoch: not
# shown as inputs (the shown epoch is a line of its own, the run's epoch number)
HIDDEN = {"Geometry", "Epoch", "Material", "Text Material", "Inbound", "Source", "Target"}


def overlay_label(kind: str) -> str:
    option = OPTIONS.get(f"show_{kind}") or OPTIONS.get(kind)
    return option.label if option else choice_label(kind)


def colour_map_name(value: float) -> str:
    k = round(value)
    return "own ramp" if k <= 0 else choice_label(colormaps.NAMES[min(k, len(colormaps.NAMES)) - 1])


def colour_mode_name(value: float) -> str:
    """An edge Colour Mode input's value by name ('Weight × Activation')."""
    return choice_label(EDGE_VALUE_MODES[min(max(round(value), 0), len(EDGE_VALUE_MODES) - 1)])


def epoch_text(value: float, epochs: list) -> str:
    """The keyed epoch (an index into the run's epochs, fractional between keys) as the epoch it
    shows: 'Epoch 5 of 0–10', or 'Epoch 4 → 5' while blending."""
    k = min(max(value, 0.0), len(epochs) - 1.0)
    low, high = epochs[int(k)], epochs[min(int(k) + 1, len(epochs) - 1)]
    shown = f"{low} → {high}" if k % 1 > 1e-3 else f"{low}"
    return f"Epoch {shown} of {epochs[0]}–{epochs[-1]}"


class NNVIS_PT_run(bpy.types.Panel):
    bl_label = "NNVis Run"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "NNVis"

    def draw(self, context):
        layout = self.layout
        layout.operator("import_scene.nnvis_checkpoint", icon="IMPORT")
        coll = run_collection(context.active_object)
        if coll is None:
            layout.label(text="Select an imported layer to see its run")
            return
        col = layout.column(align=True)
        col.label(text=f"Run: {coll.name}", icon="OUTLINER_COLLECTION")
        record = RunRecord(coll)
        epochs = record.epochs
        col.label(text=f"Epochs: {epochs[0]}–{epochs[-1]} ({len(epochs)} recorded)")
        col.label(text=f"Source: {bpy.path.basename(record.source.rstrip('/'))}")
        scene = context.scene
        row = layout.row(align=True)
        row.prop(scene, "frame_current", text="Frame")
        row.prop(scene.render, "fps", text="FPS")
        layout.operator("nnvis.render_video", icon="RENDER_ANIMATION")
        row = layout.row(align=True)
        row.operator("nnvis.refresh_run", icon="FILE_REFRESH").collection = coll.name
        row.operator("nnvis.follow_training", icon="REC", depress=following())
        row = layout.row(align=True)
        row.operator_menu_enum("nnvis.apply_look", "look", text="Look", icon="SHADING_RENDERED")
        row.operator_menu_enum("nnvis.camera_move", "move", text="Camera", icon="CAMERA_DATA")
        look, move = record.look, record.camera_move
        if look or move:
            look, move = choice_label(look or "default"), choice_label(move or "static")
            layout.label(text=f"Look: {look}   Camera: {move}")
        overlays = overlays_of(coll)
        if overlays:
            box = layout.box()
            box.label(text="Overlays")
            for kind, objects in overlays.items():    # one row a kind, however many objects
                row = box.row(align=True)
                count = f" ({len(objects)})" if len(objects) > 1 else ""
                row.label(text=overlay_label(kind) + count)
                shown = not objects[0].hide_render
                op = row.operator("nnvis.show_overlay", text="", emboss=False,
                                  icon="HIDE_OFF" if shown else "HIDE_ON")
                op.kind, op.show = kind, not shown
        layout.operator("nnvis.remove_run", icon="TRASH")


class NNVIS_PT_layer(bpy.types.Panel):
    bl_label = "Layer"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "NNVis"
    bl_parent_id = "NNVIS_PT_run"

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and MODIFIER in obj.modifiers

    def draw(self, context):
        obj = context.active_object
        mod = obj.modifiers[MODIFIER]
        layout = self.layout
        if names.LEGEND_LAYER in obj:
            layout.label(text=f"Colour legend of {obj[names.LEGEND_LAYER]}")
        elif names.LAYER in obj:
            layout.label(text=f"{obj[names.LAYER]} ({obj.get(names.KIND, '?')})")
            if names.BLOCK_TITLE in obj:
                layout.operator("nnvis.expand_block", icon="FULLSCREEN_ENTER").block = \
                    obj[names.BLOCK_TITLE]
        elif names.EDGES in obj:
            layout.label(text=" → ".join(obj[names.EDGES]) + " (edges)")
        else:
            layout.label(text=f"Overlay: {overlay_label(obj.get(names.OVERLAY_KIND, '?'))}")
        coll = run_collection(obj)
        if coll is not None and expanded(coll):
            layout.operator("nnvis.fold_blocks", icon="FULLSCREEN_EXIT")
        path = epoch_path(obj)      # keyed: the layers' and edges' property, overlays' input
        if path is not None and coll is not None:
            layout.label(text=epoch_text(float(obj.path_resolve(path)), RunRecord(coll).epochs),
                         icon="TIME")
        ids = input_ids(mod.node_group)
        for label, ident in ids.items():
            if label in HIDDEN:
                continue
            row = layout.row(align=True)
            row.prop(mod, f'["{ident}"]', text=label)
            if label == "Colour Map":
                row.label(text=colour_map_name(mod[ident]))
            if label == "Colour Mode":
                row.label(text=colour_mode_name(mod[ident]))
            if label in PER_LAYER:
                continue
            for icon, key in (("LINKED", False), ("DECORATE_KEYFRAME", True)):
                op = row.operator("nnvis.input_to_run", text="", icon=icon)
                op.input_name, op.keyframe = label, key
