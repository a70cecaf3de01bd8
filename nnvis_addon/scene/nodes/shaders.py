"""Shader groups every atlas material uses: the atlas lookup (cell, epoch, uv → texel) and the
crossfading colour maps."""
from __future__ import annotations

from ... import colormaps
from ... import names
from .kit import (add, arrange, clamp01, current, epoch_pair, math_node, mix, new_group, section,
                  socket, split)


def lookup_group():
    """Shader group: (cell, epoch, uv) → the atlas coordinates of the two epochs to blend, and the
    channel (R, G or B) holding the value. Mirrors `atlas.Atlas.locate`, sampling texel centres so
    'Closest' interpolation reads the exact stored values.
    """
    g = current(names.GROUP_LOOKUP)
    if g is not None:
        return g
    g = new_group(names.GROUP_LOOKUP, "ShaderNodeTree")
    socket(g, "Cell", "INPUT", "NodeSocketFloat", description="Index of the map, unit or edge")
    socket(g, "Epoch", "INPUT", "NodeSocketFloat",
           description="The shown epoch (fractions blend two)")
    # the atlas' numbers in two vectors: two writes per material instead of six (each write
    # updates the material's tree; DenseNet121 has 900 materials)
    socket(g, "Tile", "INPUT", "NodeSocketVector",
           description="A cell's width and height in values, and the atlas rows one epoch takes")
    socket(g, "Atlas", "INPUT", "NodeSocketVector",
           description="The atlas' width and height in texels, and the last epoch's index")
    socket(g, "UV", "INPUT", "NodeSocketVector", description="Where on the cell (0..1)")
    socket(g, "Vector A", "OUTPUT", "NodeSocketVector")
    socket(g, "Vector B", "OUTPUT", "NodeSocketVector")
    socket(g, "Factor", "OUTPUT", "NodeSocketFloat")
    socket(g, "Channel", "OUTPUT", "NodeSocketFloat")
    gin = g.nodes.new("NodeGroupInput").outputs
    out = g.nodes.new("NodeGroupOutput")
    tile, atlas = split(g, gin["Tile"]), split(g, gin["Atlas"])
    i = {"Cell": gin["Cell"], "Epoch": gin["Epoch"], "UV": gin["UV"], "Tile Width": tile["X"],
         "Tile Height": tile["Y"], "Rows Per Epoch": tile["Z"], "Width": atlas["X"],
         "Height": atlas["Y"], "Last Epoch": atlas["Z"]}
    with section(g, "Epochs to blend"):
        _, e0, e1, factor = epoch_pair(g, i["Epoch"], i["Last Epoch"])
    with section(g, "Value index under the UV"):
        uv = add(g, "ShaderNodeSeparateXYZ", {"Vector": i["UV"]}).outputs

        def pixel(coord, size):  # the cell's pixel under coord, clamped so uv = 1 stays inside
            return math_node(g, "MINIMUM", math_node(g, "FLOOR", math_node(g, "MULTIPLY", coord,
                                                                           size)),
                             math_node(g, "SUBTRACT", size, 1.0))

        col = pixel(uv["X"], i["Tile Width"])
        row = math_node(g, "SUBTRACT", math_node(g, "SUBTRACT", i["Tile Height"], 1.0),
                        pixel(uv["Y"], i["Tile Height"]))      # row 0 is the top of the map
        index = math_node(g, "ADD", math_node(g, "MULTIPLY", math_node(
            g, "MULTIPLY_ADD", i["Cell"], i["Tile Height"], row), i["Tile Width"]), col)
        texel = math_node(g, "FLOOR", math_node(g, "DIVIDE", index, 3.0))
        channel = math_node(g, "SUBTRACT", index, math_node(g, "MULTIPLY", texel, 3.0))
    with section(g, "Texel centre in each epoch's rows"):
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
    arrange(g)
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
    group = current(names.GROUP_COLOURS)
    if group is not None:
        return group
    group = new_group(names.GROUP_COLOURS, "ShaderNodeTree")
    socket(group, "Fac", "INPUT", "NodeSocketFloat", description="Position on the colour map")
    socket(group, "Map", "INPUT", "NodeSocketFloat", description="Which map (fractions blend)")
    socket(group, "Auto", "INPUT", "NodeSocketColor", description="Map 0: the material's own")
    socket(group, "Color", "OUTPUT", "NodeSocketColor")
    i = group.nodes.new("NodeGroupInput").outputs
    colour = i["Auto"]
    for k, name in enumerate(colormaps.NAMES, 1):
        ramp = add(group, "ShaderNodeValToRGB", {"Fac": i["Fac"]}, name=f"nnvis_{name}")
        set_ramp(ramp.color_ramp, name)
        colour = mix(group, clamp01(group, math_node(group, "SUBTRACT", i["Map"], float(k - 1))),
                     colour, ramp.outputs["Color"], "RGBA")
    group.links.new(colour, group.nodes.new("NodeGroupOutput").inputs["Color"])
    arrange(group)
    return group


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


