"""Look presets: background, shading, glow and accent colours of a run in one step.

A look only sets values that already exist as plain data — the world's background, the
`nnvis_flat`/`nnvis_glow`/`nnvis_tint*` Value nodes of the run's atlas materials, the shared block,
accent and label materials, the layers' `Colour Map` input, the view transform — so a .blend keeps
its look without the add-on, and every setting stays editable afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass

import bpy

from .. import colormaps
from ..errors import NNVisError
from . import compat, nodes
from .layers import MODIFIER
from .. import names
from .run_record import RunRecord



@dataclass(frozen=True)
class Look:
    label: str
    description: str
    world: tuple            # background, linear RGB
    flat: float             # cells: 0 = lit, 1 = pure emission (exact colours); edges are flat
    glow: float             # emission multiplier (> 1 feeds a compositor glare / bloom)
    block: tuple            # layer boxes (Expansion 0)
    accent: tuple           # kernel windows and computation lines (Expansion 3)
    text: tuple             # overlay labels
    colour_map: str = ""    # every layer's Colour Map input: a colormaps name, "" = own ramp
    edge_tint: tuple = (1.0, 1.0, 1.0)
    edge_tint_amount: float = 0.0
    view_transform: str = "Standard"
    lights: float = 1.0     # factor on the run's lights


LOOKS = {
    "default": Look("Default", "Dark grey background, lit cells with a soft glow",
                    (0.035, 0.037, 0.045), 0.0, 1.0, (0.16, 0.2, 0.28), (1.0, 0.55, 0.1),
                    (0.85, 0.85, 0.85)),
    "paper": Look("Paper", "White background, flat colours: exactly the colour map, for print",
                  (1.0, 1.0, 1.0), 1.0, 1.0, (0.45, 0.48, 0.53), (0.85, 0.2, 0.03),
                  (0.03, 0.03, 0.03)),
    "dark_studio": Look("Dark studio", "Black background, strongly emissive activations "
                        "(values above 1: add a Glare node for bloom)",
                        (0.002, 0.002, 0.003), 0.6, 3.0, (0.04, 0.045, 0.06), (1.0, 0.45, 0.08),
                        (0.9, 0.9, 0.9), view_transform="AgX", lights=0.3),
    "blueprint": Look("Blueprint", "Blueprint blue, activations in blue to white, white edges",
                      (0.012, 0.06, 0.2), 1.0, 1.0, (0.08, 0.2, 0.45), (1.0, 1.0, 1.0),
                      (0.92, 0.95, 1.0), colour_map="blues_r", edge_tint=(0.85, 0.92, 1.0),
                      edge_tint_amount=0.7),
}


def _input(obj, name: str):
    mod = obj.modifiers.get(MODIFIER)
    if mod is None or mod.node_group is None:
        return None, None
    ident = nodes.input_ids(mod.node_group).get(name)
    return (mod, ident) if ident is not None else (None, None)


def _set_value(material, node_name: str, value) -> None:
    node = material.node_tree.nodes.get(node_name) if material and material.node_tree else None
    if node is not None:
        nodes.set_default(node.outputs[0], value)


def apply_look(collection, name: str, scene=None) -> Look:
    """Give the run in `collection` the look `name` (a LOOKS key); with `scene`, also its world
    background and view transform."""
    look = LOOKS.get(name)
    if look is None:
        raise NNVisError(f"unknown look {name!r}; one of {', '.join(LOOKS)}")
    cmap = colormaps.index(look.colour_map) if look.colour_map else 0
    for obj in collection.all_objects:
        mod, ident = _input(obj, "Material")
        material = mod[ident] if mod is not None else None
        if material is not None and material.node_tree and names.GLOW in material.node_tree.nodes:
            _set_value(material, names.FLAT, look.flat)
            _set_value(material, names.GLOW, look.glow)
            edge = names.EDGES in obj
            _set_value(material, names.TINT, (*look.edge_tint, 1.0))
            _set_value(material, names.TINT_AMOUNT, look.edge_tint_amount if edge else 0.0)
        mod, ident = _input(obj, "Colour Map")
        if mod is not None:
            mod[ident] = float(cmap)
        if obj.type == "LIGHT":
            base = obj.data.get(names.ENERGY, obj.data.energy)
            obj.data[names.ENERGY] = base
            obj.data.energy = base * look.lights
    _set_value(nodes.block_material(), names.BASE_COLOUR, (*look.block, 1.0))
    _set_value(nodes.accent_material(), names.BASE_COLOUR, (*look.accent, 1.0))
    for material_name, colour in ((names.MATERIAL_TEXT, look.text),
                                   (names.MATERIAL_CARD, look.world)):
        material = bpy.data.materials.get(material_name)
        if material is not None and material.node_tree:
            for node in material.node_tree.nodes:
                if node.type == "EMISSION":
                    node.inputs["Color"].default_value = (*colour, 1.0)
    if scene is not None:
        set_background(scene, look.world)
        scene.view_settings.view_transform = look.view_transform
        scene.view_settings.look = "None"
    RunRecord(collection).look = name
    return look


def set_background(scene, colour, strength: float = 1.0) -> None:
    """The scene world's background colour (a new world if the scene has none)."""
    world = scene.world
    if world is None:
        world = scene.world = bpy.data.worlds.new("NNVis World")
    compat.use_nodes(world)
    background = next((n for n in world.node_tree.nodes if n.type == "BACKGROUND"), None)
    if background is None:
        background = world.node_tree.nodes.new("ShaderNodeBackground")
        output = next((n for n in world.node_tree.nodes if n.type == "OUTPUT_WORLD"), None) or \
            world.node_tree.nodes.new("ShaderNodeOutputWorld")
        world.node_tree.links.new(background.outputs[0], output.inputs["Surface"])
    background.inputs["Color"].default_value = (*colour, 1.0)
    background.inputs["Strength"].default_value = strength
