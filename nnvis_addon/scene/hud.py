"""The screen: where each overlay sits in the frame, in the margins around the network's area.

The camera fits the network into `framing.NETWORK`; the overlays hang from the camera's screen
empty (`camera_moves.SCREEN`), whose local units are frame heights — X from 0 to the aspect
ratio, Y from 0 (bottom) to 1 (top) — so they stay in their margin, upright and readable, at every
frame of every camera move, and never cover the network:

    title, epoch counter (loss, accuracy)                       top band
    probe image | network                  | class score bars   middle
    training curves with axes and legend     colour legend      bottom band
"""
from __future__ import annotations

import math

from mathutils import Matrix

from .. import framing
from . import legend as legend_mod
from .overlays import (KINDS, MIN_TEXT, build_counter, build_curves, build_predictions,
                       build_probe, _text)
from .. import names

MARGIN = 0.03          # frame heights between an overlay and the frame's edge
TITLE_SIZE, COUNTER_SIZE = MIN_TEXT, 0.045


def parameter_count(network) -> int:
    return sum(math.prod(shape) for layer in network.layers for shape in layer.weight_shapes)


def title_text(run) -> str:
    network = run.network
    return (f"{network.name}  ·  {len(network.layers)} layers  ·  "
            f"{parameter_count(network):,} parameters")


def curves_box(aspect: float) -> tuple[Matrix, float, float]:
    """(corner, width, height) of the training curves: bottom left, under the network."""
    return (Matrix.Translation((MARGIN + 0.06, 2 * MARGIN, 0.0)), 0.28 * aspect,
            framing.NETWORK[1] - 2 * MARGIN - 0.05)


def hang(objects, kind: str, screen, shown: bool) -> None:
    """Parent overlay objects of `kind` to the run's `screen`, tagged and shown or hidden."""
    for obj in objects:
        obj.parent = screen
        obj.matrix_parent_inverse = Matrix.Identity(4)
        obj.hide_render = obj.hide_viewport = not shown
        obj[names.OVERLAY_KIND] = kind
        if names.OVERLAY not in obj:
            obj[names.OVERLAY] = kind


def build_overlays(run, collection, screen, aspect: float, frames, shown=KINDS) -> list:
    """Every overlay of `run`, parented to `screen` in its margin; kinds not in `shown` are built
    hidden (the sidebar toggles them). Returns the objects, each tagged `nnvis_overlay_kind`."""
    u0, v0, u1, v1 = framing.NETWORK
    left, right = u0 * aspect, u1 * aspect
    made = {
        "title": [_text("Title", title_text(run), TITLE_SIZE, collection,
                        Matrix.Translation((MARGIN, 1.0 - MARGIN - TITLE_SIZE, 0.0)))],
        "counter": build_counter(run, collection, Matrix.Translation(
            (MARGIN, 1.0 - 2 * MARGIN - TITLE_SIZE - COUNTER_SIZE, 0.0)), COUNTER_SIZE),
    }
    size = min(left - 2 * MARGIN, 0.3)
    made["probe"] = build_probe(run, collection, Matrix.Translation(
        (MARGIN + (left - 2 * MARGIN - size) / 2, (v0 + v1) / 2 - size / 2, 0.0)), size)
    width = aspect - right - 2 * MARGIN
    made["predictions"] = build_predictions(run, collection, Matrix.Translation(  # 2 lines under
        (right + MARGIN, v1 - 2 * MARGIN, 0.0)), width, (v1 - v0) - 3 * MARGIN - 1.4 * MIN_TEXT)
    made["curves"] = build_curves(run, collection, *curves_box(aspect), frames)
    layer_obj = legend_mod.legend_layer(collection)
    if layer_obj is not None:
        legend_width = min(0.25 * aspect, 0.5)
        made["legend"] = [legend_mod.add_legend(
            collection, layer_obj, Matrix.Translation((aspect - MARGIN - legend_width,
                                                       2 * MARGIN + 0.02, 0.0)),
            legend_width, run.name)]
    objects = []
    for kind, objs in made.items():
        hang(objs, kind, screen, kind in shown)
        objects += objs
    return objects

