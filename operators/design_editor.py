"""The layer-stack editor's operators: Add > NNVis > CNN, rows, rebuild, Keras JSON in and out.

The stack is `props.NNVisDesign` on the scene; every operator is one library call on its rows as
plain dicts (`props.stack_layers` / `props.set_stack`).
"""
import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ..nnvis_addon import NNVisError, design_stack
from ..nnvis_addon.model.kinds import DESIGN
from ..nnvis_addon.scene.design_writer import build_design, rebuild_design
from ..nnvis_addon.scene.props import on_edit, quiet, set_stack, stack_layers


class NNVIS_OT_design_add_layer(bpy.types.Operator):
    """Add a layer below the active row"""

    bl_idname = "nnvis.design_add_layer"
    bl_label = "Add Layer"
    bl_options = {"REGISTER", "UNDO"}

    type: EnumProperty(name="Type", items=[(t, t, "") for t in design_stack.TYPES], default="Conv2D")

    def execute(self, context):
        stack = context.scene.nnvis_design
        with quiet():
            row = stack.layers.add()
            row.type = self.type
            row.strides = DESIGN[self.type].strides or tuple(row.pool_size)
        at = min(stack.active + 1, len(stack.layers) - 1)
        stack.layers.move(len(stack.layers) - 1, at)
        stack.active = at
        on_edit(None, context)
        return {"FINISHED"}


class NNVIS_OT_design_remove_layer(bpy.types.Operator):
    """Remove the active row"""

    bl_idname = "nnvis.design_remove_layer"
    bl_label = "Remove Layer"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return len(context.scene.nnvis_design.layers) > 0

    def execute(self, context):
        stack = context.scene.nnvis_design
        stack.layers.remove(stack.active)
        stack.active = max(0, min(stack.active, len(stack.layers) - 1))
        on_edit(None, context)
        return {"FINISHED"}


class NNVIS_OT_design_move_layer(bpy.types.Operator):
    """Move the active row up or down"""

    bl_idname = "nnvis.design_move_layer"
    bl_label = "Move Layer"
    bl_options = {"REGISTER", "UNDO"}

    direction: EnumProperty(items=[("UP", "Up", ""), ("DOWN", "Down", "")])

    def execute(self, context):
        stack = context.scene.nnvis_design
        to = stack.active + (-1 if self.direction == "UP" else 1)
        if not 0 <= to < len(stack.layers):
            return {"CANCELLED"}
        stack.layers.move(stack.active, to)
        stack.active = to
        on_edit(None, context)
        return {"FINISHED"}


class NNVIS_OT_add_designed_cnn(bpy.types.Operator):
    """Build the sidebar's layer stack as an NNVis scene (a small CNN if the stack is empty)"""

    bl_idname = "nnvis.add_designed_cnn"
    bl_label = "CNN"
    bl_options = {"REGISTER", "UNDO"}

    weights: EnumProperty(
        name="Weights", default="structure",
        items=[("structure", "Structure Only", "Zero weights: every map and unit the colormap's "
                "zero colour, every edge neutral grey"),
               ("random", "Random Weights", "Seeded Glorot-uniform weights; activations of the "
                "probe from the numpy forward pass")])
    seed: IntProperty(name="Seed", default=0, min=0)
    probe: StringProperty(name="Probe Image", subtype="FILE_PATH",
                          description="Image (PNG/JPEG) or .npy fed through the random network; "
                                      "empty: uniform noise from the seed")
    setup_render: BoolProperty(
        name="Set Up Scene", default=True,
        description="Make the new camera active and set world, frame range and render settings")

    def execute(self, context):
        stack = context.scene.nnvis_design
        if not stack.layers:
            set_stack(stack, design_stack.DEFAULT_LAYERS)
        from ..nnvis_addon.scene import SceneOptions
        try:
            stack.collection = build_design(
                stack_layers(stack), weights=self.weights, seed=self.seed,
                probe=bpy.path.abspath(self.probe) if self.probe else None,
                name=stack.model_name, options=SceneOptions(setup_render=self.setup_render),
                scene=context.scene)
        except NNVisError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Built {stack.collection.name}: {len(stack.layers)} layers")
        return {"FINISHED"}


class NNVIS_OT_rebuild_design(bpy.types.Operator):
    """Rebuild the design's collection from the stack, keeping camera, lights and material edits"""

    bl_idname = "nnvis.rebuild_design"
    bl_label = "Rebuild in Place"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return context.scene.nnvis_design.collection is not None

    def execute(self, context):
        stack = context.scene.nnvis_design
        try:
            rebuild_design(stack.collection, stack_layers(stack), context.scene)
        except NNVisError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class NNVIS_OT_export_keras_json(bpy.types.Operator, ExportHelper):
    """Write the layer stack as a Keras model.to_json() file (keras.models.model_from_json)"""

    bl_idname = "nnvis.export_keras_json"
    bl_label = "Export Keras JSON"

    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    def execute(self, context):
        stack = context.scene.nnvis_design
        try:
            path = design_stack.export_keras_json(stack_layers(stack), self.filepath, stack.model_name)
        except NNVisError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Wrote {path}")
        return {"FINISHED"}


class NNVIS_OT_load_keras_design(bpy.types.Operator, ImportHelper):
    """Fill the layer stack from a Keras architecture (.keras or to_json() file; no weights)"""

    bl_idname = "nnvis.load_keras_design"
    bl_label = "Load Keras Architecture"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default="*.json;*.keras", options={"HIDDEN"})

    def execute(self, context):
        stack = context.scene.nnvis_design
        try:
            name, layers = design_stack.read_keras_design(self.filepath)
            set_stack(stack, layers)
        except NNVisError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        stack.model_name = name
        on_edit(None, context)
        return {"FINISHED"}


CLASSES = (NNVIS_OT_design_add_layer, NNVIS_OT_design_remove_layer,
           NNVIS_OT_design_move_layer, NNVIS_OT_add_designed_cnn, NNVIS_OT_rebuild_design,
           NNVIS_OT_export_keras_json, NNVIS_OT_load_keras_design)
