"""Layer labels: each layer's name and output shape (`conv1` / `32×32×8`) beside it in the scene.

A label is a text object turned to the camera by a Copy Rotation constraint, so it faces the
viewer in every camera move, and sized by its distance from the camera so it reads at `SIZE` of the
frame height (12 px at 640×360, like every overlay text) in every view of the move. Labels stand
over or under their layers, wherever they grow the framed picture least (`arrange`). A network
wrapped into rows, or whose per-layer labels would not fit side by side over and under its row,
gets one label per stage (stages.py: input, stem, stage 1..n, head) unless per-layer labels are
asked for.
"""
from __future__ import annotations

from typing import NamedTuple

import bpy
import numpy as np
from mathutils import Vector

from .. import framing, layout
from ..blocks import EXPANDED, PART, title
from ..stages import shape_text, stages
from . import nodes
from .animation import linear_keys
from .font import text_width
from .overlays import MIN_TEXT, card_material, label_material
from .. import names

SIZE = MIN_TEXT            # text size, in frame heights (a two-line label stands ≈ 2 × as tall):
                           # 12 px at 640×360 in every view of a move
MARGIN = 0.001             # a label keyed at a move's views reads a little smaller between them
JUMP = 0.05                # a label changing places moves in this share of a frame (F-curves
                           # merge keys closer than 0.01)
MODES = {"auto": "Layer labels for a network in one row where they fit side by side, stage "
         "labels otherwise",
         "layers": "One label per layer", "stages": "One label per stage (input, stem, "
         "stages, head)", "none": "No labels"}
GAP_COST = 0.03           # a label between two rows stands among the next row's labels: taken there
                           # only where over its own row the picture would shrink 3 % more
HUG = 0.5                  # ... and lifted this share of its height onto its row's edge: hung under
                           # it, it stood as near the next row (MobileNetV2's stage 2 label, 0.019
                           # of the frame height under its row, 0.022 over the head), read as that's
HIDDEN = 1e-4             # the text size of a label a view does not show (Blender's least)
KEEP_COST = 0.05          # a label changing sides (over / under, or another row of the network)
                           # between two views of a move jumps: it does so only where it would
                           # shrink the picture 5 % more where it stood
NEAR = 0.02               # a label pulled before the layers it meets stands this share of its
                           # distance in front of them
INK = 0.9                  # a line's ink above its baseline and below, in text sizes (measured
                           # 0.19 + 0.7 of Blender's default font; lines are 1.2 apart)


def label_specs(network, placements: dict, mode: str = "auto", aspect: float = 16 / 9
                ) -> list[tuple[str, str, list]]:
    """(label name, text, layer names) per label."""
    if mode == "none":
        return []
    wrapped = any(p.row for p in placements.values())
    per_layer = [(l.name, f"{title(l)}\n{shape_text(l)}", [l.name]) for l in network.layers]
    if mode == "stages" or (mode == "auto" and (wrapped or not _side_by_side(per_layer, aspect))):
        return [(s.name, s.text(network), s.layers) for s in stages(network)] + \
            _expanded(network, placements, aspect)
    return per_layer


def _expanded(network, placements: dict, aspect: float) -> list[tuple[str, str, list]]:
    """Labels of the blocks expanded from the sidebar, looked at layer by layer beside the stage
    labels: their layers' short names (a dozen side by side: conv3_block2_1_conv → 1_conv) where
    these fit side by side over the block's share of its row, else one label per block within it
    (ResNet101V2's folded stage conv3: conv3_block1 … conv3_block4; short too: a stage conv3's
    block1 …), else one for the whole. ResNet101V2's 55 layer labels had spread over the legends
    and the counter, the network shrunk to a strip."""
    found: dict[str, list] = {}
    for layer in network.layers:
        if EXPANDED in layer.config:
            found.setdefault(layer.config[EXPANDED], []).append(layer)
    specs = []
    for block, layers in found.items():
        share = _row_share([l.name for l in layers], placements)
        parts: dict[str, list] = {}
        for layer in layers:
            parts.setdefault(layer.config.get(PART, block), []).append(layer.name)
        choices = [[(l.name, _within(l.name, block), [l.name]) for l in layers]]
        if len(parts) > 1:
            choices.append([(part, f"{_within(part, block)}\n{shape_text(network.layer(n[-1]))}",
                             n) for part, n in parts.items()])
        whole = [(block, f"{block} · {len(layers)} layers\n{shape_text(layers[-1])}",
                  [l.name for l in layers])]
        specs += next((c for c in choices if _side_by_side(c, aspect, share)), whole)
    return specs


def _row_share(layers: list[str], placements: dict) -> float:
    """The share of its row's length that `layers` take (in the row holding most of them)."""
    rows = [placements[n].row for n in layers]
    row = max(set(rows), key=rows.count)
    xs = sorted(p.x for p in placements.values() if p.row == row)
    own = [placements[n].x for n in layers if placements[n].row == row]
    step = (xs[-1] - xs[0]) / max(len(xs) - 1, 1)      # a layer's share of the row
    return (max(own) - min(own) + step) / (xs[-1] - xs[0] + step) if step > 0 else 1.0


def _side_by_side(specs: list, aspect: float, share: float = 1.0) -> bool:
    """Whether labels fit side by side at SIZE over and under one row of layers (or `share` of
    it): together at most 1.5 times as wide as the network's area of the frame (two rows of
    labels, each three quarters full: they stand over layers that are not evenly spaced).
    DenseNet121's 16 block labels (1.99 area widths at 640×360) stacked four high and shrank the
    network to 14 % of the frame."""
    width = sum(max(map(text_width, text.split("\n"))) for _, text, _ in specs) * SIZE / aspect
    return width <= 1.5 * share * (framing.NETWORK[2] - framing.NETWORK[0])


def _within(name: str, block: str) -> str:
    """A layer's name inside its block: without the block's name before it."""
    short = name.removeprefix(block).lstrip("_/.:")
    return short or name


def _anchors(layers: list, boxes: dict, row_of: dict, front: float | None) -> list[tuple]:
    """(top, bottom, row) anchor points above and below the labelled layers' boxes (`boxes`:
    name → (lo, hi); `row_of`: name → row) in each row they stand in, the row holding most of
    them first."""
    layers = [n for n in layers if n in boxes]
    rows = [row_of[n] for n in layers]
    found = []
    for row in sorted(set(rows), key=lambda r: (-rows.count(r), r)):
        pts = [corner for name in layers if row_of[name] == row for corner in boxes[name]]
        lo, hi = np.min(pts, axis=0), np.max(pts, axis=0)
        # on the layers' front edge (the cameras look from -Y); deep networks: in the network's
        # front plane, before the rows' edges and skip arcs
        x, y = (lo[0] + hi[0]) / 2, (lo[1] if front is None else front)
        found.append(([x, y, hi[2]], [x, y, lo[2]], row))
    return found


def add_labels(collection, network, placements: dict, camera, mode: str = "auto",
               aspect: float = 16 / 9) -> list:
    """The label objects of `network`, unsized and unplaced until `arrange`."""
    objects = []
    boxes, row_of = layout.boxes(placements.values()), {n: p.row for n, p in placements.items()}
    for name, text, layers in label_specs(network, placements, mode, aspect):
        curve = bpy.data.curves.new(f"Label {name}", "FONT")
        curve.body = text
        curve.align_x = "CENTER"
        curve.materials.append(label_material())
        obj = bpy.data.objects.new(f"Label {name}", curve)
        obj[names.LABEL] = name
        obj[names.LABEL_LAYERS] = layers
        _add_card(obj)
        constraint = obj.constraints.new("COPY_ROTATION")
        constraint.target = camera
        collection.objects.link(obj)
        objects.append(obj)
    anchor(objects, boxes, row_of)
    return objects


def anchor(labels: list, boxes: dict, row_of: dict) -> None:
    """Hang `labels` on their layers' boxes (`boxes`: layer name → world (lo, hi), as laid out
    or as drawn now; `row_of`: layer name → row): over and under them in each row they stand in.
    A label with none of its layers in `boxes` keeps its anchors."""
    last_row = max(row_of.values(), default=0)
    front = None        # deep networks: in the network's front plane, before the rows' edges
    if last_row:
        front = min(float(lo[1]) for lo, _ in boxes.values())
    for obj in labels:
        anchors = _anchors(list(obj[names.LABEL_LAYERS]), boxes, row_of, front)
        if not anchors:
            continue
        obj[names.ANCHOR_TOP] = [c for top, _, _ in anchors for c in top]
        obj[names.ANCHOR_BOTTOM] = [c for _, bottom, _ in anchors for c in bottom]
        # under a row is the next row's place: there only the last row's labels may hang
        obj[names.LABEL_BELOW] = [int(row == last_row) for _, _, row in anchors]


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


class Placement(NamedTuple):
    """Every label's place in one view of a move: its text's bottom centre (the labels stand
    bottom-aligned, turned to the camera), its size, and where it stands: which of its anchors
    (rows) and how many label heights over (≥ 0) or under (< 0) them."""
    location: np.ndarray      # (n, 3)
    size: np.ndarray          # (n,)
    anchor: np.ndarray        # (n,) int
    row: np.ndarray           # (n,) int


def placements(labels: list, views: list, aspect: float, layer_points=None,
               overlays=()) -> list:
    """A Placement of `labels` for each of `views`, each placed where it reads best in that view
    (`place`), keeping to its place in the view before where it can: one placement for a whole
    move read 23 px tall near a fly-through's camera and ran together on an orbit's far side."""
    found = []
    for view in views:
        found.append(place(labels, view, aspect, layer_points, found[-1] if found else None,
                           overlays))
    return found


def overlay_boxes(collection, screen, aspect: float, scene, frames=()) -> list[tuple]:
    """Frame boxes (u0, v0, u1, v1) of the run's shown overlays, from their geometry in the
    camera screen's units (hud.py: X 0 … aspect, Y 0 … 1), each the union over `frames` (the
    epoch counter's line grows with the epochs' loss and accuracy): they stand still in the frame
    whatever the view, so labels keep clear of them in every view of a move."""
    objects = [o for o in collection.all_objects if names.OVERLAY in o and not o.hide_render]
    found: dict[str, tuple] = {}
    now = scene.frame_current
    for frame in frames or (now,):
        scene.frame_set(int(frame))
        depsgraph = bpy.context.evaluated_depsgraph_get()
        for obj in objects:
            to_screen, up = obj.matrix_local.copy(), obj.parent  # the screen may be parked
            while up is not None and up != screen:
                to_screen, up = up.matrix_local @ to_screen, up.parent
            if up is None:
                continue
            ev = obj.evaluated_get(depsgraph)
            corners = np.array([tuple(to_screen @ Vector(c)) for c in ev.bound_box])
            lo, hi = corners.min(axis=0), corners.max(axis=0)
            if (hi - lo)[:2].min() > 0:
                box = (lo[0] / aspect, lo[1], hi[0] / aspect, hi[1])
                found[obj.name] = _union(found[obj.name], box) if obj.name in found else box
    scene.frame_set(now)
    return list(found.values())


def show(labels: list, frames, found: list, views: list, aspect: float,
         eased: bool = False) -> None:
    """Put the labels where `found` (one Placement per view of `views`, at `frames`) has them:
    keyed when the camera moves (`eased` as its keys are), so they play without the add-on;
    their keys of an earlier move cleared. A label that changes places between two keys jumps
    there halfway: sliding, it would cross its layers and its neighbours."""
    for obj in labels:
        for block in (obj, obj.data):
            if block.animation_data is not None:
                block.animation_data_clear()
        obj.data.align_y = "BOTTOM"
    for k, obj in enumerate(labels):
        obj.location, obj.data.size = found[0].location[k], found[0].size[k]
        if len(found) < 2:
            continue
        at, values, sharp = [], [], []
        for i, p in enumerate(found):
            at.append(frames[i])
            values.append((*p.location[k], p.size[k]))
            sharp.append(False)
            if i + 1 < len(found) and _jumps(p, found[i + 1], k, views[i + 1], aspect):
                halfway = _between(views[i], views[i + 1])
                mid = (frames[i] + frames[i + 1]) / 2
                for when, there in ((mid - JUMP, p), (mid, found[i + 1])):
                    size = there.size[k] if there.size[k] == HIDDEN else max(
                        there.size[k], SIZE * (1 + MARGIN) *
                        _height_at(there.location[k], halfway, aspect))
                    at.append(when)
                    values.append((*there.location[k], size))
                    sharp.append(True)
        at, values = np.array(at, np.float32), np.array(values, np.float32)
        for axis in range(3):
            linear_keys(obj, "location", at, values[:, axis], axis, eased, sharp)
        linear_keys(obj.data, "size", at, values[:, 3], eased=eased, sharp=sharp)


def _between(a: framing.View, b: framing.View) -> framing.View:
    """The camera halfway between two keyed views (its keys interpolate each value)."""
    direction = (a.direction + b.direction) / 2
    return framing.View((a.location + b.location) / 2, direction / np.linalg.norm(direction),
                        tuple((np.asarray(a.shift) + b.shift) / 2),
                        (a.ortho_scale + b.ortho_scale) / 2)


def _jumps(a: Placement, b: Placement, k: int, view: framing.View, aspect: float) -> bool:
    """Whether label `k` changes places from `a` to `b` (`b`'s view): another anchor or row,
    shown in one and not the other, or moved on screen by more than half its height (nudged past
    a neighbour)."""
    if (a.anchor[k], a.row[k]) != (b.anchor[k], b.row[k]) or \
            (a.size[k] == HIDDEN) != (b.size[k] == HIDDEN):
        return True
    uv = framing.project([a.location[k], b.location[k]], view.location, view.direction, aspect,
                         shift=view.shift, ortho_scale=view.ortho_scale)
    return float(np.hypot((uv[0, 0] - uv[1, 0]) * aspect, uv[0, 1] - uv[1, 1])) > SIZE / 2


def arrange(labels: list, views: list, aspect: float, layer_points=None, frames=(0,),
            eased: bool = False, overlays=()) -> list:
    """Place `labels` for each of `views` (shown at `frames`; one view: no keys), clear of the
    `overlays` (frame boxes). Returns the placements."""
    found = placements(labels, views, aspect, layer_points, overlays) if labels else []
    if found:
        show(labels, frames, found, views, aspect, eased)
    return found


def place(labels: list, view: framing.View, aspect: float, layer_points=None,
          previous: Placement | None = None, overlays=()) -> Placement:
    """Size the labels to read at SIZE in `view` and place them so neighbours on screen don't
    overlap: over or under its layers in any row they stand in (under a row that is not the
    last only where no maps stand: it is the next row's place; there lifted onto its row's
    edge), or a row further out, nudged either way past a neighbour — of these, where the
    screen box of the network and the labels placed so far grows least (the framing fits that
    box into the network's area: labels stacked over each other pushed MobileNetV2 back to 9 %
    of the frame; a side other than in the `previous` view costs KEEP_COST more), then nearest
    its layers. `layer_points` (n × 8 box corners per layer) pull a label along the view's ray
    in front of every layer whose screen box it meets (same place and size on screen): a label
    wider than the gap between two layers would otherwise sink into its neighbours' maps. The
    `overlays` (frame boxes) stand in the way like placed labels: a label at a row's end, centred
    over its layer at the network area's edge, ran into the score bars' top-class line."""
    # each label's anchors: above and below its layers in each row they stand in, main row first
    anchors = [(np.reshape(o[names.ANCHOR_TOP], (-1, 3)), np.reshape(o[names.ANCHOR_BOTTOM], (-1, 3)),
                np.atleast_1d(o.get(names.LABEL_BELOW, True))) for o in labels]

    def screen(points):
        return framing.project(points, view.location, view.direction, aspect,
                               shift=view.shift, ortho_scale=view.ortho_scale)

    lines = [o.data.body.split("\n") for o in labels]
    half_u = np.array([max(map(text_width, ls)) for ls in lines]) * SIZE / aspect / 2
    tall = (np.array([len(ls) for ls in lines]) * 1.2 + 0.4) * SIZE      # in frame heights
    placed: list[tuple[float, float, float, float]] = list(overlays)
    nearest = None
    if layer_points is not None and len(layer_points) and len(layer_points) % 8 == 0:
        corners = screen(np.asarray(layer_points, float).reshape(-1, 3)).reshape(-1, 8, 3)
        nearest = (corners[:, :, :2].min(axis=1), corners[:, :, :2].max(axis=1),
                   corners[:, :, 2].min(axis=1))
    right, up, _ = framing.basis(view.direction)
    # the screen box of the network and the labels placed so far: the framing fits it to the
    # network's area, so each label goes where it grows that box least (the network then shows
    # largest), nearest its layer among equals
    on_screen = [(screen(top), screen(bottom)) for top, bottom, _ in anchors]
    extent = (np.concatenate([nearest[0], nearest[1]]) if nearest is not None
              else np.concatenate([uv[:, :2] for pair in on_screen for uv in pair]))
    extent = (*extent.min(axis=0), *extent.max(axis=0))
    n = len(labels)
    out = Placement(np.zeros((n, 3)), np.zeros(n), np.zeros(n, int), np.zeros(n, int))
    tops = np.array([top[0] for top, _, _ in anchors], float)
    for k in np.argsort(screen(tops)[:, 0]):
        if overlays and not any(_in_area((t + b) / 2) for t, b in zip(*on_screen[k])):
            # its layers out of the network's area (beside a tour's close-up): not shown, where
            # it would stand over the margins' overlays or off the frame
            out.location[k], out.size[k] = anchors[k][0][0], HIDDEN
            continue
        best = None
        was = None if previous is None else (previous.anchor[k], previous.row[k])
        for a, (top_uv, bottom_uv, below) in enumerate(zip(*on_screen[k], anchors[k][2])):
            u = top_uv[0]
            for row in (0, -1, 1, -2, 2, -3, 3) if below else (0, -1, 1, 2, 3):
                v0 = (top_uv[1] if row >= 0 else bottom_uv[1]) + row * tall[k]
                for box in _free_places((u - half_u[k], v0, u + half_u[k], v0 + tall[k]), placed):
                    gap = not below and row < 0
                    if gap and _on_layers(box, nearest):
                        continue    # under a row, before the next: only where no maps stand
                    if gap:         # ... and lifted onto its row's edge (HUG)
                        lifted = (box[0], box[1] + HUG * tall[k], box[2], box[3] + HUG * tall[k])
                        box = box if any(_meets(lifted, b) for b in placed) else lifted
                    moved = was is not None and (was[0] != a or (was[1] >= 0) != (row >= 0))
                    grown = _grown(extent, box) * (1.0 + GAP_COST * gap + KEEP_COST * moved)
                    cost = (round(grown, 3), a, abs(row), abs(box[0] + half_u[k] - u))
                    if best is None or cost < best[0]:
                        best = cost, a, row, box
        if best is None:    # no free place: where its neighbours and the overlays cover least
            best = _least_covered(on_screen[k], half_u[k], tall[k], placed)
        _, a, row, box = best
        extent = _union(extent, box)
        placed.append(box)
        top, bottom = anchors[k][0][a], anchors[k][1][a]
        size = SIZE * _height_at(top, view, aspect)
        step = len(lines[k]) * 1.2 * size + 0.4 * size     # one label's height, in world units
        if row >= 0:      # above: the text's bottom sits a little over the layer
            location = np.array((top[0], top[1], top[2] + 0.4 * size + row * step))
        else:             # below: the first line hangs under the layer
            location = np.array((bottom[0], bottom[1], bottom[2] - 0.4 * size + (row + 1) * step))
            location[2] += (box[1] - on_screen[k][1][a][1] - row * tall[k]) / tall[k] * step
        aside = ((box[0] + box[2]) / 2 - on_screen[k][0][a][0]) * _height_at(top, view, aspect)
        location = location + right * aside * aspect          # world units
        location, _ = _in_front(location, size, box, nearest, view)
        # standing aside or pulled in front, it is sized again where it stands
        size = SIZE * _height_at(location, view, aspect) * (1 + MARGIN)
        if row < 0:       # its top where the first line hangs: the bottom one label lower
            location = np.asarray(location) - up * _ink(lines[k]) * size
        out.location[k], out.size[k], out.anchor[k], out.row[k] = location, size, a, row
    return out


def _height_at(point, view: framing.View, aspect: float) -> float:
    """World height of `view`'s frame at `point`'s depth."""
    depth = framing.project([point], view.location, view.direction, aspect,
                            ortho_scale=view.ortho_scale)[0, 2]
    return float(_frame_height(depth, view, aspect))


def _in_area(uv, margin: float = 0.02) -> bool:
    """Whether screen point `uv` stands in the network's area of the frame (give or take)."""
    area = framing.NETWORK
    return area[0] - margin <= uv[0] <= area[2] + margin and \
        area[1] - margin <= uv[1] <= area[3] + margin


def _meets(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _least_covered(on_screen, half: float, tall: float, placed: list) -> tuple:
    """(cost, anchor, row, box): over or under one of its anchors (`on_screen`: their top and
    bottom screen points), the box that the `placed` boxes cover least. MobileNetV2's stage 2
    label, with Morph 0 on all layers, had no free place (stage 1's label beside it, the score
    bars and legends round it) and fell onto stage 1's, centred over its top anchor."""
    found = []
    for a, (top, bottom) in enumerate(zip(*on_screen)):
        for row in (0, -1, 1, 2):
            v0 = (top[1] if row >= 0 else bottom[1]) + row * tall
            box = (top[0] - half, v0, top[0] + half, v0 + tall)
            covered = sum(max(0.0, min(box[2], b[2]) - max(box[0], b[0])) *
                          max(0.0, min(box[3], b[3]) - max(box[1], b[1])) for b in placed)
            found.append(((covered, abs(row), a), a, row, box))
    return min(found)


def _free_places(box, placed: list) -> list:
    """`box` where it meets no `placed` box, else moved right, and left, just past the ones it
    meets — at most half its width each way, so it still stands over what it names."""
    half, start = (box[2] - box[0]) / 2, box[0]
    found = []
    for side in (1, -1):
        moved = box
        while abs(moved[0] - start) <= 2 * half:
            hits = [b for b in placed if _meets(moved, b)]
            if not hits:
                found.append(moved)
                break
            edge = max(b[2] for b in hits) + 0.2 * half if side > 0 else \
                min(b[0] for b in hits) - 0.2 * half - 2 * half
            shift = edge - moved[0]
            moved = (moved[0] + shift, moved[1], moved[2] + shift, moved[3])
        if moved == box and found:
            break       # free where it stands
    return found


def _on_layers(box, nearest) -> bool:
    """Whether screen box `box` meets any layer's screen box (`nearest`, as `arrange` has it)."""
    if nearest is None:
        return True
    lo, hi, _ = nearest
    return bool(((lo[:, 0] < box[2]) & (box[0] < hi[:, 0]) & (lo[:, 1] < box[3])
                 & (box[1] < hi[:, 1])).any())


def _union(a, b) -> tuple:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _grown(extent, box) -> float:
    """How much smaller the framing must show everything for `box` to join `extent` (screen
    boxes): the growth of the larger of its two shares of the network's area."""
    area = framing.NETWORK
    def scale(b):
        w, h = (b[2] - b[0]) / (area[2] - area[0]), (b[3] - b[1]) / (area[3] - area[1])
        return max(w, h) + 1.0 * min(w, h)
    return scale(_union(extent, box)) / scale(extent)


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


def _ink(lines: list) -> float:
    """A label's height from its last line's baseline to its first line's top, in text sizes."""
    return (len(lines) - 1) * 1.2 + INK


def label_points(labels: list, direction=None, placement: Placement | None = None) -> np.ndarray:
    """(n, 3) corners of the labels as placed (for framing; where `placement` has them, else
    where they stand now): the text's extent around its anchor across the view `direction`
    (labels turn to the camera), or in every horizontal direction when none is given, so the box
    holds whatever way the camera turns."""
    if direction is None:
        across = None
    else:
        across = np.array([-direction[1], direction[0], 0.0], float)
        across /= max(np.linalg.norm(across), 1e-9)
    pts = []
    for k, obj in enumerate(labels):
        if placement is None:
            (x, y, z), size = obj.location, obj.data.size
        else:
            (x, y, z), size = placement.location[k], placement.size[k]
        lines = obj.data.body.split("\n")
        half = max(map(text_width, lines)) * size / 2
        height = _ink(lines) * size
        bottom = z - height if obj.data.align_y == "TOP" and placement is None else z
        if across is None:
            pts.append(framing.box_corners((x - half, y - half, bottom),
                                           (x + half, y + half, bottom + height)))
            continue
        side = across * half
        pts += [(x + sx * side[0], y + sx * side[1], h) for sx in (-1, 1)
                for h in (bottom, bottom + height)]
    return np.asarray(pts, float).reshape(-1, 3)
