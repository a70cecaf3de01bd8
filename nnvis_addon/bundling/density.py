"""Density bundling: kernel-density edge bundling (KDEEB, Hurter et al. 2012) for layered networks.

KDEEB splats every edge's sample points into a density map, blurs it with a kernel that shrinks each
iteration, moves the points uphill and smooths each edge. Between two layers every edge spans the
same depth gap, so an edge's k-th sample always lies in the same depth slice: density, blur and the
move work per slice on small 2-D (Y-Z) grids, all slices at once, instead of on one 3-D volume.

The move is a mean-shift step (Comaniciu & Meer): each point goes towards the kernel-weighted mean
of its slice's points, i.e. up the density gradient with a step that cannot overshoot. The blurred
moment maps (Σw, Σw·y, Σw·z) give that mean with one bilinear lookup per map; the kernel's
normalisation cancels in the ratio. Heavier edges (|weight|, importance) pull harder.
"""
from __future__ import annotations

import numpy as np

from ..errors import NNVisError
from ._edges import checked

_CHUNK = 1 << 14      # edges per block inside an iteration: temporaries stay in cache


def density_bundle(src_pos: np.ndarray, dst_pos: np.ndarray, src: np.ndarray, dst: np.ndarray,
                   weights: np.ndarray | None = None, beta: float = 0.8, points: int = 8,
                   iterations: int = 10, bandwidth: float = 0.04, decay: float = 0.9,
                   grid: int = 64) -> np.ndarray:
    """(n, points, 3) float32 polylines for the edges src[e] → dst[e] between two layers.

    Positions and indices as in `structural_bundle`. weights (n,): how hard each edge attracts the
    others (e.g. max over epochs of |w| or importance); None = all equal. bandwidth: the first
    kernel's standard deviation as a fraction of the layers' Y-Z extent, multiplied by `decay` every
    iteration. grid: cells per side of each slice's density map. beta blends the straight edges
    (0) into the bundled ones (1). No randomness: same inputs, same output.
    """
    src_pos, dst_pos, src, dst = checked(src_pos, dst_pos, src, dst, beta, points)
    n = src.shape[0]
    if iterations < 0 or grid < 2 or not bandwidth > 0 or not 0 < decay <= 1:
        raise NNVisError(f"density bundling needs iterations ≥ 0, grid ≥ 2, bandwidth > 0, "
                         f"0 < decay ≤ 1; got {iterations}, {grid}, {bandwidth}, {decay}")
    w = _edge_weights(weights, n)
    t = np.linspace(0.0, 1.0, points)
    a, b = src_pos[src].astype(np.float32), dst_pos[dst].astype(np.float32)
    out = np.empty((n, points, 3), np.float32)
    out[:] = a[:, None, :]
    out[:, 1:-1] += t[None, 1:-1, None].astype(np.float32) * (b - a)[:, None, :]
    out[:, -1] = b
    inner = points - 2
    yz = np.concatenate([src_pos[:, 1:], dst_pos[:, 1:]])
    lo = yz.min(axis=0) if yz.size else np.zeros(2)
    extent = float((yz.max(axis=0) - lo).max()) if yz.size else 0.0
    if n == 0 or inner == 0 or beta == 0 or extent == 0 or iterations == 0:
        return out
    straight = out[:, 1:-1, 1:].copy()
    moved = _bundle(straight, a[:, 1:], b[:, 1:], w, np.sin(np.pi * t[1:-1]), lo, extent,
                    iterations, bandwidth, decay, grid)
    out[:, 1:-1, 1:] = straight + np.float32(beta) * (moved - straight)
    return out


def _edge_weights(weights, n: int) -> np.ndarray:
    """(n,) float64 non-negative attraction, mean 1 (all ones when absent or all zero)."""
    if weights is None:
        return np.ones(n)
    w = np.abs(np.asarray(weights, np.float64))
    if w.shape != (n,) or not np.isfinite(w).all():
        raise NNVisError(f"edge weights must be {n} finite numbers, got shape {w.shape}")
    mean = w.mean() if n else 0.0
    return w / mean if mean > 0 else np.ones(n)


def _bundle(yz, start, end, w, pull, lo, extent, iterations, bandwidth, decay, grid) -> np.ndarray:
    """Mean-shift the inner points yz (n, S, 2) per slice; `pull` (S,) scales the move per slice.

    Jacobi style: every point of an iteration reads the maps splatted at its start, so the edges
    can be processed in cache-sized chunks in any order with the same result.
    """
    n, slices = yz.shape[:2]
    y, z = yz[..., 0].copy(), yz[..., 1].copy()                      # (n, S) float32 each
    to_grid = _GridMap(lo, extent, grid, slices)
    pull = pull.astype(np.float32)[None, :]
    chunks = [slice(i, i + _CHUNK) for i in range(0, n, _CHUNK)]
    for it in range(iterations):
        maps = np.zeros((3, to_grid.size))
        corners = []
        for c in chunks:
            corner = to_grid.corner(y[c], z[c])
            corners.append(corner)
            near = to_grid.nearest(*corner).ravel()
            wc = np.broadcast_to(w[c, None], y[c].shape).ravel()
            maps[0] += np.bincount(near, weights=wc, minlength=to_grid.size)
            maps[1] += np.bincount(near, weights=wc * y[c].ravel(), minlength=to_grid.size)
            maps[2] += np.bincount(near, weights=wc * z[c].ravel(), minlength=to_grid.size)
        kernel = _gauss_matrix(grid, bandwidth * decay ** it * (grid - 1))
        maps = (kernel @ maps.reshape(3 * slices, grid, grid) @ kernel.T).astype(np.float32)
        maps = maps.reshape(3, to_grid.size)
        for c, corner in zip(chunks, corners):
            rho, my, mz = (to_grid.bilinear(table, *corner) for table in maps)
            alone = rho < 1e-30                 # no weight within reach (zero-weight edges): stay
            rho[alone] = 1.0
            yc = y[c] + pull * np.where(alone, 0.0, my / rho - y[c])
            zc = z[c] + pull * np.where(alone, 0.0, mz / rho - z[c])
            y[c] = _smooth(yc, start[c, 0], end[c, 0])
            z[c] = _smooth(zc, start[c, 1], end[c, 1])
    return np.stack([y, z], axis=-1)


class _GridMap:
    """Slice-stacked square grids over the layers' Y-Z box: point → cell index, bilinear lookups."""

    def __init__(self, lo, extent: float, grid: int, slices: int):
        self.lo_y, self.lo_z = np.float32(lo[0]), np.float32(lo[1])
        self.scale = np.float32((grid - 1) / extent)
        self.grid = grid
        self.size = slices * grid * grid
        self.slice_base = (np.arange(slices, dtype=np.intp) * grid * grid)[None, :]

    def corner(self, y, z):
        """Lower-corner flat index and fractions (fy, fz) of each point."""
        top = np.float32(self.grid - 2)
        uy = np.clip((y - self.lo_y) * self.scale, 0, self.grid - 1)
        uz = np.clip((z - self.lo_z) * self.scale, 0, self.grid - 1)
        iy = np.minimum(np.floor(uy), top)                      # float32 throughout
        iz = np.minimum(np.floor(uz), top)
        base = self.slice_base + (iy * self.grid + iz).astype(np.intp)
        return base, uy - iy, uz - iz

    def nearest(self, base, fy, fz) -> np.ndarray:
        return base + (fy >= 0.5) * self.grid + (fz >= 0.5)

    def bilinear(self, table: np.ndarray, base, fy, fz) -> np.ndarray:
        """`table` (size,) interpolated at the points' corners."""
        t00, t01 = np.take(table, base), np.take(table, base + 1)
        t10, t11 = np.take(table, base + self.grid), np.take(table, base + self.grid + 1)
        low = t00 + fz * (t01 - t00)
        return low + fy * (t10 + fz * (t11 - t10) - low)


def _smooth(v: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """One Laplacian smoothing step along each edge (n, S), its fixed ends first/last (n,)."""
    full = np.concatenate([first[:, None], v, last[:, None]], axis=1)
    return np.float32(0.5) * v + np.float32(0.25) * (full[:, :-2] + full[:, 2:])


def _gauss_matrix(grid: int, sigma: float) -> np.ndarray:
    """(grid, grid) Gaussian blur along one axis (unnormalised: the mean-shift ratio cancels it)."""
    d = np.arange(grid)
    return np.exp(-0.5 * np.square((d[:, None] - d[None, :]) / max(sigma, 1e-3)))
