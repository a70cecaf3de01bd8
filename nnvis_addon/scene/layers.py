"""One object per layer: a mesh of cell centres (one vertex per feature map or unit) that the
`NNVis Feature Maps` / `NNVis Units` geometry-nodes group turns into planes or cubes, coloured from
the layer's activation atlas. Blender's object count grows with layers, never with cells.
"""
from __future__ import annotations

import bpy
import numpy as np

from .. import atlas as atlas_mod
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


def mesh_of_points(name: str, points: np.ndarray, attributes: dict[str, np.ndarray]):
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(points))
    mesh.vertices.foreach_set("co", np.ascontiguousarray(points, np.float32).ravel())
    for attr_name, values in attributes.items():
        attr = mesh.attributes.new(attr_name, "FLOAT", "POINT")
        attr.data.foreach_set("value", np.ascontiguousarray(values, np.float32))
    mesh.update()
    return mesh


def set_inputs(modifier, values: dict) -> None:
    ids = nodes.input_ids(modifier.node_group)
    for name, value in values.items():
        modifier[ids[name]] = value


def layer_object(layer, placement, activations: np.ndarray, colormap: str, diverging: bool,
                 run_name: str):
    """The object drawing `layer`; `activations` is (E, *output_shape), one row per epoch."""
    cells = atlas_mod.as_cells(activations, layer.is_spatial)
    atlas = atlas_mod.pack(cells)
    image = new_image(f"{run_name}:{layer.name} activations", atlas)
    scale, offset = colour_range(activations, diverging)
    material = nodes.atlas_material(f"{run_name}:{layer.name}", image, atlas, colormap, scale,
                                    offset, instanced=True)
    mesh = mesh_of_points(f"{run_name}:{layer.name}", placement.centers,
                          {"nnvis_map": np.arange(layer.cell_count)})
    obj = bpy.data.objects.new(f"{layer.name}", mesh)
    obj["nnvis_layer"] = layer.name
    obj["nnvis_kind"] = layer.kind
    obj["nnvis_shape"] = list(layer.output_shape)
    mod = obj.modifiers.new(MODIFIER, "NODES")
    mod.node_group = nodes.cells_group("planes" if layer.is_spatial else "cubes")
    if layer.is_spatial:
        h, w = layer.output_shape[:2]
        width, height = placement.cell_size * w / max(h, w), placement.cell_size * h / max(h, w)
    else:
        width = height = placement.cell_size
    set_inputs(mod, {"Width": width, "Height": height, "Material": material})
    return obj


def block_object(layer, placement, reason: str, run_name: str):
    """A layer nnvis cannot compute (unknown kind, Lambda, custom code): a labelled grey block of
    the layer's footprint, so the structure is complete and the gap is visible."""
    width, height = max(placement.extent[0], 0.3), max(placement.extent[1], 0.3)
    depth = 0.15 * max(width, height)
    x, y, z = (float(v) for v in placement.centers.mean(axis=0))
    verts = [(x + dx * depth / 2, y + dy * width / 2, z + dz * height / 2)
             for dx in (-1, 1) for dy in (-1, 1) for dz in (-1, 1)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    mesh = bpy.data.meshes.new(f"{run_name}:{layer.name}")
    mesh.from_pydata(verts, [], faces)
    mesh.materials.append(_block_material())
    obj = bpy.data.objects.new(layer.name, mesh)
    obj["nnvis_layer"] = layer.name
    obj["nnvis_kind"] = layer.kind
    obj["nnvis_shape"] = [int(d or 0) for d in layer.output_shape]
    obj["nnvis_unsupported"] = reason
    text = bpy.data.curves.new(f"{run_name}:{layer.name} label", "FONT")
    text.body = f"{layer.name}\n{layer.kind} {tuple(layer.output_shape)}"
    text.size = 0.12 * max(width, height)
    text.align_x = "CENTER"
    label = bpy.data.objects.new(f"{layer.name} label", text)
    label.location = (x - depth, y, z + height / 2 + text.size)
    label.rotation_euler = (1.5708, 0.0, -1.5708)
    label["nnvis_label"] = layer.name
    return obj, label


def _block_material(name: str = "NNVis Unknown Layer"):
    mat = bpy.data.materials.get(name)
    if mat is None:
        mat = bpy.data.materials.new(name)
        mat.diffuse_color = (0.35, 0.35, 0.38, 1.0)
        if bpy.app.version < (5, 0, 0):
            mat.use_nodes = True
        bsdf = mat.node_tree.nodes.get("Principled BSDF")
        if bsdf is not None:
            bsdf.inputs["Base Color"].default_value = (0.35, 0.35, 0.38, 1.0)
    return mat
