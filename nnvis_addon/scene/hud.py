"""The screen: where each overlay sits in the frame, in the margins around the network's area.

The camera fits the network into `framing.NETWORK`; the overlays hang from the camera's screen
empty (`camera_moves.SCREEN`), whose local units are frame heights — X from 0 to the aspect
ratio, Y from 0 (bottom) to 1 (top) — so they stay in their margin, upright and readable, at every
frame of every camera move, and never cover the network:

    title, epoch counter (loss, accuracy)   signed-activation and edge legends   top band
    probe image | network                  | class score bars   middle
    training curves with axes and legend     colour legend      bottom band
"""
from __future__ import annotations

import math

from mathutils import Matrix

from .. import framing
from . import legend as legend_mod
from .font import text_width
from ..model.edges import EDGE_VALUE_MODES
from ..options import choice_label
from .overlays import (KINDS, MIN_TEXT, build_counter, build_curves, build_predictions,
                       build_probe, counter_lines, _text)
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


TOP_LEGEND = 0.2          # width of a legend in the top band, in frame widths


def top_legend(run, aspect: float, slot: int) -> Matrix | None:
    """Where legend `slot` (0: rightmost) of the top band goes, right of the title and counter;
    None when the frame is too narrow for it there."""
    width = TOP_LEGEND * aspect
    height = legend_mod.bar_height(width)
    x = aspect - MARGIN - (slot + 1) * width - slot * 2 * MARGIN
    texts = [(title_text(run), TITLE_SIZE), *((line, COUNTER_SIZE) for line in
                                               counter_lines(run))]
    if x < MARGIN + max(text_width(t) * size for t, size in texts) + 2 * MARGIN:
        return None
    return Matrix.Translation((x, 1.0 - MARGIN / 2 - 2 * height, 0.0))


def add_edge_legend(run, collection, aspect: float, shown) -> list:
    """The edge-colour legend (the first weighted connection's scale, in the edges' colour mode)
    at the right of the top band, hung from the run's screen like the other overlays."""
    edges = legend_mod.edges_described(collection)
    place = top_legend(run, aspect, 0)
    if edges is None or place is None:
        return []
    title = f"edge {choice_label(EDGE_VALUE_MODES[legend_mod.colour_mode(edges)]).lower()}"
    obj = legend_mod.add_legend(collection, edges, place, TOP_LEGEND * aspect, run.name, title)
    screen = next(o for o in collection.objects if o.get(names.SCREEN))
    hang([obj], "legend", screen, "legend" in shown)
    return [obj]


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
        for k, other in enumerate(legend_mod.other_scales(collection, layer_obj)):
            place = top_legend(run, aspect, k + 1)         # slot 0 waits for the edges'
            if place is not None:
                made["legend"].append(legend_mod.add_legend(collection, other, place,
                                                            TOP_LEGEND * aspect, run.name))
    objects = []
    for kind, objs in made.items():
        hang(objs, kind, screen, kind in shown)
        objects += objs
    return objects

