"""All or nothing: a failed import leaves the user's file exactly as it was.

Remembers which datablocks existed before a build; if the build raises, every datablock created
since is removed (objects first, so nothing is still in use) and the scene settings the build may
have touched are restored.
"""
from __future__ import annotations

from contextlib import contextmanager

import bpy

# Removal order matters: users before the data they use.
KINDS = ("objects", "collections", "cameras", "lights", "meshes", "hair_curves", "curves",
         "materials", "images", "node_groups", "actions", "worlds", "texts")
SCENE_SETTINGS = ("camera", "world", "frame_start", "frame_end")


@contextmanager
def all_or_nothing(scene):
    before = {kind: set(getattr(bpy.data, kind)) for kind in KINDS}
    settings = {name: getattr(scene, name) for name in SCENE_SETTINGS}
    try:
        yield
    except BaseException:
        for kind in KINDS:
            collection = getattr(bpy.data, kind)
            for block in [b for b in collection if b not in before[kind]]:
                collection.remove(block)
        for name, value in settings.items():
            setattr(scene, name, value)
        raise
