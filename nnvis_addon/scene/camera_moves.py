"""The run's camera and its moves: a static framed view, an orbit around the network, a
fly-through along it (input to output) — each fitted with `framing.fit` at every key, so the
network fills its area of the frame and stays inside it at every frame of the move — or a tour
that frames each stage in turn (the input, the stem, stage 1, …, the head) between two whole views.

One camera serves every run. Each run has a screen: an empty (`SCREEN`) parented to the camera
that maps frame coordinates onto a plane just in front of the lens; the run's overlays (hud.py)
hang from it, so they stay put on screen, upright and unmirrored, whatever the camera does. When a
move changes the lens shift, the screen is keyed along with it; the other runs' screens are parked.
Everything is keyframes and parenting: it plays without the add-on.
"""
from __future__ import annotations

import bpy
import numpy as np
from mathutils import Euler, Vector

from .. import framing
from ..errors import NNVisError
from . import compat, labels as labels_mod
from .animation import epoch_path, linear_keys
from .layers import MODIFIER
from .nodes import input_ids
from .run_record import RunRecord
from .. import names

MOVES = {
    "static": "The framed three-quarter view",
    "orbit": "A swing of 60° around the network (in one row: 30° round to the maps' faces, "
             "rising to look down the row, and 30° the other way; wrapped into rows: 20° and "
             "40°) and back over the scene's frame range, the network framed at every angle",
    "fly_through": "Along the network, from behind the input round to the output's side, "
                   "timed to the epochs",
    "tour": "From the whole network to each stage in turn (input, stem, stages, head), framed "
            "large while training goes on, and back to the whole network",
}
TOUR_EDGES = 0.08           # share of the frame range spent on the whole view at each end
TOUR_HOLD = 1.5             # a stop's hold, in units of one move between stops
TOUR_ZOOM = 2.5             # a stop shows at most this share of the whole network's box: closer
SCREEN = "NNVis Screen"
# the layer inputs that move or resize cells: set on a whole run, the camera frames it again
LAYOUT_INPUTS = {"Expansion", "Morph", "Spacing", "Scale", "Max Cells"}
SCREEN_DEPTH = 1.0          # the overlays' plane, in front of the lens (world units)


def run_camera(collection):
    cam = next((o for o in collection.all_objects if o.type == "CAMERA"), None)
    if cam is None:
        raise NNVisError(f"run {collection.name!r} has no camera")
    return cam


def screen_of(collection):
    """The run's screen: the empty its overlays hang from, a child of the shared camera."""
    return next((o for o in collection.objects if o.get(names.SCREEN)), None)


def aspect_of(scene) -> float:
    r = scene.render
    return (r.resolution_x * r.pixel_aspect_x) / max(r.resolution_y * r.pixel_aspect_y, 1e-9)


def epoch_frames(collection) -> np.ndarray:
    """Frames of the recorded epochs, read from a layer's Epoch keyframes."""
    for obj in collection.all_objects:
        path = epoch_path(obj)
        for fcurve in compat.fcurves_of(obj):
            if fcurve.data_path == path and len(fcurve.keyframe_points):
                co = np.empty(2 * len(fcurve.keyframe_points), np.float32)
                fcurve.keyframe_points.foreach_get("co", co)
                return co[0::2]
    raise NNVisError(f"run {collection.name!r} has no Epoch keyframes")


def network_points(collection) -> np.ndarray:
    """(n, 3) corners of every layer's box as the scene shows it now (after Morph, Spacing,
    object transforms, …): the framing target."""
    layers = [o for o in collection.all_objects if names.LAYER in o and not o.hide_render]
    if not layers:
        raise NNVisError(f"run {collection.name!r} has no layer objects")
    return np.concatenate([framing.box_corners(lo, hi)
                           for lo, hi in evaluated_boxes(layers).values()])


def stop_points(collection, labels=(), placed=None) -> list[np.ndarray]:
    """(n, 3) corners of each stage's layers (and of the labels naming them, where `placed` — a
    labels.Placement per stop — has them), in network order: the tour's stops. The stages were
    written at import (`RunRecord.stops`)."""
    stages = RunRecord(collection).stops
    layers = [o for o in collection.all_objects if names.LAYER in o and not o.hide_render]
    boxes = evaluated_boxes(layers)
    box_of = {o[names.LAYER]: boxes[o.name] for o in layers if o.name in boxes}
    out = []
    for k, (_, members) in enumerate(stages):
        pts = [framing.box_corners(*box_of[n]) for n in members if n in box_of]
        named = [i for i, o in enumerate(labels) if set(o[names.LABEL_LAYERS]) & set(members)]
        if named:
            pts.append(labels_mod.label_points(labels, placement=placed[k])[
                np.repeat(named, 8) * 8 + np.tile(np.arange(8), len(named))])
        if pts:
            out.append(np.concatenate(pts))
    return out


def tour_frames(frame_start: float, frame_end: float, stops: int) -> np.ndarray:
    """Key frames of a tour of `stops` stops: the whole view held at each end, then per stop a
    move and a hold (TOUR_HOLD moves long), and a last move back — two keys per hold."""
    length = frame_end - frame_start
    first, last = frame_start + TOUR_EDGES * length, frame_end - TOUR_EDGES * length
    move = (last - first) / (stops + 1 + TOUR_HOLD * stops)
    frames, t = [frame_start, first], first
    for _ in range(stops):
        frames += [t + move, t + move + TOUR_HOLD * move]
        t += move + TOUR_HOLD * move
    return np.array(frames + [last, frame_end], np.float32)


def evaluated_boxes(objects) -> dict:
    """{object name: (lo, hi)} world box of each object's evaluated geometry, its instances (the
    cells) included; objects that show nothing are left out. One pass over the depsgraph's
    instances serves every object."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    wanted = {o.name for o in objects}
    cells: dict[str, list] = {}
    for inst in depsgraph.object_instances:
        if inst.is_instance and inst.parent is not None and inst.parent.original.name in wanted:
            cells.setdefault(inst.parent.original.name, []).append(
                tuple(inst.matrix_world.translation))
    boxes = {}
    for obj in objects:
        ev = obj.evaluated_get(depsgraph)
        if obj.name in cells:
            world = np.array(cells[obj.name], float)
            half = np.full(3, _cell_half_size(obj))
            if len(obj.get(names.SHAPE, ())) == 3:    # feature maps: planes facing -X
                half[0] = 0.0
        else:
            co = np.array([tuple(c) for c in ev.bound_box], float)
            if not np.ptp(co, axis=0).any():
                continue
            matrix = np.array(ev.matrix_world)
            world = co @ matrix[:3, :3].T + matrix[:3, 3]
            half = 0.0
        boxes[obj.name] = (world.min(axis=0) - half, world.max(axis=0) + half)
    return boxes


def _cell_half_size(obj) -> float:
    mod = obj.modifiers.get(MODIFIER)
    if mod is None or mod.node_group is None:
        return 0.0
    ids = input_ids(mod.node_group)
    size = max(float(mod.get(ids.get("Width", ""), 0.0) or 0.0),
               float(mod.get(ids.get("Height", ""), 0.0) or 0.0))
    scale = float(mod.get(ids.get("Scale", ""), 1.0) or 1.0)
    return size * scale / 2


def add_camera(collection, name: str = "NNVis Camera"):
    """A camera (unframed: `apply_move` places it), linked into `collection`."""
    data = bpy.data.cameras.new(name)
    data.lens = framing.LENS_MM
    data.sensor_width = framing.SENSOR_MM
    data.sensor_fit = "HORIZONTAL"
    cam = bpy.data.objects.new(name, data)
    collection.objects.link(cam)
    return cam


def add_screen(collection, cam):
    """The run's screen empty, parented to `cam` (placed by `apply_move`)."""
    screen = bpy.data.objects.new(SCREEN, None)
    screen[names.SCREEN] = True
    screen.empty_display_size = 0.01
    screen.parent = cam
    collection.objects.link(screen)
    return screen


def park_other_screens(collection, cam) -> None:
    """One camera serves every run but shows one run's overlays: the screens of the other runs
    riding on it shrink to nothing (their overlays stay as they are, out of sight)."""
    for screen in cam.children:
        if screen.get(names.SCREEN) and screen.name not in collection.objects:
            if screen.animation_data is not None:
                screen.animation_data_clear()
            screen.scale = (0.0, 0.0, 0.0)


def _screen_transform(view: framing.View, aspect: float):
    """(location, scale) of the screen empty in camera space: child point (X, Y) with
    X ∈ [0, aspect], Y ∈ [0, 1] lands on frame coordinates (X / aspect, Y)."""
    if view.ortho_scale > 0:
        width = view.ortho_scale
    else:
        width = 2.0 * SCREEN_DEPTH * framing.tan_half()
    height = width / aspect
    x = -width / 2 + view.shift[0] * width
    y = -height / 2 + view.shift[1] * width
    return (x, y, -SCREEN_DEPTH), height


def _rotation(direction, previous: Euler | None = None) -> Euler:
    quat = Vector(-np.asarray(direction)).to_track_quat("-Z", "Y")
    return quat.to_euler("XYZ", previous) if previous is not None else quat.to_euler("XYZ")


def apply_view(cam, view: framing.View, aspect: float, screen=None) -> None:
    cam.location = Vector(view.location)
    cam.rotation_euler = _rotation(view.direction)
    cam.data.shift_x, cam.data.shift_y = view.shift
    cam.data.type = "ORTHO" if view.ortho_scale > 0 else "PERSP"
    if view.ortho_scale > 0:
        cam.data.ortho_scale = view.ortho_scale
    reach = float(np.linalg.norm(view.location)) + 1.0
    cam.data.clip_start = SCREEN_DEPTH * 0.5
    cam.data.clip_end = max(1000.0, reach * 4)
    if screen is not None:
        screen.location, s = _screen_transform(view, aspect)
        screen.scale = (s, s, s)
        screen.rotation_euler = (0.0, 0.0, 0.0)


def key_views(cam, frames, views: list[framing.View], aspect: float, screen=None,
              eased: bool = False) -> None:
    """Keyframe the camera (and its screen) through `views` at `frames` (`eased`: easing out of
    and into each key, for moves that stop)."""
    frames = np.asarray(frames, np.float32)
    loc = np.array([v.location for v in views], np.float32)
    rot, previous = [], None
    for v in views:
        previous = _rotation(v.direction, previous)
        rot.append(tuple(previous))
    rot = np.array(rot, np.float32)
    for axis in range(3):
        linear_keys(cam, "location", frames, loc[:, axis], axis, eased)
        linear_keys(cam, "rotation_euler", frames, rot[:, axis], axis, eased)
    data = cam.data
    linear_keys(data, "shift_x", frames, np.array([v.shift[0] for v in views], np.float32),
                eased=eased)
    linear_keys(data, "shift_y", frames, np.array([v.shift[1] for v in views], np.float32),
                eased=eased)
    if views[0].ortho_scale > 0:
        linear_keys(data, "ortho_scale", frames, np.array([v.ortho_scale for v in views],
                                                          np.float32), eased=eased)
    if screen is not None:
        placed = [_screen_transform(v, aspect) for v in views]
        for axis in range(3):
            linear_keys(screen, "location", frames,
                        np.array([p[0][axis] for p in placed], np.float32), axis, eased)
            linear_keys(screen, "scale", frames, np.array([p[1] for p in placed], np.float32),
                        axis, eased)


def clear_keys(cam, screen=None) -> None:
    for block in (cam, cam.data, screen):
        if block is not None and block.animation_data is not None:
            block.animation_data_clear()


def move_views(move: str, points, aspect: float, orthographic: bool, frame_start: int,
               frame_end: int, epoch_keys=None, home=framing.VIEW_DIRECTION, stops=(),
               facing=None) -> tuple[np.ndarray, list[framing.View]]:
    """(frames, fitted views) of `move` around the `home` view direction. The fly-through
    arrives with the last epoch; the tour frames each of `stops` (point sets) in turn.
    `facing(k, direction)`: more points to frame in the move's k-th view (labels placed for it,
    turned to it)."""
    def seen(k, d):
        return points if facing is None else np.concatenate([points, facing(k, d)])

    if move == "static":
        return np.array([frame_start], np.float32), [
            framing.fit(seen(0, home), home, aspect, orthographic=orthographic)]
    if move == "tour":
        if not len(stops):
            raise NNVisError("the tour visits the network's stages, and this run has none "
                             "recorded: import it again")
        whole = framing.fit(seen(0, home), home, aspect, orthographic=orthographic)
        views = [whole, whole]
        reach = np.ptp(points, axis=0) / TOUR_ZOOM / 2
        for pts in stops:     # a box at least 1 / TOUR_ZOOM of the network's: a close-up, not a
            mid = (pts.min(axis=0) + pts.max(axis=0)) / 2       # single map filling the frame
            pts = np.concatenate([pts, framing.box_corners(mid - reach, mid + reach)])
            views += [framing.fit(pts, home, aspect, orthographic=orthographic)] * 2
        return tour_frames(frame_start, frame_end, len(stops)), views + [whole, whole]
    if move == "orbit":
        directions = framing.orbit_directions(home)
        frames = np.linspace(frame_start, frame_end, len(directions))
    elif move == "fly_through":
        directions = framing.fly_directions()
        last = float(epoch_keys[-1]) if epoch_keys is not None and len(epoch_keys) else frame_end
        first = float(epoch_keys[0]) if epoch_keys is not None and len(epoch_keys) else frame_start
        frames = np.linspace(first, max(last, first + 1), len(directions))
    else:
        raise NNVisError(f"unknown camera move {move!r}; one of {', '.join(MOVES)}")
    # one target for the whole move, so the camera turns about a fixed point
    lo, hi = np.min(seen(0, home), axis=0), np.max(seen(0, home), axis=0)
    return frames, [framing.fit(seen(k, d), d, aspect, orthographic=orthographic,
                                target=(lo + hi) / 2) for k, d in enumerate(directions)]


def apply_move(collection, move: str, scene=None, orthographic: bool | None = None,
               points=None, aspect: float | None = None, frame_range=None) -> list[framing.View]:
    """Give the run's camera the move `move` (a MOVES key), framed for the scene's aspect ratio
    (or `aspect`); the orbit spans the scene's frames (or `frame_range`). Returns the views."""
    if move == "still":     # the name before 0.2
        move = "static"
    if move not in MOVES:
        raise NNVisError(f"unknown camera move {move!r}; one of {', '.join(MOVES)}")
    scene = scene or bpy.context.scene
    cam = run_camera(collection)
    if orthographic is None:
        orthographic = cam.data.type == "ORTHO"
    points = network_points(collection) if points is None else points
    aspect = aspect or aspect_of(scene)
    start, end = frame_range or (scene.frame_start, scene.frame_end)
    keys = epoch_frames(collection) if move == "fly_through" else None
    home = np.asarray(RunRecord(collection).view, float)
    stops = stop_points(collection) if move == "tour" else ()
    frames, views = move_views(move, points, aspect, orthographic, start, end, keys, home, stops)
    labels = [o for o in labels_mod.labels_of(collection) if not o.hide_render]
    screen = screen_of(collection)
    if labels:     # labels placed in each view, each view refitted around them, placed again
        found = labels_mod.placements(labels, views, aspect, points)
        if move == "tour":      # stop k is the move's views 2 + 2k and 3 + 2k
            stops = stop_points(collection, labels, found[2::2])

        def facing(k, d):
            return labels_mod.label_points(labels, d, found[k])

        frames, views = move_views(move, points, aspect, orthographic, start, end, keys, home,
                                   stops, facing)
        # fitted around the labels, the views leave them room beside the overlays: there the
        # overlays stand in their way (before, where they stand is the framing's to decide)
        labels_mod.arrange(labels, views, aspect, points, frames, eased=move == "tour",
                           overlays=labels_mod.overlay_boxes(
                               collection, screen, aspect, scene,
                               (start, (start + end) // 2, end)) if screen else ())
    clear_keys(cam, screen)
    apply_view(cam, views[0], aspect, screen)
    if len(views) > 1:
        key_views(cam, frames, views, aspect, screen, eased=move == "tour")
    park_other_screens(collection, cam)
    record = RunRecord(collection)
    record.camera_move, record.orthographic = move, orthographic
    return views
