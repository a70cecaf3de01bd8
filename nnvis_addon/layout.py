"""Where things go: layers along the depth axis (+X), each layer's cells in a grid in the Y-Z plane.

One place computes every position, so the layer objects (feature-map planes, unit cubes) and the edge
curves between them always meet. World units: the largest feature map is `map_size` wide.
Graphs, not lists: a layer's depth is its rank (longest path from the input), the main path (the
longest chain back from the output) stays on the axis and layers sharing a rank — branches — stand
side by side along Y. A connection spanning several ranks is a skip connection (drawn as an arc).
Feature maps face -X; their image columns run along -Y and rows down -Z, so an oblique camera on the
-X/-Y side reads them like pictures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .blocks import KIND as BLOCK
from .framing import box_corners
from .model.edges import passes_through
from .model.kinds import is_
from .model.network import Layer, Network, map_shape
from .stages import stages


MAPWISE_GAP = 0.8       # share of the gap behind a layer whose maps link one-to-one ...
BLOCK_GAP = 0.55        # ... or behind a folded block (a sheaf of its strongest inputs per map),
                        # in one row: wrapped rows are as high as the frame allows, and shorter
                        # rows would only hide more of each other
GAP = 0.6               # between two ranks: this share of the larger one's extent
SHORTEST_GAP = 0.35     # a layout's gap shortened at most to this (`choose_gap`): edges
                        # between ranks nearer still stand steep and crowd the maps
LANE_STEP = 1.25        # branches beside the main path: this many widths of their rank's widest
                        # layer apart
HELPS = 1.05            # more rows or a shorter gap only when the network shows this much larger
ONE_ROW_HIGH = 0.75     # one row's gap shortens only while it fills less of the area's height:
                        # a long row; a shorter one's edges stand steep over its maps
STAGE_BREAK = 0.1       # a row break moves to a stage's start at most this share of a row away:
                        # the longest row sets how small the camera shows every map


@dataclass
class Placement:
    name: str
    x: float                     # depth of the layer's plane
    centers: np.ndarray          # (cells, 3) float32, one row per feature map / unit
    cell_size: float             # edge length of a map plane (its longer side) or of a unit cube
    spatial: bool                # feature maps (planes) or units (cubes)
    extent: tuple[float, float]  # (width along Y, height along Z) of the whole layer
    rank: int = 0                # depth step: longest path from the input
    lane: int = 0                # 0 = main path; ±1, ±2, ... = branches beside it
    row: int = 0                 # wrapped layouts: 0 = the top row


COLUMN = 16             # unit layers this short stand as one column
MIN_ASPECT = 0.125      # a map's shorter side at least this share of its longer one
STRIP_ASPECT = 0.25     # a 1D map's strip (one row of L) stays a band that reads: at 1/8 a
                        # Conv1D classifier's strips stood 9 px tall at 1280×720 and the
                        # network covered 13.7 % of the frame (at 1/4: 16.4 %)


def map_aspect(output_shape) -> tuple[float, float]:
    """(width, height) of one drawn feature map (``network.map_shape``) over its longer side."""
    h, w = map_shape(output_shape)
    least = STRIP_ASPECT if h == 1 else MIN_ASPECT
    return max(w / max(h, w), least), max(h / max(h, w), least)


def grid_columns(count: int, spatial: bool, aspect: tuple[float, float] = (1.0, 1.0)) -> int:
    """Columns of a near-square grid of cells of (width, height) `aspect`; short unit layers
    (≤ COLUMN, e.g. class scores) stand as a column."""
    if count <= COLUMN and not spatial:
        return 1
    return min(count, max(1, math.ceil(math.sqrt(count * aspect[1] / aspect[0]))))


def _grid(count: int, spacing: float, spatial: bool,
          aspect: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """(count, 2) offsets (y, z) of a centred grid, filled row by row: left (+Y) to right, top down;
    columns `spacing` × the cell's width apart, rows × its height (`aspect`)."""
    cols = grid_columns(count, spatial, aspect)
    rows = math.ceil(count / cols)
    i = np.arange(count)
    y = -((i % cols) - (cols - 1) / 2.0) * spacing * aspect[0]
    z = -((i // cols) - (rows - 1) / 2.0) * spacing * aspect[1]
    return np.stack([y, z], axis=1)


def map_size_of(layer: Layer, largest_side: int, map_size: float) -> float:
    """Maps shrink with their resolution, but gently (square root), so deep 4×4 maps stay visible."""
    return map_size * math.sqrt(max(layer.map_shape) / largest_side)


def ranks_and_lanes(network: Network) -> tuple[dict[str, int], dict[str, int]]:
    """Rank = longest path from an input; lane 0 = the main path back from the output layer, other
    layers of a rank take lanes 1, -1, 2, -2, ... in network order."""
    rank: dict[str, int] = {}
    for layer in network.layers:
        rank[layer.name] = 1 + max((rank[n] for n in layer.inbound), default=-1)
    main, name = set(), network.output
    while True:
        main.add(name)
        inbound = network.layer(name).inbound
        if not inbound:
            break
        name = max(inbound, key=lambda n: rank[n])
    lane, used = {}, {}
    for layer in network.layers:
        if layer.name in main:
            lane[layer.name] = 0
            continue
        k = used.get(rank[layer.name], 0) + 1
        used[rank[layer.name]] = k
        lane[layer.name] = (k + 1) // 2 * (1 if k % 2 else -1)
    return rank, lane


def layout_network(network: Network, map_size: float = 1.0, unit_size: float = 0.08,
                   gap: float = GAP, rows: int = 1) -> list[Placement]:
    """Ranks one after another along +X; the space between two ranks is `gap` times the larger of
    their layers' extents, so edges fan out at a readable angle whatever the layer sizes — or
    MAPWISE_GAP of that where each map links to one map only (BatchNorm, activations, pooling,
    Add), whose straight links need no room to fan out. Unit
    layers that only pass values on (Flatten, Dropout) are drawn at half size, a short output
    layer (a column of class scores) at twice the size, so it reads next to the prediction
    bars; a long one (1000 classes) stays unit-sized, not a wall that dwarfs every map. `rows` > 1
    wraps the ranks into that many rows of about equal length, one under the other, like lines of
    text."""
    spatial_sides = [max(l.map_shape) for l in network.layers if l.is_spatial]
    largest = max(spatial_sides) if spatial_sides else 1
    rank, lane = ranks_and_lanes(network)
    shapes = {}
    for layer in network.layers:
        aspect = (1.0, 1.0)
        if layer.is_spatial:
            size = map_size_of(layer, largest, map_size)
            spacing = size * 1.15
            aspect = map_aspect(layer.output_shape)
        else:
            size = unit_size * (0.5 if passes_through(layer) else
                                2.0 if layer.name == network.output and
                                layer.cell_count <= COLUMN else 1.0)
            spacing = size * 1.6
        yz = _grid(layer.cell_count, spacing, layer.is_spatial, aspect)
        extent = (float(np.ptp(yz[:, 0])) + size * aspect[0],
                  float(np.ptp(yz[:, 1])) + size * aspect[1])
        shapes[layer.name] = (size, yz, extent)
    depth = max(rank.values()) + 1
    reach = np.ones(depth)                      # the largest extent at each rank
    width = np.zeros(depth)                     # the widest layer at each rank (lane spacing)
    for name, (_, _, extent) in shapes.items():
        reach[rank[name]] = max(reach[rank[name]], *extent)
        width[rank[name]] = max(width[rank[name]], extent[0])
    share = np.zeros(depth)             # the smallest gap any layer at the rank needs
    for layer in network.layers:
        share[rank[layer.name]] = max(share[rank[layer.name]], _gap_share(layer, rows))
    step = gap * np.maximum(reach[1:], reach[:-1]) * share[1:]
    xs = np.concatenate([[0.0], np.cumsum(step)])
    row_of = _rows(xs, rows, [xs[rank[s.layers[0]]] for s in stages(network)[1:]])
    row_of = np.unique(row_of, return_inverse=True)[1]      # breaks snapped together: no empty row
    rows = int(row_of.max()) + 1
    starts = np.array([xs[row_of == k].min() for k in range(rows)])
    heights = np.array([max(reach[row_of == k]) for k in range(rows)])
    skips = any(rank[layer.name] - rank[src] > 1 for layer in network.layers
                for src in layer.inbound)
    # each row hangs below the one above it by their half heights and the room its own skip
    # arcs need above it: a row of small maps does not stand as far apart as the tallest row
    room = (0.8 if skips else 0.2) * heights
    drop = np.concatenate([[0.0], np.cumsum((heights[:-1] + heights[1:]) / 2 + room[1:])])
    placements = []
    for layer in network.layers:
        size, yz, extent = shapes[layer.name]
        r = rank[layer.name]
        k = int(row_of[r])
        x = xs[r] - starts[k]
        centers = np.zeros((layer.cell_count, 3), np.float32)
        centers[:, 0] = x
        centers[:, 1] = yz[:, 0] - lane[layer.name] * width[r] * LANE_STEP
        centers[:, 2] = yz[:, 1] - drop[k]
        placements.append(Placement(layer.name, float(x), centers, size, layer.is_spatial,
                                    extent, r, lane[layer.name], k))
    return placements


def _gap_share(layer: Layer, rows: int) -> float:
    """Share of the full gap a layer needs behind its inputs: edges that fan out need it all."""
    if not layer.is_spatial:
        return 1.0
    if layer.kind == BLOCK:
        return BLOCK_GAP if rows == 1 else 1.0
    return MAPWISE_GAP if is_(layer.kind, "mapwise") else 1.0


def _rows(xs: np.ndarray, rows: int, stage_starts=()) -> np.ndarray:
    """Row of each rank: `rows` runs of consecutive ranks of about equal length, each break
    moved to a stage's start where one is near, so rows read as stages."""
    if rows <= 1:
        return np.zeros(len(xs), int)
    length = xs[-1] + 1e-9
    breaks = []
    for k in range(1, rows):
        ideal = k * length / rows
        near = [x for x in stage_starts if abs(x - ideal) < STAGE_BREAK * length / rows]
        breaks.append(min(near, key=lambda x: abs(x - ideal)) if near else ideal)
    return np.searchsorted(np.sort(breaks), xs, side="right")


def choose_layout(network: Network, fits, high, most: int = 10) -> tuple[int, float]:
    """(rows, gap) of the layout that shows best: each row count 1..`most` at its own gap
    (`choose_gap`), more rows only when they show the network HELPS larger. `fits(corner
    points, rows)` returns how large a layout would show, `high(corner points)` the share of the
    network area's height one row fills in its view (framing.py knows the camera). Weighed at the
    full gap, EfficientNet-B0's (ONNX) 3 rows showed 6 % larger than 2, yet 2 rows at the gap
    their width allows 37 % larger: in 3 rows it covered 12.7 % of the frame. One row is weighed
    at the full gap: shortened, ResNet50, EfficientNetB0 and mobilenet_v3_small would stand in
    one long row, whose maps the home view shows smaller than their 2 rows'."""
    best, best_fill = (1, GAP), -1.0
    for rows in range(1, most + 1):
        gap, fill = choose_gap(network, rows, fits)
        if fill > best_fill * HELPS:    # more rows only when they really help
            best, best_fill = (rows, gap), fill
    return best if best[0] > 1 else (1, choose_gap(network, 1, fits, high)[0])


def choose_gap(network: Network, rows: int, fits, high=None, step: float = 0.05
               ) -> tuple[float, float]:
    """(gap, how large the layout shows at it) of a layout in `rows` rows: GAP shortened step
    by step, down to SHORTEST_GAP, while each step shows the network HELPS larger (`fits`,
    `high` as in `choose_layout`). Rows wider than the network area leave its height unused: Keras
    MobileNetV3Small's 2 rows filled 71 % of it and covered 12.1 % of the frame, their many small
    maps far apart (at 0.4: 19.4 %). Once the layout is as high as the area, a shorter gap only
    crowds the layers. One row shortens only while it fills less than ONE_ROW_HIGH of the
    area's height: NASNetMobile's 22 cells in one row filled 63 % of it and covered 14.2 % of
    the frame; resnet18 (ONNX, 80 %) kept its gap, at 0.35 its Flatten's units were buried
    (61 → 56 % of their pixels visible)."""
    points = corners(layout_network(network, gap=GAP, rows=rows))
    best, best_fill = GAP, fits(points, rows)
    for k in range(1, round((GAP - SHORTEST_GAP) / step) + 1):
        if rows == 1 and (high is None or high(points) >= ONE_ROW_HIGH):
            break
        gap = round(GAP - k * step, 6)
        points = corners(layout_network(network, gap=gap, rows=rows))
        fill = fits(points, rows)
        if fill <= best_fill * HELPS:
            break
        best, best_fill = gap, fill
    return best, best_fill


def boxes(placements) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{layer name: (lo, hi)} box of each placed layer — its cells ± half a cell (unit cubes in X
    too): the boxes the scene draws at the import's controls (`camera_moves.evaluated_boxes`)."""
    found = {}
    for p in placements:
        half = p.cell_size / 2
        pad = np.array([0.0 if p.spatial else half, half, half])
        found[p.name] = (p.centers.min(axis=0) - pad, p.centers.max(axis=0) + pad)
    return found


def row_gaps(rows: dict[str, int], found: dict, up=(0.0, 0.0, 1.0)) -> list[float]:
    """The clear height between each row's boxes (`found`: name → (lo, hi); `rows`: name →
    row) and the next row's (top row first), measured along `up` (the home view's screen up:
    rows deep in Y overlap on a screen that looks down on them): the room a wrapped layout
    leaves its skip arcs, kept when controls grow the layers (`restack`)."""
    spans = _row_spans(rows, found, up)
    return [float(spans[k - 1][0] - spans[k][1]) for k in range(1, len(spans))]


def _row_spans(rows: dict[str, int], found: dict, up) -> list[tuple[float, float]]:
    """(bottom, top) of each row's boxes along `up`, top row first (`rows`: layer name → row)."""
    up = np.asarray(up, float)
    spans: dict[int, list] = {}
    for name, (lo, hi) in found.items():
        if name in rows:
            ends = np.stack([np.asarray(lo) * up, np.asarray(hi) * up])
            spans.setdefault(rows[name], []).append((ends.min(axis=0).sum(),
                                                     ends.max(axis=0).sum()))
    return [(min(s[0] for s in spans[k]), max(s[1] for s in spans[k])) for k in sorted(spans)]


def restack(rows: dict[str, int], found: dict, gaps: list[float], up=(0.0, 0.0, 1.0)
            ) -> dict[int, float]:
    """{row: height (Z) shift from where it was laid out} that hangs each row at least `gaps`
    under the one above it along `up` (as `row_gaps` measures) and no higher than laid out (the
    top row stays): `found` (name → (lo, hi)) holds the layers' boxes as drawn now, each row
    where it was laid out. Morph 0.5 and Spacing 1.6 on every layer of a wrapped network had
    merged its rows into each other; shrunk layers leave the rows where they were."""
    spans = _row_spans(rows, found, up)
    order = sorted({rows[n] for n in found if n in rows})
    shift, moved = {}, 0.0
    for k, row in enumerate(order):
        if 0 < k <= len(gaps):
            moved = min(0.0, spans[k - 1][0] + moved - gaps[k - 1] - spans[k][1])
        shift[row] = moved / up[2]
    return shift


def rank_spacing(placements) -> tuple[list[float], list[float], list[float]]:
    """(depth from its row's start, largest width or height, largest width) of each rank's
    boxes, as laid out: what `respace` and `spread_lanes` scale the spacing from."""
    placements = list(placements)
    depth = max(p.rank for p in placements) + 1
    rank_of, found = {p.name: p.rank for p in placements}, boxes(placements)
    xs = [0.0] * depth
    for p in placements:
        xs[p.rank] = float(p.x)
    return xs, [float(r) for r in _reach(rank_of, found, depth)], \
        [float(w) for w in _reach(rank_of, found, depth, (1,))]


def _reach(rank_of: dict[str, int], found: dict, depth: int, axes=(1, 2)) -> np.ndarray:
    """The largest extent along `axes` (width Y, height Z) of each rank's boxes; NaN where none
    is drawn."""
    reach = np.full(depth, np.nan)
    for name, (lo, hi) in found.items():
        if name in rank_of and rank_of[name] < depth:
            r = rank_of[name]
            reach[r] = np.nanmax([reach[r], *(np.asarray(hi) - lo)[list(axes)]])
    return reach


def spread_lanes(rank_of: dict[str, int], lane_of: dict[str, int], found: dict, widths
                 ) -> dict[str, float]:
    """{layer: its width (Y) offset from its rank's main-path layer}: branches LANE_STEP times
    their rank's widest layer apart, as drawn now (`found`) where that grew past the layout's
    (`widths`: `rank_spacing`): Spacing 1.6 had pushed ResNet50's shortcut convolutions into
    the main path's maps beside them."""
    now = _reach(rank_of, found, len(widths), (1,))
    now = np.fmax(now, widths)
    return {name: -lane * LANE_STEP * float(now[rank_of[name]])
            for name, lane in lane_of.items() if name in rank_of}


def respace(rank_of: dict[str, int], row_of: dict[str, int], found: dict, xs, reach
            ) -> list[float]:
    """Each rank's depth from its row's start, its gap to the rank before grown as the larger of
    the two ranks' boxes (`found`, as drawn now) grew from the layout's (`xs`, `reach`:
    `rank_spacing`), so edges keep their angle: Spacing 2.5 on every layer of ResNet50 had
    packed its layers into two short thick rows whose labels stood stacked three high. Shrunk
    layers (Expansion 0, Spacing 0.5) keep the layout's gaps."""
    now = _reach(rank_of, found, len(xs))
    now = np.where(np.isnan(now), reach, now)
    first = {}
    for name, r in rank_of.items():         # the first rank of each row stays at its start
        first[row_of.get(name, 0)] = min(first.get(row_of.get(name, 0), r), r)
    starts = set(first.values())
    out = list(xs)
    for r in range(1, len(xs)):
        if r not in starts:
            grown = max(1.0, max(now[r - 1], now[r]) / max(reach[r - 1], reach[r], 1e-9))
            out[r] = out[r - 1] + (xs[r] - xs[r - 1]) * grown
    return out


def corners(placements: list[Placement]) -> np.ndarray:
    """(8 per layer, 3) corners of each layer's box (`boxes`) for framing: the same boxes the
    camera frames from the scene's evaluated layers, so a camera fitted at import and one
    refitted later agree."""
    return np.concatenate([box_corners(lo, hi) for lo, hi in boxes(placements).values()])
