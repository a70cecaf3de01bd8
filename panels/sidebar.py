"""Sidebar (N panel) tab "NNVis": the active run and the active layer's animatable inputs."""
import bpy

from ..nnvis_addon.scene.layers import MODIFIER
from ..nnvis_addon.scene.nodes import input_ids


def run_collection(obj):
    """The imported run's collection that holds `obj` (None if `obj` is not nnvis')."""
    if obj is None:
        return None
    for coll in obj.users_collection:
        if "nnvis_run" in coll:
            return coll
    return None


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
        epochs = list(coll["nnvis_epochs"])
        col.label(text=f"Epochs: {epochs[0]}–{epochs[-1]} ({len(epochs)} recorded)")
        col.label(text=f"Source: {bpy.path.basename(coll['nnvis_run'].rstrip('/'))}")
        scene = context.scene
        row = layout.row(align=True)
        row.prop(scene, "frame_current", text="Frame")
        row.prop(scene.render, "fps", text="FPS")
        layout.operator("nnvis.render_video", icon="RENDER_ANIMATION")
        overlays = [o for o in coll.objects if "nnvis_overlay_kind" in o]
        if overlays:
            box = layout.box()
            box.label(text="Overlays")
            for obj in overlays:
                row = box.row(align=True)
                row.label(text=obj.name)
                row.prop(obj, "hide_viewport", text="", emboss=False)
                row.prop(obj, "hide_render", text="", emboss=False)


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
        name = obj.get("nnvis_layer") or " → ".join(obj.get("nnvis_edges", []))
        layout.label(text=f"{name} ({obj.get('nnvis_kind', 'edges')})")
        for label, ident in input_ids(mod.node_group).items():
            if label in ("Geometry",):
                continue
            layout.prop(mod, f'["{ident}"]', text=label)
