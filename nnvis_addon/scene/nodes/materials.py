"""Materials: the atlas material that colours cells and edges by their recorded values, and the
plain ones all runs share (blocks, accents, text)."""
from __future__ import annotations

import bpy

from .. import compat
from .kit import add, arrange, math_node, mix, section, set_default, value_node, vec_math
from .shaders import colour_maps_group, lookup_group, pick_channel, set_ramp
from ... import names

BLOCK_MATERIAL = "NNVis Block"
ACCENT_MATERIAL = "NNVis Accent"
DIM = 0.85           # how much Highlight darkens the cells and edges off the traced path
END_FADE = 0.55      # an edge fades over this last share of its length ...
END_OPACITY = 0.0    # ... down to this share of its opacity where it lands on its target


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
        arrange(tree)
    return mat


def shared_material(name: str, colour, emission: float):
    """A material all runs share (found by name), its colour in an RGB node `nnvis_base_colour`."""
    mat = bpy.data.materials.get(name)
    if mat is not None:
        return mat
    mat = empty_material(name)
    tree = mat.node_tree
    rgb = add(tree, "ShaderNodeRGB", name=names.BASE_COLOUR)
    rgb.outputs[0].default_value = (*colour, 1.0)
    bsdf = add(tree, "ShaderNodeBsdfPrincipled", {"Base Color": rgb.outputs[0],
                                                  "Emission Color": rgb.outputs[0],
                                                  "Emission Strength": emission, "Roughness": 0.6})
    out = add(tree, "ShaderNodeOutputMaterial")
    tree.links.new(bsdf.outputs[0], out.inputs["Surface"])
    arrange(tree)
    return mat


def block_material():
    """The layers' boxes at Expansion 0."""
    return shared_material(BLOCK_MATERIAL, (0.16, 0.2, 0.28), 0.15)


def accent_material():
    """Kernel windows and computation lines at Expansion 3."""
    return shared_material(ACCENT_MATERIAL, (1.0, 0.55, 0.1), 0.5)


_TEMPLATES: dict[tuple, str] = {}   # material kind → a material of this build to copy


def begin_build() -> None:
    """Forget the previous build's material templates (called at the start of every build)."""
    _TEMPLATES.clear()


def atlas_material(name: str, image, atlas, colormap: str, scale: float, offset: float,
                   instanced: bool, emission: float = 0.6, mode_scales=None, mode_stride: int = 0):
    """Material colouring each cell (instanced) or edge (curve) by its atlas values.

    colour = map(value × gain × scale + offset): scale/offset are fixed for the whole run so every
    epoch is compared on the same scale (Value nodes `nnvis_scale` / `nnvis_offset`); gain is the
    cell's `Normalise Per Map` factor. The map is the `nnvis_ramp` ramp (set to `colormap`) or
    another by the `Colour Map` input (`nnvis_colour_map`); then a tint (`nnvis_tint`,
    `nnvis_tint_amount`), the highlight (`nnvis_lit`/`nnvis_dim`) and the look's `nnvis_glow`
    (emission multiplier); cells then by the look's `nnvis_flat` (0 = lit surface, 1 = pure
    emission: exact colours). Edges are pure emission in every look: lit, they paid for light
    samples at every transparent layer a ray passes (the demo on the CPU: 8 % of a 40-spp frame
    and 1 dB of noise) for a shade their thin curves hardly show (docs/benchmarks.md, issue 27).
    Edges with `mode_scales`: the atlas holds one block of `mode_stride` cells per colour mode and
    the curve attribute `nnvis_mode` picks the block and its scale (`nnvis_mode_scale_<k>`).

    The node tree is built once per kind and build; further materials of that kind are copies
    with their own parameters (≈ 60 nodes each: DenseNet121's 900 materials went from 17 s to <2 s).
    """
    key = (instanced, emission, None if mode_scales is None else len(mode_scales), colormap)
    template = bpy.data.materials.get(_TEMPLATES.get(key, ""))
    if template is not None and template.get(names.TEMPLATE) == repr(key):
        mat = template.copy()
        mat.name = name
    else:
        mat = _atlas_tree(name, instanced, emission, key[2])
        set_ramp(mat.node_tree.nodes[names.RAMP].color_ramp, colormap)
        mat[names.RAMP_NAME] = colormap
        mat[names.TEMPLATE] = repr(key)
        _TEMPLATES[key] = mat.name
    nodes = mat.node_tree.nodes
    for tex in (names.TEX_A, names.TEX_B):
        nodes[tex].image = image
    if mode_scales is not None:
        set_default(nodes[names.MODE_STRIDE].inputs[1], float(mode_stride))
    set_atlas_values(mat, atlas, (scale, offset), mode_scales)
    return mat


def set_atlas_values(mat, atlas, colour: tuple[float, float] | None = None,
                     mode_scales=None) -> None:
    """What the values of an `atlas_material` set in it: the atlas' sizes (lookup), the colour
    (scale, offset) and the edges' colour-mode scales — at the import, and again when a live
    refresh brings more epochs."""
    nodes = mat.node_tree.nodes
    lookup = nodes[names.LOOKUP]
    set_default(lookup.inputs["Tile"], (atlas.tile_w, atlas.tile_h, atlas.rows_per_epoch))
    set_default(lookup.inputs["Atlas"], (atlas.width, atlas.height, atlas.epochs - 1))
    if colour is not None:
        set_default(nodes[names.SCALE].outputs[0], colour[0])
        set_default(nodes[names.OFFSET].outputs[0], colour[1])
    for k, mode_scale in enumerate(mode_scales or ()):
        set_default(nodes[f"{names.MODE_SCALE}{k}"].outputs[0], mode_scale)


def _atlas_tree(name: str, instanced: bool, emission: float, modes: int | None):
    """The node tree of `atlas_material`, its per-material values left at defaults."""
    mat = empty_material(name)
    tree = mat.node_tree
    source = "INSTANCER" if instanced else "GEOMETRY"

    def attribute(attr_name):
        return add(tree, "ShaderNodeAttribute", attribute_type=source,
                   attribute_name=attr_name).outputs["Fac"]

    with section(tree, "Atlas value of the shown epoch"):
        lookup = add(tree, "ShaderNodeGroup", node_tree=lookup_group(), name=names.LOOKUP)
        cell = attribute(names.MAP if instanced else names.EDGE)
        if modes is not None:
            cell = add(tree, "ShaderNodeMath", {0: attribute(names.MODE), 2: cell},
                       operation="MULTIPLY_ADD", name=names.MODE_STRIDE).outputs[0]
            picked = None
            for k in range(modes):
                is_k = math_node(tree, "COMPARE", attribute(names.MODE), float(k), 0.5)
                term = math_node(tree, "MULTIPLY", is_k, value_node(
                    tree, f"{names.MODE_SCALE}{k}", f"Mode {k} scale", 1.0))
                picked = term if picked is None else math_node(tree, "ADD", picked, term)
        tree.links.new(cell, lookup.inputs["Cell"])
        epoch = add(tree, "ShaderNodeAttribute", attribute_type="OBJECT",
                    attribute_name=names.EPOCH).outputs["Fac"]   # the object's keyed property
        tree.links.new(epoch, lookup.inputs["Epoch"])
        if instanced:
            uv = add(tree, "ShaderNodeAttribute", attribute_type="GEOMETRY",
                     attribute_name=names.UV)
            tree.links.new(uv.outputs["Vector"], lookup.inputs["UV"])
        else:
            lookup.inputs["UV"].default_value = (0.5, 0.5, 0.0)
        values = []
        for vec, tex_name in (("Vector A", names.TEX_A), ("Vector B", names.TEX_B)):
            tex = add(tree, "ShaderNodeTexImage", {"Vector": lookup.outputs[vec]},
                      interpolation="Closest", extension="EXTEND", name=tex_name)
            values.append(pick_channel(tree, tex.outputs["Color"], lookup.outputs["Channel"]))
        value = mix(tree, lookup.outputs["Factor"], values[0], values[1])
        if instanced:
            value = math_node(tree, "MULTIPLY", value, attribute(names.GAIN))
    with section(tree, "Colour scale and map"):
        run_scale = value_node(tree, names.SCALE, "Colour scale", 1.0)
        if modes is not None:
            run_scale = math_node(tree, "MULTIPLY", run_scale, picked)
        t = math_node(tree, "MULTIPLY_ADD", value, run_scale,
                      value_node(tree, names.OFFSET, "Colour offset", 0.0))
        ramp = add(tree, "ShaderNodeValToRGB", {"Fac": t}, name=names.RAMP)
        maps = add(tree, "ShaderNodeGroup", {"Fac": t, "Auto": ramp.outputs["Color"]},
                   node_tree=colour_maps_group(), name=names.COLOUR_MAPS)
        tree.links.new(attribute(names.COLOUR_MAP), maps.inputs["Map"])
    with section(tree, "Tint, highlight and glow"):
        tint = add(tree, "ShaderNodeRGB", name=names.TINT, label="Tint")
        tint.outputs[0].default_value = (1.0, 1.0, 1.0, 1.0)
        colour = mix(tree, value_node(tree, names.TINT_AMOUNT, "Tint amount", 0.0),
                     maps.outputs["Color"], tint.outputs[0], "RGBA")
        colour = vec_math(tree, "SCALE", colour, scale=math_node(
            tree, "MULTIPLY_ADD", attribute(names.DIM), -DIM, 1.0))
        boost = math_node(tree, "MULTIPLY_ADD", attribute(names.LIT), 2.0, 1.0)
        glow = math_node(tree, "MULTIPLY", value_node(tree, names.GLOW, "Glow", 1.0), boost)
    with section(tree, "Surface: lit or flat" if instanced else "Surface: flat"):
        flat = add(tree, "ShaderNodeEmission", {"Color": colour, "Strength": math_node(
            tree, "MULTIPLY", glow, min(1.0, emission / 0.6))})     # dim edges stay dim
        if instanced:
            bsdf = add(tree, "ShaderNodeBsdfPrincipled", {
                "Base Color": colour, "Emission Color": colour, "Roughness": 0.55,
                "Emission Strength": math_node(tree, "MULTIPLY", glow, emission)})
            shader = add(tree, "ShaderNodeMixShader", {
                "Fac": value_node(tree, names.FLAT, "Flat", 0.0), 1: bsdf.outputs[0],
                2: flat.outputs[0]})
        else:
            shader = _faded(tree, flat.outputs[0], attribute, t)
        out = add(tree, "ShaderNodeOutputMaterial")
        tree.links.new(shader.outputs[0], out.inputs["Surface"])
    arrange(tree)
    return mat


def _faded(tree, shader, attribute, t):
    """An edge's `shader` seen through: at its curve's `Opacity` (`nnvis_opacity`) times the
    square root of its strength (|2t − 1|, `t` its place on the diverging colour scale; not for
    weightless links: `nnvis_strength_fade` 0), fading to END_OPACITY of that towards its target
    (`nnvis_along` → 1), where the edges of a connection converge in front of the maps they feed —
    so strong edges show the flow between layers and the maps stay readable under the rest.
    (An edge's source end lies behind its own maps from the camera's side.) Edges lit by the
    Highlight (`nnvis_lit`) turn solid as they light up: the traced path reads over the rest."""
    fade = add(tree, "ShaderNodeMapRange", {
        "Value": attribute(names.ALONG), "From Min": 1.0, "From Max": 1.0 - END_FADE,
        "To Min": END_OPACITY, "To Max": 1.0}, interpolation_type="SMOOTHSTEP")
    strength = math_node(tree, "SQRT", math_node(tree, "ABSOLUTE", math_node(
        tree, "MULTIPLY_ADD", t, 2.0, -1.0)))
    strength = mix(tree, value_node(tree, names.STRENGTH_FADE, "Strength fade", 1.0), 1.0,
                   strength)
    alpha = math_node(tree, "MULTIPLY", math_node(tree, "MULTIPLY", fade.outputs["Result"],
                                                  strength), attribute(names.OPACITY))
    alpha = mix(tree, attribute(names.LIT), alpha, 1.0)    # the highlighted path stays solid
    return add(tree, "ShaderNodeMixShader", {"Fac": alpha, 1: add(
        tree, "ShaderNodeBsdfTransparent").outputs[0], 2: shader})


