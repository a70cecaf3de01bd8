"""The add-on's data on Blender's side (Molecular Nodes' style: one module of PropertyGroups that
operators and panels both import): the design editor's layer stack on the scene
(`scene.nnvis_design`, one `NNVisDesignLayer` per row), and `stack_layers` / `set_stack`, which
turn it into the plain dicts of `nnvis_addon.design_stack` and back. Editing a row rebuilds the built
design in place (when the stack is valid and Auto Rebuild is on), so the sidebar works like a
live editor.
"""
import json
from contextlib import contextmanager

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty,
                       IntProperty, IntVectorProperty, PointerProperty, StringProperty)

from .. import NNVisError, design_stack
from ..model.kinds import DESIGN
from ..model.ops import ACTIVATIONS
from .design_writer import rebuild_design

# Row property per design parameter (same names); pairs are IntVectors, shape a "28, 28, 1" text.
PAIR_PARAMS = ("kernel_size", "strides", "pool_size")
_editing = {"quiet": False}                   # True while rows are filled in code (no rebuilds)


@contextmanager
def quiet():
    """Fill rows in code without a rebuild per field."""
    _editing["quiet"] = True
    try:
        yield
    finally:
        _editing["quiet"] = False


def on_edit(self, context):
    """Rebuild the design's scene in place after an edit, if asked to and the stack is valid."""
    stack = context.scene.nnvis_design
    if _editing["quiet"] or not stack.auto_rebuild or stack.collection is None:
        return
    layers = stack_layers(stack)
    if not layers or design_stack.validate(layers):
        return                                # the rows show why; the scene stays as it is
    try:
        rebuild_design(stack.collection, layers, context.scene)
    except NNVisError as exc:                 # e.g. a probe file that went missing
        print(f"NNVis: rebuild failed: {exc}")


def on_type(self, context):
    """A new type starts from its own defaults: no foreign Keras keys, its default strides."""
    if _editing["quiet"]:
        return
    with quiet():
        self.extra = ""
        self.strides = DESIGN[self.type].strides or tuple(self.pool_size)
    on_edit(self, context)


class NNVisDesignLayer(bpy.types.PropertyGroup):
    """One row of the stack; `name` (built in) is the Keras layer name, empty for automatic."""

    type: EnumProperty(name="Type", items=[(t, t, "") for t in design_stack.TYPES], default="Conv2D",
                       update=on_type)
    shape: StringProperty(name="Shape", default="28, 28, 1", update=on_edit,
                          description="Input size, e.g. 28, 28, 1 (height, width, channels)")
    filters: IntProperty(name="Filters", default=8, min=1, soft_max=512, update=on_edit)
    units: IntProperty(name="Units", default=10, min=1, soft_max=4096, update=on_edit)
    kernel_size: IntVectorProperty(name="Kernel", size=2, default=(3, 3), min=1, soft_max=11,
                                   update=on_edit)
    strides: IntVectorProperty(name="Strides", size=2, default=(1, 1), min=1, soft_max=8,
                               update=on_edit)
    pool_size: IntVectorProperty(name="Pool", size=2, default=(2, 2), min=1, soft_max=8,
                                 update=on_edit)
    padding: EnumProperty(name="Padding", items=[("valid", "Valid", "No padding: the map shrinks"),
                                                 ("same", "Same", "Zero padding: the map keeps "
                                                  "its size (at stride 1)")],
                          default="same", update=on_edit)
    activation: EnumProperty(name="Activation", default="relu", update=on_edit,
                             items=[(a, a, "") for a in sorted(ACTIVATIONS)])
    rate: FloatProperty(name="Rate", default=0.25, min=0.0, max=1.0, update=on_edit)
    extra: StringProperty(name="Other Keras Settings", update=on_edit,
                          description="Keras config keys the editor has no field for (JSON), "
                                      "kept from a loaded Keras architecture")


class NNVisDesign(bpy.types.PropertyGroup):
    """The scene's layer stack and the collection it was last built into."""

    layers: CollectionProperty(type=NNVisDesignLayer)
    active: IntProperty(name="Active Row", default=0)
    model_name: StringProperty(name="Model Name", default=design_stack.DEFAULT_NAME,
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
    """The rows as `nnvis_addon.design_stack` layer dicts (a shape that is not a list of ints is passed
    on as text, so validation names the row)."""
    layers = []
    for row in stack.layers:
        layer = {"type": row.type}
        if row.name:
            layer["name"] = row.name
        for key in DESIGN[row.type].main:
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
    if layer.get("type") not in design_stack.TYPES:
        raise NNVisError(f"row {index + 1}: layer type {layer.get('type')!r} is not one of "
                         f"{', '.join(design_stack.TYPES)}")
    values = {"type": layer["type"], "name": layer.get("name") or ""}
    main = DESIGN[layer["type"]].main
    for key, value in design_stack.main_params(layer).items():
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
    with quiet():
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


CLASSES = (NNVisDesignLayer, NNVisDesign)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
