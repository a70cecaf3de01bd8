"""NNVis Legend: the colour bar with its min/max values and title, drawn by geometry nodes."""
from __future__ import annotations

from ... import colormaps
from .kit import (add, arrange, current, geometry_io, join, math_node, new_group, panels, section,
                  socket, store, xyz)
from ... import names


def legend_group():
    """A colour bar (U across the bar = the colour-map position) with min/max labels and a title
    under and above it, in the object's local X-Y plane. The bar stores `Colour Map` as
    `nnvis_colour_map`, so the legend follows the same input as the layers."""
    group = current(names.GROUP_LEGEND)
    if group is not None:
        return group
    group = new_group(names.GROUP_LEGEND)
    gin, gout = geometry_io(group)    # Epoch too, keyed like every NNVis modifier; values are fixed
    socket(group, "Colour Map", "INPUT", "NodeSocketFloat", 0.0, 0.0, float(len(colormaps.NAMES)),
           description="As on the layers: 0 = the layer's own ramp")
    socket(group, "Width", "INPUT", "NodeSocketFloat", 2.0, 0.0, description="Bar length")
    socket(group, "Height", "INPUT", "NodeSocketFloat", 0.2, 0.0, description="Bar height")
    for name, text in (("Min", "Value at the left end"), ("Max", "Value at the right end"),
                       ("Title", "Text above the bar")):
        socket(group, name, "INPUT", "NodeSocketString", description=text)
    socket(group, "Material", "INPUT", "NodeSocketMaterial")
    socket(group, "Text Material", "INPUT", "NodeSocketMaterial")
    panels(group, {"Bar": ("Colour Map", "Width", "Height", "Material"),
                   "Text": ("Min", "Max", "Title", "Text Material")})
    i = gin.outputs
    with section(group, "Colour bar"):
        w, h = i["Width"], i["Height"]
        grid = add(group, "GeometryNodeMeshGrid", {"Size X": w, "Size Y": h, "Vertices X": 2,
                                                   "Vertices Y": 2})
        bar = store(group, grid.outputs["Mesh"], names.UV, grid.outputs["UV Map"], "FLOAT2",
                    "CORNER")
        bar = store(group, bar, names.COLOUR_MAP, i["Colour Map"], "FLOAT", "POINT")
        bar = add(group, "GeometryNodeTransform", {"Geometry": bar, "Translation": xyz(
            group, math_node(group, "MULTIPLY", w, 0.5), math_node(group, "MULTIPLY", h, 0.5))})
        bar = add(group, "GeometryNodeSetMaterial", {"Geometry": bar.outputs[0],
                                                     "Material": i["Material"]}).outputs[0]
        parts = [bar]
    with section(group, "Min, max and title"):
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
    arrange(group)
    return group
