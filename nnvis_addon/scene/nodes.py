"""Node trees built in code: the geometry-nodes groups that draw cells, the shaders that colour them
from an atlas, and the shared materials and colour maps the looks adjust.

One small mapper (`add`) creates a node, sets its properties and wires or fills its inputs, so each
tree below reads top to bottom like the data flow it describes. Groups are shared by every layer of
every import (found by name and version, rebuilt only when missing or older).
"""
from __future__ import annotations

import math

import bpy

from .. import colormaps
from . import compat

GROUP_PLANES = "NNVis Feature Maps"
GROUP_CUBES = "NNVis Units"
GROUP_LOOKUP = "NNVis Atlas Lookup"
GROUP_COLOURS = "NNVis Colour Maps"
GROUP_LEGEND = "NNVis Legend"
BLOCK_MATERIAL = "NNVis Block"
ACCENT_MATERIAL = "NNVis Accent"
VERSION = 3          # bump when a group's sockets or behaviour change: older copies are not reused

# Cell planes face -X with their image columns along -Y and rows along +Z (see layout.py).
PLANE_ROTATION = (math.pi / 2, 0.0, -math.pi / 2)
DIM = 0.85           # how much Highlight darkens the cells and edges off the traced path


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


def math_node(tree, operation: str, a, b=None, c=None, clamp: bool = False):
    inputs = {0: a}
    if b is not None:
        inputs[1] = b
    if c is not None:
        inputs[2] = c
    return add(tree, "ShaderNodeMath", inputs, operation=operation, use_clamp=clamp).outputs[0]


def clamp01(tree, value):
    return math_node(tree, "ADD", value, 0.0, clamp=True)


def vec_math(tree, operation: str, a, b=None, scale=None):
    """Vector Math; `scale` feeds SCALE's factor. Returns the Vector output (Value for LENGTH)."""
    inputs = {0: a}
    if b is not None:
        inputs[1] = b
    if scale is not None:
        inputs[3] = scale
    node = add(tree, "ShaderNodeVectorMath", inputs, operation=operation)
    return node.outputs["Value" if operation == "LENGTH" else "Vector"]


def xyz(tree, x=0.0, y=0.0, z=0.0):
    return add(tree, "ShaderNodeCombineXYZ", {"X": x, "Y": y, "Z": z}).outputs[0]


def split(tree, vector):
    return add(tree, "ShaderNodeSeparateXYZ", {"Vector": vector}).outputs


def mix(tree, factor, a, b, data_type: str = "FLOAT"):
    return add(tree, "ShaderNodeMix", {"Factor": factor, "A": a, "B": b},
               data_type=data_type).outputs["Result"]


def position(tree):
    return add(tree, "GeometryNodeInputPosition").outputs[0]


def named(tree, name, data_type: str = "FLOAT"):
    """A named attribute of the geometry being evaluated (0 where it does not exist)."""
    return add(tree, "GeometryNodeInputNamedAttribute", {"Name": name},
               data_type=data_type).outputs["Attribute"]


def sample(tree, geometry, value, data_type: str = "FLOAT", index=0, domain: str = "POINT"):
    """`value` of element `index` of `geometry` (clamped to the elements there are)."""
    return add(tree, "GeometryNodeSampleIndex", {"Geometry": geometry, "Value": value,
                                                 "Index": index},
               data_type=data_type, domain=domain, clamp=True).outputs[0]


def join(tree, parts, bl_idname: str = "GeometryNodeJoinGeometry", name: str = "Geometry"):
    """Join `parts` in their order (a multi-input socket lists its newest link first)."""
    node = add(tree, bl_idname)
    for part in reversed(parts):
        tree.links.new(part, node.inputs[name])
    return node.outputs[0]


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


def current(name: str):
    """The group called `name` (or `name.001`, ...) built by this version of nnvis, if any."""
    for group in bpy.data.node_groups:
        if (group.name == name or group.name.startswith(name + ".")) and \
                group.get("nnvis_version") == VERSION:
            return group
    return None


def new_group(name: str, kind: str = "GeometryNodeTree"):
    group = bpy.data.node_groups.new(name, kind)
    group["nnvis_version"] = VERSION
    return group


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


def highlight_sockets(group) -> None:
    socket(group, "Highlight", "INPUT", "NodeSocketFloat", 0.0, 0.0, 1.0,
           description="Light up what feeds the traced unit most, dim the rest (0 = off)")
    socket(group, "Trace Unit", "INPUT", "NodeSocketInt", 0, 0,
           description="Which unit of the last layer (class) the highlight traces back from")


def store_highlight(group, i, geometry, domain: str):
    """Store `nnvis_lit` = Highlight × trace and `nnvis_dim` = Highlight × (1 − trace) on `domain`,
    where trace is the attribute `nnvis_trace_<Trace Unit>` (the scene writes one per traced unit;
    see model/trace.py); `i` is the group input node's outputs, with the `highlight_sockets`.
    The shaders brighten by lit and darken by dim."""
    unit = add(group, "FunctionNodeValueToString", {"Value": i["Trace Unit"],
                                                    "Decimals": 0})
    prefix = add(group, "FunctionNodeInputString", string="nnvis_trace_")
    name = join(group, [prefix.outputs[0], unit.outputs[0]], "GeometryNodeStringJoin", "Strings")
    trace = named(group, name)
    on = i["Highlight"]
    lit = math_node(group, "MULTIPLY", on, trace)
    geometry = store(group, geometry, "nnvis_lit", lit, "FLOAT", domain)
    dim = math_node(group, "MULTIPLY", on, math_node(group, "SUBTRACT", 1.0, trace))
    return store(group, geometry, "nnvis_dim", dim, "FLOAT", domain)


def cells_group(shape: str):
    """Instances one plane (feature map) or cube (unit) on every vertex of the layer's mesh, placed
    by the animatable controls.

    The mesh's vertices sit on the layout's grid and carry the other arrangements as offsets from
    the layer's centre (`arrange.py`: nnvis_grid/line/circle/stack, nnvis_block), the cell index
    `nnvis_map`, the per-map colour gain and the highlight traces; instancing copies them to the
    instances, and the group adds what the shader reads (`nnvis_epoch`, `nnvis_cmap`, `nnvis_gain`,
    `nnvis_lit`, `nnvis_dim`), and every cell's current centre as loose vertex k of its mesh (the
    anchors the edge curves follow). Expansion 0 → 1 → 2 → 3: the layer's box, the maps stacked, spread
    out, and (planes) the kernel window of one output pixel on the inbound layer's maps with lines
    to that pixel.
    """
    name = GROUP_PLANES if shape == "planes" else GROUP_CUBES
    group = current(name)
    if group is not None:
        return group
    group = new_group(name)
    gin, gout = geometry_io(group)
    socket(group, "Expansion", "INPUT", "NodeSocketFloat", 2.0, 0.0, 3.0,
           description="0 = one block, 1 = maps stacked, 2 = spread out, 3 = show the computation")
    socket(group, "Morph", "INPUT", "NodeSocketFloat", 1.0, 0.0, 1.0,
           description="Arrangement: 0 = line, 0.5 = circle, 1 = grid")
    socket(group, "Spacing", "INPUT", "NodeSocketFloat", 1.0, 0.0, 10.0,
           description="Distance between cells, relative to the layout's")
    socket(group, "Scale", "INPUT", "NodeSocketFloat", 1.0, 0.0, 10.0,
           description="Scale of every feature map or unit")
    socket(group, "Colour Map", "INPUT", "NodeSocketFloat", 0.0, 0.0, float(len(colormaps.NAMES)),
           description="0 = the layer's own ramp; " + ", ".join(
               f"{k} = {n}" for k, n in enumerate(colormaps.NAMES, 1)) + "; fractions blend")
    socket(group, "Normalise Per Map", "INPUT", "NodeSocketFloat", 0.0, 0.0, 1.0,
           description="0 = one colour scale per layer, 1 = each map scaled to its own peak")
    highlight_sockets(group)
    if shape == "planes":
        for axis in ("X", "Y"):
            socket(group, f"Focus {axis}", "INPUT", "NodeSocketInt", 0, 0,
                   description=f"Output pixel {'column' if axis == 'X' else 'row'} whose "
                               "computation Expansion 3 shows")
        socket(group, "Focus Map", "INPUT", "NodeSocketInt", 0, 0,
               description="Output feature map whose computation Expansion 3 shows")
        socket(group, "Inbound", "INPUT", "NodeSocketObject",
               description="The layer whose maps the kernel window is drawn on")
    socket(group, "Width", "INPUT", "NodeSocketFloat", 1.0, 0.0, description="Cell width")
    socket(group, "Height", "INPUT", "NodeSocketFloat", 1.0, 0.0, description="Cell height")
    socket(group, "Max Cells", "INPUT", "NodeSocketInt", 1 << 30, 0,
           description="Level of detail: show only the first N feature maps / units")
    socket(group, "Material", "INPUT", "NodeSocketMaterial")
    i = gin.outputs
    level = i["Expansion"]
    cells = first(group, i["Geometry"], i["Max Cells"], "POINT")
    centre = vec_math(group, "SUBTRACT", position(group),
                      named(group, "nnvis_grid", "FLOAT_VECTOR"))
    anchors = add(group, "GeometryNodeSetPosition", {
        "Geometry": i["Geometry"], "Position": vec_math(group, "ADD", centre, _offset(group, i))}
    ).outputs[0]
    placed = first(group, anchors, i["Max Cells"], "POINT")
    width = math_node(group, "MULTIPLY", i["Width"], i["Scale"])
    height = math_node(group, "MULTIPLY", i["Height"], i["Scale"])
    grown = clamp01(group, level)                       # 0 → 1: the cells grow out of the block
    parts = [_cells(group, i, shape, placed, width, height, grown),
             _block(group, cells, centre, i["Scale"], grown)]
    if shape == "planes":
        parts.append(_computation(group, i, cells, placed, width, height))
    # cells first: instance k = map k; anchors first: loose vertex k = where cell k is, shown or
    # not (Max Cells, Expansion 0), which the edge curves follow (loose vertices never render)
    group.links.new(join(group, [anchors, *parts]), gout.inputs["Geometry"])
    return group


def _offset(group, i):
    """Where a cell sits relative to its layer's centre: the stack (Expansion ≤ 1) blending into
    line ↔ circle ↔ grid (Morph) times Spacing (Expansion ≥ 2)."""
    line, circle, grid, stack = (named(group, f"nnvis_{n}", "FLOAT_VECTOR")
                                 for n in ("line", "circle", "grid", "stack"))
    m = i["Morph"]
    first_half = mix(group, clamp01(group, math_node(group, "MULTIPLY", m, 2.0)), line, circle,
                     "VECTOR")
    second_half = mix(group, clamp01(group, math_node(group, "MULTIPLY_ADD", m, 2.0, -1.0)),
                      circle, grid, "VECTOR")
    arranged = vec_math(group, "SUBTRACT", vec_math(group, "ADD", first_half, second_half), circle)
    spread = vec_math(group, "SCALE", arranged, scale=i["Spacing"])
    stacked = vec_math(group, "SCALE", stack, scale=i["Scale"])
    unfold = clamp01(group, math_node(group, "SUBTRACT", i["Expansion"], 1.0))
    return mix(group, unfold, stacked, spread, "VECTOR")


def _cells(group, i, shape, placed, width, height, grown):
    if shape == "planes":
        prim = add(group, "GeometryNodeMeshGrid", {"Size X": width, "Size Y": height,
                                                   "Vertices X": 2, "Vertices Y": 2})
    else:
        prim = add(group, "GeometryNodeMeshCube", {"Size": xyz(group, width, width, width)})
    cell = store(group, prim.outputs["Mesh"], "nnvis_uv", prim.outputs["UV Map"], "FLOAT2",
                 "CORNER")
    hidden = add(group, "FunctionNodeCompare", {"A": grown, "B": 0.0}, data_type="FLOAT",
                 operation="LESS_EQUAL").outputs[0]
    shown = add(group, "GeometryNodeDeleteGeometry", {"Geometry": placed, "Selection": hidden},
                domain="POINT").outputs[0]
    inst = add(group, "GeometryNodeInstanceOnPoints", {
        "Points": shown, "Instance": cell, "Scale": grown,
        "Rotation": PLANE_ROTATION if shape == "planes" else (0.0, 0.0, 0.0)}).outputs[0]
    size = vec_math(group, "SCALE", xyz(group, width, height), scale=grown)
    geo = store(group, inst, "nnvis_size", size, "FLOAT_VECTOR", "INSTANCE")   # for Expansion 3
    geo = store(group, geo, "nnvis_epoch", i["Epoch"], "FLOAT", "INSTANCE")
    geo = store(group, geo, "nnvis_cmap", i["Colour Map"], "FLOAT", "INSTANCE")
    gain = mix(group, i["Normalise Per Map"], 1.0, named(group, "nnvis_map_gain"))
    geo = store(group, geo, "nnvis_gain", gain, "FLOAT", "INSTANCE")
    geo = store_highlight(group, i, geo, "INSTANCE")
    return add(group, "GeometryNodeSetMaterial", {"Geometry": geo,
                                                  "Material": i["Material"]}).outputs[0]


def _block(group, cells, centre, scale, grown):
    """The layer as one box (`nnvis_block` × Scale) at its centre, shrinking away as the cells
    grow (Expansion 0 → 1)."""
    block = sample(group, cells, named(group, "nnvis_block", "FLOAT_VECTOR"), "FLOAT_VECTOR")
    size = vec_math(group, "SCALE", block, scale=scale)
    box = add(group, "GeometryNodeMeshCube", {"Size": size})
    remaining = math_node(group, "SUBTRACT", 1.0, grown)
    point = add(group, "GeometryNodePoints", {
        "Count": math_node(group, "GREATER_THAN", remaining, 0.0),
        "Position": sample(group, cells, centre, "FLOAT_VECTOR")})
    inst = add(group, "GeometryNodeInstanceOnPoints", {
        "Points": point.outputs[0], "Instance": box.outputs["Mesh"], "Scale": remaining})
    return add(group, "GeometryNodeSetMaterial", {"Geometry": inst.outputs[0],
                                                  "Material": block_material()}).outputs[0]


def _computation(group, i, cells, placed, width, height):
    """Expansion 2 → 3: for output pixel (Focus Y, Focus X) of map Focus Map, the kernel window on
    each of the inbound layer's maps and lines from its corners to that pixel, growing in.

    The layer mesh carries the window rule (`model/window.py`) as nnvis_rf_y / nnvis_rf_x =
    (stride, offset, size) in input pixels, nnvis_rf_in = (H, W, C) of the inbound layer and
    nnvis_rf_out = (H, W) of this one; the inbound maps' positions and sizes are read from the
    Inbound object's evaluated instances, so the windows follow its Morph and Spacing.
    """
    def spec(attr):
        return split(group, sample(group, cells, named(group, attr, "FLOAT_VECTOR"),
                                   "FLOAT_VECTOR"))

    rf_y, rf_x, rf_in, rf_out = (spec(f"nnvis_rf_{n}") for n in ("y", "x", "in", "out"))
    show = clamp01(group, math_node(group, "SUBTRACT", i["Expansion"], 2.0))
    on = math_node(group, "GREATER_THAN", show, 0.0)
    inbound = add(group, "GeometryNodeObjectInfo", {"Object": i["Inbound"]},
                  transform_space="RELATIVE").outputs["Geometry"]

    def focus(value, count):
        return add(group, "ShaderNodeClamp", {"Value": value, "Min": 0.0,
                                              "Max": math_node(group, "SUBTRACT", count, 1.0)}
                   ).outputs[0]

    fy, fx = focus(i["Focus Y"], rf_out["X"]), focus(i["Focus X"], rf_out["Y"])

    def window(rf, f, size_in):   # (start, end) of the window in [0, 1] map coordinates
        start = math_node(group, "FLOOR", math_node(group, "MULTIPLY_ADD", rf["X"], f, rf["Y"]))
        end = math_node(group, "ADD", start, rf["Z"])
        return (clamp01(group, math_node(group, "DIVIDE", start, size_in)),
                clamp01(group, math_node(group, "DIVIDE", end, size_in)))

    v0, v1 = window(rf_y, fy, rf_in["X"])
    u0, u1 = window(rf_x, fx, rf_in["Y"])
    index = add(group, "GeometryNodeInputIndex").outputs[0]

    def on_inbound_map(k, du, dv):
        """The point (window centre + (du, dv) window sizes) on inbound map k, a hair in front."""
        pos = sample(group, inbound, position(group),
                     "FLOAT_VECTOR", k, "INSTANCE")
        size = split(group, sample(group, inbound, named(group, "nnvis_size", "FLOAT_VECTOR"),
                                   "FLOAT_VECTOR", k, "INSTANCE"))
        u = math_node(group, "MULTIPLY_ADD", math_node(group, "SUBTRACT", u1, u0), du,
                      math_node(group, "MULTIPLY", math_node(group, "ADD", u0, u1), 0.5))
        v = math_node(group, "MULTIPLY_ADD", math_node(group, "SUBTRACT", v1, v0), dv,
                      math_node(group, "MULTIPLY", math_node(group, "ADD", v0, v1), 0.5))
        local = xyz(group, math_node(group, "MULTIPLY", size["X"], -0.01),
                    math_node(group, "MULTIPLY", math_node(group, "SUBTRACT", 0.5, u), size["X"]),
                    math_node(group, "MULTIPLY", math_node(group, "SUBTRACT", 0.5, v), size["Y"]))
        return vec_math(group, "ADD", pos, local), size

    def rectangle(points, sx, sy):
        quad = add(group, "GeometryNodeCurvePrimitiveQuadrilateral", {"Width": 1.0, "Height": 1.0},
                   mode="RECTANGLE")
        scale = vec_math(group, "SCALE", xyz(group, sx, sy, 1.0), scale=show)
        return add(group, "GeometryNodeInstanceOnPoints", {
            "Points": points, "Instance": quad.outputs[0], "Rotation": PLANE_ROTATION,
            "Scale": scale}).outputs[0]

    channels = math_node(group, "MULTIPLY", rf_in["Z"], on)
    centre, size = on_inbound_map(index, 0.0, 0.0)
    windows = rectangle(
        add(group, "GeometryNodePoints", {"Count": channels, "Position": centre}).outputs[0],
        math_node(group, "MULTIPLY", math_node(group, "SUBTRACT", u1, u0), size["X"]),
        math_node(group, "MULTIPLY", math_node(group, "SUBTRACT", v1, v0), size["Y"]))
    mine = sample(group, placed, position(group),
                  "FLOAT_VECTOR", i["Focus Map"])
    grown = clamp01(group, i["Expansion"])
    w, h = math_node(group, "MULTIPLY", width, grown), math_node(group, "MULTIPLY", height, grown)

    def pixel_centre(f, count):
        return math_node(group, "SUBTRACT", 0.5, math_node(group, "DIVIDE",
                                                           math_node(group, "ADD", f, 0.5), count))

    target = vec_math(group, "ADD", mine, xyz(
        group, math_node(group, "MULTIPLY", w, -0.01),
        math_node(group, "MULTIPLY", pixel_centre(fx, rf_out["Y"]), w),
        math_node(group, "MULTIPLY", pixel_centre(fy, rf_out["X"]), h)))
    has_inbound = math_node(group, "GREATER_THAN", channels, 0.0)
    marker = rectangle(add(group, "GeometryNodePoints", {"Count": has_inbound,
                                                         "Position": target}).outputs[0],
                       math_node(group, "DIVIDE", w, rf_out["Y"]),
                       math_node(group, "DIVIDE", h, rf_out["X"]))
    corner = math_node(group, "FLOORED_MODULO", index, 4.0)
    start, _ = on_inbound_map(math_node(group, "FLOOR", math_node(group, "DIVIDE", index, 4.0)),
                              math_node(group, "SUBTRACT", math_node(group, "FLOORED_MODULO",
                                                                     corner, 2.0), 0.5),
                              math_node(group, "SUBTRACT", math_node(group, "FLOOR", math_node(
                                  group, "DIVIDE", corner, 2.0)), 0.5))
    ends = add(group, "GeometryNodePoints", {"Count": math_node(group, "MULTIPLY", channels, 4.0),
                                             "Position": start}).outputs[0]
    towards = vec_math(group, "SUBTRACT", target, position(group))
    unit_line = add(group, "GeometryNodeCurvePrimitiveLine", {"Start": (0.0, 0.0, 0.0),
                                                              "End": (1.0, 0.0, 0.0)})
    lines = add(group, "GeometryNodeInstanceOnPoints", {
        "Points": ends, "Instance": unit_line.outputs[0],
        "Rotation": add(group, "FunctionNodeAlignRotationToVector", {"Vector": towards},
                        axis="X").outputs[0],
        "Scale": xyz(group, math_node(group, "MULTIPLY", vec_math(group, "LENGTH", towards), show),
                     1.0, 1.0)}).outputs[0]
    curves = add(group, "GeometryNodeRealizeInstances",
                 {"Geometry": join(group, [windows, marker, lines])}).outputs[0]
    # tubes, not curves: Cycles renders curves only on Curves objects, this is a mesh object
    profile = add(group, "GeometryNodeCurvePrimitiveCircle", {
        "Resolution": 6, "Radius": math_node(group, "MULTIPLY", w, 0.006)}).outputs["Curve"]
    tubes = add(group, "GeometryNodeCurveToMesh", {"Curve": curves, "Profile Curve": profile})
    return add(group, "GeometryNodeSetMaterial", {"Geometry": tubes.outputs[0],
                                                  "Material": accent_material()}).outputs[0]


def empty_material(name: str):
    """A new material with an empty node tree, for the builders below to fill."""
    mat = bpy.data.materials.new(name)
    compat.use_nodes(mat)
    mat.node_tree.nodes.clear()
    return mat


def emission_material(name: str, colour):
    """A material all runs share (found by name): plain emission of `colour` (text, labels)."""
    mat = bpy.data.materials.get(name)
    if mat is None:
        mat = empty_material(name)
        tree = mat.node_tree
        emit = add(tree, "ShaderNodeEmission", {"Color": (*colour, 1.0), "Strength": 1.0})
        tree.links.new(emit.outputs[0], add(tree, "ShaderNodeOutputMaterial").inputs["Surface"])
    return mat


def shared_material(name: str, colour, emission: float):
    """A material all runs share (found by name), its colour in an RGB node `nnvis_colour`."""
    mat = bpy.data.materials.get(name)
    if mat is not None:
        return mat
    mat = empty_material(name)
    tree = mat.node_tree
    rgb = add(tree, "ShaderNodeRGB", name="nnvis_colour")
    rgb.outputs[0].default_value = (*colour, 1.0)
    bsdf = add(tree, "ShaderNodeBsdfPrincipled", {"Base Color": rgb.outputs[0],
                                                  "Emission Color": rgb.outputs[0],
                                                  "Emission Strength": emission, "Roughness": 0.6})
    out = add(tree, "ShaderNodeOutputMaterial")
    tree.links.new(bsdf.outputs[0], out.inputs["Surface"])
    return mat


def block_material():
    """The layers' boxes at Expansion 0."""
    return shared_material(BLOCK_MATERIAL, (0.16, 0.2, 0.28), 0.15)


def accent_material():
    """Kernel windows and computation lines at Expansion 3."""
    return shared_material(ACCENT_MATERIAL, (1.0, 0.55, 0.1), 0.5)


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


def colour_maps_group():
    """Shader group (Fac, Map, Auto) → Color: the colour of Fac in map number Map — 0 is `Auto` (the
    material's own ramp), k is `colormaps.NAMES[k - 1]` — crossfading between neighbouring numbers,
    so the `Colour Map` input animates smoothly."""
    group = current(GROUP_COLOURS)
    if group is not None:
        return group
    group = new_group(GROUP_COLOURS, "ShaderNodeTree")
    socket(group, "Fac", "INPUT", "NodeSocketFloat")
    socket(group, "Map", "INPUT", "NodeSocketFloat")
    socket(group, "Auto", "INPUT", "NodeSocketColor")
    socket(group, "Color", "OUTPUT", "NodeSocketColor")
    i = group.nodes.new("NodeGroupInput").outputs
    colour = i["Auto"]
    for k, name in enumerate(colormaps.NAMES, 1):
        ramp = add(group, "ShaderNodeValToRGB", {"Fac": i["Fac"]}, name=f"nnvis_{name}")
        set_ramp(ramp.color_ramp, name)
        colour = mix(group, clamp01(group, math_node(group, "SUBTRACT", i["Map"], float(k - 1))),
                     colour, ramp.outputs["Color"], "RGBA")
    group.links.new(colour, group.nodes.new("NodeGroupOutput").inputs["Color"])
    return group


_TEMPLATES: dict[tuple, str] = {}   # material kind → a material of this build to copy


def set_default(socket_, value) -> None:
    """Write a socket's default value only if it changes: each write makes Blender update the
    node tree (≈ 0.4 ms), which adds up over hundreds of materials."""
    current = socket_.default_value
    same = tuple(current) == tuple(value) if hasattr(value, "__len__") else current == value
    if not same:
        socket_.default_value = value


def begin_build() -> None:
    """Forget the previous build's material templates (called at the start of every build)."""
    _TEMPLATES.clear()


def atlas_material(name: str, image, atlas, colormap: str, scale: float, offset: float,
                   instanced: bool, emission: float = 0.6, mode_scales=None, mode_stride: int = 0):
    """Material colouring each cell (instanced) or edge (curve) by its atlas values.

    colour = map(value × gain × scale + offset): scale/offset are fixed for the whole run so every
    epoch is compared on the same scale (Value nodes `nnvis_scale` / `nnvis_offset`); gain is the
    cell's `Normalise Per Map` factor. The map is the `nnvis_colormap` ramp (set to `colormap`) or
    another by the `Colour Map` input (`nnvis_cmap`); then a tint (`nnvis_tint`,
    `nnvis_tint_amount`), the highlight (`nnvis_lit`/`nnvis_dim`) and the look's `nnvis_glow`
    (emission multiplier) and `nnvis_flat` (0 = lit surface, 1 = pure emission: exact colours).
    Edges with `mode_scales`: the atlas holds one block of `mode_stride` cells per colour mode and
    the curve attribute `nnvis_mode` picks the block and its scale (`nnvis_mode_scale_<k>`).

    The node tree is built once per kind and build; further materials of that kind are copies
    with their own parameters (≈ 60 nodes each: DenseNet121's 900 materials went from 17 s to <2 s).
    """
    key = (instanced, emission, None if mode_scales is None else len(mode_scales), colormap)
    template = bpy.data.materials.get(_TEMPLATES.get(key, ""))
    if template is not None and template.get("nnvis_kind") == repr(key):
        mat = template.copy()
        mat.name = name
    else:
        mat = _atlas_tree(name, instanced, emission, key[2])
        set_ramp(mat.node_tree.nodes["nnvis_colormap"].color_ramp, colormap)
        mat["nnvis_colormap"] = colormap
        mat["nnvis_kind"] = repr(key)
        _TEMPLATES[key] = mat.name
    nodes = mat.node_tree.nodes
    lookup = nodes["nnvis_lookup"]
    params = {"Last Epoch": atlas.epochs - 1, "Tile Width": atlas.tile_w,
              "Tile Height": atlas.tile_h, "Width": atlas.width, "Height": atlas.height,
              "Rows Per Epoch": atlas.rows_per_epoch}
    for key_name, value in params.items():
        set_default(lookup.inputs[key_name], float(value))
    for tex in ("nnvis_tex_a", "nnvis_tex_b"):
        nodes[tex].image = image
    set_default(nodes["nnvis_scale"].outputs[0], scale)
    set_default(nodes["nnvis_offset"].outputs[0], offset)
    if mode_scales is not None:
        set_default(nodes["nnvis_mode_stride"].inputs[1], float(mode_stride))
        for k, mode_scale in enumerate(mode_scales):
            set_default(nodes[f"nnvis_mode_scale_{k}"].outputs[0], mode_scale)
    return mat


def _atlas_tree(name: str, instanced: bool, emission: float, modes: int | None):
    """The node tree of `atlas_material`, its per-material values left at defaults."""
    mat = empty_material(name)
    tree = mat.node_tree
    source = "INSTANCER" if instanced else "GEOMETRY"

    def attribute(attr_name):
        return add(tree, "ShaderNodeAttribute", attribute_type=source,
                   attribute_name=attr_name).outputs["Fac"]

    lookup = add(tree, "ShaderNodeGroup", node_tree=lookup_group(), name="nnvis_lookup")
    cell = attribute("nnvis_map" if instanced else "nnvis_edge")
    if modes is not None:
        cell = add(tree, "ShaderNodeMath", {0: attribute("nnvis_mode"), 2: cell},
                   operation="MULTIPLY_ADD", name="nnvis_mode_stride").outputs[0]
        picked = None
        for k in range(modes):
            term = math_node(tree, "MULTIPLY", math_node(tree, "COMPARE", attribute("nnvis_mode"),
                                                         float(k), 0.5),
                             value_node(tree, f"nnvis_mode_scale_{k}", f"Mode {k} scale", 1.0))
            picked = term if picked is None else math_node(tree, "ADD", picked, term)
    tree.links.new(cell, lookup.inputs["Cell"])
    tree.links.new(attribute("nnvis_epoch"), lookup.inputs["Epoch"])
    if instanced:
        uv = add(tree, "ShaderNodeAttribute", attribute_type="GEOMETRY", attribute_name="nnvis_uv")
        tree.links.new(uv.outputs["Vector"], lookup.inputs["UV"])
    else:
        lookup.inputs["UV"].default_value = (0.5, 0.5, 0.0)
    values = []
    for vec, tex_name in (("Vector A", "nnvis_tex_a"), ("Vector B", "nnvis_tex_b")):
        tex = add(tree, "ShaderNodeTexImage", {"Vector": lookup.outputs[vec]},
                  interpolation="Closest", extension="EXTEND", name=tex_name)
        values.append(pick_channel(tree, tex.outputs["Color"], lookup.outputs["Channel"]))
    value = mix(tree, lookup.outputs["Factor"], values[0], values[1])
    if instanced:
        value = math_node(tree, "MULTIPLY", value, attribute("nnvis_gain"))
    run_scale = value_node(tree, "nnvis_scale", "Colour scale", 1.0)
    if modes is not None:
        run_scale = math_node(tree, "MULTIPLY", run_scale, picked)
    t = math_node(tree, "MULTIPLY_ADD", value, run_scale,
                  value_node(tree, "nnvis_offset", "Colour offset", 0.0))
    ramp = add(tree, "ShaderNodeValToRGB", {"Fac": t}, name="nnvis_colormap")
    maps = add(tree, "ShaderNodeGroup", {"Fac": t, "Auto": ramp.outputs["Color"]},
               node_tree=colour_maps_group(), name="nnvis_colormaps")
    tree.links.new(attribute("nnvis_cmap"), maps.inputs["Map"])
    tint = add(tree, "ShaderNodeRGB", name="nnvis_tint", label="Tint")
    tint.outputs[0].default_value = (1.0, 1.0, 1.0, 1.0)
    colour = mix(tree, value_node(tree, "nnvis_tint_amount", "Tint amount", 0.0),
                 maps.outputs["Color"], tint.outputs[0], "RGBA")
    colour = vec_math(tree, "SCALE", colour, scale=math_node(
        tree, "MULTIPLY_ADD", attribute("nnvis_dim"), -DIM, 1.0))
    boost = math_node(tree, "MULTIPLY_ADD", attribute("nnvis_lit"), 2.0, 1.0)
    glow = math_node(tree, "MULTIPLY", value_node(tree, "nnvis_glow", "Glow", 1.0), boost)
    bsdf = add(tree, "ShaderNodeBsdfPrincipled", {
        "Base Color": colour, "Emission Color": colour, "Roughness": 0.55,
        "Emission Strength": math_node(tree, "MULTIPLY", glow, emission)})
    flat = add(tree, "ShaderNodeEmission", {"Color": colour, "Strength": math_node(
        tree, "MULTIPLY", glow, min(1.0, emission / 0.6))})     # dim edges stay dim when flat
    shader = add(tree, "ShaderNodeMixShader", {
        "Fac": value_node(tree, "nnvis_flat", "Flat", 0.0), 1: bsdf.outputs[0], 2: flat.outputs[0]})
    out = add(tree, "ShaderNodeOutputMaterial")
    tree.links.new(shader.outputs[0], out.inputs["Surface"])
    return mat


def value_node(tree, name: str, label: str, value: float):
    node = add(tree, "ShaderNodeValue", name=name, label=label)
    node.outputs[0].default_value = value
    return node.outputs[0]


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


def legend_group():
    """A colour bar (U across the bar = the colour-map position) with min/max labels and a title
    under and above it, in the object's local X-Y plane. The bar stores `Colour Map` as
    `nnvis_cmap`, so the legend follows the same input as the layers."""
    group = current(GROUP_LEGEND)
    if group is not None:
        return group
    group = new_group(GROUP_LEGEND)
    gin, gout = geometry_io(group)    # Epoch too, keyed like every NNVis modifier; values are fixed
    socket(group, "Colour Map", "INPUT", "NodeSocketFloat", 0.0, 0.0, float(len(colormaps.NAMES)),
           description="As on the layers: 0 = the layer's own ramp")
    socket(group, "Width", "INPUT", "NodeSocketFloat", 2.0, 0.0)
    socket(group, "Height", "INPUT", "NodeSocketFloat", 0.2, 0.0)
    for name in ("Min", "Max", "Title"):
        socket(group, name, "INPUT", "NodeSocketString")
    socket(group, "Material", "INPUT", "NodeSocketMaterial")
    socket(group, "Text Material", "INPUT", "NodeSocketMaterial")
    i = gin.outputs
    w, h = i["Width"], i["Height"]
    grid = add(group, "GeometryNodeMeshGrid", {"Size X": w, "Size Y": h, "Vertices X": 2,
                                               "Vertices Y": 2})
    bar = store(group, grid.outputs["Mesh"], "nnvis_uv", grid.outputs["UV Map"], "FLOAT2", "CORNER")
    bar = store(group, bar, "nnvis_cmap", i["Colour Map"], "FLOAT", "POINT")
    bar = add(group, "GeometryNodeTransform", {"Geometry": bar, "Translation": xyz(
        group, math_node(group, "MULTIPLY", w, 0.5), math_node(group, "MULTIPLY", h, 0.5))})
    bar = add(group, "GeometryNodeSetMaterial", {"Geometry": bar.outputs[0],
                                                 "Material": i["Material"]}).outputs[0]
    parts = [bar]
    size = math_node(group, "MULTIPLY", h, 0.7)
    for text, x, y, align in ((i["Min"], 0.0, -0.9, "LEFT"), (i["Max"], w, -0.9, "RIGHT"),
                              (i["Title"], 0.0, 1.3, "LEFT")):
        curves = add(group, "GeometryNodeStringToCurves", {"String": text, "Size": size},
                     align_x=align).outputs["Curve Instances"]
        real = add(group, "GeometryNodeRealizeInstances", {"Geometry": curves}).outputs[0]
        fill = add(group, "GeometryNodeFillCurve", {"Curve": real}).outputs[0]
        moved = add(group, "GeometryNodeTransform", {"Geometry": fill, "Translation": xyz(
            group, x, math_node(group, "MULTIPLY", h, y))}).outputs[0]
        parts.append(add(group, "GeometryNodeSetMaterial", {
            "Geometry": moved, "Material": i["Text Material"]}).outputs[0])
    group.links.new(join(group, parts), gout.inputs["Geometry"])
    return group
