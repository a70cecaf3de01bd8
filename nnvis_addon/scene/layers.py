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

from .. import arrange, blocks
from .. import atlas as atlas_mod
from ..model.trace import trace, trace_units
from ..model.window import kernel_window
from . import nodes

MODIFIER = "NNVis"


def new_image(name: str, atlas) -> "bpy.types.Image":
    """A packed float image holding the atlas' raw values, so the .blend is whole."""
    image = bpy.data.images.new(name, atlas.width, atlas.height, alpha=False, float_buffer=True)
    image.colorspace_settings.name = "Non-Color"
    rgba = np.empty((atlas.height, atlas.width, 4), np.float32)
    rgba[..., :3] = atlas.rgb
    rgba[..., 3] = 1.0
    image.pixels.foreach_set(rgba.ravel())
    image.pack()
    return image


def colour_range(values: np.ndarray, diverging: bool) -> tuple[float, float]:
    """(scale, offset) mapping the run's values into [0, 1] the same way for every epoch:
    diverging maps put zero at the centre; sequential maps run from 0 to the largest value."""
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    peak = peak if peak > 0 else 1.0
    return (0.5 / peak, 0.5) if diverging else (1.0 / peak, 0.0)


def map_gain(cells: np.ndarray) -> np.ndarray:
    """(C,) factor that scales each cell's values (E, C, H, W) to the layer's peak: what
    `Normalise Per Map` = 1 applies, so a quiet map shows its own structure. Fixed across epochs;
    a map that is zero everywhere keeps 1."""
    peaks = np.abs(cells).max(axis=(0, 2, 3)) if cells.size else np.zeros(cells.shape[1])
    top = float(peaks.max()) if peaks.size else 0.0
    return np.divide(top, peaks, out=np.ones_like(peaks), where=peaks > 0).astype(np.float32)


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
        if "nnvis_run" in coll:
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


def layer_object(layer, placement, activations: np.ndarray, colormap: str, diverging: bool,
                 run_name: str):
    """The object drawing `layer`; `activations` is (E, *output_shape), one row per epoch."""
    cells = atlas_mod.as_cells(activations, layer.is_spatial)
    atlas = atlas_mod.pack(cells)
    image = new_image(f"{run_name}:{layer.name} activations", atlas)
    scale, offset = colour_range(activations, diverging)
    material = nodes.atlas_material(f"{run_name}:{layer.name}", image, atlas, colormap, scale,
                                    offset, instanced=True)
    shapes = arrange.arrangements(placement, layer.output_shape)
    mesh = mesh_of_points(f"{run_name}:{layer.name}", placement.centers - shapes.centre,
                          {"nnvis_map": np.arange(layer.cell_count),
                           "nnvis_map_gain": map_gain(cells)},
                          {"nnvis_grid": shapes.grid, "nnvis_line": shapes.line,
                           "nnvis_circle": shapes.circle, "nnvis_stack": shapes.stack,
                           "nnvis_block": shapes.block})
    obj = bpy.data.objects.new(f"{run_name}:{layer.name}", mesh)
    obj.location = shapes.centre.tolist()          # the layer turns and scales about its centre
    obj["nnvis_layer"] = layer.name
    obj["nnvis_kind"] = layer.kind
    obj["nnvis_shape"] = list(layer.output_shape)
    if layer.kind == blocks.KIND:           # a folded block: what it is called, its own layers
        obj["nnvis_block"] = blocks.title(layer)
        obj["nnvis_block_layers"] = [inner.name for inner in layer.inner]
    mod = obj.modifiers.new(MODIFIER, "NODES")
    mod.node_group = nodes.cells_group("planes" if layer.is_spatial else "cubes")
    if layer.is_spatial:
        width, height = arrange.map_size(placement, layer.output_shape)
    else:
        width = height = placement.cell_size
    set_inputs(mod, {"Width": width, "Height": height, "Material": material})
    return obj


def add_controls(run, objects: dict, max_edges: int | None = None):
    """What the controls need beyond one layer: each feature-map layer's Inbound object and kernel
    window (Expansion 3), and the highlight traces of the last epoch (Highlight, Trace Unit).
    `objects`: layer name → its object; `max_edges`: the scene's per-connection edge cap."""
    network = run.network
    for layer in network.layers:
        obj = objects.get(layer.name)
        source = next((network.layer(n) for n in layer.inbound
                       if n in objects and network.layer(n).is_spatial), None)
        window = kernel_window(layer, source) if source is not None else None
        if obj is None or window is None or "Inbound" not in nodes.input_ids(
                obj.modifiers[MODIFIER].node_group):
            continue
        set_inputs(obj.modifiers[MODIFIER], {"Inbound": objects[source.name]})
        for axis, name in enumerate("yx"):
            set_point_attribute(obj.data, f"nnvis_rf_{name}", (
                window.stride[axis], window.offset[axis], window.size[axis]), "FLOAT_VECTOR")
        set_point_attribute(obj.data, "nnvis_rf_in", source.output_shape, "FLOAT_VECTOR")
        set_point_attribute(obj.data, "nnvis_rf_out", (*layer.output_shape[:2], 0), "FLOAT_VECTOR")
    return store_traces(run, objects, max_edges)


def store_traces(run, objects: dict, max_edges: int | None = None, limit: int = 16):
    """`nnvis_trace_<unit>` on every layer mesh for up to `limit` units of the output layer (see
    `trace_units`), traced at the last epoch; Trace Unit starts on the predicted class.
    Returns (the Trace, with its edges for the edge curves, and the unit shown first)."""
    epoch, network = run.epochs[-1], run.network
    activations = {l.name: run.activations(l.name, epoch) for l in network.layers
                   if run.has_activations(l.name)}
    output = activations.get(network.output)
    units = trace_units(network, output, limit)
    found = trace(network, {l.name: run.weights(l.name, epoch) for l in network.layers},
                  activations, units, with_edges=True, max_edges=max_edges)
    shown = int(np.argmax(output)) if output is not None else units[0]
    for name, values in found.cells.items():
        obj = objects.get(name)
        if obj is None:
            continue
        for unit, row in zip(found.units, values):
            set_point_attribute(obj.data, f"nnvis_trace_{unit}", row)
        set_inputs(obj.modifiers[MODIFIER], {"Trace Unit": shown if shown in units else units[0]})
    return found, (shown if shown in units else units[0])


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
    obj["nnvis_layer"] = layer.name
    obj["nnvis_kind"] = layer.kind
    obj["nnvis_shape"] = [int(d or 0) for d in layer.output_shape]
    obj["nnvis_unsupported"] = reason
    text = bpy.data.curves.new(f"{run_name}:{layer.name} label", "FONT")
    text.body = f"{layer.name}\n{layer.kind} {tuple(layer.output_shape)}"
    text.size = 0.12 * max(width, height)
    text.align_x = "CENTER"
    label = bpy.data.objects.new(f"{run_name}:{layer.name} label", text)
    label.location = (x - depth, y, z + height / 2 + text.size)
    label.rotation_euler = (1.5708, 0.0, -1.5708)
    label["nnvis_block_label"] = layer.name
    return obj, label


def _block_material():
    """Grey, for layers nnvis cannot compute."""
    return nodes.shared_material("NNVis Unknown Layer", (0.35, 0.35, 0.38), 0.0)