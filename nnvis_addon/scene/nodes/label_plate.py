"""NNVis Label Plate: a backing card behind a label's text, in the background's colour, so the
text reads wherever it stands — over pale feature maps as over the dark background."""
from __future__ import annotations

from .kit import add, arrange, current, join, math_node, new_group, section, socket, vec_math, xyz
from ... import names


def label_plate_group():
    """The text as it is, plus a rectangle just behind it: its box grown by `Padding` (in text
    heights) and set to `Material`. The text's own box, so the card follows any edit."""
    group = current(names.GROUP_LABEL_PLATE)
    if group is not None:
        return group
    group = new_group(names.GROUP_LABEL_PLATE)
    socket(group, "Geometry", "INPUT", "NodeSocketGeometry")
    socket(group, "Geometry", "OUTPUT", "NodeSocketGeometry")
    socket(group, "Padding", "INPUT", "NodeSocketFloat", 0.12, 0.0, 1.0,
           description="Margin round the text, as a share of the label's height")
    socket(group, "Material", "INPUT", "NodeSocketMaterial",
           description="The card's material (nnvis: the background colour)")
    gin, gout = group.nodes.new("NodeGroupInput"), group.nodes.new("NodeGroupOutput")
    text = gin.outputs["Geometry"]
    with section(group, "Card behind the text"):
        box = add(group, "GeometryNodeBoundBox", {"Geometry": text})
        lo, hi = box.outputs["Min"], box.outputs["Max"]
        size = add(group, "ShaderNodeSeparateXYZ", {"Vector": vec_math(group, "SUBTRACT", hi, lo)})
        pad = math_node(group, "MULTIPLY", size.outputs["Y"], gin.outputs["Padding"])
        grid = add(group, "GeometryNodeMeshGrid", {
            "Size X": math_node(group, "MULTIPLY_ADD", pad, 2.0, size.outputs["X"]),
            "Size Y": math_node(group, "MULTIPLY_ADD", pad, 2.0, size.outputs["Y"]),
            "Vertices X": 2, "Vertices Y": 2})
        centre = vec_math(group, "SCALE", vec_math(group, "ADD", lo, hi), scale=0.5)
        behind = xyz(group, 0.0, 0.0, math_node(group, "MULTIPLY", size.outputs["Y"], -0.02))
        card = add(group, "GeometryNodeTransform", {
            "Geometry": grid.outputs["Mesh"],
            "Translation": vec_math(group, "ADD", centre, behind)}).outputs[0]
        card = add(group, "GeometryNodeSetMaterial", {"Geometry": card,
                                                      "Material": gin.outputs["Material"]})
    group.links.new(join(group, [card.outputs[0], text]), gout.inputs["Geometry"])
    arrange(group)
    return group
