"""Both edge bundlers: exact ends, straight at beta 0, less ink as beta grows, shared routes,
determinism; the cell hierarchy; the benchmark's output. Speed: the benchmark measures it, not here.
"""
import json

import numpy as np
import pytest

from nnvis_addon.tools.bench import bundling as bench
from nnvis_addon.bundling import cell_hierarchy, density_bundle, structural_bundle
from nnvis_addon.errors import NNVisError

TIER = "fast"


def layer_pair(n_src=400, n_dst=20, seed=1, gap=2.0):
    """Random Y-Z cell positions (no lattice coincidences) of a dense layer pair, and its edges."""
    rng = np.random.default_rng(seed)
    src_pos = np.zeros((n_src, 3))
    dst_pos = np.full((n_dst, 3), gap)
    src_pos[:, 1:] = rng.uniform(-1, 1, (n_src, 2))
    dst_pos[:, 1:] = rng.uniform(-0.6, 0.6, (n_dst, 2))
    src = np.repeat(np.arange(n_src), n_dst).astype(np.int32)
    dst = np.tile(np.arange(n_dst), n_src).astype(np.int32)
    return src_pos, dst_pos, src, dst, rng.normal(size=src.shape[0])


def structural(pair, beta, points=16, **kw):
    return structural_bundle(*pair[:4], beta=beta, points=points, **kw)


def density(pair, beta, points=16, **kw):
    return density_bundle(*pair[:4], weights=pair[4], beta=beta, points=points, **kw)


BUNDLERS = [structural, density]


def ink(curves, voxel=0.03, sub=8):
    """Total ink of the middle half of the curves: occupied voxels of the densely sampled segments,
    so overlapping strokes count once (the measure bundling is meant to reduce)."""
    k = curves.shape[1]
    mid = curves[:, k // 4:k - k // 4].astype(np.float64)
    f = np.linspace(0, 1, sub, endpoint=False)[None, None, :, None]
    dense = (mid[:, :-1, None] * (1 - f) + mid[:, 1:, None] * f).reshape(-1, 3)
    cells = np.floor(dense / voxel).astype(np.int64) + 1000          # all within [0, 2000)
    return np.unique((cells[:, 0] * 2000 + cells[:, 1]) * 2000 + cells[:, 2]).shape[0]


@pytest.fixture(scope="module")
def pair():
    return layer_pair()


@pytest.mark.parametrize("bundle", BUNDLERS)
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_curves_start_and_end_exactly_at_their_cells(bundle, beta, pair):
    src_pos, dst_pos, src, dst, _ = pair
    out = bundle(pair, beta, points=9)
    assert out.shape == (src.shape[0], 9, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 0], src_pos[src].astype(np.float32))
    np.testing.assert_array_equal(out[:, -1], dst_pos[dst].astype(np.float32))


@pytest.mark.parametrize("bundle", BUNDLERS)
def test_beta_zero_gives_straight_evenly_sampled_lines(bundle, pair):
    src_pos, dst_pos, src, dst, _ = pair
    t = np.linspace(0, 1, 7)[None, :, None]
    straight = src_pos[src][:, None] * (1 - t) + dst_pos[dst][:, None] * t
    np.testing.assert_allclose(bundle(pair, 0.0, points=7), straight, atol=1e-5)


@pytest.mark.parametrize("bundle", BUNDLERS)
def test_samples_lie_in_depth_planes_and_move_linearly_with_beta(bundle, pair):
    """Sample k sits at depth fraction k/(points-1) for every beta, and a curve at beta is the
    blend of the straight and the fully bundled curve: the scene can animate beta by mixing two
    point sets (or the straight line computed from the ends) without bundling again."""
    src_pos, dst_pos, src, dst, _ = pair
    out = {b: bundle(pair, b, points=8) for b in (0.0, 0.3, 1.0)}
    t = np.linspace(0, 1, 8)[None, :]
    for curves in out.values():
        depth = src_pos[src, :1] * (1 - t) + dst_pos[dst, :1] * t
        np.testing.assert_allclose(curves[..., 0], depth, atol=1e-5)
    np.testing.assert_allclose(out[0.3], 0.7 * out[0.0] + 0.3 * out[1.0], atol=1e-5)


@pytest.mark.parametrize("bundle", BUNDLERS)
@pytest.mark.parametrize("seed", [1, 2])
def test_bundling_reduces_ink_monotonically_with_beta(bundle, seed):
    pair = layer_pair(seed=seed)
    inks = [ink(bundle(pair, beta)) for beta in np.linspace(0, 1, 6)]
    assert all(b < a for a, b in zip(inks, inks[1:])), inks
    assert inks[-1] < 0.7 * inks[0], inks


def test_fully_bundled_edges_share_their_group_route():
    """Beta 1: edges between the same fine groups run on one curve through the middle third (the
    B-spline span that only the group control points reach); other group pairs run elsewhere."""
    src_pos, dst_pos, src, dst, _ = layer_pair(n_src=12, n_dst=6)
    src_groups = np.array([[0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3], [0] * 6 + [1] * 6])
    dst_groups = np.array([[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1]])
    out = structural_bundle(src_pos, dst_pos, src, dst, beta=1.0, points=31,
                            src_groups=src_groups, dst_groups=dst_groups)
    middle = out[:, 11:20]                                    # t in [1/3, 2/3]
    route = src_groups[0][src] * 2 + dst_groups[0][dst]
    for r in range(8):
        np.testing.assert_allclose(middle[route == r], np.broadcast_to(middle[route == r][0],
                                                                       middle[route == r].shape),
                                   atol=1e-5)
    firsts = np.stack([middle[route == r][0] for r in range(8)])
    apart = np.abs(firsts[:, None] - firsts[None, :]).max(axis=(2, 3))
    assert apart[~np.eye(8, dtype=bool)].min() > 1e-3


@pytest.mark.parametrize("bundle", BUNDLERS)
def test_deterministic(bundle, pair):
    np.testing.assert_array_equal(bundle(pair, 0.8), bundle(pair, 0.8))


def test_edges_in_any_order_get_the_same_curves(pair):
    order = np.random.default_rng(3).permutation(pair[2].shape[0])
    shuffled = (pair[0], pair[1], pair[2][order], pair[3][order], pair[4][order])
    for bundle in BUNDLERS:
        np.testing.assert_allclose(bundle(shuffled, 0.8), bundle(pair, 0.8)[order], atol=1e-5)


def test_density_above_the_splat_sample_keeps_order_independence_and_bundles():
    """Past 2¹⁷ edges a fixed sample makes the density maps: picked by the edges' cells, so a
    shuffled edge list still gets the same curves, and the curves still lose ink."""
    from nnvis_addon.bundling.density import _splat_sample
    big = layer_pair(n_src=2800, n_dst=50, seed=2)                        # 140,000 edges
    assert _splat_sample(big[2], big[3]) is not None
    order = np.random.default_rng(5).permutation(big[2].shape[0])
    shuffled = (big[0], big[1], big[2][order], big[3][order], big[4][order])
    out = density(big, 1.0, points=5)
    np.testing.assert_allclose(density(shuffled, 1.0, points=5), out[order], atol=1e-5)
    assert ink(out) < 0.8 * ink(density(big, 0.0, points=5))


def test_density_small_layers_move_points_from_the_nodes_without_a_move_table(pair, monkeypatch):
    """Below _TABLE_EDGES edges per table cell the fine move table (a fixed cost every iteration,
    twice the bundling time at 5k edges) is not built: each point's move is interpolated from its
    four nodes at its fine cell's centre with the table's own operations: the same curves."""
    from nnvis_addon.bundling import density as module
    small, table = density(pair, 1.0), module._MoveTable
    monkeypatch.setattr(module, "_TABLE_EDGES", 0.0)                 # the table at any size
    built = []
    monkeypatch.setattr(module, "_MoveTable", lambda *a: built.append(1) or table(*a))
    np.testing.assert_array_equal(small, density(pair, 1.0))
    assert built, "the forced table path did not build a table"
    monkeypatch.undo()
    monkeypatch.setattr(module, "_MoveTable", lambda *a: pytest.fail("a table for 8k edges"))
    density(pair, 1.0)


def test_heavier_edges_pull_the_bundles_towards_them():
    """Density: with one edge far heavier than the rest, its neighbours bend towards it."""
    src_pos, dst_pos, src, dst, _ = layer_pair(n_src=60, n_dst=6, seed=4)
    heavy = 0
    weights = np.full(src.shape[0], 0.01)
    weights[heavy] = 100.0
    plain = density_bundle(src_pos, dst_pos, src, dst, None, beta=1.0, points=9)
    pulled = density_bundle(src_pos, dst_pos, src, dst, weights, beta=1.0, points=9)

    def dist(curves):                                    # to the heavy edge, in the middle plane
        return np.linalg.norm(curves[:, 4, 1:] - curves[heavy, 4, 1:], axis=1)

    assert np.median(dist(pulled)) < 0.8 * np.median(dist(plain))


def test_a_weightless_edge_far_from_the_rest_stays_put():
    """Nothing attracts it (its own weight is 0, the others are out of the kernel's reach)."""
    src_pos = np.array([[0, -1, 0], [0, -0.98, 0], [0, 1, 0]], float)
    dst_pos = np.array([[1, -1, 0], [1, 1, 0]], float)
    src, dst = np.array([0, 1, 2]), np.array([0, 0, 1])
    out = density_bundle(src_pos, dst_pos, src, dst, np.array([1.0, 1.0, 0.0]), beta=1.0)
    np.testing.assert_allclose(out[2, :, 1], 1.0, atol=1e-6)
    assert out[1, 3, 1] < -0.98                                     # the others still bundle


def test_cell_hierarchy_nests_and_splits_by_position():
    rng = np.random.default_rng(0)
    pos = np.zeros((1024, 3))
    pos[:, 1:] = rng.uniform(-1, 1, (1024, 2))
    fine, coarse = cell_hierarchy(pos, levels=2)
    assert len(np.unique(fine)) == 128 and len(np.unique(coarse)) == 8
    assert np.all(np.bincount(coarse) == 128) and np.all(np.bincount(fine) == 8)   # balanced
    for g in np.unique(fine):                                    # each fine group in one coarse
        assert len(np.unique(coarse[fine == g])) == 1

    def spread(labels):
        return np.mean([pos[labels == g, 1:].std(axis=0).sum() for g in np.unique(labels)])

    assert spread(fine) < 0.5 * spread(coarse) < 0.5 * pos[:, 1:].std(axis=0).sum()


def test_cell_hierarchy_groups_cells_with_the_same_weights_even_far_apart():
    """16 cells on a line, 4 weight profiles repeating every 4 cells: by weights alone the groups
    are the profiles (cells 4 apart), not neighbourhoods; the seed makes it repeatable."""
    pos = np.zeros((16, 3))
    pos[:, 1] = np.arange(16)
    profile = np.arange(16) % 4
    features = np.eye(4)[profile] * 5 + np.random.default_rng(1).normal(0, 0.01, (16, 4))
    (labels,) = cell_hierarchy(pos, levels=1, features=features, mix=1.0, seed=3)
    assert len(np.unique(labels)) == 4
    for k in range(4):
        assert len(np.unique(labels[profile == k])) == 1
    np.testing.assert_array_equal(labels, cell_hierarchy(pos, 1, features, 1.0, seed=3)[0])
    (by_position,) = cell_hierarchy(pos, levels=1)
    np.testing.assert_array_equal(by_position, np.arange(16) // 4)


@pytest.mark.parametrize("bundle", [structural_bundle, density_bundle])
@pytest.mark.parametrize("change, message", [
    ({"beta": 1.5}, "beta"),
    ({"points": 1}, "points"),
    ({"src": np.array([0, 5])}, "src indices"),
    ({"dst_pos": np.zeros((3, 2))}, "dst_pos"),
    ({"src": np.array([0.0, 1.0])}, "integer"),
])
def test_bad_arguments_raise(bundle, change, message):
    args = dict(src_pos=np.zeros((2, 3)), dst_pos=np.ones((3, 3)), src=np.array([0, 1]),
                dst=np.array([2, 0]))
    args.update(change)
    with pytest.raises(NNVisError, match=message):
        bundle(**args)


def test_bad_groups_and_weights_raise(pair):
    with pytest.raises(NNVisError, match="src_groups"):
        structural_bundle(*pair[:4], src_groups=np.zeros(3, int))
    with pytest.raises(NNVisError, match="weights"):
        density_bundle(*pair[:4], weights=np.ones(5))


def test_no_edges_and_coincident_cells():
    empty = np.zeros(0, np.int32)
    for bundle in (structural_bundle, density_bundle):
        assert bundle(np.zeros((2, 3)), np.ones((2, 3)), empty, empty).shape == (0, 8, 3)
        out = bundle(np.zeros((1, 3)), np.eye(3)[:1], np.zeros(3, np.int32), np.zeros(3, np.int32))
        np.testing.assert_allclose(out[0], np.linspace(0, 1, 8)[:, None] * np.eye(3)[0], atol=1e-6)


def test_bench_rows_and_table(monkeypatch, capsys):
    monkeypatch.setattr(bench, "_hammer_bundle", lambda: None)
    assert bench.main(["--json", "--sizes", "300,600", "--hammer-sizes", "200"]) == 0
    out = capsys.readouterr()
    rows = json.loads(out.out)
    assert [(r["bundler"], r["edges"]) for r in rows] == [
        ("structural", 200), ("density", 200), ("structural", 300), ("density", 300),
        ("structural", 600), ("density", 600)]
    for r in rows:
        assert set(r) == {"bundler", "edges", "seconds", "edges_per_s"}
        assert r["edges_per_s"] == pytest.approx(r["edges"] / r["seconds"])
    assert bench.MISSING in out.err
    rows.append({"bundler": "hammer_bundle", "edges": 200, "seconds": 1.0, "edges_per_s": 200.0})
    text = bench.table(rows)
    assert "hammer_bundle" in text and f"{rows[0]['edges_per_s'] / 200:,.0f}×" in text


def test_bench_dense_pair_has_exactly_the_asked_edges():
    src_pos, dst_pos, src, dst, w = bench.dense_pair(5000)
    assert src.shape == dst.shape == w.shape == (5000,)
    assert len(set(zip(src.tolist(), dst.tolist()))) == 5000
    assert src.max() < src_pos.shape[0] and dst.max() < dst_pos.shape[0]
