"""One object per layer, its origin at the layer's centre: a mesh of cell centres (one vertex per
feature map or unit, relative to that centre) that the `NNVis Feature Maps` / `NNVis Units`
geometry-nodes group turns into planes or cubes, coloured from the layer's activation atlas.
Blender's object count grows with layers, never with cells.

The mesh also carries what the group's controls need, as vertex attributes: the other arrangements
(`arrange.py`), each map's colour gain for `Normalise Per Map`, the kernel window for Expansion 3
(`model/window.py`) and one highlight trace per traced unit (`model/trace.py`).
"""
from __future__ import annotations

import bpy
import numpy as np

from .. import atlas as atlas_mod
from .. import blocks
from . import animation, nodes
from .font import text_width
from .. import names
from ..names import MODIFIER   # every module takes it from here
from .run_record import is_run



def new_image(name: str, atlas) -> "bpy.types.Image":
    """A packed float image holding the atlas' raw values, so the .blend is whole."""
    image = bpy.data.images.new(name, atlas.width, atlas.height, alpha=False, float_buffer=True)
    image.colorspace_settings.name = "Non-Color"
    write_atlas(image, atlas)
    return image


def write_atlas(image, atlas) -> None:
    """`image` holds the atlas' raw values (resized first when a live refresh brought more
    epochs), packed into the .blend."""
    if tuple(image.size) != (atlas.width, atlas.height):
        image.scale(atlas.width, atlas.height)
    rgba = np.empty((atlas.height, atlas.width, 4), np.float32)
    rgba[..., :3] = atlas.rgb
    rgba[..., 3] = 1.0
    image.pixels.foreach_set(rgba.ravel())
    image.pack()


def material_of(obj):
    """The atlas material of a layer or edges object (its modifier's Material input)."""
    mod = obj.modifiers[MODIFIER]
    return mod[nodes.input_ids(mod.node_group)["Material"]]


def atlas_values(material) -> np.ndarray:
    """(E, C, H, W) values of the epochs the atlas material's image holds now (exact: what a
    live refresh extends); C may exceed the cells by the atlas' padding."""
    tree = material.node_tree.nodes
    image, lookup = tree[names.TEX_A].image, tree[names.LOOKUP].inputs
    width, height = image.size
    rgba = np.empty(width * height * 4, np.float32)
    image.pixels.foreach_get(rgba)
    tile_w, tile_h, rows = (int(v) for v in lookup["Tile"].default_value)
    cells = width * rows * atlas_mod.PER_TEXEL // (tile_h * tile_w)   # an upper bound: trimmed
    return atlas_mod.unpack(rgba.reshape(height, width, 4)[..., :3], tile_h, tile_w, cells, rows)


def shown_values(obj) -> tuple[np.ndarray, bool]:
    """A layer object's values of the epochs it shows (`atlas_values`) and whether the import
    drew them on a diverging map (its colour offset 0.5)."""
    material = material_of(obj)
    diverging = material.node_tree.nodes[names.OFFSET].outputs[0].default_value == 0.5
    return atlas_values(material), diverging


def set_values(obj, values) -> None:
    """A layer object shows the `plan.LayerValues` of a live refresh: its atlas, colour scale
    and per-map gains."""
    material = material_of(obj)
    write_atlas(material.node_tree.nodes[names.TEX_A].image, values.atlas)
    nodes.set_atlas_values(material, values.atlas, values.colour)
    set_point_attribute(obj.data, names.MAP_GAIN, values.map_gain)


def mesh_of_points(name: str, points: np.ndarray, attributes: dict[str, np.ndarray],
                   vectors: dict[str, np.ndarray] | None = None):
    """A vertices-only mesh with FLOAT (`attributes`) and FLOAT_VECTOR (`vectors`) point data."""
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(points))
    mesh.vertices.foreach_set("co", np.ascontiguousarray(points, np.float32).ravel())
    for attr_name, values in attributes.items():
        set_point_attribute(mesh, attr_name, values)
    for attr_name, values in (vectors or {}).items():
        set_point_attribute(mesh, attr_name, values, "FLOAT_VECTOR")
    mesh.update()
    return mesh


def set_point_attribute(mesh, name: str, values, data_type: str = "FLOAT") -> None:
    """Create or overwrite a point attribute; a single row (3,) fills every vertex."""
    attr = mesh.attributes.get(name) or mesh.attributes.new(name, data_type, "POINT")
    if data_type == "FLOAT_VECTOR":
        values = np.broadcast_to(np.asarray(values, np.float32), (len(mesh.vertices), 3))
        attr.data.foreach_set("vector", np.ascontiguousarray(values).ravel())
    else:
        attr.data.foreach_set("value", np.ascontiguousarray(values, np.float32))


def run_collection(obj):
    """The imported run's collection that holds `obj` (None if `obj` is not nnvis')."""
    if obj is None:
        return None
    for coll in obj.users_collection:
        if is_run(coll):
            return coll
    return None


def set_inputs(modifier, values: dict) -> None:
    ids = nodes.input_ids(modifier.node_group)
    for name, value in values.items():
        modifier[ids[name]] = value


def set_run_inputs(objects, values: dict) -> None:
    """Set each modifier input of `values` (name → value) on every object that has it."""
    for obj in objects:
        mod = obj.modifiers.get(MODIFIER)
        if mod is not None and mod.node_group is not None:
            set_inputs(mod, {k: v for k, v in values.items()
                             if k in nodes.input_ids(mod.node_group)})


def layer_object(plan, run_name: str):
    """The object drawing a computed layer's `plan.LayerPlan`."""
    layer, atlas, shapes = plan.layer, plan.atlas, plan.arrangements
    image = new_image(f"{run_name}:{layer.name} activations", atlas)
    material = nodes.atlas_material(f"{run_name}:{layer.name}", image, atlas, plan.colormap,
                                    *plan.colour, instanced=True)
    mesh = mesh_of_points(f"{run_name}:{layer.name}", plan.placement.centers - shapes.centre,
                          {names.MAP: np.arange(layer.cell_count),
                           names.MAP_GAIN: plan.map_gain},
                          {names.GRID: shapes.grid, names.LINE: shapes.line,
                           names.CIRCLE: shapes.circle, names.STACK: shapes.stack,
                           names.BOX: shapes.block})
    obj = bpy.data.objects.new(f"{run_name}:{layer.name}", mesh)
    animation.shader_epoch(obj)
    obj.location = shapes.centre.tolist()          # the layer turns and scales about its centre
    obj[names.LAYER] = layer.name
    _place_tags(obj, plan.placement)
    obj[names.KIND] = layer.kind
    obj[names.SHAPE] = list(layer.output_shape)
    if layer.kind == blocks.KIND:           # a folded block: what it is called, its own layers
        obj[names.BLOCK_TITLE] = blocks.title(layer)
        obj[names.BLOCK_LAYERS] = [inner.name for inner in layer.inner]
    if blocks.EXPANDED in layer.config:     # one of an expanded block's layers
        obj[names.EXPANDED_BLOCK] = layer.config[blocks.EXPANDED]
    mod = obj.modifiers.new(MODIFIER, "NODES")
    mod.node_group = nodes.cells_group("planes" if layer.is_spatial else "cubes")
    width, height = plan.size
    mesh.materials.append(material)        # the Material tab and Shader Editor show it
    set_inputs(mod, {"Width": width, "Height": height, "Material": material,
                     "Max Cells": layer.cell_count})
    return obj


def add_controls(plan, objects: dict) -> None:
    """What the controls need beyond one layer, from the `plan.ScenePlan`: each feature-map
    layer's Inbound object and kernel window (Expansion 3), and the highlight traces
    `nnvis_trace_<unit>` (Highlight; Trace Unit starts on the predicted class).
    `objects`: layer name → its object."""
    for layer_plan in plan.layers:
        obj = objects.get(layer_plan.layer.name)
        if obj is None:
            continue
        if layer_plan.window is not None and "Inbound" in nodes.input_ids(
                obj.modifiers[MODIFIER].node_group):
            source, window = layer_plan.window
            set_inputs(obj.modifiers[MODIFIER], {"Inbound": objects[source.name]})
            for axis, name in enumerate("yx"):
                set_point_attribute(obj.data, f"{names.RF}{name}", (
                    window.stride[axis], window.offset[axis], window.size[axis]), "FLOAT_VECTOR")
            set_point_attribute(obj.data, f"{names.RF}in", source.output_shape, "FLOAT_VECTOR")
            set_point_attribute(obj.data, f"{names.RF}out", (*layer_plan.layer.output_shape[:2], 0),
                                "FLOAT_VECTOR")
    for layer_plan in plan.layers:
        obj = objects.get(layer_plan.layer.name)
        if obj is None or layer_plan.traces is None:
            continue
        for unit, row in zip(plan.trace.units, layer_plan.traces):
            set_point_attribute(obj.data, f"{names.TRACE}{unit}", row)
        set_inputs(obj.modifiers[MODIFIER], {"Trace Unit": plan.trace_unit})


SLAB_TEXT = 0.85      # share of a grey slab's face its kind text spans (width or height)


def block_object(layer, placement, reason: str, run_name: str):
    """A layer nnvis cannot compute (unknown kind, Lambda, custom code): a labelled grey block of
    the layer's footprint, so the structure is complete and the gap is visible."""
    width, height = max(placement.extent[0], 0.3), max(placement.extent[1], 0.3)
    depth = 0.15 * max(width, height)
    x, y, z = (float(v) for v in placement.centers.mean(axis=0))
    verts = [(dx * depth / 2, dy * width / 2, dz * height / 2)
             for dx in (-1, 1) for dy in (-1, 1) for dz in (-1, 1)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    mesh = bpy.data.meshes.new(f"{run_name}:{layer.name}")
    mesh.from_pydata(verts, [], faces)
    mesh.materials.append(_block_material())
    obj = bpy.data.objects.new(f"{run_name}:{layer.name}", mesh)
    obj.location = (x, y, z)
    obj[names.LAYER] = layer.name
    obj[names.KIND] = layer.kind
    obj[names.SHAPE] = [int(d or 0) for d in layer.output_shape]
    obj[names.UNSUPPORTED] = reason
    text = bpy.data.curves.new(f"{run_name}:{layer.name} label", "FONT")
    text.body = f"{layer.name}\n{layer.kind} {tuple(layer.output_shape)}"
    lines = text.body.split("\n")
    # on the slab's face, as large as fits it (sized by the whole slab, the text was unreadably
    # small on a small slab and huge over the labels beside a wide one)
    text.size = min(SLAB_TEXT * width / max(map(text_width, lines)),
                    SLAB_TEXT * height / (1.2 * len(lines)))
    text.align_x, text.align_y = "CENTER", "CENTER"
    label = bpy.data.objects.new(f"{run_name}:{layer.name} label", text)
    label.location = (x - depth / 2 - 0.02 * depth, y, z)
    label.rotation_euler = (1.5708, 0.0, -1.5708)
    label[names.BLOCK_LABEL] = layer.name
    _place_tags(obj, placement)
    return obj, label


def _place_tags(obj, placement) -> None:
    """Where the layout put the layer (row, rank, lane): what scene/restack.py moves by."""
    obj[names.LAYER_ROW] = placement.row
    obj[names.LAYER_RANK] = placement.rank
    obj[names.LAYER_LANE] = placement.lane


def _block_material():
    """Grey, for layers nnvis cannot compute."""
    return nodes.shared_material("NNVis Unknown Layer", (0.35, 0.35, 0.38), 0.0)