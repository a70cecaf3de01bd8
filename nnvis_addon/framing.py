"""Where the camera goes so the network fills its part of the frame: pure numpy, no bpy.

The frame is split into a network area and margins reserved for the screen-space overlays
(`SCREEN`): the network's projected box is fitted to the network area — as large as fits, centred —
by choosing the camera distance (perspective) or scale (orthographic) along a view direction, and
the lens shift that centres it. A camera move is a list of view directions, each fitted the same
way, so the network stays inside its area at every key of every move.

Conventions follow Blender's camera: it looks down its local -Z with +Y up; the sensor fits the
frame's width; `shift_x`/`shift_y` move the frame by that fraction of its width (the larger side).
Frame coordinates (u, v) run from (0, 0) at the bottom-left corner to (1, 1) at the top-right.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Where things go on screen, in frame coordinates (u, v): the network's box is fitted inside
# NETWORK; the overlays use the margins around it (see scene/hud.py).
NETWORK = (0.12, 0.2, 0.88, 0.835)    # u0, v0, u1, v1
# From the network's centre towards the camera: low and three-quarter, so feature maps (which face
# -X) read as pictures and the network runs across the wide frame.
VIEW_DIRECTION = np.array([-0.62, -0.76, 0.2])
# Wrapped layouts (deep networks, rows one under another) are seen more from the front, so the
# rows stay level and apart on screen, but not so frontally that their maps stand edge-on; and
# lower: seen from above, each row's far end climbs, and two rows stand taller on screen (at
# z 0.16 ResNet50 covered 16.9 % of the frame, at 0.08 18.7 %). A network wider than its area
# from there turns towards its maps' faces (`wrapped_view`).
WRAPPED_VIEW_DIRECTION = np.array([-0.5, -0.85, 0.08])
WRAPPED_TURN = 0.7      # at most this share of the way to VIEW_DIRECTION: nearer the one-row
                        # view, the rows' maps stand in front of each other
# A network in one row is weighed against its wrapped layouts as seen from the front (`shown`):
# seen obliquely, one long row foreshortens and would always look best.
ROWS_VIEW_DIRECTION = np.array([-0.3, -0.94, 0.16])
LENS_MM, SENSOR_MM = 50.0, 36.0


@dataclass
class View:
    """A fitted camera: where it is, where it looks, and its lens shift (or orthographic scale)."""
    location: np.ndarray          # (3,)
    direction: np.ndarray         # (3,) unit vector from the target towards the camera
    shift: tuple[float, float]
    ortho_scale: float = 0.0      # > 0: orthographic
    box: tuple = (0.0, 0.0, 1.0, 1.0)   # the network's projected box (u0, v0, u1, v1)


def box_corners(lo, hi) -> np.ndarray:
    """(8, 3) corners of the axis-aligned box [lo, hi]."""
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                     for z in (lo[2], hi[2])], float)


def basis(direction) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(right, up, forward) unit vectors of a camera looking along -direction with world +Z up."""
    d = np.asarray(direction, float)
    forward = -d / np.linalg.norm(d)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-9:                 # looking straight down or up
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    return right, np.cross(right, forward), forward


def tan_half(lens: float = LENS_MM, sensor: float = SENSOR_MM) -> float:
    """tan of half the horizontal field of view."""
    return sensor / (2.0 * lens)


def project(points, location, direction, aspect: float, lens: float = LENS_MM,
            shift=(0.0, 0.0), ortho_scale: float = 0.0) -> np.ndarray:
    """(n, 3) → (n, 3): frame coordinates u, v and the depth in front of the camera."""
    right, up, forward = basis(direction)
    rel = np.asarray(points, float) - np.asarray(location, float)
    x, y, depth = rel @ right, rel @ up, rel @ forward
    if ortho_scale > 0:
        width = np.full_like(depth, ortho_scale)
    else:
        width = 2.0 * tan_half(lens) * np.maximum(depth, 1e-9)
    u = 0.5 + x / width - shift[0]
    v = 0.5 + y * aspect / width - shift[1] * aspect
    return np.stack([u, v, depth], axis=1)


def _box(uv) -> tuple[float, float, float, float]:
    return float(uv[:, 0].min()), float(uv[:, 1].min()), float(uv[:, 0].max()), float(uv[:, 1].max())


def fit(points, direction, aspect: float, area=NETWORK, lens: float = LENS_MM,
        orthographic: bool = False, target=None) -> View:
    """The view along `direction` whose projection of `points` fills `area` (u0, v0, u1, v1) as
    tightly as its aspect allows, centred in it. `target` (default: the points' box centre) is
    the point the camera aims at."""
    pts = np.asarray(points, float)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    target = (lo + hi) / 2 if target is None else np.asarray(target, float)
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    aw, ah = area[2] - area[0], area[3] - area[1]
    radius = float(np.linalg.norm(hi - lo)) / 2 + 1e-6

    def over(view_location, ortho_scale=0.0):
        uv = project(pts, view_location, d, aspect, lens, ortho_scale=ortho_scale)
        u0, v0, u1, v1 = _box(uv)
        return max((u1 - u0) / aw, (v1 - v0) / ah), uv

    if orthographic:
        location = target + d * (radius * 4 + 1.0)
        need, _ = over(location, 1.0)                 # box size scales with 1 / ortho_scale
        scale = max(need, 1e-6)
        _, uv = over(location, scale)
    else:
        near, far = radius * 1e-3, radius * 1e3   # too close: points behind the camera → no fit
        for _ in range(3):
            ratio, uv = over(target + d * far)
            if ratio < 1:
                break
            far *= 100
        for _ in range(60):                           # the box shrinks as the camera backs off
            mid = math.sqrt(near * far)
            location = target + d * mid
            ratio, uv = over(location)
            if uv[:, 2].min() <= radius * 1e-3 or ratio > 1:
                near = mid
            else:
                far = mid
        location = target + d * far
        _, uv = over(location)
        scale = 0.0
    u0, v0, u1, v1 = _box(uv)
    shift = ((u0 + u1) / 2 - (area[0] + area[2]) / 2,
             ((v0 + v1) / 2 - (area[1] + area[3]) / 2) / aspect)
    box = (u0 - shift[0], v0 - shift[1] * aspect, u1 - shift[0], v1 - shift[1] * aspect)
    return View(location, d, shift, scale, box)


def rotate_z(direction, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    x, y, z = direction
    return np.array([c * x - s * y, s * x + c * y, z])


def wrapped_view(points, aspect: float, steps: int = 10) -> np.ndarray:
    """The home view direction of a network wrapped into rows (`points`: its layers' corners):
    from WRAPPED_VIEW_DIRECTION turned towards the maps' faces while the network, fitted, is as
    wide as its area but not as high — each step shortens the rows on screen, so the camera
    comes closer and every map shows larger and more face-on — and no further than
    WRAPPED_TURN. From the side, EfficientNetB0's and mobilenet_v3_small's two rows were wider
    than the area (88 % and 93 % of its height) and covered 13.8 % and 14.7 % of the frame."""
    turn = math.atan2(VIEW_DIRECTION[1], VIEW_DIRECTION[0]) - \
        math.atan2(WRAPPED_VIEW_DIRECTION[1], WRAPPED_VIEW_DIRECTION[0])
    height = NETWORK[3] - NETWORK[1]
    for t in np.linspace(0.0, WRAPPED_TURN, steps + 1):
        direction = rotate_z(WRAPPED_VIEW_DIRECTION, t * turn)
        box = fit(points, direction, aspect).box
        if box[3] - box[1] >= 0.99 * height:
            break
    return direction


def orbit_swing(home) -> tuple[float, float, float]:
    """(toward, away, rise) of the orbit from `home`: degrees round to the maps' faces and the
    other way, 60° in all, and how far the view rises towards the faces (in the direction's z).
    A network in one row swings 30° each way and rises steeply on the faces' side: there the
    camera looks down the row, and only from above do its layers stand apart on screen (at 40°
    round and z + 0.2 the digits' maps and labels piled into one heap; 30° further to the side
    the maps stand nearly edge-on). One wrapped into rows swings further the other way, towards
    the side view, where its rows stay apart (seen from nearer the front they slide over each
    other)."""
    front = VIEW_DIRECTION / np.linalg.norm(VIEW_DIRECTION)
    wrapped = not np.allclose(np.asarray(home, float) / np.linalg.norm(home), front)
    return (20.0, 40.0, 0.2) if wrapped else (30.0, 30.0, 0.6)


def orbit_directions(home, steps: int = 48) -> list[np.ndarray]:
    """`steps + 1` directions swinging `home` about +Z and back home, 60° of azimuth in all
    (`orbit_swing`): first round to the maps' faces (they face -X), rising so the layers, seen
    more end-on there, stand apart on screen; then through home to the other side. Farther
    either way the layers hide each other (end-on) or the maps stand edge-on (side)."""
    toward, away, rise = orbit_swing(home)
    out = []
    for k in range(steps + 1):
        s = math.sin(2 * math.pi * k / steps)
        d = rotate_z(home, math.radians(toward if s > 0 else away) * -s)
        out.append(d + np.array([0.0, 0.0, rise * max(s, 0.0)]))
    return out


def fly_directions(steps: int = 24) -> list[np.ndarray]:
    """Along the network, input to output: from low behind the input (looking down the depth
    axis +X) round to the output's flank, so the view travels with the data."""
    start, end = np.array([-0.78, -0.625, 0.15]), np.array([0.35, -0.9, 0.26])
    out = []
    for t in np.linspace(0.0, 1.0, steps + 1):
        a = (1 - t) * math.atan2(start[1], start[0]) + t * math.atan2(end[1], end[0])
        z = (1 - t) * start[2] + t * end[2]
        out.append(np.array([math.cos(a), math.sin(a), z]))
    return out


def shown(points, aspect: float, rows: int) -> float:
    """How large a layout of `rows` rows shows (`magnification`) in the view it would get: turned
    as `wrapped_view` turns it, one row from the front (ROWS_VIEW_DIRECTION). Weighed from the
    front too, MobileNetV3Small's 3 rows beat 2 by 7 %, yet its home view shows 2 rows 7 % larger:
    in 3 rows it covered 9.8 % of the frame and its stage labels hid a third of its top row."""
    return magnification(points, aspect,
                         wrapped_view(points, aspect) if rows > 1 else ROWS_VIEW_DIRECTION)


def height_share(points, aspect: float, direction=VIEW_DIRECTION) -> float:
    """Share of the network area's height the network fills, fitted along `direction`."""
    box = fit(points, direction, aspect).box
    return (box[3] - box[1]) / (NETWORK[3] - NETWORK[1])


def magnification(points, aspect: float, direction=ROWS_VIEW_DIRECTION) -> float:
    """How large the fitted default view shows the network (1 / camera distance): layouts of the
    same cells compare by it — the larger, the bigger every feature map on screen."""
    pts = np.asarray(points, float)
    view = fit(pts, direction, aspect)
    return 1.0 / float(np.linalg.norm(view.location - (pts.min(axis=0) + pts.max(axis=0)) / 2))
