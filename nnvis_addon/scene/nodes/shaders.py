"""Shader groups every atlas material uses: the atlas lookup (cell, epoch, uv → texel) and the
crossfading colour maps."""
from __future__ import annotations

import bpy
import numpy as np

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
    so the `Colour Map` input animates smoothly. The named maps are rows of one small image read
    with linear interpolation (`colour_maps_image`): one texture lookup per shading point, where a
    Color Ramp per map cost every sample all of them (6× a final frame's shading time)."""
    group = current(names.GROUP_COLOURS)
    if group is not None:
        return group
    group = new_group(names.GROUP_COLOURS, "ShaderNodeTree")
    socket(group, "Fac", "INPUT", "NodeSocketFloat", description="Position on the colour map")
    socket(group, "Map", "INPUT", "NodeSocketFloat", description="Which map (fractions blend)")
    socket(group, "Auto", "INPUT", "NodeSocketColor", description="Map 0: the material's own")
    socket(group, "Color", "OUTPUT", "NodeSocketColor")
    i = group.nodes.new("NodeGroupInput").outputs
    count = len(colormaps.NAMES)
    with section(group, "Texel centres: Fac along a row, map k in row k - 1"):
        x = math_node(group, "MULTIPLY_ADD", clamp01(group, i["Fac"]), (LUT_WIDTH - 1) / LUT_WIDTH,
                      0.5 / LUT_WIDTH)
        row = math_node(group, "MINIMUM", math_node(group, "MAXIMUM", math_node(
            group, "SUBTRACT", i["Map"], 1.0), 0.0), float(count - 1))
        y = math_node(group, "MULTIPLY_ADD", row, 1.0 / count, 0.5 / count)
    named_map = add(group, "ShaderNodeTexImage", {"Vector": add(
        group, "ShaderNodeCombineXYZ", {"X": x, "Y": y}).outputs[0]}, image=colour_maps_image(),
        interpolation="Linear", extension="EXTEND", name=names.COLOUR_MAPS_IMAGE)
    colour = mix(group, clamp01(group, i["Map"]), i["Auto"], named_map.outputs["Color"], "RGBA")
    group.links.new(colour, group.nodes.new("NodeGroupOutput").inputs["Color"])
    arrange(group)
    return group


LUT_WIDTH = 256


def colour_maps_image():
    """The named colour maps as rows of a packed float image, `LUT_WIDTH` linear-light colours
    each. Every map's stops fall on a column (17 intervals of 15 columns), so linear interpolation
    between columns is the Color Ramp's own piecewise-linear map."""
    image = bpy.data.images.get(names.COLOUR_MAPS_IMAGE)
    if image is None or tuple(image.size) != (LUT_WIDTH, len(colormaps.NAMES)):
        image = bpy.data.images.new(names.COLOUR_MAPS_IMAGE, LUT_WIDTH, len(colormaps.NAMES),
                                    alpha=False, float_buffer=True)
    image.colorspace_settings.name = "Non-Color"
    t = np.linspace(0.0, 1.0, LUT_WIDTH)
    rgba = np.ones((len(colormaps.NAMES), LUT_WIDTH, 4), np.float32)
    for k, name in enumerate(colormaps.NAMES):
        stops = colormaps.srgb_to_linear(colormaps.STOPS[name])
        at = np.linspace(0.0, 1.0, len(stops))
        rgba[k, :, :3] = np.stack([np.interp(t, at, stops[:, c]) for c in range(3)], axis=-1)
    image.pixels.foreach_set(rgba.ravel())
    image.pack()
    return image


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


