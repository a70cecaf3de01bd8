"""NNVis Feature Maps / NNVis Units: the geometry-nodes group that turns a layer's mesh of cell
centres into planes (feature maps) or cubes (units), placed by the animatable controls, with the
layer's block at Expansion 0 and the kernel-window computation at Expansion 3."""
from __future__ import annotations

import math

from ... import colormaps
from .highlight import highlight_sockets, store_highlight
from .kit import (add, arrange, clamp01, current, first, geometry_io, join, math_node, mix,
                  named, new_group, panels, position, sample, section, socket, split, store,
                  vec_math, xyz)
from .materials import accent_material, block_material
from ... import names

MAX_CELLS = 100_000   # Max Cells' soft ceiling; each layer's modifier starts at its cell count

# Cell planes face -X with their image columns along -Y and rows along +Z (see layout.py).
PLANE_ROTATION = (math.pi / 2, 0.0, -math.pi / 2)


def cells_group(shape: str):
    """Instances one plane (feature map) or cube (unit) on every vertex of the layer's mesh, placed
    by the animatable controls.

    The mesh's vertices sit on the layout's grid and carry the other arrangements as offsets from
    the layer's centre (`arrange.py`: nnvis_grid/line/circle/stack, nnvis_box), the cell index
    `nnvis_map`, the per-map colour gain and the highlight traces; instancing copies them to the
    instances, and the group adds what the shader reads (`nnvis_colour_map`,
    `nnvis_gain`, `nnvis_lit`, `nnvis_dim`), and every cell's current centre as loose vertex k of its mesh (the
    anchors the edge curves follow). Expansion 0 → 1 → 2 → 3: the layer's box, the maps stacked, spread
    out, and (planes) the kernel window of one output pixel on the inbound layer's maps with lines
    to that pixel.
    """
    name = names.GROUP_PLANES if shape == "planes" else names.GROUP_CUBES
    group = current(name)
    if group is not None:
        return group
    group = new_group(name)
    gin, gout = geometry_io(group, epoch=False)
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
    socket(group, "Max Cells", "INPUT", "NodeSocketInt", MAX_CELLS, 0,
           description="Level of detail: show only the first N feature maps / units (each "
                       "layer starts at its own count: all)")
    socket(group, "Material", "INPUT", "NodeSocketMaterial",
           description="The layer's atlas material (also in the object's material slot)")
    panels(group, {
        "Layout": ("Expansion", "Morph", "Spacing", "Scale", "Width", "Height"),
        "Colour": ("Colour Map", "Normalise Per Map"),
        "Trace": ("Highlight", "Trace Unit"),
        **({"Computation": ("Focus X", "Focus Y", "Focus Map", "Inbound")}
           if shape == "planes" else {}),
        "Level of Detail": ("Max Cells",)}, closed=("Computation", "Level of Detail"))
    i = gin.outputs
    level = i["Expansion"]
    with section(group, "Where the cells are: stack, line, circle, grid"):
        cells = first(group, i["Geometry"], i["Max Cells"], "POINT")
        centre = vec_math(group, "SUBTRACT", position(group),
                          named(group, names.GRID, "FLOAT_VECTOR"))
        anchors = add(group, "GeometryNodeSetPosition", {
            "Geometry": i["Geometry"],
            "Position": vec_math(group, "ADD", centre, _offset(group, i))}).outputs[0]
        placed = first(group, anchors, i["Max Cells"], "POINT")
        width = math_node(group, "MULTIPLY", i["Width"], i["Scale"])
        height = math_node(group, "MULTIPLY", i["Height"], i["Scale"])
        grown = clamp01(group, level)                   # 0 → 1: the cells grow out of the block
    with section(group, "Cells: planes or cubes with what the shader reads"):
        parts = [_cells(group, i, shape, placed, width, height, grown)]
    with section(group, "The layer's block (Expansion 0)"):
        parts.append(_block(group, cells, centre, i["Scale"], grown))
    if shape == "planes":
        with section(group, "Kernel window and lines (Expansion 3)"):
            parts.append(add(group, "GeometryNodeGroup", {
                "Cells": cells, "Placed": placed, "Width": width, "Height": height,
                **{k: i[k] for k in ("Expansion", "Focus X", "Focus Y", "Focus Map", "Inbound")}},
                node_tree=window_group()).outputs[0])
    # cells first: instance k = map k; anchors first: loose vertex k = where cell k is, shown or
    # not (Max Cells, Expansion 0), which the edge curves follow (loose vertices never render)
    group.links.new(join(group, [anchors, *parts]), gout.inputs["Geometry"])
    arrange(group)
    return group


def _offset(group, i):
    """Where a cell sits relative to its layer's centre: the stack (Expansion ≤ 1) blending into
    line ↔ circle ↔ grid (Morph) times Spacing (Expansion ≥ 2)."""
    line, circle, grid, stack = (named(group, n, "FLOAT_VECTOR")
                                 for n in (names.LINE, names.CIRCLE, names.GRID, names.STACK))
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
    cell = store(group, prim.outputs["Mesh"], names.UV, prim.outputs["UV Map"], "FLOAT2",
                 "CORNER")
    hidden = add(group, "FunctionNodeCompare", {"A": grown, "B": 0.0}, data_type="FLOAT",
                 operation="LESS_EQUAL").outputs[0]
    shown = add(group, "GeometryNodeDeleteGeometry", {"Geometry": placed, "Selection": hidden},
                domain="POINT").outputs[0]
    inst = add(group, "GeometryNodeInstanceOnPoints", {
        "Points": shown, "Instance": cell, "Scale": grown,
        "Rotation": PLANE_ROTATION if shape == "planes" else (0.0, 0.0, 0.0)}).outputs[0]
    size = vec_math(group, "SCALE", xyz(group, width, height), scale=grown)
    geo = store(group, inst, names.SIZE, size, "FLOAT_VECTOR", "INSTANCE")   # for Expansion 3
    geo = store(group, geo, names.COLOUR_MAP, i["Colour Map"], "FLOAT", "INSTANCE")
    gain = mix(group, i["Normalise Per Map"], 1.0, named(group, names.MAP_GAIN))
    geo = store(group, geo, names.GAIN, gain, "FLOAT", "INSTANCE")
    geo = store_highlight(group, i, geo, "INSTANCE")
    return add(group, "GeometryNodeSetMaterial", {"Geometry": geo,
                                                  "Material": i["Material"]}).outputs[0]


def _block(group, cells, centre, scale, grown):
    """The layer as one box (`nnvis_box` × Scale) at its centre, shrinking away as the cells
    grow (Expansion 0 → 1)."""
    block = sample(group, cells, named(group, names.BOX, "FLOAT_VECTOR"), "FLOAT_VECTOR")
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


def window_group():
    """NNVis Kernel Window: the Expansion 3 computation (`_computation`) as a group of its own,
    nested in NNVis Feature Maps — a section a user can open on its own, and a smaller tree to
    build (node editing costs grow with the tree)."""
    group = current(names.GROUP_WINDOW)
    if group is not None:
        return group
    group = new_group(names.GROUP_WINDOW)
    socket(group, "Cells", "INPUT", "NodeSocketGeometry",
           description="The layer's cells (their mesh carries the window rule)")
    socket(group, "Placed", "INPUT", "NodeSocketGeometry",
           description="The cells' anchors where the layout puts them now")
    socket(group, "Width", "INPUT", "NodeSocketFloat", 1.0, 0.0, description="Cell width")
    socket(group, "Height", "INPUT", "NodeSocketFloat", 1.0, 0.0, description="Cell height")
    socket(group, "Expansion", "INPUT", "NodeSocketFloat", 3.0, 0.0, 3.0,
           description="The window grows in from 2 to 3")
    for name in ("Focus X", "Focus Y", "Focus Map"):
        socket(group, name, "INPUT", "NodeSocketInt", 0, 0)
    socket(group, "Inbound", "INPUT", "NodeSocketObject",
           description="The layer whose maps the kernel window is drawn on")
    socket(group, "Geometry", "OUTPUT", "NodeSocketGeometry")
    gin, gout = group.nodes.new("NodeGroupInput"), group.nodes.new("NodeGroupOutput")
    i = gin.outputs
    out = _computation(group, i, i["Cells"], i["Placed"], i["Width"], i["Height"])
    group.links.new(out, gout.inputs["Geometry"])
    arrange(group)
    return group


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

    rf_y, rf_x, rf_in, rf_out = (spec(f"{names.RF}{n}") for n in ("y", "x", "in", "out"))
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
        size = split(group, sample(group, inbound, named(group, names.SIZE, "FLOAT_VECTOR"),
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


