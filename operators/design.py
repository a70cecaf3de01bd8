"""The layer-stack editor's data and operators: Add > NNVis > CNN, rebuild, Keras JSON in and out.

The stack lives on the scene (`scene.nnvis_design`, one `NNVisDesignLayer` per row); `stack_layers`
and `set_stack` turn it into the plain dicts of `nnvis_addon.design` and back. Every operator is
one library call on those dicts. Editing a row rebuilds the built design in place (when the stack
is valid and Auto Rebuild is on), so the sidebar works like a live editor.
"""
import json
from contextlib import contextmanager

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty,
                       IntProperty, IntVectorProperty, PointerProperty, StringProperty)
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ..nnvis_addon import NNVisError, design
from ..nnvis_addon.model.ops import ACTIVATIONS

# Row property per design parameter (same names); pairs are IntVectors, shape a "28, 28, 1" text.
PAIR_PARAMS = ("kernel_size", "strides", "pool_size")
DEFAULT_STRIDES = {"Conv2D": (1, 1)}          # pools: strides = pool_size
_editing = {"quiet": False}                   # True while rows are filled in code (no rebuilds)


@contextmanager
def _quiet():
    _editing["quiet"] = True
    try:
        yield
    finally:
        _editing["quiet"] = False


def _on_edit(self, context):
    """Rebuild the design's scene in place after an edit, if asked to and the stack is valid."""
    stack = context.scene.nnvis_design
    if _editing["quiet"] or not stack.auto_rebuild or stack.collection is None:
        return
    layers = stack_layers(stack)
    if not layers or design.validate(layers):
        return                                # the rows show why; the scene stays as it is
    try:
        design.rebuild_design(stack.collection, layers, context.scene)
    except NNVisError as exc:                 # e.g. a probe file that went missing
        print(f"NNVis: rebuild failed: {exc}")


def _on_type(self, context):
    """A new type starts from its own defaults: no foreign Keras keys, its default strides."""
    if _editing["quiet"]:
        return
    with _quiet():
        self.extra = ""
        self.strides = DEFAULT_STRIDES.get(self.type, tuple(self.pool_size))
    _on_edit(self, context)


class NNVisDesignLayer(bpy.types.PropertyGroup):
    """One row of the stack; `name` (built in) is the Keras layer name, empty for automatic."""

    type: EnumProperty(name="Type", items=[(t, t, "") for t in design.TYPES], default="Conv2D",
                       update=_on_type)
    shape: StringProperty(name="Shape", default="28, 28, 1", update=_on_edit,
                          description="Input size, e.g. 28, 28, 1 (height, width, channels)")
    filters: IntProperty(name="Filters", default=8, min=1, soft_max=512, update=_on_edit)
    units: IntProperty(name="Units", default=10, min=1, soft_max=4096, update=_on_edit)
    kernel_size: IntVectorProperty(name="Kernel", size=2, default=(3, 3), min=1, soft_max=11,
                                   update=_on_edit)
    strides: IntVectorProperty(name="Strides", size=2, default=(1, 1), min=1, soft_max=8,
                               update=_on_edit)
    pool_size: IntVectorProperty(name="Pool", size=2, default=(2, 2), min=1, soft_max=8,
                                 update=_on_edit)
    padding: EnumProperty(name="Padding", items=[("valid", "Valid", "No padding: the map shrinks"),
                                                 ("same", "Same", "Zero padding: the map keeps "
                                                  "its size (at stride 1)")],
                          default="same", update=_on_edit)
    activation: EnumProperty(name="Activation", default="relu", update=_on_edit,
                             items=[(a, a, "") for a in sorted(ACTIVATIONS)])
    rate: FloatProperty(name="Rate", default=0.25, min=0.0, max=1.0, update=_on_edit)
    extra: StringProperty(name="Other Keras Settings", update=_on_edit,
                          description="Keras config keys the editor has no field for (JSON), "
                                      "kept from a loaded Keras architecture")


class NNVisDesign(bpy.types.PropertyGroup):
    """The scene's layer stack and the collection it was last built into."""

    layers: CollectionProperty(type=NNVisDesignLayer)
    active: IntProperty(name="Active Row", default=0)
    model_name: StringProperty(name="Model Name", default=design.DEFAULT_NAME,
                               description="The Keras model's name (and the new collection's)")
    auto_rebuild: BoolProperty(name="Auto Rebuild", default=True,
                               description="Rebuild the design's scene whenever a row changes "
                                           "and the stack is valid")
    collection: PointerProperty(type=bpy.types.Collection, name="Design Collection",
                                description="The collection Rebuild replaces in place")

    @classmethod
    def register(cls):
        bpy.types.Scene.nnvis_design = PointerProperty(type=cls)

    @classmethod
    def unregister(cls):
        del bpy.types.Scene.nnvis_design


def stack_layers(stack) -> list[dict]:
    """The rows as `nnvis_addon.design` layer dicts (a shape that is not a list of ints is passed
    on as text, so validation names the row)."""
    layers = []
    for row in stack.layers:
        layer = {"type": row.type}
        if row.name:
            layer["name"] = row.name
        for key in design.MAIN_PARAMS.get(row.type, ()):
            if key == "shape":
                try:
                    layer[key] = [int(v) for v in row.shape.replace("×", ",").split(",")]
                except ValueError:
                    layer[key] = row.shape
            elif key in PAIR_PARAMS:
                layer[key] = list(getattr(row, key))
            elif key == "rate":                   # a float32 field: 0.3 reads 0.30000001192...
                layer[key] = float(f"{row.rate:.6g}")
            else:
                layer[key] = getattr(row, key)
        if row.extra:
            try:
                extra = json.loads(row.extra)
            except ValueError:
                extra = None
            if not isinstance(extra, dict):
                extra = {"other settings (not a JSON object)": row.extra}   # the row reports it
            layer.update(extra)
        layers.append(layer)
    return layers


def _row_values(layer: dict, index: int) -> dict:
    """Property values for one layer dict; NNVisError if the editor can't hold them."""
    if layer.get("type") not in design.TYPES:
        raise NNVisError(f"row {index + 1}: layer type {layer.get('type')!r} is not one of "
                         f"{', '.join(design.TYPES)}")
    values = {"type": layer["type"], "name": layer.get("name") or ""}
    main = design.MAIN_PARAMS.get(layer["type"], ())
    for key, value in design.main_params(layer).items():
        if value is None:
            continue
        if key == "shape":
            value = ", ".join(str(v) for v in value)
        elif key in PAIR_PARAMS:
            value = (value, value) if isinstance(value, int) else tuple(value)
        values[key] = value
    values["extra"] = {k: v for k, v in layer.items() if k not in ("type", "name", *main)}
    return values


def set_stack(stack, layers: list[dict]) -> None:
    """Replace the rows with `layers` (a value a field can't hold, e.g. an activation the editor
    lacks, goes to the row's other Keras settings, where validation reports it)."""
    rows = [_row_values(layer, i) for i, layer in enumerate(layers)]
    with _quiet():
        stack.layers.clear()
        for values in rows:
            row = stack.layers.add()
            extra = values.pop("extra")
            for key, value in values.items():
                try:
                    setattr(row, key, value)
                except (TypeError, ValueError):
                    extra[key] = value
            row.extra = json.dumps(extra) if extra else ""
        stack.active = 0


class NNVIS_OT_design_add_layer(bpy.types.Operator):
    """Add a layer below the active row"""

    bl_idname = "nnvis.design_add_layer"
    bl_label = "Add Layer"
    bl_options = {"REGISTER", "UNDO"}

    type: EnumProperty(name="Type", items=[(t, t, "") for t in design.TYPES], default="Conv2D")

    def execute(self, context):
        stack = context.scene.nnvis_design
        with _quiet():
            row = stack.layers.add()
            row.type = self.type
            row.strides = DEFAULT_STRIDES.get(self.type, tuple(row.pool_size))
        at = min(stack.active + 1, len(stack.layers) - 1)
        stack.layers.move(len(stack.layers) - 1, at)
        stack.active = at
        _on_edit(None, context)
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
        _on_edit(None, context)
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
        _on_edit(None, context)
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
            set_stack(stack, design.DEFAULT_LAYERS)
        from ..nnvis_addon.scene import SceneOptions
        try:
            stack.collection = design.build_design(
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
            design.rebuild_design(stack.collection, stack_layers(stack), context.scene)
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
            path = design.export_keras_json(stack_layers(stack), self.filepath, stack.model_name)
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
            name, layers = design.read_keras_design(self.filepath)
            set_stack(stack, layers)
        except NNVisError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        stack.model_name = name
        _on_edit(None, context)
        return {"FINISHED"}


CLASSES = (NNVisDesignLayer, NNVisDesign, NNVIS_OT_design_add_layer, NNVIS_OT_design_remove_layer,
           NNVIS_OT_design_move_layer, NNVIS_OT_add_designed_cnn, NNVIS_OT_rebuild_design,
           NNVIS_OT_export_keras_json, NNVIS_OT_load_keras_design)
