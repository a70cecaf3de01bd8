"""Colour legends: a bar of one layer's colour map with the activation values at its ends — one
per colour map the run's layers use (viridis for non-negative outputs, coolwarm for signed ones)
— and one of the edges' colours (the first weighted connection's, in its Colour Mode).

The values come from the layer material's fixed scale (`nnvis_scale`, `nnvis_offset`): the bar's
left end is the value drawn as t = 0, its right end t = 1. The legend has its own `Colour Map`
input, which the sidebar's "all layers" buttons set along with the layers'. With Normalise Per Map
on, each map has its own scale and the legend shows the layer's.
"""
from __future__ import annotations

import re

import bpy
from mathutils import Matrix

from . import nodes
from .layers import MODIFIER, material_of, set_inputs
from .font import text_width
from .overlays import MIN_TEXT, label_material
from .. import blocks, names
from ..model.kinds import INPUT


def value_range(material, mode: int | None = None) -> tuple[float, float]:
    """(value at t = 0, value at t = 1) of an atlas material's colour scale (an edge material's
    for colour mode `mode`, which scales it again)."""
    tree = material.node_tree.nodes
    scale = tree[names.SCALE].outputs[0].default_value
    if mode is not None and f"{names.MODE_SCALE}{mode}" in tree:
        scale *= tree[f"{names.MODE_SCALE}{mode}"].outputs[0].default_value
    offset = tree[names.OFFSET].outputs[0].default_value
    if scale == 0:
        return offset, offset
    return -offset / scale + 0.0, (1.0 - offset) / scale     # + 0.0: no "-0" label


def bar_material(name: str, layer_material):
    """Emission of the colour map at the bar's U, using a copy of the layer's own ramp."""
    mat = nodes.empty_material(name)
    tree = mat.node_tree
    uv = nodes.add(tree, "ShaderNodeAttribute", attribute_type="GEOMETRY",
                   attribute_name=names.UV).outputs["Vector"]
    u = nodes.split(tree, uv)["X"]
    source = layer_material.node_tree.nodes[names.RAMP]
    ramp = tree.nodes.new("ShaderNodeValToRGB")
    ramp.name = names.RAMP
    elements = ramp.color_ramp.elements
    for position in [e.position for e in source.color_ramp.elements][2:]:
        elements.new(position)
    for element, old in zip(elements, source.color_ramp.elements):
        element.position, element.color = old.position, old.color
    ramp.color_ramp.interpolation = source.color_ramp.interpolation
    tree.links.new(u, ramp.inputs["Fac"])
    cmap = nodes.add(tree, "ShaderNodeAttribute", attribute_type="GEOMETRY",
                     attribute_name=names.COLOUR_MAP)
    maps = nodes.add(tree, "ShaderNodeGroup", {"Fac": u, "Map": cmap.outputs["Fac"],
                                               "Auto": ramp.outputs["Color"]},
                     node_tree=nodes.colour_maps_group())
    emit = nodes.add(tree, "ShaderNodeEmission", {"Color": maps.outputs["Color"]})
    out = nodes.add(tree, "ShaderNodeOutputMaterial")
    tree.links.new(emit.outputs[0], out.inputs["Surface"])
    nodes.arrange(tree)
    return mat


def described(collection, legend_obj):
    """The layer or edges object whose colour scale `legend_obj` shows."""
    key = legend_obj[names.LEGEND_LAYER]
    return next((o for o in collection.objects if o.get(names.LAYER) == key
                 or (names.EDGES in o and " → ".join(o[names.EDGES]) == key)), None)


def other_scales(collection, first) -> list:
    """Beside the legend's layer `first`, the first layer of every other colour map in use (a
    network mixing non-negative and signed outputs draws viridis and coolwarm maps): one legend
    per colour scale."""
    layers = [o for o in collection.objects if names.LAYER in o and MODIFIER in o.modifiers
              and o[names.KIND] != INPUT]
    seen, out = {material_of(first).get(names.RAMP_NAME)}, []
    for obj in layers:
        ramp = material_of(obj).get(names.RAMP_NAME)
        if ramp not in seen:
            seen.add(ramp)
            out.append(obj)
    return out


def colour_mode(edges_obj) -> int:
    """The edges' Colour Mode input (0 weight, 1 |weight|, ...)."""
    mod = edges_obj.modifiers[MODIFIER]
    return int(mod[nodes.input_ids(mod.node_group)["Colour Mode"]])


def range_of(obj) -> tuple[float, float]:
    """`value_range` of a layer's or an edges object's material (edges: in their Colour Mode)."""
    return value_range(material_of(obj), colour_mode(obj) if names.EDGES in obj else None)


def edges_described(collection):
    """The first connection whose edges carry weights (coloured by the atlas, not the grey of
    pooling or flatten links): the edge-colour legend's."""
    for obj in collection.objects:
        if names.EDGES in obj and MODIFIER in obj.modifiers:
            lo, hi = range_of(obj)
            if hi != lo:
                return obj
    return None


def legend_layer(collection, name: str = ""):
    """The layer object the legend describes: `name`, else the first convolution (or folded
    block), else the first
    feature-map layer that is not the input, else the first layer with a modifier."""
    layers = [o for o in collection.objects if names.LAYER in o and MODIFIER in o.modifiers]
    if name:
        return next((o for o in layers if o[names.LAYER] == name), None)
    spatial = [o for o in layers if len(o[names.SHAPE]) == 3 and o[names.KIND] != INPUT]
    convs = [o for o in spatial if "Conv" in o[names.KIND] or names.BLOCK_TITLE in o]
    return (convs or spatial or layers or [None])[0]


def bar_height(width: float) -> float:
    """A legend bar's height for its width: its text stands 0.7 bar heights tall, MIN_TEXT at
    least."""
    return max(width * 0.07, MIN_TEXT / 0.7)


def add_legend(collection, layer_obj, placement: Matrix, width: float, run_name: str,
               title: str = ""):
    """The legend object for `layer_obj` (a layer, or an edges object: then titled `title`), at
    `placement` (its local X-Y is the legend's plane)."""
    material = material_of(layer_obj)
    lo, hi = range_of(layer_obj)
    key = layer_obj[names.LAYER] if names.LAYER in layer_obj else " → ".join(layer_obj[names.EDGES])
    name = f"Colour legend {key}"
    obj = bpy.data.objects.new(name, bpy.data.meshes.new(name))
    obj[names.LEGEND_LAYER] = key
    legend = obj.modifiers.new(MODIFIER, "NODES")
    legend.node_group = nodes.legend_group()
    if not title:         # the longest that fits over the bar
        name = layer_obj.get(names.BLOCK_TITLE, blocks.readable(layer_obj[names.LAYER]))
        said = re.search(r"activation(_\d+)?$", name, re.IGNORECASE)   # Keras' `activation_3`
        fits = [t for t in ([name] if said else [f"{name} activation", name])
                if text_width(t) * 0.7 * bar_height(width) <= width]
        title = (fits or ["activation"])[0]
    set_inputs(legend, {"Width": width, "Height": bar_height(width), "Min": f"{lo:.3g}",
                        "Max": f"{hi:.3g}", "Title": title,
                        "Material": bar_material(f"{run_name}:legend {obj[names.LEGEND_LAYER]}",
                                                 material),
                        "Text Material": label_material()})
    obj.matrix_world = placement
    collection.objects.link(obj)
    return obj
