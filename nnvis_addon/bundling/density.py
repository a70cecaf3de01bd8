"""Density bundling: kernel-density edge bundling (KDEEB, Hurter et al. 2012) for layered networks.

KDEEB splats every edge's sample points into a density map, blurs it with a kernel that shrinks each
iteration, moves the points uphill and smooths each edge. Between two layers every edge spans the
same depth gap, so an edge's k-th sample always lies in the same depth slice: density, blur and the
move work per slice on small 2-D (Y-Z) grids, all slices at once, instead of on one 3-D volume.

The move is a mean-shift step (Comaniciu & Meer): each point goes towards the kernel-weighted mean
of its slice's points, i.e. up the density gradient with a step that cannot overshoot. The blurred
moment maps (Σw, Σw·y, Σw·z) give that mean at every grid node; the kernel's normalisation cancels
in the ratio. Heavier edges (|weight|, importance) pull harder.

Speed (about a million edges a second): points live in grid units, so a point's cell is the floor
of its coordinates; a point is splatted into its cell and the blur kernel is offset by half a cell
(the cell's centre), so no nearest-node pass is needed; the move per node (mean minus node, times
the slice's pull) is stored as bilinear coefficients per cell, Y and Z as one complex table, so a
point's move is four gathers and three multiply-adds; positions are complex (u + i·v) too, so a
move and a smoothing step are one pass for both axes. The grid has a margin of one cell on every
side, so points on the layers' bounding box need no clipping. Above _SPLAT_EDGES edges, a fixed
sample of that many makes the density maps (see `_splat_sample`). docs/bundling.md measures the
difference from the previous implementation.
"""
from __future__ import annotations

import numpy as np

from ..errors import NNVisError
from ._edges import checked

_CHUNK = 1 << 14      # edges per block inside an iteration: temporaries stay in cache
_ALONE = 1e-30        # blurred weight below which a node has nothing within reach: no move there
_SPLAT_EDGES = 1 << 17  # above this many edges, a sample this big makes the density maps


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
    t = np.linspace(0.0, 1.0, points).astype(np.float32)[:, None]
    out = np.empty((n, points, 3), np.float32)
    yz = np.concatenate([src_pos[:, 1:], dst_pos[:, 1:]])
    lo = yz.min(axis=0) if yz.size else np.zeros(2)
    extent = float((yz.max(axis=0) - lo).max()) if yz.size else 0.0
    bundle = n > 0 and points > 2 and beta > 0 and extent > 0 and iterations > 0
    sample = _splat_sample(src, dst) if bundle else None
    order = None if sample is None else np.argsort(~sample, kind="stable")   # sampled first
    if order is not None:
        src, dst, w = src[order], dst[order], w[order]
    ends = [(src_pos[:, axis].astype(np.float32)[src], dst_pos[:, axis].astype(np.float32)[dst])
            for axis in range(3)]
    blocks = [slice(i, i + _CHUNK) for i in range(0, n, _CHUNK)]
    if bundle:
        grid_ = _Grid(lo, extent, grid, points - 2, min(n, _CHUNK))
        splatted = n if sample is None else int(sample.sum())
        bundled = _bundle(ends[1], ends[2], blocks, t, grid_, w, splatted, iterations,
                          bandwidth * (grid - 1), decay)
    for k, block in enumerate(blocks):
        lines = [_line(a[block], b[block], t) for a, b in ends]
        if bundle:
            bundled[k].blend(lines[1][1:-1], lines[2][1:-1], beta)
        rows = block if order is None else order[block]
        out[rows] = np.stack(lines, axis=-1).swapaxes(0, 1)
    return out


def _line(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(points, edges) float32 straight lines from a to b (edges,) at fractions t (points, 1),
    exactly at a and b at their ends."""
    line = t * (b - a)
    line += a
    line[0], line[-1] = a, b
    return line


def _edge_weights(weights, n: int) -> np.ndarray:
    """(n,) float64 non-negative attraction, mean 1 (all ones when absent or all zero)."""
    if weights is None:
        return np.ones(n)
    w = np.abs(np.asarray(weights, np.float64))
    if w.shape != (n,) or not np.isfinite(w).all():
        raise NNVisError(f"edge weights must be {n} finite numbers, got shape {w.shape}")
    mean = w.mean() if n else 0.0
    return w / mean if mean > 0 else np.ones(n)


def _bundle(y, z, blocks, t, grid: _Grid, w, splatted: int, iterations, sigma, decay):
    """The edges from (y, z)[0] to (y, z)[1] (each (n,) coordinates) bundled: one `_Chunk` per
    block of edges. Inner point k moves scaled by sin(π·t[k]) (points near the layers move
    little); the first `splatted` edges make the density maps.

    Jacobi style: every point of an iteration reads the maps splatted at its start, so the edges
    can be processed in cache-sized chunks in any order with the same result. A chunk's points
    move, are smoothed, then located and splatted into the next iteration's maps.
    """
    if splatted < w.shape[0]:        # the sample stands for all: its weights scaled to their sum
        w = w * (w.sum() / max(w[:splatted].sum(), 1e-300))
    chunks = [_Chunk(_line(y[0][c], y[1][c], t), _line(z[0][c], z[1][c], t), w[c],
                     min(max(splatted - c.start, 0), c.stop - c.start), grid) for c in blocks]
    pull = np.sin(np.pi * t[1:-1])
    maps = np.zeros((3, grid.size))
    for chunk in chunks:
        chunk.locate()
        chunk.splat(maps)
    for it in range(iterations):
        moves = _moves(maps, sigma * decay ** it, pull, grid.side)
        maps = np.zeros((3, grid.size)) if it + 1 < iterations else None
        for chunk in chunks:
            chunk.move(moves)
            if maps is not None:
                chunk.locate()
                chunk.splat(maps)
    return chunks


def _splat_sample(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """(n,) bool: the edges whose points make the density maps when there are more than
    _SPLAT_EDGES — about that many, picked by a hash of their cells, so the order of the edges
    does not matter; None (all) otherwise. A sample of 2¹⁷ edges (≈ 10⁶ points in ≈ 2.6·10⁴
    cells, blurred over several cells) estimates the density as well as all of them would."""
    k = -(-src.shape[0] // _SPLAT_EDGES)
    if k <= 1:
        return None
    with np.errstate(over="ignore"):
        h = src.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + dst.astype(np.uint64)
        h *= np.uint64(0xBF58476D1CE4E5B9)
    return (h >> np.uint64(32)) % np.uint64(k) == 0


class _Grid:
    """The slice-stacked grids in grid units: G = grid + 2 nodes a side, node (i, j) at (i, j),
    the layers' Y-Z box at [1, grid] (a margin of one cell all round, so points on the box need
    no clipping); and work buffers shared by all chunks, so an iteration allocates nothing per
    chunk."""

    def __init__(self, lo, extent: float, grid: int, slices: int, edges: int):
        self.scale = np.float32((grid - 1) / extent)
        self.origin = (np.asarray(lo) - 1 / self.scale).astype(np.float32)
        self.side = grid + 2
        self.size = slices * self.side ** 2
        self.base = (np.arange(slices, dtype=np.float32) * np.float32(self.side ** 2))[:, None]
        self.floor = np.empty((2, slices, edges), np.float32)
        self.gather = np.empty((2, slices * edges), np.complex64)
        self.weight = np.empty(slices * edges)


class _Chunk:
    """A block of edges with its own contiguous arrays: positions in grid units as u + i·v
    (points, edges), the ends as first and last rows, so a move and the smoothing step are one
    pass for both axes; each inner point's flat cell index and its fractions inside the cell.
    Its first `splatted` edges make the density maps."""

    def __init__(self, y, z, w, splatted: int, grid: _Grid):
        self.p = np.empty(y.shape, np.complex64)
        self.p.real = (y - grid.origin[0]) * grid.scale
        self.p.imag = (z - grid.origin[1]) * grid.scale
        self.w, self.splatted, self.grid = w, splatted, grid
        shape = (y.shape[0] - 2, y.shape[1])
        self.index = np.empty(shape, np.intp)
        self.fu = np.empty(shape, np.float32)
        self.fv = np.empty(shape, np.float32)

    def locate(self) -> None:
        grid, edges = self.grid, self.index.shape[1]
        iu, iv = grid.floor[0, :, :edges], grid.floor[1, :, :edges]
        for pos, cell, frac in ((self.p.real, iu, self.fu), (self.p.imag, iv, self.fv)):
            np.floor(pos[1:-1], out=cell)
            np.subtract(pos[1:-1], cell, out=frac)
        iu *= np.float32(grid.side)
        iu += iv
        iu += grid.base                              # exact: indices < 2**24
        np.copyto(self.index, iu, casting="unsafe")

    def splat(self, maps: np.ndarray) -> None:
        """Add the splatted edges' Σw, Σw·u, Σw·v to maps (3, size), each point into its cell."""
        e = self.splatted
        if e == 0:
            return
        index, w, size = self.index[:, :e].ravel(), self.w[:e], self.grid.size
        moment = self.grid.weight[:index.shape[0]].reshape(-1, e)
        maps[0] += np.bincount(index, np.broadcast_to(w, moment.shape).ravel(), size)
        for row, pos in ((1, self.p.real), (2, self.p.imag)):
            np.multiply(w, pos[1:-1, :e], out=moment)
            maps[row] += np.bincount(index, moment.ravel(), size)

    def move(self, moves: np.ndarray) -> None:
        """Each point by the bilinear move at it (complex u + i·v tables), then one smoothing
        step along each edge: inner ← inner/2 + (previous + next)/4."""
        index = self.index.ravel()
        move, other = self.grid.gather[:, :index.shape[0]]
        fu, fv = self.fu.ravel(), self.fv.ravel()
        take = lambda k, out: np.take(moves[k], index, out=out, mode="clip")  # noqa: E731
        take(3, move)                                # a + fu·b + fv·(c + fu·d), two buffers
        move *= fu
        move += take(2, other)
        move *= fv
        other = take(1, other)
        other *= fu
        move += other
        move += take(0, other)
        self.p[1:-1] += move.reshape(self.index.shape)
        pos = self.p.view(np.float32)                # (points, 2·edges): u, v, u, v, …
        s = self.grid.floor.ravel()[:pos[1:-1].size].reshape(pos[1:-1].shape)
        np.add(pos[:-2], pos[2:], out=s)
        s *= np.float32(0.5)
        pos[1:-1] += s
        pos[1:-1] *= np.float32(0.5)

    def blend(self, y: np.ndarray, z: np.ndarray, beta: float) -> None:
        """Straight inner points y, z (points − 2, edges) ← straight + beta · (bundled − straight)."""
        for straight, pos, origin in ((y, self.p.real, self.grid.origin[0]),
                                      (z, self.p.imag, self.grid.origin[1])):
            moved = pos[1:-1] / self.grid.scale
            moved += origin
            moved -= straight
            moved *= np.float32(beta)
            straight += moved


def _moves(maps: np.ndarray, sigma: float, pull: np.ndarray, side: int) -> np.ndarray:
    """(4, size) complex64 bilinear coefficients (a, b, c, d) per cell of each node's move, u + i·v:
    towards the blurred weighted mean, times its slice's pull; nodes with no weight in reach stay.
    """
    node = np.arange(side)
    # splatted mass sits at its cell's centre, half a cell past the node of the same index
    kernel = np.exp(-0.5 * np.square((node[:, None] - node[None, :] - 0.5) / max(sigma, 1e-3)))
    rho, mu, mv = (kernel @ maps.reshape(-1, side, side) @ kernel.T).reshape(3, -1, side, side)
    near = rho > _ALONE
    rho = np.where(near, rho, 1.0)
    d = (mu / rho - node[:, None]) + 1j * (mv / rho - node[None, :])
    d *= near * pull.astype(np.float64).reshape(-1, 1, 1)
    coef = np.zeros((4,) + d.shape, np.complex64)
    coef[0] = d
    coef[1, :, :-1] = d[:, 1:] - d[:, :-1]
    coef[2, :, :, :-1] = d[:, :, 1:] - d[:, :, :-1]
    coef[3, :, :-1, :-1] = d[:, 1:, 1:] - d[:, 1:, :-1] - d[:, :-1, 1:] + d[:, :-1, :-1]
    return coef.reshape(4, -1)
