"""Structural bundling: hierarchical edge bundling (Holten 2006) for one pair of layers.

Each layer's cells sit in a hierarchy of nested groups (`cell_hierarchy`). An edge's control polygon
climbs its source cell's groups and descends the target cell's:
    source cell, src group level 1 .. level L, dst group level L .. level 1, target cell,
each group point at its group's Y-Z centroid, spread in depth (X) between the two layers.
Beta straightens the polygon towards the chord (Holten's formula), and a clamped cubic B-spline
through it gives the curve, which starts and ends exactly at the cells.

Why it is fast: a control point depends on the source cell or the target cell, never both, and the
straightening and the spline are linear, so curve(e) = F[src[e]] + G[dst[e]] with F, G computed per
cell. Per edge the cost is two row gathers and an add: memory speed.
"""
from __future__ import annotations

import numpy as np

from ..errors import NNVisError
from ._edges import checked
from .cluster import cell_hierarchy

_CHUNK = 1 << 16      # edges per gather-add block: the temporaries stay in cache


def structural_bundle(src_pos: np.ndarray, dst_pos: np.ndarray, src: np.ndarray, dst: np.ndarray,
                      beta: float = 0.8, points: int = 8, src_groups: np.ndarray | None = None,
                      dst_groups: np.ndarray | None = None, levels: int = 2) -> np.ndarray:
    """(n, points, 3) float32 polylines for the edges src[e] → dst[e] between two layers.

    src_pos (source cells, 3), dst_pos (target cells, 3): cell positions, source layer at smaller X.
    src/dst (n,): cell index of each edge's ends. beta: 0 = straight lines, 1 = fully bundled.
    src_groups/dst_groups: (cells,) or (L, cells) group labels, finest level first (e.g. from
    `cell_hierarchy` with weight features, whose k-means takes the seed); None groups by position
    with `levels` levels. No randomness here: same inputs, same output.
    """
    src_pos, dst_pos, src, dst = checked(src_pos, dst_pos, src, dst, beta, points)
    src_cent = _group_centroids(src_pos, src_groups, levels, "src_groups")
    dst_cent = _group_centroids(dst_pos, dst_groups, levels, "dst_groups")
    m = 2 + len(src_cent) + len(dst_cent)
    basis, s = clamped_bspline_basis(m, points)         # (points, m) weights, (m,) depth fractions
    # Holten: Q_j = beta·C_j + (1-beta)·chord(s_j); chord(s) = (1-s)·p_src + s·p_dst and
    # C_j = (1-s_j)·x_src + s_j·x_dst (depth) + group centroid (Y-Z) for group points. Split Q_j
    # into a part owned by the source cell and one owned by the target cell.
    f = _side(src_pos, src_cent, 1.0 - s, beta, basis, range(1, 1 + len(src_cent)), end=0)
    g = _side(dst_pos, dst_cent[::-1], s, beta, basis, range(m - 1 - len(dst_cent), m - 1),
              end=m - 1)
    out = np.empty((src.shape[0], points, 3), np.float32)
    for lo in range(0, src.shape[0], _CHUNK):
        hi = lo + _CHUNK
        np.take(f, src[lo:hi], axis=0, out=out[lo:hi], mode="clip")   # indices checked
        out[lo:hi] += g[dst[lo:hi]]
    return out


def clamped_bspline_basis(m: int, points: int) -> tuple[np.ndarray, np.ndarray]:
    """(points, m) weights of m control points at `points` even parameters t in [0, 1], and the
    control points' Greville abscissae (m,).

    Clamped (open uniform) B-spline of degree min(3, m-1): row 0 is exactly e_0 and the last row
    exactly e_{m-1}, so curves interpolate their end points. Control points placed at depth
    fractions = Greville abscissae reproduce linear functions, so sample k lies at depth fraction
    t_k on every curve, for any beta: samples form planes between the layers.
    """
    p = min(3, m - 1)
    knots = np.concatenate([np.zeros(p), np.linspace(0.0, 1.0, m - p + 1), np.ones(p)])
    t = np.linspace(0.0, 1.0, points)[:, None]
    b = ((knots[:-1] <= t) & (t < knots[1:])).astype(np.float64)      # degree 0: half-open spans
    for d in range(1, p + 1):                                           # Cox-de Boor recursion
        left = _ratio(t - knots[:-d - 1], knots[d:-1] - knots[:-d - 1])
        right = _ratio(knots[d + 1:] - t, knots[d + 1:] - knots[1:-d])
        b = left * b[:, :-1] + right * b[:, 1:]
    b[0] = 0.0
    b[0, 0] = 1.0
    b[-1] = 0.0                                               # t = 1 lies in no half-open span
    b[-1, -1] = 1.0
    greville = np.array([knots[j + 1:j + p + 1].mean() for j in range(m)])
    return b, greville


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (repeated knots), as Cox-de Boor defines it."""
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def _group_centroids(pos: np.ndarray, groups, levels: int, name: str) -> list[np.ndarray]:
    """Per level (finest first): (cells, 3), each cell's group centroid in Y-Z (x = 0)."""
    if groups is None:
        groups = cell_hierarchy(pos, levels=levels)
    groups = np.asarray(groups)
    if groups.ndim == 1:
        groups = groups[None]
    if groups.ndim != 2 or groups.shape[1] != pos.shape[0] or groups.dtype.kind not in "iu" or \
            (groups.size and groups.min() < 0):
        raise NNVisError(f"{name} must be non-negative integer labels of shape (cells,) or "
                         f"(levels, cells) for {pos.shape[0]} cells, got {groups.shape}")
    out = []
    for labels in groups:
        count = np.bincount(labels)
        cent = np.zeros((pos.shape[0], 3))
        for axis in (1, 2):
            sums = np.bincount(labels, weights=pos[:, axis])
            cent[:, axis] = (sums / np.maximum(count, 1))[labels]
        out.append(cent)
    return out


def _side(pos, centroids, weight_of_own_end, beta, basis, group_slots, end) -> np.ndarray:
    """(cells, points, 3) float32: the part of every curve point owned by the cell at this end.

    weight_of_own_end[j]: the chord's weight on this end at control point j (1-s_j or s_j).
    """
    m = basis.shape[1]
    depth = pos * np.array([1.0, 0.0, 0.0])
    parts = np.empty((pos.shape[0], m, 3))
    for j in range(m):
        w = weight_of_own_end[j]
        parts[:, j] = beta * w * depth + (1.0 - beta) * w * pos
    for slot, cent in zip(group_slots, centroids):
        parts[:, slot] += beta * cent
    other = m - 1 - end
    parts[:, end] = pos
    parts[:, other] = 0.0
    return np.einsum("kj,cjd->ckd", basis, parts).astype(np.float32)
