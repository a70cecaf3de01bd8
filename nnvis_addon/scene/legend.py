"""Colour legend: a bar of one layer's colour map with the activation values at its ends.

The values come from the layer material's fixed scale (`nnvis_scale`, `nnvis_offset`): the bar's
left end is the value drawn as t = 0, its right end t = 1. The legend has its own `Colour Map`
input, which the sidebar's "all layers" buttons set along with the layers'. With Normalise Per Map
on, each map has its own scale and the legend shows the layer's.
"""
from __future__ import annotations

import bpy
from mathutils import Matrix

from . import nodes
from .layers import MODIFIER, set_inputs
from .overlays import MIN_TEXT, label_material
from .. import names


def value_range(material) -> tuple[float, float]:
    """(value at t = 0, value at t = 1) of an atlas material's colour scale."""
    scale = material.node_tree.nodes[names.SCALE].outputs[0].default_value
    offset = material.node_tree.nodes[names.OFFSET].outputs[0].default_value
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


def legend_layer(collection, name: str = ""):
    """The layer object the legend describes: `name`, else the first convolution (or folded
    block), else the first
    feature-map layer that is not the input, else the first layer with a modifier."""
    layers = [o for o in collection.objects if names.LAYER in o and MODIFIER in o.modifiers]
    if name:
        return next((o for o in layers if o[names.LAYER] == name), None)
    spatial = [o for o in layers if len(o[names.SHAPE]) == 3 and o[names.KIND] != "InputLayer"]
    convs = [o for o in spatial if "Conv" in o[names.KIND] or names.BLOCK_TITLE in o]
    return (convs or spatial or layers or [None])[0]


def add_legend(collection, layer_obj, placement: Matrix, width: float, run_name: str):
    """The legend object for `layer_obj`, at `placement` (its local X-Y is the legend's plane)."""
    mod = layer_obj.modifiers[MODIFIER]
    material = mod[nodes.input_ids(mod.node_group)["Material"]]
    lo, hi = value_range(material)
    obj = bpy.data.objects.new("Colour legend", bpy.data.meshes.new("Colour legend"))
    obj[names.LEGEND_LAYER] = layer_obj[names.LAYER]
    legend = obj.modifiers.new(MODIFIER, "NODES")
    legend.node_group = nodes.legend_group()
    title = layer_obj.get(names.BLOCK_TITLE, layer_obj[names.LAYER])
    # the group's text stands 0.7 bar heights tall
    set_inputs(legend, {"Width": width, "Height": max(width * 0.07, MIN_TEXT / 0.7),
                        "Min": f"{lo:.3g}",
                        "Max": f"{hi:.3g}", "Title": f"{title} activation",
                        "Material": bar_material(f"{run_name}:legend", material),
                        "Text Material": label_material()})
    obj.matrix_world = placement
    collection.objects.link(obj)
    return obj
