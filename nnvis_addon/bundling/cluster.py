"""Nested groups of a layer's cells: the hierarchy that structural bundling routes edges through.

Cells are grouped by their Y-Z position (neighbours share a bundle), or by position mixed with a
feature vector per cell such as its row of |weights| (cells that talk to the same targets share a
bundle even when they sit apart). Groups nest: each coarser level merges whole finer groups.
"""
from __future__ import annotations

import numpy as np

from ..errors import NNVisError

MAX_GROUPS = 256      # per k-means level: keeps it O(cells · 256) for the 25k-unit layers of VGG16
_ITERATIONS = 16


def cell_hierarchy(pos: np.ndarray, levels: int = 2, features: np.ndarray | None = None,
                   mix: float = 0.5, seed: int = 0) -> np.ndarray:
    """(levels, cells) int32 group labels, finest level first; each level nests in the next.

    Level l (1-based) has about cells^((levels+1-l)/(levels+1)) groups, so every level splits its
    groups by about the same factor: for 1024 cells and 2 levels, ~128 groups of 8 inside 8 of 128.
    Without `features`: balanced median splits of the Y-Z positions (a k-d tree), deterministic and
    O(cells log cells); on grid layouts the groups are tidy blocks. With `features` (cells, d), e.g.
    each cell's row of |weights|: weighted k-means (seeded by `seed`, at most MAX_GROUPS groups per
    level) in Y-Z scaled to unit RMS spread times (1 - mix) joined with the features scaled likewise
    times mix, each coarser level clustering the finer level's centroids.
    """
    pos = np.asarray(pos, np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise NNVisError(f"cell positions must be (cells, 3), got {pos.shape}")
    if levels < 1:
        raise NNVisError(f"levels must be ≥ 1, got {levels}")
    n = pos.shape[0]
    counts = [max(1, round(n ** ((levels - level) / (levels + 1)))) for level in range(levels)]
    if features is None:
        depths = [max(0, round(np.log2(k))) for k in counts]
        return np.stack(_median_splits(pos[:, 1:], depths)).astype(np.int32)
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] != n:
        raise NNVisError(f"features must be (cells, d) for {n} cells, got {features.shape}")
    if not 0.0 <= mix <= 1.0:
        raise NNVisError(f"mix must be in [0, 1], got {mix}")
    space = np.hstack([_unit_spread(pos[:, 1:]) * (1.0 - mix), _unit_spread(features) * mix])
    rng = np.random.default_rng(seed)
    labels = np.empty((levels, n), np.int32)
    points, mass, members = space, np.ones(n), np.arange(n)
    for level, k in enumerate(counts):
        group, centers = kmeans(points, min(k, MAX_GROUPS, points.shape[0]), mass, rng)
        members = group[members]
        labels[level] = members
        mass = np.bincount(group, weights=mass, minlength=centers.shape[0])
        points = centers
    return labels


def _median_splits(points: np.ndarray, depths: list[int]) -> list[np.ndarray]:
    """Labels after `depth` rounds of halving every group at its median along its wider axis."""
    n = points.shape[0]
    index = np.arange(n)
    label = np.zeros(n, np.intp)
    by_depth = {0: label}
    for depth in range(1, max(depths) + 1):
        groups = int(label.max()) + 1
        lo = np.full((groups, points.shape[1]), np.inf)
        hi = np.full((groups, points.shape[1]), -np.inf)
        np.minimum.at(lo, label, points)
        np.maximum.at(hi, label, points)
        key = points[index, (hi - lo).argmax(axis=1)[label]]
        order = np.lexsort((index, key, label))           # by group, then along its axis
        sorted_label = label[order]
        rank = index - np.searchsorted(sorted_label, sorted_label)
        upper = rank >= np.bincount(label)[sorted_label] // 2
        child = np.empty(n, np.intp)
        child[order] = 2 * sorted_label + upper
        label = np.unique(child, return_inverse=True)[1]
        by_depth[depth] = label
    return [by_depth[d] for d in depths]


def kmeans(points: np.ndarray, k: int, weights: np.ndarray,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(labels, centers): weighted k-means (k-means++ start, Lloyd steps), empty groups dropped."""
    n = points.shape[0]
    centers = np.empty((k, points.shape[1]))
    centers[0] = points[rng.choice(n, p=weights / weights.sum())]
    d2 = np.square(points - centers[0]).sum(axis=1)
    for i in range(1, k):
        p = d2 * weights
        total = p.sum()
        pick = rng.choice(n, p=p / total) if total > 0 else int(rng.integers(n))
        centers[i] = points[pick]
        d2 = np.minimum(d2, np.square(points - centers[i]).sum(axis=1))
    sq = np.square(points).sum(axis=1)[:, None]
    labels = None
    for _ in range(_ITERATIONS):
        dist = sq - 2.0 * points @ centers.T + np.square(centers).sum(axis=1)[None, :]
        new = dist.argmin(axis=1)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        mass = np.bincount(labels, weights=weights, minlength=k)
        sums = np.stack([np.bincount(labels, weights=weights * points[:, j], minlength=k)
                         for j in range(points.shape[1])], axis=1)
        filled = mass > 0
        centers[filled] = sums[filled] / mass[filled, None]
    used, labels = np.unique(labels, return_inverse=True)
    return labels.astype(np.int32), centers[used]


def _unit_spread(x: np.ndarray) -> np.ndarray:
    """x centred and scaled to unit RMS distance from its mean (unchanged if all equal)."""
    x = x - x.mean(axis=0)
    rms = np.sqrt(np.square(x).sum(axis=1).mean()) if x.size else 0.0
    return x / rms if rms > 0 else x
