"""A run framed again after a control that moves or resizes cells (camera_moves.LAYOUT_INPUTS)
is set on all its layers — the sidebar's Set on All Layers: the gaps between ranks grown as the
layers grew, a wrapped network's rows hung at least their laid-out gap apart as seen from the home
view, both measured on the layers as drawn now; the labels hung on those drawn boxes; the run's
camera move fitted again, its labels placed in each of its views. Morph 0.5 and Spacing 1.6 on
ResNet50 had merged its rows into each other, the stage labels left on the maps."""
from __future__ import annotations

import bpy
import numpy as np

from .. import framing, layout, names
from . import camera_moves, labels as labels_mod
from .run_record import RunRecord


def record_layout(collection, placements, view) -> None:
    """Store what `restack` keeps of the import's layout: the gaps between rows (seen from the
    home `view` direction), the rows' heights and the ranks' spacing."""
    record, placements = RunRecord(collection), list(placements)
    record.row_gaps = layout.row_gaps({p.name: p.row for p in placements},
                                      layout.boxes(placements), framing.basis(view)[1])
    record.rank_x, record.rank_reach, record.rank_width = layout.rank_spacing(placements)
    record.row_z = list(_lines(_layers(collection)).values())


def _layers(collection) -> list:
    return [o for o in collection.all_objects if names.LAYER in o and names.LAYER_ROW in o]


def _lines(layers) -> dict[int, float]:
    """{row: mean height of its layer objects}, top row first."""
    found: dict[int, list] = {}
    for obj in layers:
        found.setdefault(int(obj[names.LAYER_ROW]), []).append(obj.location.z)
    return {row: float(np.mean(found[row])) for row in sorted(found)}


def restack(collection) -> None:
    """Move the run's ranks apart as their layers grew and its rows down as far as they must
    to stand their gaps apart (each with its layers' objects and grey blocks' texts), and hang
    the labels on the drawn boxes. A run imported before its layout was recorded stays as it
    is."""
    bpy.context.view_layer.update()         # inputs set from Python: evaluate them first
    record, layers = RunRecord(collection), _layers(collection)
    if not layers or not record.rank_x:
        return
    row_of = {o[names.LAYER]: int(o[names.LAYER_ROW]) for o in layers}
    rank_of = {o[names.LAYER]: int(o[names.LAYER_RANK]) for o in layers}
    drawn = camera_moves.evaluated_boxes([o for o in layers if not o.hide_render])
    boxes = {o[names.LAYER]: drawn[o.name] for o in layers if o.name in drawn}
    by_name = {o[names.LAYER]: o for o in layers}
    if record.rank_width:       # branches beside the main path: as far apart as they grew
        lane_of = {n: int(o.get(names.LAYER_LANE, 0)) for n, o in by_name.items()}
        main = {rank_of[n]: o.location.y for n, o in by_name.items() if lane_of[n] == 0}
        apart = layout.spread_lanes(rank_of, lane_of, boxes, record.rank_width)
        _move(collection, boxes, 1, {n: main[rank_of[n]] + apart[n] - o.location.y
                                     for n, o in by_name.items()
                                     if lane_of[n] and rank_of[n] in main})
    xs = layout.respace(rank_of, row_of, boxes, record.rank_x, record.rank_reach)
    starts = {}
    for name, obj in by_name.items():       # where each row starts: its first rank's depth
        if rank_of[name] < starts.get(row_of[name], (np.inf,))[0]:
            starts[row_of[name]] = (rank_of[name], obj.location.x - xs[rank_of[name]])
    _move(collection, boxes, 0, {n: starts[row_of[n]][1] + xs[rank_of[n]] - o.location.x
                                 for n, o in by_name.items()})
    laid = dict(enumerate(record.row_z))
    back = {row: laid.get(row, z) - z for row, z in _lines(layers).items()}   # as laid out
    _move(collection, boxes, 2, {n: back[row] for n, row in row_of.items()})
    shift = layout.restack(row_of, boxes, record.row_gaps, framing.basis(record.view)[1])
    _move(collection, boxes, 2, {n: shift.get(row, 0.0) for n, row in row_of.items()})
    labels_mod.anchor(labels_mod.labels_of(collection), boxes, row_of)


def _move(collection, boxes: dict, axis: int, shift: dict) -> None:
    """Move the run's layer objects (and grey blocks' texts, and the `boxes` of their layers)
    along `axis` by their layer's `shift` (layer name → distance)."""
    for obj in collection.all_objects:
        d = shift.get(obj.get(names.LAYER) or obj.get(names.BLOCK_LABEL), 0.0)
        if d:
            obj.location[axis] += d
    for name, (lo, hi) in boxes.items():
        d = shift.get(name, 0.0)
        lo[axis], hi[axis] = lo[axis] + d, hi[axis] + d


def refit(collection, scene=None) -> list:
    """`restack` the run, then give it its camera move again; returns the move's views."""
    restack(collection)
    bpy.context.view_layer.update()
    return camera_moves.apply_move(collection, RunRecord(collection).camera_move or "static",
                                   scene or bpy.context.scene)
