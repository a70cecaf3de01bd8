"""Node trees built in code: the geometry-nodes groups that draw cells and edges, and the shaders that
colour them from an atlas.

One small mapper (`add`) creates a node, sets its properties and wires or fills its inputs, so each
tree below reads top to bottom like the data flow it describes. Groups are shared by every layer of
every import (found by name, rebuilt only when missing).
"""
from __future__ import annotations

import math

import bpy

from .. import colormaps

GROUP_PLANES = "NNVis Feature Maps"
GROUP_CUBES = "NNVis Units"
GROUP_LOOKUP = "NNVis Atlas Lookup"

# Cell planes face -X with their image columns along -Y and rows along +Z (see layout.py).
PLANE_ROTATION = (math.pi / 2, 0.0, -math.pi / 2)


def add(tree, bl_idname: str, inputs: dict | None = None, **props):
    """New node of `bl_idname`; `props` set node attributes, `inputs` maps input name/index to a
    constant or to an output socket to link from."""
    node = tree.nodes.new(bl_idname)
    for key, value in props.items():
        setattr(node, key, value)
    for key, value in (inputs or {}).items():
        socket = node.inputs[key]
        if isinstance(value, bpy.types.NodeSocket):
            tree.links.new(value, socket)
        else:
            socket.default_value = value
    return node


def math_node(tree, operation: str, a, b=None, c=None):
    inputs = {0: a}
    if b is not None:
        inputs[1] = b
    if c is not None:
        inputs[2] = c
    return add(tree, "ShaderNodeMath", inputs, operation=operation).outputs[0]


def socket(group, name: str, in_out: str, socket_type: str, default=None, min_value=None,
           max_value=None, description: str = ""):
    item = group.interface.new_socket(name, in_out=in_out, socket_type=socket_type,
                                      description=description)
    if default is not None:
        item.default_value = default
    if min_value is not None:
        item.min_value = min_value
    if max_value is not None:
        item.max_value = max_value
    return item


def input_ids(group) -> dict[str, str]:
    """Input socket name → identifier, the key a modifier uses (`mod["Socket_2"]`)."""
    return {item.name: item.identifier for item in group.interface.items_tree
            if item.item_type == "SOCKET" and item.in_out == "INPUT"}


def geometry_io(group):
    socket(group, "Geometry", "INPUT", "NodeSocketGeometry")
    socket(group, "Geometry", "OUTPUT", "NodeSocketGeometry")
    socket(group, "Epoch", "INPUT", "NodeSocketFloat", 0.0, 0.0,
           description="Which recorded epoch to show (fractional values blend two epochs)")
    nodes = group.nodes
    return nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")


def store(tree, geometry, name: str, value, data_type: str, domain: str):
    return add(tree, "GeometryNodeStoreNamedAttribute",
               {"Geometry": geometry, "Name": name, "Value": value},
               data_type=data_type, domain=domain).outputs["Geometry"]


def first(group, geometry, count, domain: str):
    """`geometry` without the elements of `domain` whose index is ≥ `count`."""
    index = add(group, "GeometryNodeInputIndex").outputs[0]
    beyond = add(group, "FunctionNodeCompare", {"A": index, "B": count}, data_type="INT",
                 operation="GREATER_EQUAL").outputs[0]
    return add(group, "GeometryNodeDeleteGeometry", {"Geometry": geometry, "Selection": beyond},
               domain=domain).outputs[0]


def cells_group(shape: str):
    """Instances one plane (feature map) or cube (unit) on every vertex of the layer's mesh.

    The vertices carry `nnvis_map` (cell index), which instancing copies to the instance domain;
    the group adds `nnvis_epoch`, so the shader can look the cell's texels up in the atlas.
    """
    name = GROUP_PLANES if shape == "planes" else GROUP_CUBES
    group = bpy.data.node_groups.get(name)
    if group is not None:
        return group
    group = bpy.data.node_groups.new(name, "GeometryNodeTree")
    gin, gout = geometry_io(group)
    socket(group, "Width", "INPUT", "NodeSocketFloat", 1.0, 0.0, description="Cell width")
    socket(group, "Height", "INPUT", "NodeSocketFloat", 1.0, 0.0, description="Cell height")
    socket(group, "Scale", "INPUT", "NodeSocketFloat", 1.0, 0.0, 10.0,
           description="Scale of every feature map or unit")
    socket(group, "Max Cells", "INPUT", "NodeSocketInt", 1 << 30, 0,
           description="Level of detail: show only the first N feature maps / units")
    socket(group, "Material", "INPUT", "NodeSocketMaterial")
    width = math_node(group, "MULTIPLY", gin.outputs["Width"], gin.outputs["Scale"])
    height = math_node(group, "MULTIPLY", gin.outputs["Height"], gin.outputs["Scale"])
    if shape == "planes":
        prim = add(group, "GeometryNodeMeshGrid", {"Size X": width, "Size Y": height,
                                                   "Vertices X": 2, "Vertices Y": 2})
    else:
        size = add(group, "ShaderNodeCombineXYZ", {"X": width, "Y": width, "Z": width})
        prim = add(group, "GeometryNodeMeshCube", {"Size": size.outputs[0]})
    cell = store(group, prim.outputs["Mesh"], "nnvis_uv", prim.outputs["UV Map"],
                  "FLOAT2", "CORNER")
    shown = first(group, gin.outputs["Geometry"], gin.outputs["Max Cells"], "POINT")
    inst = add(group, "GeometryNodeInstanceOnPoints",
               {"Points": shown, "Instance": cell,
                "Rotation": PLANE_ROTATION if shape == "planes" else (0.0, 0.0, 0.0)})
    geo = store(group, inst.outputs["Instances"], "nnvis_epoch", gin.outputs["Epoch"],
                 "FLOAT", "INSTANCE")
    geo = add(group, "GeometryNodeSetMaterial", {"Geometry": geo,
                                                 "Material": gin.outputs["Material"]})
    group.links.new(geo.outputs["Geometry"], gout.inputs["Geometry"])
    return group


def lookup_group():
    """Shader group: (cell, epoch, uv) → the atlas coordinates of the two epochs to blend, and the
    channel (R, G or B) holding the value. Mirrors `atlas.Atlas.locate`, sampling texel centres so
    'Closest' interpolation reads the exact stored values.
    """
    group = bpy.data.node_groups.get(GROUP_LOOKUP)
    if group is not None:
        return group
    g = bpy.data.node_groups.new(GROUP_LOOKUP, "ShaderNodeTree")
    for name in ("Cell", "Epoch", "Last Epoch", "Tile Width", "Tile Height", "Width", "Height",
                 "Rows Per Epoch"):
        socket(g, name, "INPUT", "NodeSocketFloat")
    socket(g, "UV", "INPUT", "NodeSocketVector")
    socket(g, "Vector A", "OUTPUT", "NodeSocketVector")
    socket(g, "Vector B", "OUTPUT", "NodeSocketVector")
    socket(g, "Factor", "OUTPUT", "NodeSocketFloat")
    socket(g, "Channel", "OUTPUT", "NodeSocketFloat")
    i = g.nodes.new("NodeGroupInput").outputs
    out = g.nodes.new("NodeGroupOutput")
    epoch = add(g, "ShaderNodeClamp", {"Value": i["Epoch"], "Min": 0.0, "Max": i["Last Epoch"]})
    e0 = math_node(g, "FLOOR", epoch.outputs[0])
    e1 = math_node(g, "MINIMUM", math_node(g, "ADD", e0, 1.0), i["Last Epoch"])
    factor = math_node(g, "SUBTRACT", epoch.outputs[0], e0)
    uv = add(g, "ShaderNodeSeparateXYZ", {"Vector": i["UV"]}).outputs

    def pixel(coord, size):  # the cell's pixel under coord, clamped so uv = 1 stays inside
        return math_node(g, "MINIMUM", math_node(g, "FLOOR", math_node(g, "MULTIPLY", coord, size)),
                         math_node(g, "SUBTRACT", size, 1.0))

    col = pixel(uv["X"], i["Tile Width"])
    row = math_node(g, "SUBTRACT", math_node(g, "SUBTRACT", i["Tile Height"], 1.0),
                    pixel(uv["Y"], i["Tile Height"]))      # row 0 is the top of the map
    index = math_node(g, "ADD", math_node(g, "MULTIPLY", math_node(
        g, "MULTIPLY_ADD", i["Cell"], i["Tile Height"], row), i["Tile Width"]), col)
    texel = math_node(g, "FLOOR", math_node(g, "DIVIDE", index, 3.0))
    channel = math_node(g, "SUBTRACT", index, math_node(g, "MULTIPLY", texel, 3.0))
    x = math_node(g, "FLOORED_MODULO", texel, i["Width"])
    u = math_node(g, "DIVIDE", math_node(g, "ADD", x, 0.5), i["Width"])
    y = math_node(g, "FLOOR", math_node(g, "DIVIDE", texel, i["Width"]))
    for e, name in ((e0, "Vector A"), (e1, "Vector B")):
        row_e = math_node(g, "MULTIPLY_ADD", e, i["Rows Per Epoch"], y)
        v = math_node(g, "DIVIDE", math_node(g, "ADD", row_e, 0.5), i["Height"])
        vec = add(g, "ShaderNodeCombineXYZ", {"X": u, "Y": v})
        g.links.new(vec.outputs[0], out.inputs[name])
    g.links.new(factor, out.inputs["Factor"])
    g.links.new(channel, out.inputs["Channel"])
    return g


def pick_channel(tree, colour, channel):
    """The value in channel 0/1/2 (R/G/B) of `colour`: Σ component × (channel == k)."""
    parts = add(tree, "ShaderNodeSeparateColor", {"Color": colour}).outputs
    total = None
    for k in range(3):
        is_k = math_node(tree, "COMPARE", channel, float(k), 0.5)
        term = math_node(tree, "MULTIPLY", parts[k], is_k)
        total = term if total is None else math_node(tree, "ADD", total, term)
    return total


def atlas_material(name: str, image, atlas, colormap: str, scale: float, offset: float,
                   instanced: bool, emission: float = 0.6):
    """Material colouring each cell (instanced) or edge (curve) by its atlas values.

    colour = colormap(value * scale + offset); scale/offset are fixed for the whole run so every
    epoch is compared on the same scale (Value nodes `nnvis_scale` / `nnvis_offset`).
    """
    mat = bpy.data.materials.new(name)
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True
    tree = mat.node_tree
    tree.nodes.clear()
    source = "INSTANCER" if instanced else "GEOMETRY"
    cell = add(tree, "ShaderNodeAttribute", attribute_type=source,
               attribute_name="nnvis_map" if instanced else "nnvis_edge")
    epoch = add(tree, "ShaderNodeAttribute", attribute_type=source, attribute_name="nnvis_epoch")
    lookup = add(tree, "ShaderNodeGroup", node_tree=lookup_group())
    params = {"Last Epoch": atlas.epochs - 1, "Tile Width": atlas.tile_w,
              "Tile Height": atlas.tile_h, "Width": atlas.width, "Height": atlas.height,
              "Rows Per Epoch": atlas.rows_per_epoch}
    for key, value in params.items():
        lookup.inputs[key].default_value = float(value)
    tree.links.new(cell.outputs["Fac"], lookup.inputs["Cell"])
    tree.links.new(epoch.outputs["Fac"], lookup.inputs["Epoch"])
    if instanced:
        uv = add(tree, "ShaderNodeAttribute", attribute_type="GEOMETRY", attribute_name="nnvis_uv")
        tree.links.new(uv.outputs["Vector"], lookup.inputs["UV"])
    else:
        lookup.inputs["UV"].default_value = (0.5, 0.5, 0.0)
    values = []
    for vec in ("Vector A", "Vector B"):
        tex = add(tree, "ShaderNodeTexImage", {"Vector": lookup.outputs[vec]}, image=image,
                  interpolation="Closest", extension="EXTEND")
        values.append(pick_channel(tree, tex.outputs["Color"], lookup.outputs["Channel"]))
    value = add(tree, "ShaderNodeMix", {"Factor": lookup.outputs["Factor"], "A": values[0],
                                        "B": values[1]}, data_type="FLOAT").outputs["Result"]
    scale_node = add(tree, "ShaderNodeValue", name="nnvis_scale", label="Colour scale")
    scale_node.outputs[0].default_value = scale
    offset_node = add(tree, "ShaderNodeValue", name="nnvis_offset", label="Colour offset")
    offset_node.outputs[0].default_value = offset
    t = math_node(tree, "MULTIPLY_ADD", value, scale_node.outputs[0], offset_node.outputs[0])
    ramp = add(tree, "ShaderNodeValToRGB", {"Fac": t}, name="nnvis_colormap")
    set_ramp(ramp.color_ramp, colormap)
    bsdf = add(tree, "ShaderNodeBsdfPrincipled", {"Base Color": ramp.outputs["Color"],
                                                  "Emission Color": ramp.outputs["Color"],
                                                  "Emission Strength": emission,
                                                  "Roughness": 0.55})
    out = add(tree, "ShaderNodeOutputMaterial")
    tree.links.new(bsdf.outputs[0], out.inputs["Surface"])
    mat["nnvis_colormap"] = colormap
    return mat


def set_ramp(ramp, colormap: str) -> None:
    """Fill a Color Ramp with the stops of one of `colormaps.STOPS` (converted to linear light)."""
    stops = colormaps.srgb_to_linear(colormaps.STOPS[colormap])
    elements = ramp.elements
    while len(elements) > 2:
        elements.remove(elements[-1])
    positions = [k / (len(stops) - 1) for k in range(len(stops))]
    elements[0].position, elements[1].position = positions[0], positions[-1]
    for pos in positions[1:-1]:
        elements.new(pos)
    for element, colour in zip(sorted(elements, key=lambda e: e.position), stops):
        element.color = (*colour, 1.0)
    ramp.interpolation = "LINEAR"
