"""Layer labels: each layer's name and output shape (`conv1` / `32×32×8`) beside it in the scene.

A label is a text object turned to the camera by a Copy Rotation constraint, so it faces the
viewer in every camera move, and sized by its distance from the camera so it reads at `SIZE` of the
frame height in every view of the move. Labels stand above their layer, or below it where a
neighbour's label already takes the space. A network wrapped into rows (or over `MAX_LAYER_LABELS`
layers) gets one label per stage (stages.py: input, stem, stage 1..n, head) unless per-layer labels
are asked for: a row of a dozen labels would stack into the next row.
"""
from __future__ import annotations

import bpy
import numpy as np

from .. import framing
from ..blocks import EXPANDED, title
from ..stages import shape_text, stages
from . import nodes
from .font import text_width
from .overlays import MIN_TEXT, card_material, label_material
from .. import names

SIZE = 1.1 * MIN_TEXT     # text size, in frame heights (a two-line label stands ≈ 2 × as tall)
SMALLEST = 1.05 * MIN_TEXT  # ... and never less than MIN_TEXT in any view of a camera move (5 %
                            # to spare: a label pulled in front keeps its size in the first view)
MAX_LAYER_LABELS = 40
MODES = {"auto": "Layer labels for a network in one row, stage labels when it wraps into rows",
         "layers": "One label per layer", "stages": "One label per stage (input, stem, "
         "stages, head)", "none": "No labels"}
NEAR = 0.02               # a label pulled before the layers it meets stands this share of its
                           # distance in front of them
INK = 0.9                  # a line's ink above its baseline and below, in text sizes (measured
                           # 0.19 + 0.7 of Blender's default font; lines are 1.2 apart)


def label_specs(network, placements: dict, mode: str = "auto") -> list[tuple[str, str, list]]:
    """(label name, text, layer names) per label."""
    if mode == "none":
        return []
    wrapped = any(p.row for p in placements.values())
    if mode == "stages" or (mode == "auto" and (wrapped or len(network.layers) > MAX_LAYER_LABELS)):
        # a block expanded from the sidebar is looked at layer by layer: its layers' own labels,
        # short (a dozen side by side: conv3_block2_1_conv → 1_conv) beside the stages'
        return [(s.name, s.text(network), s.layers) for s in stages(network)] + \
            [(l.name, _within(l.name, l.config[EXPANDED]), [l.name]) for l in network.layers
             if EXPANDED in l.config]
    return [(l.name, f"{title(l)}\n{shape_text(l)}", [l.name]) for l in network.layers]


def _within(name: str, block: str) -> str:
    """A layer's name inside its block: without the block's name before it."""
    short = name.removeprefix(block).lstrip("_/.:")
    return short or name


def _anchors(layers: list, placements: dict, front: float | None
             ) -> tuple[np.ndarray, np.ndarray]:
    """(top, bottom) anchor points above and below the labelled layers' box — in a wrapped
    layout, the box of those in the row holding most of them."""
    rows = [placements[n].row for n in layers]
    main = max(set(rows), key=rows.count)
    pts = []
    for name in layers:
        p = placements[name]
        if p.row != main:
            continue
        half = p.cell_size / 2
        pts += [p.centers.min(axis=0) - [0, half, half], p.centers.max(axis=0) + [0, half, half]]
    pts = np.asarray(pts, float)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    # on the layers' front edge (the cameras look from -Y); deep networks: in the network's front
    # plane, before the rows' edges and skip arcs
    x, y = (lo[0] + hi[0]) / 2, (lo[1] if front is None else front)
    return np.array([x, y, hi[2]]), np.array([x, y, lo[2]])


def add_labels(collection, network, placements: dict, camera, mode: str = "auto") -> list:
    """The label objects of `network`, unsized and unplaced until `arrange`."""
    objects = []
    front = None
    last_row = max(p.row for p in placements.values())
    if last_row:
        front = min(float(p.centers[:, 1].min()) - p.cell_size / 2 for p in placements.values())
    for name, text, layers in label_specs(network, placements, mode):
        curve = bpy.data.curves.new(f"Label {name}", "FONT")
        curve.body = text
        curve.align_x = "CENTER"
        curve.materials.append(label_material())
        obj = bpy.data.objects.new(f"Label {name}", curve)
        obj[names.LABEL] = name
        obj[names.LABEL_LAYERS] = layers
        top, bottom = _anchors(layers, placements, front)
        obj[names.ANCHOR_TOP], obj[names.ANCHOR_BOTTOM] = top.tolist(), bottom.tolist()
        # under a row is the next row's place: there only the last row's labels may hang
        rows = [placements[n].row for n in layers]
        obj[names.LABEL_BELOW] = max(set(rows), key=rows.count) == last_row
        _add_card(obj)
        constraint = obj.constraints.new("COPY_ROTATION")
        constraint.target = camera
        collection.objects.link(obj)
        objects.append(obj)
    return objects


def _add_card(obj) -> None:
    """The background-coloured card behind the text (nodes.label_plate_group)."""
    group = nodes.label_plate_group()
    card = obj.modifiers.new(names.GROUP_LABEL_PLATE, "NODES")
    card.node_group = group
    card[nodes.input_ids(group)["Material"]] = card_material()


def labels_of(collection) -> list:
    return [o for o in collection.all_objects if names.LABEL in o]


def _frame_height(depth, view: framing.View, aspect: float):
    """World height of the frame at `depth` in front of the camera."""
    if view.ortho_scale > 0:
        return np.full_like(np.asarray(depth, float), view.ortho_scale / aspect)
    return 2.0 * np.asarray(depth, float) * framing.tan_half() / aspect


def arrange(labels: list, views: list, aspect: float, layer_points=None) -> None:
    """Size every label for the views of the move and stack them so neighbours on screen don't
    overlap: above the layer first, then below, then a row further out — nudged right past a
    neighbour where that is enough, and kept inside the network's area of the frame where a free
    place there exists. `layer_points` (n × 8
    box corners per layer) pull a label along the first view's ray in front of every layer whose
    screen box it meets (same place and size on screen): a label wider than the gap between two
    layers would otherwise sink into its neighbours' maps."""
    if not labels:
        return
    tops = np.array([o[names.ANCHOR_TOP] for o in labels], float)
    bottoms = np.array([o[names.ANCHOR_BOTTOM] for o in labels], float)
    heights = np.array([_frame_height(framing.project(tops, v.location, v.direction, aspect,
                                                      ortho_scale=v.ortho_scale)[:, 2], v, aspect)
                        for v in views])
    # SIZE in the first (home) view, but at least SMALLEST in every other one
    sizes = np.maximum(SIZE * heights[0], SMALLEST * heights.max(axis=0))
    first = views[0]

    def screen(points):
        return framing.project(points, first.location, first.direction, aspect,
                               shift=first.shift, ortho_scale=first.ortho_scale)

    top_uv, bottom_uv = screen(tops), screen(bottoms)
    lines = [o.data.body.split("\n") for o in labels]
    half_u = np.array([max(map(text_width, ls)) for ls in lines]) * SIZE / aspect / 2
    tall = np.array([len(ls) for ls in lines]) * 1.2 * SIZE + 0.4 * SIZE   # frame heights
    placed: list[tuple[float, float, float, float]] = []
    nearest = None
    if layer_points is not None and len(layer_points) and len(layer_points) % 8 == 0:
        corners = screen(np.asarray(layer_points, float).reshape(-1, 3)).reshape(-1, 8, 3)
        nearest = (corners[:, :, :2].min(axis=1), corners[:, :, :2].max(axis=1),
                   corners[:, :, 2].min(axis=1))
    right = framing.basis(first.direction)[0]
    for k in np.argsort(top_uv[:, 0]):
        u = top_uv[k, 0]
        below = labels[k].get(names.LABEL_BELOW, True)
        chosen = None       # the first free place, or the first that stays in the network's area
        for row in (0, -1, 1, -2, 2, -3, 3, -4, 4) if below else (0, 1, 2, 3, 4):
            v0 = (top_uv[k, 1] if row >= 0 else bottom_uv[k, 1]) + row * tall[k]
            box = _free((u - half_u[k], v0, u + half_u[k], v0 + tall[k]), placed)
            if box is None:
                continue
            if chosen is None:
                chosen = row, box
            if framing.NETWORK[1] <= box[1] and box[3] <= framing.NETWORK[3]:
                chosen = row, box
                break
        row, box = chosen or (0, (u - half_u[k], top_uv[k, 1], u + half_u[k], top_uv[k, 1] + tall[k]))
        placed.append(box)
        obj, size = labels[k], sizes[k]
        step = len(lines[k]) * 1.2 * size + 0.4 * size     # one label's height, in world units
        obj.data.size = size
        if row >= 0:      # above: the text's bottom sits a little over the layer
            obj.data.align_y = "BOTTOM"
            location = (tops[k][0], tops[k][1], tops[k][2] + 0.4 * size + row * step)
        else:             # below: the first line hangs under the layer
            obj.data.align_y = "TOP"
            location = (bottoms[k][0], bottoms[k][1], bottoms[k][2] - 0.4 * size + (row + 1) * step)
        aside = ((box[0] + box[2]) / 2 - u) * heights[0][k] * aspect      # world units
        location = np.array(location) + right * aside
        # sized at its layer's anchor: standing aside, or pulled in front (its size kept for the
        # first view), it may read smaller in another view of the move
        grow = max(_least(location, views, aspect) / size, 1.0)
        mid, half = (box[0] + box[2]) / 2, (box[2] - box[0]) / 2 * grow
        box = (mid - half, box[1], mid + half, box[1] + (box[3] - box[1]) * grow)
        location, size = _in_front(location, size * grow, box, nearest, first)
        obj.location, obj.data.size = location, max(size, _least(location, views, aspect))


def _least(location, views: list, aspect: float) -> float:
    """The smallest size a label at `location` may have: SMALLEST in every one of `views`."""
    return SMALLEST * max(float(_frame_height(framing.project(
        [location], v.location, v.direction, aspect, ortho_scale=v.ortho_scale)[0, 2], v,
        aspect)) for v in views)


def _meets(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _free(box, placed: list):
    """`box` where it meets no `placed` box, else moved right just past the ones it meets — at
    most half its width, so it still stands over what it names — else None."""
    half, start = (box[2] - box[0]) / 2, box[0]
    while box[0] - start <= half:
        hits = [b for b in placed if _meets(box, b)]
        if not hits:
            return box
        shift = max(b[2] for b in hits) + 0.2 * half - box[0]
        box = (box[0] + shift, box[1], box[2] + shift, box[3])
    return None


def _in_front(location: np.ndarray, size: float, box, nearest, view: framing.View):
    """(location, size) moved along `view`'s ray to stand before the layers whose screen boxes
    meet the label's `box`, scaled to keep its size on screen."""
    if nearest is None:
        return tuple(location), size
    pad = 0.15 * (box[3] - box[1])      # the card's margin round the text, and some to spare
    box = (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad)
    lo, hi, depth = nearest
    meets = (lo[:, 0] < box[2]) & (box[0] < hi[:, 0]) & (lo[:, 1] < box[3]) & (box[1] < hi[:, 1]) \
        & (depth > 0)       # a layer behind the camera hides nothing
    if not meets.any():
        return tuple(location), size
    _, _, forward = framing.basis(view.direction)
    own = float((location - np.asarray(view.location, float)) @ forward)
    front = float(depth[meets].min()) - NEAR * own
    if front >= own or front <= 0:
        return tuple(location), size
    if view.ortho_scale > 0:
        return tuple(location - forward * (own - front)), size
    scale = front / own
    return tuple(np.asarray(view.location, float) + (location - view.location) * scale), size * scale


def label_points(labels: list, direction=None) -> np.ndarray:
    """(n, 3) corners of the labels as placed (for framing): the text's extent around its anchor
    across the view `direction` (labels turn to the camera), or in every horizontal direction
    when none is given, so the box holds whatever way the camera turns."""
    if direction is None:
        across = None
    else:
        across = np.array([-direction[1], direction[0], 0.0], float)
        across /= max(np.linalg.norm(across), 1e-9)
    pts = []
    for obj in labels:
        size = obj.data.size
        lines = obj.data.body.split("\n")
        half = max(map(text_width, lines)) * size / 2
        height = ((len(lines) - 1) * 1.2 + INK) * size
        x, y, z = obj.location
        bottom = z - height if obj.data.align_y == "TOP" else z
        if across is None:
            pts.append(framing.box_corners((x - half, y - half, bottom),
                                           (x + half, y + half, bottom + height)))
            continue
        side = across * half
        pts += [(x + sx * side[0], y + sx * side[1], h) for sx in (-1, 1)
                for h in (bottom, bottom + height)]
    return np.asarray(pts, float).reshape(-1, 3)
