"""Draw an imported run again with other options — a folded block expanded layer by layer, or
every block folded back — in place of the old one.

The import remembers its `SceneOptions` in the run's record (`run_record.RunRecord`); a rebuild reads
the source again with the same probe, builds the new scene beside the old one and only then removes
the old one, so a failure leaves the scene as it was. The new run keeps the old one's name, parent
collections, camera move and look, and stands where a new import would (beside the other runs); the
scene's render settings and frame range stay the user's. Controls changed after the import (the
modifiers' inputs) start again from the import's options.
"""
from __future__ import annotations

import dataclasses

import bpy

from .. import names
from ..blocks import expand_names, named
from ..errors import NNVisError
from . import camera_moves, runs
from .run_record import RunRecord


def expanded(collection) -> list[str]:
    """The blocks the run draws layer by layer (its Expand Blocks names)."""
    return expand_names((RunRecord(collection).blocks or ("auto", ""))[1])


def block_titles(collection, name: str) -> list[str]:
    """The titles (`names.BLOCK_TITLE`) of the run's folded blocks that `name` stands for
    (`blocks.named`: a block, one of its layers, a block's name prefix); an NNVisError when none,
    before anything is rebuilt (a name that matched nothing used to rebuild the run unchanged)."""
    layers = [o for o in collection.all_objects if names.LAYER in o]
    units = {o[names.BLOCK_TITLE]: list(o.get(names.BLOCK_LAYERS, [])) for o in layers
             if names.BLOCK_TITLE in o}
    titles = named(name, units)
    if titles:
        return titles
    if any(name in (o.get(names.EXPANDED_BLOCK), o[names.LAYER]) for o in layers):
        raise NNVisError(f"{name!r} in {collection.name!r} is already drawn layer by layer")
    shown = ", ".join(list(units)[:8]) + (", …" if len(units) > 8 else "")
    raise NNVisError(f"{collection.name!r} has no folded block {name!r}: "
                     + (f"its blocks are {shown}" if units else "it has no folded blocks"))


def expand_block(collection, block: str, scene=None):
    """Draw the run's folded blocks that `block` names (`block_titles`) layer by layer."""
    return rebuild_run(collection, scene, expand=",".join(dict.fromkeys(
        [*expanded(collection), *block_titles(collection, block)])))


def fold_blocks(collection, scene=None):
    """Fold every block of the run again."""
    return rebuild_run(collection, scene, expand="")


def rebuild_run(collection, scene=None, progress=None, **changes):
    """The run in `collection` built again with its import options changed by `changes`; returns
    the new collection (the old one is removed once the new one stands)."""
    from ..run import load_run
    from .build import build_scene
    scene = scene or bpy.context.scene
    record = RunRecord(collection)
    if record.design is not None:
        raise NNVisError(f"{collection.name!r} is a design: change it in the design editor")
    if record.probe == "<array>":
        raise NNVisError(f"{collection.name!r} was imported with a probe given as an array: "
                         "import it again to draw it differently")
    recorded = record.options
    blocks, expand = record.blocks or (recorded.blocks, recorded.expand)
    frames_per_epoch, fps, frame_start = (record.timing or (0, 24, 1))[:3]
    options = dataclasses.replace(recorded, **{**dict(
        blocks=blocks, expand=expand, frames_per_epoch=frames_per_epoch, fps=int(fps),
        frame_start=int(frame_start), setup_render=False,
        camera_move=record.camera_move or recorded.camera_move,
        orthographic=recorded.orthographic if record.orthographic is None
        else record.orthographic,
        look=record.look or recorded.look), **changes})
    run = load_run(record.source, probe=record.probe, probe_index=record.probe_index,
                   epochs=record.epochs)
    label = collection.name
    fresh = build_scene(run, options, scene, label=label,
                        **({"progress": progress} if progress else {}))
    parents = [c for c in (scene.collection, *bpy.data.collections)
               if collection.name in c.children]
    runs.remove_run(collection)
    fresh.name = label
    if parents and scene.collection not in parents:    # where the user had put the run
        for parent in parents:
            parent.children.link(fresh)
        scene.collection.children.unlink(fresh)
    for obj in fresh.objects:       # the names the old run held are free now
        if names.SHARED not in obj:
            obj.name = runs.strip_suffix(obj.name)
    camera_moves.apply_move(fresh, options.camera_move, scene, options.orthographic)
    return fresh
