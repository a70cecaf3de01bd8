"""Presentation camera moves for a run's camera: a still frame, an orbit around the network, or a
fly-through along the depth axis (+X, input to output) timed to the epochs.

Moves are keyframes (written through the fast `keyframe_points` path), so they play without the
add-on. The camera's framed position from the import is kept as `nnvis_home`, and every move starts
from it, so moves replace each other. The fly-through reads the epoch frames from the layers'
`Epoch` keyframes: after re-timing the run (Render Training Video does), apply it again.
"""
from __future__ import annotations

import math

import bpy
import numpy as np
from mathutils import Matrix, Vector

from ..errors import NNVisError
from . import compat, stage
from .animation import linear_keys
from .layers import MODIFIER
from .nodes import input_ids

MOVES = {
    "still": "The framed three-quarter view",
    "orbit": "One turn around the network over the scene's frame range",
    "fly_through": "Along the network, input to output, arriving at the last layer with the "
                   "last epoch",
}
PIVOT = "NNVis Orbit"


def run_camera(collection):
    cam = next((o for o in collection.all_objects if o.type == "CAMERA"), None)
    if cam is None:
        raise NNVisError(f"run {collection.name!r} has no camera")
    return cam


def epoch_frames(collection) -> np.ndarray:
    """Frames of the recorded epochs, read from a layer's Epoch keyframes."""
    for obj in collection.all_objects:
        mod = obj.modifiers.get(MODIFIER)
        if mod is None or mod.node_group is None or "Epoch" not in input_ids(mod.node_group):
            continue
        path = f'modifiers["{MODIFIER}"]["{input_ids(mod.node_group)["Epoch"]}"]'
        for fcurve in compat.fcurves_of(obj):
            if fcurve.data_path == path and len(fcurve.keyframe_points):
                co = np.empty(2 * len(fcurve.keyframe_points), np.float32)
                fcurve.keyframe_points.foreach_get("co", co)
                return co[0::2]
    raise NNVisError(f"run {collection.name!r} has no Epoch keyframes")


def network_bounds(collection) -> tuple[np.ndarray, np.ndarray]:
    layers = [o for o in collection.all_objects if "nnvis_layer" in o]
    corners = stage.instance_corners(layers)
    if not len(corners):
        raise NNVisError(f"run {collection.name!r} has no layer objects")
    return corners.min(axis=0), corners.max(axis=0)


def reset(collection, cam) -> None:
    """Back to the imported framing: no parent, no camera keyframes, no orbit pivot."""
    home = cam.get("nnvis_home")
    if home is None:
        cam["nnvis_home"] = [v for row in cam.matrix_world for v in row]
    if cam.animation_data is not None:
        cam.animation_data_clear()
    cam.parent = None
    cam.matrix_world = Matrix(np.reshape(cam["nnvis_home"], (4, 4)).tolist())
    for obj in list(collection.objects):
        if obj.get("nnvis_pivot"):
            bpy.data.objects.remove(obj)


def orbit(collection, cam, frame_start: int, frame_end: int, turns: float = 1.0):
    """Parent the camera to a pivot at the network's centre turning `turns` times about Z."""
    lo, hi = network_bounds(collection)
    pivot = bpy.data.objects.new(PIVOT, None)
    pivot["nnvis_pivot"] = True
    pivot.location = Vector((lo + hi) / 2)
    collection.objects.link(pivot)
    bpy.context.view_layer.update()
    world = cam.matrix_world.copy()
    cam.parent = pivot
    cam.matrix_parent_inverse = pivot.matrix_world.inverted()
    cam.matrix_world = world
    linear_keys(pivot, "rotation_euler", np.array([frame_start, frame_end], np.float32),
                np.array([0.0, 2 * math.pi * turns], np.float32), index=2)
    return pivot


def fly_through(collection, cam) -> None:
    """Keyframe the camera along +X: before the first layer at the first epoch, at the last layer
    at the last epoch, looking ahead and in from the side so the next layers are in view."""
    lo, hi = network_bounds(collection)
    frames = epoch_frames(collection)
    length = float(hi[0] - lo[0])
    size = float(max(hi[1] - lo[1], hi[2] - lo[2], 1e-3))
    centre = (lo + hi) / 2
    direction = Vector((1.0, 0.75, -0.3)).normalized()
    back = direction * (1.3 * size)                 # beside the layers, not through them
    t = np.linspace(0.0, 1.0, len(frames)) if len(frames) > 1 else np.zeros(1)
    x = lo[0] + t * length - back.x
    for axis, values in ((0, x), (1, np.full_like(x, centre[1] - back.y)),
                         (2, np.full_like(x, centre[2] - back.z))):
        linear_keys(cam, "location", frames, values, axis)
    cam.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()


def apply_move(collection, move: str, scene=None, turns: float = 1.0) -> None:
    """Give the run's camera the move `move` (a MOVES key); the orbit spans the scene's frames."""
    if move not in MOVES:
        raise NNVisError(f"unknown camera move {move!r}; one of {', '.join(MOVES)}")
    cam = run_camera(collection)
    reset(collection, cam)
    if move == "orbit":
        scene = scene or bpy.context.scene
        orbit(collection, cam, scene.frame_start, scene.frame_end, turns)
    elif move == "fly_through":
        fly_through(collection, cam)
    collection["nnvis_camera_move"] = move
