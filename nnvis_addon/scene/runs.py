"""Each import is a self-contained run: its own collection named after the model and the run, its
objects named within it, placed beside the runs already in the scene; the camera, lights and world
are shared, not duplicated. `remove_run` takes a run out again with everything only it used.
"""
from __future__ import annotations

import re
from dataclasses import replace

import bpy
import numpy as np

from .camera_moves import evaluated_boxes
from .. import names
from .run_record import RunRecord, is_run

SEPARATOR = " · "
_SUFFIX = re.compile(r"\.\d{3,}$")      # Blender's ".001" for a name already taken


def new_label(run) -> str:
    """'digits_cnn · recording' (model · run), numbered ' 2', ' 3', ... when that name is taken:
    the run's collection name and its objects' prefix."""
    base = SEPARATOR.join(dict.fromkeys(n for n in (run.network.name, run.name) if n))
    label, k = base, 1
    while bpy.data.collections.get(label) is not None or \
            any(o.name.startswith(f"{label}:") for o in bpy.data.objects):
        k += 1
        label = f"{base} {k}"
    return label


def scoped(label: str, name: str) -> str:
    return f"{label}:{name}"


def scope_names(collection, label: str) -> None:
    """Prefix the run's own objects that are not yet (overlays, legend, camera moves' pivot) with
    `label:`, dropping the '.001' a clash with another run gave them; shared objects keep theirs."""
    for obj in collection.objects:
        if names.SHARED not in obj and not obj.name.startswith(f"{label}:"):
            obj.name = scoped(label, strip_suffix(obj.name))


def strip_suffix(name: str) -> str:
    """`name` without the '.001' Blender adds when a name is taken."""
    return _SUFFIX.sub("", name)


def runs_in(scene) -> list:
    return [c for c in scene.collection.children_recursive if is_run(c)]


def beside_others(placements: list, scene, gap: float = 1.0, but: str = "") -> list:
    """`placements` moved along the width axis (+Y) to stand clear of the runs already in `scene`
    (their layers, edges and labels as they are now; not run `but`, which this one replaces),
    `gap` × this network's width apart (each run's overlays ride on its own camera)."""
    others = [o for c in runs_in(scene) if c.name != but for o in c.all_objects
              if names.LAYER in o or names.EDGES in o or names.LABEL in o]
    boxes = evaluated_boxes(others)
    if not boxes:
        return placements
    ys = np.concatenate([p.centers[:, 1] for p in placements])
    half = max(max(p.extent) for p in placements) / 2
    width = float(ys.max() - ys.min()) + 2 * half
    top = max(float(hi[1]) for _, hi in boxes.values())
    shift = top + gap * width + half - float(ys.min())
    return [replace(p, centers=p.centers + np.array([0.0, shift, 0.0], np.float32))
            for p in placements]


def shared(scene, collection, kind: str, make) -> list:
    """The scene's shared objects of `kind` ("camera", "lights"), linked into `collection` too;
    made by `make()` (and tagged shared) when the scene has none yet."""
    found = [o for o in scene.objects if o.get(names.SHARED) == kind]
    for obj in found:
        if collection not in obj.users_collection:
            collection.objects.link(obj)
    if found:
        return found
    made = list(make())
    for obj in made:
        obj[names.SHARED] = kind
    return made


def overlays_of(collection) -> dict:
    """Overlay kind ("counter", ..., "legend") → the run's objects of that kind, in order."""
    kinds: dict = {}
    for obj in collection.objects:
        kind = obj.get(names.OVERLAY_KIND) or ("legend" if names.LEGEND_LAYER in obj else "")
        if kind:
            kinds.setdefault(kind, []).append(obj)
    return kinds


def show_overlay(collection, kind: str, shown: bool) -> int:
    """Show or hide (viewport and render) every overlay object of `kind`; returns how many."""
    objects = overlays_of(collection).get(kind, [])
    for obj in objects:
        obj.hide_viewport = obj.hide_render = not shown
    return len(objects)


# Blender's factory startup file: object name → (type, location); the Cube is also a 2 m mesh cube
STARTUP = {"Cube": ("MESH", (0.0, 0.0, 0.0)), "Light": ("LIGHT", (4.0762, 1.0055, 5.9039)),
           "Camera": ("CAMERA", (7.3589, -6.9258, 4.9583))}


def untouched_startup(scene) -> list:
    """The objects of Blender's startup scene when `scene` is that scene as it opened (an unsaved
    file holding only the Cube, Light and Camera where the factory put them, the cube unedited):
    nothing a user made, and the cube would stand in front of the network in every frame."""
    objects = list(scene.objects)
    if bpy.data.filepath or sorted(o.name for o in objects) != sorted(STARTUP):
        return []
    for obj in objects:
        kind, location = STARTUP[obj.name]
        if obj.type != kind or (np.abs(np.array(obj.location) - location) > 1e-3).any() \
                or obj.modifiers[:] or obj.animation_data is not None:
            return []
    cube = next(o for o in objects if o.name == "Cube")
    co = np.array([tuple(v.co) for v in cube.data.vertices])
    if len(co) != 8 or not np.allclose(np.abs(co), 1.0) or \
            not np.allclose(np.array(cube.matrix_world), np.eye(4)):
        return []
    return objects


def clear_startup(objects) -> None:
    """Remove Blender's startup `objects` (`untouched_startup`, found before the import) and
    their data, so a run imported into the startup file renders alone."""
    data = [o.data for o in objects]
    bpy.data.batch_remove(objects)
    bpy.data.batch_remove([d for d in data if d.users == 0])


def remove_run(collection) -> dict:
    """Delete the run `collection`: its objects (shared ones only when no other collection holds
    them), the collection, and every datablock they used that nothing else uses now — meshes,
    curves, actions, materials, images, node groups. Returns the counts removed by kind."""
    objects = [o for o in collection.all_objects
               if all(c == collection or c in collection.children_recursive
                      for c in o.users_collection)]
    used = _used_by(objects)
    removed = {"objects": len(objects), "collections": 1 + len(collection.children_recursive)}
    bpy.data.batch_remove([*objects, *collection.children_recursive, collection])
    # "unused" as the user map sees it: Blender 4.2 over-counts `users` of images whose
    # materials were copied (Material.copy), so those would never reach 0
    while unused := [b for b, by in bpy.data.user_map(subset=used).items()
                     if not by - {b} and not b.use_fake_user]:
        for block in unused:
            key = type(block).__name__.lower()
            removed[key] = removed.get(key, 0) + 1
        bpy.data.batch_remove(unused)
        used = [b for b in used if b not in unused]
    remaining = runs_in(bpy.context.scene)
    if remaining:     # the shared camera turns back to a remaining run and shows its overlays
        from .camera_moves import apply_move
        apply_move(remaining[-1], RunRecord(remaining[-1]).camera_move or "static")
    return removed


def _used_by(objects) -> list:
    """Every datablock the `objects` use, directly or through one another (data, actions,
    materials, their images and node groups), the objects themselves left out."""
    users = bpy.data.user_map()
    uses: dict = {}
    for block, by in users.items():
        for user in by:
            uses.setdefault(user, set()).add(block)
    seen, todo = set(objects), list(objects)
    while todo:
        for block in uses.get(todo.pop(), ()):
            if block not in seen and not isinstance(block, (bpy.types.Scene, bpy.types.Object,
                                                            bpy.types.Collection)):
                seen.add(block)
                todo.append(block)
    return [b for b in seen if not isinstance(b, bpy.types.Object)]
