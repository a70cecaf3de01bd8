"""Sidebar buttons over `nnvis_addon.scene`: a run's look and camera move, removing a run,
expanding a folded block (and folding it back), and a layer's control copied (and keyed) to every layer of its run."""
import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from ..nnvis_addon import NNVisError
from ..nnvis_addon.options import choice_label
from ..nnvis_addon.scene import camera_moves, looks, rebuild, restack, runs
from ..nnvis_addon.scene.layers import MODIFIER, run_collection
from ..nnvis_addon.scene.nodes import input_ids
from ..nnvis_addon.scene.run_record import is_run
from ..nnvis_addon import names


class _RunOperator:
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return run_collection(context.active_object) is not None

    def run(self, context, action):
        try:
            action(run_collection(context.active_object))
        except NNVisError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class NNVIS_OT_apply_look(_RunOperator, bpy.types.Operator):
    """Give the active run a look preset: background, shading, glow and colour map"""

    bl_idname = "nnvis.apply_look"
    bl_label = "Apply Look"

    look: EnumProperty(name="Look", items=[(key, choice_label(key), look.description)
                                           for key, look in looks.LOOKS.items()])

    def execute(self, context):
        return self.run(context, lambda coll: looks.apply_look(coll, self.look, context.scene))


class NNVIS_OT_camera_move(_RunOperator, bpy.types.Operator):
    """Animate the active run's camera: static, a swing around it, or a fly-through timed to the epochs"""

    bl_idname = "nnvis.camera_move"
    bl_label = "Camera Move"

    move: EnumProperty(name="Move", items=[(key, choice_label(key), text)
                                           for key, text in camera_moves.MOVES.items()])

    def execute(self, context):
        return self.run(context, lambda coll: camera_moves.apply_move(coll, self.move,
                                                                      context.scene))


class NNVIS_OT_show_overlay(_RunOperator, bpy.types.Operator):
    """Show or hide one kind of overlay of the active run (all its objects)"""

    bl_idname = "nnvis.show_overlay"
    bl_label = "Show Overlay"

    kind: StringProperty(name="Kind")
    show: BoolProperty(name="Show", default=True)

    def execute(self, context):
        return self.run(context, lambda coll: runs.show_overlay(coll, self.kind, self.show))


class NNVIS_OT_remove_run(bpy.types.Operator):
    """Delete the run and every mesh, curve, image, material and node group no other run uses"""

    bl_idname = "nnvis.remove_run"
    bl_label = "Remove Run"
    bl_options = {"REGISTER", "UNDO"}

    collection: StringProperty(name="Run", description="The run's collection (default: the "
                                                       "active object's run)")

    def execute(self, context):
        coll = bpy.data.collections.get(self.collection) if self.collection else \
            run_collection(context.active_object)
        if not is_run(coll):
            self.report({"ERROR"}, f"no imported run {self.collection or 'selected'}")
            return {"CANCELLED"}
        name = coll.name
        removed = runs.remove_run(coll)
        self.report({"INFO"}, f"Removed {name}: {removed['objects']} objects, "
                              f"{sum(removed.values()) - removed['objects']} other datablocks")
        return {"FINISHED"}


class NNVIS_OT_expand_block(_RunOperator, bpy.types.Operator):
    """Draw a folded block layer by layer (the run is built again, its options kept)"""

    bl_idname = "nnvis.expand_block"
    bl_label = "Expand Block"

    block: StringProperty(name="Block", description="The block's name as its label shows it "
                                                    "(default: the active object's block)")

    def execute(self, context):
        block = self.block or context.active_object.get(names.BLOCK_TITLE, "")
        if not block:
            self.report({"ERROR"}, "select a folded block (or name one)")
            return {"CANCELLED"}
        def expand(coll):
            titles = rebuild.block_titles(coll, block)      # an unknown name: no rebuild
            select_first_layer(context, rebuild.expand_block(coll, block, context.scene),
                               titles[-1])
        return self.run(context, expand)


class NNVIS_OT_fold_blocks(_RunOperator, bpy.types.Operator):
    """Fold every expanded block of the run again"""

    bl_idname = "nnvis.fold_blocks"
    bl_label = "Fold Blocks"

    def execute(self, context):
        return self.run(context, lambda coll: select_first_layer(
            context, rebuild.fold_blocks(coll, context.scene)))


def select_first_layer(context, collection, block: str = "") -> None:
    """Make the run's first layer — or the last layer of the expanded `block` — the active, only
    selected object (after an import or a rebuild), so the sidebar shows the run, and after
    Expand Block the block the user was looking at."""
    context.view_layer.update()          # the new collection's objects join the view layer
    layers = [o for o in collection.objects if names.LAYER in o]
    inner = [o for o in layers if o.get(names.EXPANDED_BLOCK) == block] if block else []
    first = inner[-1] if inner else next(iter(layers), None)
    if first is not None and first.name in context.view_layer.objects:
        for obj in context.selected_objects:
            obj.select_set(False)
        first.select_set(True)
        context.view_layer.objects.active = first


class NNVIS_OT_input_to_run(_RunOperator, bpy.types.Operator):
    """Set this control to the active layer's value on every layer of the run (and the legend)"""

    bl_idname = "nnvis.input_to_run"
    bl_label = "Set on All Layers"

    input_name: StringProperty(name="Input")
    keyframe: BoolProperty(name="Keyframe", default=False,
                           description="Also insert a keyframe at the current frame on each")

    @classmethod
    def description(cls, context, properties):
        if properties.keyframe:
            return "Set this control to the active layer's value and key it, on every layer of " \
                   "the run, at the current frame"
        return cls.__doc__

    def execute(self, context):
        source = context.active_object.modifiers.get(MODIFIER)
        ids = input_ids(source.node_group) if source and source.node_group else {}
        if self.input_name not in ids:
            self.report({"ERROR"}, f"the active object has no input {self.input_name!r}")
            return {"CANCELLED"}
        value = source[ids[self.input_name]]
        count = 0
        for obj in run_collection(context.active_object).all_objects:
            mod = obj.modifiers.get(MODIFIER)
            ident = input_ids(mod.node_group).get(self.input_name) if mod and mod.node_group \
                else None
            if ident is None:
                continue
            mod[ident] = value
            obj.update_tag()          # an ID property set from Python does not re-evaluate alone
            if self.keyframe:
                mod.keyframe_insert(f'["{ident}"]', frame=context.scene.frame_current)
            count += 1
        if self.input_name in camera_moves.LAYOUT_INPUTS:    # the cells moved: rows and frame
            restack.refit(run_collection(context.active_object), context.scene)
        self.report({"INFO"}, f"{self.input_name} = {value} on {count} objects"
                              + (" (keyed)" if self.keyframe else ""))
        return {"FINISHED"}


CLASSES = (NNVIS_OT_apply_look, NNVIS_OT_camera_move, NNVIS_OT_show_overlay, NNVIS_OT_remove_run,
           NNVIS_OT_expand_block, NNVIS_OT_fold_blocks, NNVIS_OT_input_to_run)
