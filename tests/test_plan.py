"""The scene plan (plan.py) holds the numbers a scene draws, computed without Blender: places,
activation atlases equal to the run's activations, polylines ending on the cells they join, weight
atlases equal to the model's kernels, traces and windows. This file never imports bpy."""
from __future__ import annotations

import numpy as np
import pytest

from nnvis_addon import load_run
from nnvis_addon.atlas import as_cells, unpack
from nnvis_addon.errors import NNVisError
from nnvis_addon.layout import Placement, layout_network
from nnvis_addon.model.edges import EDGE_VALUE_MODES
from nnvis_addon.options import SceneOptions
from nnvis_addon.plan import plan_refresh, plan_scene, skip_arc

TIER = "oracle"

CAP = 400


@pytest.fixture(scope="module")
def planned(digits_run):
    folder, _ = digits_run
    run = load_run(folder)
    return run, plan_scene(run, SceneOptions(max_edges=CAP))


def test_layers_are_placed_where_the_layout_puts_them_with_their_activations(planned):
    run, plan = planned
    assert [p.layer.name for p in plan.layers] == [l.name for l in run.network.layers]
    assert plan.rows == 1
    for layer_plan, placement in zip(plan.layers, layout_network(run.network)):
        assert layer_plan.unsupported is None
        np.testing.assert_array_equal(layer_plan.placement.centers, placement.centers)
        acts = np.stack([run.activations(layer_plan.layer.name, e) for e in run.epochs])
        atlas = layer_plan.atlas
        assert atlas.epochs == len(run.epochs) == 4       # one atlas row band per epoch
        np.testing.assert_array_equal(
            unpack(atlas.rgb, atlas.tile_h, atlas.tile_w, atlas.cells, atlas.rows_per_epoch),
            as_cells(acts, layer_plan.layer.is_spatial))
        peak = np.abs(acts).max()
        signed = bool((acts < 0).any())
        assert layer_plan.diverging == signed
        assert layer_plan.colormap == ("coolwarm" if signed else "viridis")
        assert layer_plan.colour == pytest.approx((0.5 / peak, 0.5) if signed else (1 / peak, 0))
        cells = as_cells(acts, layer_plan.layer.is_spatial)
        per_map = np.abs(cells).max(axis=(0, 2, 3))
        np.testing.assert_allclose((layer_plan.map_gain * per_map)[per_map > 0], peak, rtol=1e-5)


def test_polylines_join_the_cells_of_the_layers_they_connect(planned):
    run, plan = planned
    pairs = [(c.src, c.dst) for c in plan.connections]
    assert pairs == [(l.inbound[0], l.name) for l in run.network.layers if l.inbound]
    for c in plan.connections:
        src, dst = plan.placements[c.src], plan.placements[c.dst]
        assert 0 < len(c.edges) <= CAP and c.straight.shape == c.bundled.shape
        for polylines in (c.straight, c.bundled):
            np.testing.assert_allclose(polylines[:, 0], src.centers[c.edges.src], atol=1e-5)
            np.testing.assert_allclose(polylines[:, -1], dst.centers[c.edges.dst], atol=1e-5)
        strength = np.abs(c.edges.weight).max(axis=0)
        assert (np.diff(strength) <= 0).all()                  # strongest first
        assert c.bundle_strength == 0.8 and c.radius > 0
    assert plan.edges_drawn == sum(len(c.edges) for c in plan.connections)
    assert plan.edges_total >= plan.edges_drawn


def test_weight_atlas_holds_the_kernels_of_every_epoch(planned):
    run, plan = planned
    dense = next(c for c in plan.connections if c.dst == "dense")
    flat = unpack(dense.atlas.rgb, 1, 1, dense.atlas.cells, dense.atlas.rows_per_epoch)
    values = flat.reshape(len(run.epochs), len(EDGE_VALUE_MODES), len(dense.edges))
    np.testing.assert_array_equal(values, dense.values)
    for e, epoch in enumerate(run.epochs):
        kernel = run.weights("dense", epoch)[0]
        np.testing.assert_array_equal(values[e, 0], kernel[dense.edges.src, dense.edges.dst])
        np.testing.assert_array_equal(values[e, 1], np.abs(kernel[dense.edges.src,
                                                                   dense.edges.dst]))
    assert dense.scales[0] == pytest.approx(0.5 / np.abs(values[:, 0]).max())
    # a pooling layer's links are weightless: no atlas, the run's shared grey material
    pool = next(c for c in plan.connections if c.dst == "pool1")
    assert pool.atlas is None and pool.values is None and pool.edges.one_to_one
    np.testing.assert_array_equal(pool.straight, pool.bundled)


def test_traces_and_windows_come_with_the_plan(planned):
    run, plan = planned
    units = plan.trace.units
    assert units == list(range(10)) and plan.trace_unit in units
    output = run.activations(run.network.output, run.epochs[-1])
    assert plan.trace_unit == int(np.argmax(output))
    for layer_plan in plan.layers:
        assert layer_plan.traces.shape == (len(units), layer_plan.layer.cell_count)
    for c in plan.connections:
        assert c.traced_units == tuple(units) and c.trace_unit == plan.trace_unit
        assert c.traces.shape == (len(units), len(c.edges))
        assert ((0 <= c.traces) & (c.traces <= 1)).all()
    conv2 = next(p for p in plan.layers if p.layer.name == "conv2")
    source, window = conv2.window
    assert source.name == "pool1" and tuple(window.size) == (3, 3)
    assert next(p for p in plan.layers if p.layer.name == "dense").window is None


def test_traces_without_edge_shares_take_the_matrix_path_to_the_same_relevance(planned):
    """Connections whose per-edge shares are not kept go through a matrix product where their edges
    are a full grid (conv1 → conv2's channels, uncapped): the cells' relevance is the same."""
    from nnvis_addon.model.trace import trace
    run, _ = planned
    epoch = run.epochs[-1]
    weights = {l.name: run.weights(l.name, epoch) for l in run.network.layers}
    acts = {l.name: run.activations(l.name, epoch) for l in run.network.layers}
    kept = trace(run.network, weights, acts, list(range(10)), with_edges=True)
    fast = trace(run.network, weights, acts, list(range(10)), with_edges=set())
    assert not fast.edges and len(kept.edges) == len(run.network.layers) - 1
    for name, cells in kept.cells.items():
        np.testing.assert_allclose(fast.cells[name], cells, rtol=1e-6, atol=1e-7)
    assert kept.cells["pool1"].any()


def test_inputs_per_cell_keeps_each_cells_strongest_inputs_with_their_trace_shares(planned):
    """Inputs per Map = 2: every target cell draws its 2 strongest inputs (max over epochs of
    |w|), and each drawn edge's highlight share is the trace's for that very pair."""
    from nnvis_addon.model.edges import layer_edges
    from nnvis_addon.model.trace import trace
    run, full = planned
    plan = plan_scene(run, SceneOptions(max_edges=CAP, inputs_per_cell=2))
    assert plan.edges_drawn < full.edges_drawn
    weights = [{l.name: run.weights(l.name, e) for l in run.network.layers} for e in run.epochs]
    epoch = run.epochs[-1]
    found = trace(run.network, weights[-1], {l.name: run.activations(l.name, epoch)
                                             for l in run.network.layers},
                  plan.trace.units, with_edges=True, max_edges=plan.edge_cap)
    for c in plan.connections:
        counts = np.bincount(c.edges.dst)
        assert counts.max() <= 2, (c.src, c.dst)
        every = layer_edges(run.network, c.dst, weights)[c.src]
        score = np.abs(every.weight).max(axis=0)
        for d in np.unique(c.edges.dst)[:8]:       # the kept inputs are the strongest ones
            kept = np.sort(score[every.dst == d])[::-1][:counts[d]]
            drawn = np.abs(c.edges.weight[:, c.edges.dst == d]).max(axis=0)
            np.testing.assert_allclose(np.sort(drawn)[::-1], kept, rtol=1e-6)
        np.testing.assert_array_equal(c.traces, found.shares(c.src, c.dst, c.edges.src,
                                                             c.edges.dst))


def test_an_unknown_bundler_is_refused_before_anything_is_built(planned):
    run, _ = planned
    with pytest.raises(NNVisError, match="unknown bundler 'fuzzy'"):
        plan_scene(run, SceneOptions(bundler="fuzzy", max_edges=50))


def test_a_skip_connection_arcs_over_the_layers_it_passes():
    src = Placement("a", 0.0, np.zeros((1, 3), np.float32), 1.0, True, (1.0, 2.0), rank=0)
    near = Placement("b", 1.0, np.zeros((1, 3), np.float32), 1.0, True, (1.0, 2.0), rank=1)
    far = Placement("c", 3.0, np.zeros((1, 3), np.float32), 1.0, True, (1.0, 4.0), rank=3)
    line = np.zeros((1, 5, 3), np.float32)
    line[0, :, 0] = np.linspace(0, 3, 5)
    np.testing.assert_array_equal(skip_arc(line, src, near), line)
    arc = skip_arc(line, src, far)
    lift = 4.0 / 2 + 0.08 * 3.0                           # above the taller end, plus a slope
    np.testing.assert_allclose(arc[0, :, 2], lift * np.sin(np.pi * np.linspace(0, 1, 5)),
                               atol=1e-6)
    np.testing.assert_array_equal(arc[..., :2], line[..., :2])


def test_a_one_row_network_draws_each_cells_strongest_inputs_fainter_the_more_there_are(planned):
    """Auto Inputs per Map in one row: each dense unit's ROW_INPUTS strongest inputs (not all
    1024 flatten units: a solid cone over the unit); a connection's Opacity is 1 up to
    OPAQUE_EDGES edges and 1/√(count / OPAQUE_EDGES) above."""
    from nnvis_addon.plan import OPAQUE_EDGES, ROW_INPUTS
    run, _ = planned
    plan = plan_scene(run, SceneOptions())
    by_pair = {(c.src, c.dst): c for c in plan.connections}
    dense = by_pair["flatten", "dense"]
    units = run.network.layer("dense").cell_count
    assert len(dense.edges) == ROW_INPUTS * units
    assert np.bincount(dense.edges.dst, minlength=units).tolist() == [ROW_INPUTS] * units
    kernel = np.abs(np.stack([run.weights("dense", e)[0] for e in run.epochs])).max(axis=0)
    for unit in range(units):               # the strongest of its inputs, by max |w| over epochs
        mine = np.sort(dense.edges.src[dense.edges.dst == unit])
        np.testing.assert_array_equal(mine, np.sort(np.argsort(-kernel[:, unit],
                                                               kind="stable")[:ROW_INPUTS]))
    for connection in plan.connections:
        n = len(connection.edges)
        want = 1.0 if n <= OPAQUE_EDGES else max(np.sqrt(OPAQUE_EDGES / n), 0.12)
        assert connection.opacity == pytest.approx(want), (connection.src, connection.dst)
    assert min(c.opacity for c in plan.connections) < 1.0


def test_a_refresh_plans_every_epoch_as_an_import_of_them_all(digits_run):
    """`plan_refresh` extends the values a scene of some epochs holds (read back from its
    atlases, padding and all) by the new epochs' to what planning all epochs gives: each layer's
    atlas, colour and gains, each weighted connection's atlas and mode scales, edge by edge."""
    folder, _ = digits_run
    everything = SceneOptions(max_edges=None, max_total_edges=None, inputs_per_cell=0)
    whole = load_run(folder)
    shown, new = whole.epochs[::2], whole.epochs[1::2]   # one held back at the import too
    first = plan_scene(load_run(folder, epochs=shown), everything)
    later = load_run(folder, epochs=new)

    def held(atlas):                 # what the scene's image gives back
        return unpack(atlas.rgb, atlas.tile_h, atlas.tile_w,
                      atlas.width * atlas.rows_per_epoch * 3 // (atlas.tile_h * atlas.tile_w),
                      atlas.rows_per_epoch)
    refreshed = plan_refresh(
        later, ("auto", ""), shown,
        {p.layer.name: (held(p.atlas), p.diverging) for p in first.layers},
        {(c.src, c.dst): (c.edges.src, c.edges.dst, held(c.atlas if c.atlas is not None
                                                         else first.weightless))
         for c in first.connections})
    assert refreshed.epochs == whole.epochs
    full = plan_scene(whole, everything)
    for p in full.layers:
        values = refreshed.layers[p.layer.name]
        np.testing.assert_array_equal(values.atlas.rgb, p.atlas.rgb, err_msg=p.layer.name)
        assert values.colour == p.colour and values.atlas.epochs == 4
        np.testing.assert_array_equal(values.map_gain, p.map_gain)
    weighted = [c for c in full.connections if c.atlas is not None]
    assert set(refreshed.connections) == {(c.src, c.dst) for c in weighted} and weighted
    for c in weighted:
        values = refreshed.connections[c.src, c.dst]
        assert values.scales == pytest.approx(c.scales, rel=1e-6)
        before = next(f for f in first.connections if (f.src, f.dst) == (c.src, c.dst)).edges
        at = {pair: k for k, pair in enumerate(zip(c.edges.src, c.edges.dst))}
        rows = [at[pair] for pair in zip(before.src, before.dst)]   # the import's edge order
        got = held(values.atlas)[:, :c.values.shape[1] * len(rows), 0, 0]
        np.testing.assert_array_equal(got.reshape(4, c.values.shape[1], -1), c.values[:, :, rows])
