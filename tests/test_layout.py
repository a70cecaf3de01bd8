"""Where layers stand (layout.py): the gap behind a layer depends on what its edges do — a fan of
edges (Conv2D, Dense) needs the full gap to spread out, map-to-map links (BatchNorm, activations,
pooling, Add) and folded blocks' sheaves stand closer."""
import pytest

from nnvis_addon import layout
from nnvis_addon.model.network import Layer, Network

TIER = "fast"


def layer(name, kind, shape, *inbound):
    return Layer(name, kind, {}, list(inbound), tuple(shape))


def test_map_to_map_layers_stand_closer_than_convolutions():
    net = Network("net", [
        layer("in", "InputLayer", (8, 8, 4)),
        layer("conv", "Conv2D", (8, 8, 4), "in"),
        layer("bn", "BatchNormalization", (8, 8, 4), "conv"),
        layer("relu", "ReLU", (8, 8, 4), "bn"),
        layer("conv2", "Conv2D", (8, 8, 4), "relu"),
        layer("add", "Add", (8, 8, 4), "relu", "conv2"),
        layer("gap", "GlobalAveragePooling2D", (4,), "add"),
        layer("out", "Dense", (2,), "gap"),
    ])
    x = {p.name: p.x for p in layout.layout_network(net, gap=0.6)}
    extent = {p.name: max(p.extent) for p in layout.layout_network(net)}["conv"]
    full = 0.6 * extent                       # every spatial layer here has the same extent
    assert x["conv"] - x["in"] == pytest.approx(full)
    assert x["bn"] - x["conv"] == pytest.approx(layout.MAPWISE_GAP * full)
    assert x["relu"] - x["bn"] == pytest.approx(layout.MAPWISE_GAP * full)
    assert x["conv2"] - x["relu"] == pytest.approx(full)
    assert x["add"] - x["conv2"] == pytest.approx(layout.MAPWISE_GAP * full)
    assert x["gap"] - x["add"] == pytest.approx(full)           # maps to units: a full gap
    assert layout.MAPWISE_GAP < 1


def test_a_rank_keeps_the_full_gap_if_any_of_its_layers_fans_out():
    net = Network("net", [
        layer("in", "InputLayer", (8, 8, 4)),
        layer("a", "ReLU", (8, 8, 4), "in"),
        layer("b", "Conv2D", (8, 8, 4), "in"),          # beside `a`, at the same rank
        layer("add", "Add", (8, 8, 4), "a", "b"),
    ])
    placed = {p.name: p for p in layout.layout_network(net, gap=0.6)}
    assert placed["a"].rank == placed["b"].rank == 1
    assert placed["a"].x == placed["b"].x == pytest.approx(0.6 * max(placed["in"].extent))


@pytest.mark.parametrize("cells", [16, 800, 1024])
def test_line_and_circle_stay_near_the_grids_size(cells):
    """Morph's line and circle (arrange.py) of a long layer — the demo's Flatten has 1024 units —
    fold into columns and fill a disc: a ring of 1024 stood ten grids wide and swallowed the
    frame. Up to RING_CELLS cells the circle is one ring, neighbours a pitch apart."""
    import numpy as np
    from nnvis_addon import arrange
    side = int(np.ceil(np.sqrt(cells)))
    k = np.arange(cells)
    centers = np.stack([np.zeros(cells), k % side, -(k // side)], axis=1).astype(np.float32)
    placement = layout.Placement("flat", 0.0, centers, 0.8, False, (side, side))
    shapes = arrange.arrangements(placement, (cells,))
    grid = np.ptp(shapes.grid, axis=0).max() + 1
    for name in ("line", "circle") if cells > arrange.RING_CELLS else ():
        extent = np.ptp(getattr(shapes, name), axis=0).max() + 1
        assert extent <= 2.1 * grid, (name, extent, grid)
    gaps = np.linalg.norm(shapes.circle[:, None] - shapes.circle[None], axis=2)
    np.fill_diagonal(gaps, np.inf)
    assert gaps.min() >= 0.9                      # cells one pitch (1.0) apart, no overlaps
    radius = np.linalg.norm(shapes.circle, axis=1)
    if cells <= arrange.RING_CELLS:
        np.testing.assert_allclose(radius, radius[0], rtol=1e-5)


@pytest.mark.parametrize("wrapped", [False, True])
def test_the_orbit_sweeps_60_degrees_from_either_home_view(wrapped):
    """A network in one row swings as far round to its maps' faces (-X) as to the side, rising
    steeply towards the faces, one wrapped into rows further towards the side view; 60° of
    azimuth either way, starting and ending at home."""
    import numpy as np
    from nnvis_addon import framing
    home = framing.WRAPPED_VIEW_DIRECTION if wrapped else framing.VIEW_DIRECTION
    azimuth = np.degrees([np.arctan2(d[1], d[0]) for d in framing.orbit_directions(home)])
    start = np.degrees(np.arctan2(home[1], home[0]))
    assert np.ptp(azimuth) == pytest.approx(60, abs=1e-6)
    assert azimuth[0] == pytest.approx(start) and azimuth[-1] == pytest.approx(start)
    toward = start - azimuth.min()
    assert toward == pytest.approx(20 if wrapped else 30)
    rise = max(d[2] for d in framing.orbit_directions(home)) - home[2]
    assert rise == pytest.approx(0.2 if wrapped else 0.6)


@pytest.mark.parametrize("length, turned", [(60.0, True), (8.0, False)])
def test_wrapped_rows_wider_than_the_area_turn_towards_the_maps_faces(length, turned):
    """Two rows wider than the network area (EfficientNetB0's, mobilenet_v3_small's) are seen
    turned towards -X until they fill its height too, so they show larger; rows the area's
    height already bounds keep the side view."""
    import numpy as np
    from nnvis_addon import framing
    rows = framing.box_corners([0.0, -1.0, -5.0], [length, 1.0, 1.0])
    home = framing.wrapped_view(rows, 16 / 9)
    height = framing.NETWORK[3] - framing.NETWORK[1]

    def azimuth(d):
        return np.degrees(np.arctan2(d[1], d[0]))

    side = framing.fit(rows, framing.WRAPPED_VIEW_DIRECTION, 16 / 9)
    seen = framing.fit(rows, home, 16 / 9)
    if turned:
        assert side.box[3] - side.box[1] < 0.9 * height
        assert azimuth(home) < azimuth(framing.WRAPPED_VIEW_DIRECTION) - 1     # towards -X
        assert seen.box[3] - seen.box[1] > side.box[3] - side.box[1]          # shown larger
        assert home[2] == pytest.approx(framing.WRAPPED_VIEW_DIRECTION[2])     # as low
        assert framing.orbit_swing(home)[:2] == (20.0, 40.0)                   # still wrapped
    else:
        np.testing.assert_allclose(home, framing.WRAPPED_VIEW_DIRECTION)


@pytest.mark.parametrize("classes, doubled", [(10, True), (1000, False)])
def test_only_a_column_of_class_scores_is_drawn_at_twice_the_size(classes, doubled):
    """A 10-class output stands as a column twice a unit's size, beside the prediction bars; a
    1000-class one (every torchvision classifier) stays unit-sized: doubled, its 32×32 grid stood
    taller than any map and shrank mobilenet_v3_small to 12 % of the frame."""
    net = Network("net", [
        layer("in", "InputLayer", (8, 8, 4)),
        layer("gap", "GlobalAveragePooling2D", (4,), "in"),
        layer("hidden", "Dense", (classes,), "gap"),
        layer("out", "Dense", (classes,), "hidden"),
    ])
    size = {p.name: p.cell_size for p in layout.layout_network(net)}
    assert size["out"] == pytest.approx(size["hidden"] * (2 if doubled else 1))


def test_a_row_break_keeps_the_rows_near_equal_length():
    """A break moves to a stage's start only where that leaves the rows near equal: EfficientNetB0's
    first row ran to 52 of its 87 units, snapped to the start of stage 5, and the longest row sets
    how small the camera draws every map."""
    import numpy as np
    xs = np.arange(88.0)
    row = layout._rows(xs, 2, stage_starts=[30.0, 52.0, 70.0])
    assert row[:44].max() == 0 and row[45:].min() == 1            # 52 is 8 from the ideal 43.5
    row = layout._rows(xs, 2, stage_starts=[30.0, 46.0, 70.0])
    assert row[:46].max() == 0 and row[46:].min() == 1            # 46 is near: rows read as stages


def _chain(length, maps=4):
    return Network("net", [layer("c0", "InputLayer", (8, 8, maps))] + [
        layer(f"c{k}", "Conv2D", (8, 8, maps), f"c{k - 1}") for k in range(1, length + 1)])


def _weighed():
    from nnvis_addon import framing

    def shown(points, rows):
        return framing.shown(points, 16 / 9, rows)

    def high(points):
        return framing.height_share(points, 16 / 9)
    return shown, high


@pytest.mark.parametrize("length, shortened", [(20, False), (30, True), (40, True)])
def test_rows_wider_than_the_area_stand_closer(length, shortened):
    """A chain of small maps in 2 rows as wide as the network area but not as high (Keras
    MobileNetV3Small's) has its ranks stand closer until it fills the area's height, and shows
    larger; rows the area's height bounds keep the full gap. Each row count is weighed at its
    own gap: at the full gap 40 layers showed largest in 3 rows, yet 2 rows closer together
    show a third larger (EfficientNet-B0 through ONNX: 3 rows, 12.7 % of the frame)."""
    from nnvis_addon import framing
    net = _chain(length)
    shown, high = _weighed()
    rows, gap = layout.choose_layout(net, shown, high)
    height = framing.NETWORK[3] - framing.NETWORK[1]
    placed = layout.corners(layout.layout_network(net, gap=gap, rows=rows))
    box = framing.fit(placed, framing.wrapped_view(placed, 16 / 9), 16 / 9).box
    assert rows == 2
    if shortened:
        full = max(shown(layout.corners(layout.layout_network(net, rows=r)), r)
                   for r in range(1, 5))
        assert layout.SHORTEST_GAP <= gap < layout.GAP
        assert shown(placed, rows) > layout.HELPS * full
        assert box[3] - box[1] > 0.95 * height or gap == layout.SHORTEST_GAP
    else:
        assert gap == layout.GAP
    width = framing.NETWORK[2] - framing.NETWORK[0]
    assert box[3] - box[1] <= height + 1e-6 and box[2] - box[0] <= width + 1e-6     # framed


@pytest.mark.parametrize("length, shortened", [(10, False), (16, True)])
def test_a_long_row_stands_closer_until_it_fills_the_height(length, shortened):
    """One row that fills less than ONE_ROW_HIGH of the network area's height (NASNetMobile's 22
    cells: 63 %, 14.2 % of the frame) has its ranks stand closer while that shows it larger,
    until it fills that much; a shorter row (resnet18's, 80 %) keeps its gap: closer, its
    edges stand steep over its maps."""
    net = _chain(length)
    shown, high = _weighed()
    rows, gap = layout.choose_layout(net, shown, high, most=1)
    assert rows == 1
    if not shortened:
        assert gap == layout.GAP
        return
    assert layout.SHORTEST_GAP <= gap < layout.GAP
    before = layout.corners(layout.layout_network(net, gap=round(gap + 0.05, 6)))
    assert high(before) < layout.ONE_ROW_HIGH        # it stopped once it filled that much
    placed = layout.corners(layout.layout_network(net, gap=gap))
    assert shown(placed, 1) > layout.HELPS * shown(layout.corners(layout.layout_network(net)), 1)


def _wrapped(length=12, rows=2):
    net = Network("net", [layer("c0", "InputLayer", (8, 8, 4))] + [
        layer(f"c{k}", "Conv2D", (8, 8, 4), f"c{k - 1}") for k in range(1, length + 1)])
    return layout.layout_network(net, rows=rows)


def _grown(boxes: dict, factor: float) -> dict:
    """Each box scaled about its centre in Y and Z (Spacing on every layer)."""
    out = {}
    for name, (lo, hi) in boxes.items():
        mid, half = (lo + hi) / 2, (hi - lo) / 2 * [1.0, factor, factor]
        out[name] = (mid - half, mid + half)
    return out


@pytest.mark.parametrize("up", [(0.0, 0.0, 1.0), (0.1, 0.3, 0.95)])
def test_grown_rows_hang_their_laid_out_gap_apart_and_shrunk_ones_stay(up):
    placed = _wrapped()
    rows = {p.name: p.row for p in placed}
    boxes = layout.boxes(placed)
    (gap,) = layout.row_gaps(rows, boxes, up)
    assert layout.restack(rows, boxes, [gap], up) == {0: 0.0, 1: pytest.approx(0.0)}
    grown = _grown(boxes, 1.6)
    shift = layout.restack(rows, grown, [gap], up)
    assert shift[0] == 0.0 and shift[1] < 0
    moved = {n: (lo + [0, 0, shift[rows[n]]], hi + [0, 0, shift[rows[n]]])
             for n, (lo, hi) in grown.items()}
    assert layout.row_gaps(rows, moved, up) == pytest.approx([gap])
    assert layout.restack(rows, _grown(boxes, 0.5), [gap], up) == {0: 0.0, 1: 0.0}


def test_ranks_stand_apart_as_their_layers_grew():
    placed = _wrapped()
    rank, row = {p.name: p.rank for p in placed}, {p.name: p.row for p in placed}
    xs, reach, _ = layout.rank_spacing(placed)
    boxes = layout.boxes(placed)
    assert layout.respace(rank, row, boxes, xs, reach) == pytest.approx(xs)
    grown = layout.respace(rank, row, _grown(boxes, 2.0), xs, reach)
    firsts = {min(r for n, r in rank.items() if row[n] == k) for k in set(row.values())}
    assert len(firsts) == 2
    for r in range(1, len(xs)):        # each row from its start, every gap twice as long
        assert grown[r] == pytest.approx(0.0 if r in firsts else
                                         grown[r - 1] + 2 * (xs[r] - xs[r - 1]))
    assert layout.respace(rank, row, _grown(boxes, 0.5), xs, reach) == pytest.approx(xs)


def test_branches_stand_apart_as_their_rank_grew():
    """Two branches at one rank (lanes 0 and 1): as laid out, `spread_lanes` keeps them where
    they are; grown 1.6 times, 1.6 times as far apart; shrunk, where they were."""
    net = Network("net", [layer("in", "InputLayer", (8, 8, 4)),
                          layer("a", "Conv2D", (8, 8, 4), "in"),
                          layer("b", "Conv2D", (8, 8, 4), "in"),
                          layer("add", "Add", (8, 8, 4), "a", "b")])
    placed = layout.layout_network(net)
    rank, lane = {p.name: p.rank for p in placed}, {p.name: p.lane for p in placed}
    assert sorted(lane[n] for n in "ab") == [-1, 0] or sorted(lane[n] for n in "ab") == [0, 1]
    _, _, widths = layout.rank_spacing(placed)
    centre = {p.name: float(p.centers[:, 1].mean()) for p in placed}
    main = next(n for n in "ab" if lane[n] == 0)
    side = next(n for n in "ab" if lane[n])
    boxes = layout.boxes(placed)
    for factor, apart in ((1.0, 1.0), (1.6, 1.6), (0.5, 1.0)):
        offset = layout.spread_lanes(rank, lane, _grown(boxes, factor), widths)
        assert offset[main] == 0.0
        assert offset[side] == pytest.approx(apart * (centre[side] - centre[main]))
