"""A design's scene in Blender: `build_design` draws the stack as the importer draws a checkpoint,
`rebuild_design` replaces its layers and edges in place, keeping the user's edits (camera,
controls, materials). The stack itself, its checks and the Keras config are `nnvis_addon.design_stack`.
"""
from __future__ import annotations

from pathlib import Path

import bpy

from .. import names
from ..design_stack import DEFAULT_NAME, design_run
from ..errors import NNVisError
from .build import SceneOptions, build_scene
from .camera_moves import screen_of
from .layers import MODIFIER
from .nodes import input_ids, set_ramp
from .run_record import RunRecord

_LOOKUP_VALUES = (names.SCALE, names.OFFSET)   # data-derived Value nodes of an atlas material
_DATA_INPUTS = {"Geometry", "Epoch", "Width", "Height", "Material", "Inbound", "Source",
                "Target", "Max Cells", "Max Edges"}  # set by the build


def build_design(layers, weights: str = "random", seed: int = 0, probe=None,
                 name: str = DEFAULT_NAME, options=None, scene=None):
    """Build the stack's scene (as the importer does) and return its collection.

    The run's record keeps the settings (`RunRecord.design`) so `rebuild_design` can redo it.
    """
    run = design_run(layers, weights, seed, probe, name)
    collection = build_scene(run, options, scene)
    RunRecord(collection).design = {"weights": weights, "seed": int(seed), "name": name,
                                    "probe": str(probe) if isinstance(probe, (str, Path)) else ""}
    return collection


def rebuild_design(collection, layers, scene=None):
    """Replace the layer and edge objects of a `build_design` collection with the stack's, in place.

    Nothing changes unless the stack is valid and the new build succeeds. Kept: the collection
    itself (name, parents, visibility), every object in it that is not a layer, edge or overlay
    object (camera, lights, the user's own), and of each layer/edge that still exists its
    transform, its modifier controls (all inputs but Epoch, Width, Height, Material) and its
    material: a material the user assigned stays; nnvis' own material stays with its edits, only
    its atlas image, lookup and colour range are pointed at the new data. Overlays are rebuilt
    (they show data), each kind staying hidden or shown. Scene settings are not touched.
    """
    record = RunRecord(collection)
    settings = record.design
    if settings is None:
        raise NNVisError(f"collection {collection.name!r} was not built from a design")
    scene = scene or bpy.context.scene
    run = design_run(layers, settings["weights"], settings["seed"], settings["probe"] or None,
                     settings["name"])
    fresh = build_scene(run, SceneOptions(setup_render=False), scene, label=collection.name)
    _swap_objects(collection, fresh)
    record.source, record.epochs = RunRecord(fresh).source, RunRecord(fresh).epochs
    bpy.data.collections.remove(fresh)
    return collection


def _object_key(obj):
    if names.LAYER in obj:
        return ("layer", obj[names.LAYER])
    if names.EDGES in obj:
        return ("edges", tuple(obj[names.EDGES]))
    return None


def _swap_objects(collection, fresh) -> None:
    """Move `fresh`'s layer, edge, overlay and label objects into `collection` in place of the old
    ones, the overlays onto the kept camera's screen and the labels turned to it; drop the rest of
    `fresh` (its camera; the lights are shared: they stay)."""
    old, old_overlays = {}, []
    for obj in collection.objects:
        if _object_key(obj) is not None:
            old[_object_key(obj)] = obj
        elif names.OVERLAY in obj or names.LABEL in obj:
            old_overlays.append(obj)
    camera = next((o for o in collection.objects if o.type == "CAMERA"), None)
    screen = screen_of(collection)
    hidden = {o[names.OVERLAY_KIND]: (o.hide_viewport, o.hide_render) for o in old_overlays
              if names.OVERLAY_KIND in o}
    moved = [o for o in fresh.objects if _object_key(o) is not None or names.OVERLAY in o
             or names.LABEL in o]
    doomed = [o for o in fresh.objects if o not in moved and names.SHARED not in o]
    made_names = _blocks_of(moved)             # the new build's own datablocks, maybe suffixed
    actions = [(o, o.animation_data.action) for o in moved if o.animation_data
               and o.animation_data.action and o.animation_data.action.name == f"{o.name} Action"]
    leftovers, swapped = [], {}
    for obj in moved:
        key = _object_key(obj)
        if key in old:
            _carry_over(old[key], obj, leftovers, swapped)
        elif obj.get(names.OVERLAY_KIND, "") in hidden:  # overlays are data: rebuilt, but stay
            obj.hide_viewport, obj.hide_render = hidden[obj[names.OVERLAY_KIND]]   # as shown
        if obj.parent is not None and obj.parent.get(names.SCREEN) and screen is not None:
            obj.parent = screen
        for constraint in obj.constraints:
            if constraint.type == "COPY_ROTATION" and camera is not None:
                constraint.target = camera
        collection.objects.link(obj)
    for obj in moved:              # also new objects that share a material the old build had
        _set_material(obj, lambda material: swapped.get(material.as_pointer(), material))
    _remove_with_data(doomed + list(old.values()) + old_overlays, leftovers)
    for block in made_names:
        _drop_name_suffix(block)
    for obj, action in actions:                # "conv2d.001 Action" → "conv2d Action"
        action.name = f"{obj.name} Action"


def _drop_name_suffix(block) -> None:
    """'conv2d.001' → 'conv2d' now that the old 'conv2d' is gone (Blender keeps names unique: a
    name still taken gets a suffix back). Skips blocks the swap removed."""
    try:
        base, dot, number = block.name.rpartition(".")
    except ReferenceError:
        return
    if dot and base and number.isdigit() and len(number) >= 3:
        block.name = base


def _blocks_of(objects) -> list:
    """The objects and the datablocks they use: data, action, node groups, materials, and the
    materials' images."""
    blocks = []
    for obj in objects:
        materials = [m for m in getattr(obj.data, "materials", []) if m is not None]
        groups = [mod.node_group for mod in obj.modifiers if mod.type == "NODES"]
        for mod in obj.modifiers:
            if mod.type == "NODES":
                materials += [mod[k] for k in mod.keys() if isinstance(mod[k], bpy.types.Material)]
        action = obj.animation_data.action if obj.animation_data else None
        blocks += [obj, obj.data, action, *groups, *materials]
        blocks += [n.image for m in materials if m.node_tree for n in m.node_tree.nodes
                   if n.type == "TEX_IMAGE" and n.image is not None]
    return [b for b in blocks if b is not None]


def _modifier(obj):
    return obj.modifiers.get(MODIFIER)


def _carry_over(prev, obj, leftovers: list, swapped: dict) -> None:
    """Copy the user's edits of `prev` onto its successor `obj`: transform, modifier controls,
    material. Datablocks this may leave unused go to `leftovers`; `swapped` maps the new build's
    own materials (by pointer) to the kept ones that replace them, once for all their users."""
    obj.matrix_basis = prev.matrix_basis.copy()
    old_mod, new_mod = _modifier(prev), _modifier(obj)
    if old_mod is None or new_mod is None or old_mod.node_group != new_mod.node_group:
        return
    ids = input_ids(new_mod.node_group)
    for label, ident in ids.items():
        if label not in _DATA_INPUTS and ident in old_mod.keys():
            new_mod[ident] = old_mod[ident]
    kept, made = old_mod.get(ids.get("Material")), new_mod.get(ids.get("Material"))
    if kept is None or made is None:
        return
    if names.RAMP_NAME not in kept:            # the user's own material: this object's only
        _set_material(obj, lambda material: kept if material == made else material)
    elif made.as_pointer() not in swapped:     # nnvis' (maybe shared by several objects)
        _point_at_new_atlas(kept, made, leftovers)
        swapped[made.as_pointer()] = kept
    leftovers.append(made)


def _set_material(obj, replace) -> None:
    """Put `replace(material)` in place of each material of `obj` (modifier input and slots)."""
    mod = _modifier(obj)
    ident = input_ids(mod.node_group).get("Material") if mod and mod.node_group else None
    if ident is not None and mod.get(ident) is not None:
        mod[ident] = replace(mod[ident])
    slots = getattr(obj.data, "materials", [])
    for k, material in enumerate(slots):
        if material is not None:
            slots[k] = replace(material)


def _lookup_node(material):
    return next((n for n in material.node_tree.nodes if n.type == "GROUP" and n.node_tree
                 and n.node_tree.name == names.GROUP_LOOKUP), None)


def _point_at_new_atlas(kept, made, leftovers: list) -> None:
    """Give the kept atlas material the new build's data: the image its atlas texture nodes read
    (those fed by the lookup group), the lookup's atlas geometry, the colour scale/offset, and
    the colormap if the data changed sign (sequential ↔ diverging); other edits stay."""
    old_lookup, new_lookup = _lookup_node(kept), _lookup_node(made)
    new_image = next((n.image for n in made.node_tree.nodes if n.type == "TEX_IMAGE"), None)
    if old_lookup is None or new_lookup is None or new_image is None:
        return
    for node in kept.node_tree.nodes:
        if node.type == "TEX_IMAGE" and any(link.from_node == old_lookup
                                            for link in node.inputs["Vector"].links):
            if node.image is not None:
                leftovers.append(node.image)
            node.image = new_image
    for socket in new_lookup.inputs:
        target = old_lookup.inputs.get(socket.name)
        if target is not None and not target.is_linked and not socket.is_linked:
            target.default_value = socket.default_value
    for node_name in _LOOKUP_VALUES:
        src, dst = made.node_tree.nodes.get(node_name), kept.node_tree.nodes.get(node_name)
        if src is not None and dst is not None:
            dst.outputs[0].default_value = src.outputs[0].default_value
    ramp = kept.node_tree.nodes.get(names.RAMP)
    if ramp is not None and kept.get(names.RAMP_NAME) != made.get(names.RAMP_NAME):
        set_ramp(ramp.color_ramp, made[names.RAMP_NAME])
        kept[names.RAMP_NAME] = made[names.RAMP_NAME]


def _remove_with_data(objects, leftovers) -> None:
    """Remove `objects`, then whatever nothing uses any more among the datablocks they used
    (`_blocks_of`) and `leftovers` (with their images)."""
    blocks = [b for b in _blocks_of(objects) if not isinstance(b, bpy.types.Object)]
    blocks += leftovers + [n.image for m in leftovers if isinstance(m, bpy.types.Material)
                           and m.node_tree for n in m.node_tree.nodes
                           if n.type == "TEX_IMAGE" and n.image is not None]
    bpy.data.batch_remove(objects)
    pending = {b.as_pointer(): b for b in blocks}
    while unused := {k: b for k, b in pending.items() if b.users == 0}:   # mesh, material, image
        bpy.data.batch_remove(list(unused.values()))
        pending = {k: b for k, b in pending.items() if k not in unused}
