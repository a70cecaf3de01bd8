"""A run framed again after a control that moves or resizes cells (camera_moves.LAYOUT_INPUTS)
is set on all its layers — the sidebar's Set on All Layers: a wrapped network's rows hung again,
each its import gap under the one above, measured on the layers as drawn now; the labels hung on
those drawn boxes; the run's camera move fitted again, its labels placed in each of its views.
Morph 0.5 and Spacing 1.6 on ResNet50 had merged its rows into each other, the stage labels
left on the maps."""
from __future__ import annotations

import bpy

from .. import framing, layout, names
from . import camera_moves, labels as labels_mod
from .run_record import RunRecord


def restack(collection) -> None:
    """Move each row of the run's layers (and grey blocks' texts) up or down so the rows stand
    `RunRecord.row_gaps` apart as drawn now and seen from the home view, and hang the labels on the drawn boxes. A run
    imported before rows were recorded is left as it is."""
    bpy.context.view_layer.update()         # inputs set from Python: evaluate them first
    layers = [o for o in collection.all_objects if names.LAYER in o]
    row_of = {o[names.LAYER]: int(o[names.LAYER_ROW]) for o in layers if names.LAYER_ROW in o}
    if not row_of:
        return
    drawn = camera_moves.evaluated_boxes([o for o in layers if not o.hide_render])
    boxes = {o[names.LAYER]: drawn[o.name] for o in layers if o.name in drawn}
    record = RunRecord(collection)
    shift = layout.restack(row_of, boxes, record.row_gaps, framing.basis(record.view)[1])
    for obj in collection.all_objects:
        dz = shift.get(obj.get(names.LAYER_ROW, -1), 0.0)
        if dz:
            obj.location.z += dz
    for name, (lo, hi) in boxes.items():
        dz = shift.get(row_of.get(name, -1), 0.0)
        lo[2], hi[2] = lo[2] + dz, hi[2] + dz
    labels_mod.anchor(labels_mod.labels_of(collection), boxes, row_of)


def refit(collection, scene=None) -> list:
    """`restack` the run, then give it its camera move again; returns the move's views."""
    restack(collection)
    bpy.context.view_layer.update()
    return camera_moves.apply_move(collection, RunRecord(collection).camera_move or "static",
                                   scene or bpy.context.scene)
