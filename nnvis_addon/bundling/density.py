"""Density bundling: kernel-density edge bundling (KDEEB, Hurter et al. 2012) for layered networks.

KDEEB splats every edge's sample points into a density map, blurs it with a kernel that shrinks each
iteration, moves the points uphill and smooths each edge. Between two layers every edge spans the
same depth gap, so an edge's k-th sample always lies in the same depth slice: density, blur and the
move work per slice on small 2-D (Y-Z) grids, all slices at once, instead of on one 3-D volume.

The move is a mean-shift step (Comaniciu & Meer): each point goes towards the kernel-weighted mean
of its slice's points, i.e. up the density gradient with a step that cannot overshoot. The blurred
moment maps (Σw, Σw·y, Σw·z) give that mean at every grid node; the kernel's normalisation cancels
in the ratio. Heavier edges (|weight|, importance) pull harder.

Speed (about two million edges a second): points live in units of the move table's cells, _FINE per
density-map cell, so a point's cell is the floor of its coordinates; a point is splatted into its
map cell and the blur kernel is offset by half a cell (the cell's centre), so no nearest-node pass
is needed. The move per node (mean minus node, times the slice's pull) is interpolated bilinearly
once per iteration onto the table (along Y, then Z), at its cells' centres, Y and Z as one complex
value: a point's move is one gather, the bilinear move at most √2/(2·_FINE) of a map cell away from
the point (the previous implementation gathered four coefficients and did three multiply-adds per
point). Positions are complex (u + i·v) too, so a move and a smoothing step are one pass for both
axes. A chunk's cells are found just before its move into buffers shared by all chunks, so they
stay in cache. The grid has a margin of one cell on every side, so points on the layers' bounding
box need no clipping. Above _SPLAT_EDGES edges, a fixed sample of that many makes the density maps
(see `_splat_sample`). The table is a fixed cost per iteration (halving the speed at 5k edges), so
below _TABLE_EDGES edges per table cell each point's move is interpolated from its four nodes
instead, with the table's own operations: the same curves bit for bit. docs/bundling.md measures
the difference from the previous implementations.
"""
from __future__ import annotations

import numpy as np

from ..errors import NNVisError
from ._edges import checked

_CHUNK = 1 << 14      # edges per block inside an iteration: temporaries stay in cache
_ALONE = 1e-30        # blurred weight below which a node has nothing within reach: no move there
_SPLAT_EDGES = 1 << 17  # above this many edges, a sample this big makes the density maps
_FINE = 4             # move-table cells per density-map cell, per axis (a power of 2)
_TABLE_EDGES = 0.75   # edges per move-table cell of a slice from which the table pays (measured)


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
    rows = np.empty((min(n, _CHUNK), points, 3), np.float32)   # scattered from a contiguous
    for k, block in enumerate(blocks):                          # block: ten times faster
        lines = [_line(a[block], b[block], t) for a, b in ends]
        if bundle:
            bundled[k].blend(lines[1][1:-1], lines[2][1:-1], beta)
        edges = rows[:lines[0].shape[1]]
        for axis, line in enumerate(lines):
            edges[:, :, axis] = line.T
        out[block if order is None else order[block]] = edges
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
    are located, move, are smoothed, then (the splatted edges only) located again and splatted
    into the next iteration's maps.
    """
    if splatted < w.shape[0]:        # the sample stands for all: its weights scaled to their sum
        w = w * (w.sum() / max(w[:splatted].sum(), 1e-300))
    chunks = [_Chunk(_line(y[0][c], y[1][c], t), _line(z[0][c], z[1][c], t), w[c],
                     min(max(splatted - c.start, 0), c.stop - c.start), grid) for c in blocks]
    pull = np.sin(np.pi * t[1:-1])
    moving = _MoveTable if w.shape[0] >= _TABLE_EDGES * (_FINE * grid.side) ** 2 else _NodeMoves
    maps = np.zeros((3, grid.size))
    for chunk in chunks:
        chunk.splat(maps)
    for it in range(iterations):
        moves = moving(_node_moves(maps, sigma * decay ** it, pull, grid.side), grid)
        maps = np.zeros((3, grid.size)) if it + 1 < iterations else None
        for chunk in chunks:
            chunk.move(moves)
            if maps is not None:
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
    """The slice-stacked grids: G = grid + 2 nodes a side, node (i, j) at (i, j) in density-map
    cells, the layers' Y-Z box at [1, grid] (a margin of one cell all round, so points on the box
    need no clipping); the move table's cells are _FINE times finer, and positions are in those
    fine cells (the table's cell is the floor). Work buffers are shared by all chunks (each point's
    flat cell index among them): an iteration allocates nothing per chunk and a chunk's temporaries
    stay in cache."""

    def __init__(self, lo, extent: float, grid: int, slices: int, edges: int):
        self.scale = np.float32((grid - 1) / extent * _FINE)       # fine cells per unit
        self.origin = (np.asarray(lo) - _FINE / self.scale).astype(np.float32)
        self.side = grid + 2
        self.size = slices * self.side ** 2
        self.floor = np.empty((2, slices * edges), np.float32)
        self.index = np.empty(slices * edges, np.intp)
        self.move = np.empty(slices * edges, np.complex64)
        self.weight = np.empty(slices * edges)

    def cells(self, p: np.ndarray, fine: bool) -> np.ndarray:
        """(slices, edges) flat index of the cell of each point p (slices, edges) u + i·v in the
        move table (fine) or the density maps, in the shared index buffer."""
        side = self.side * _FINE if fine else self.side
        iu, iv, index = (a[:p.size].reshape(p.shape) for a in (*self.floor, self.index))
        for pos, cell in ((p.real, iu), (p.imag, iv)):
            if fine:
                np.floor(pos, out=cell)
            else:
                np.multiply(pos, np.float32(1 / _FINE), out=cell)      # exact: a power of 2
                np.floor(cell, out=cell)
        iu *= np.float32(side)
        iu += iv
        iu += np.arange(p.shape[0], dtype=np.float32)[:, None] * np.float32(side ** 2)
        np.copyto(index, iu, casting="unsafe")        # exact: indices < 2**24
        return index


class _Chunk:
    """A block of edges with its own contiguous positions in fine cells as u + i·v
    (points, edges), the ends as first and last rows, so a move and the smoothing step are one
    pass for both axes. Its first `splatted` edges make the density maps."""

    def __init__(self, y, z, w, splatted: int, grid: _Grid):
        self.p = np.empty(y.shape, np.complex64)
        self.p.real = (y - grid.origin[0]) * grid.scale
        self.p.imag = (z - grid.origin[1]) * grid.scale
        self.w, self.splatted, self.grid = w, splatted, grid

    def splat(self, maps: np.ndarray) -> None:
        """Add the splatted edges' Σw, Σw·u, Σw·v to maps (3, size), each point into its cell."""
        e = self.splatted
        if e == 0:
            return
        index = self.grid.cells(self.p[1:-1, :e], False).ravel()
        w, size = self.w[:e], self.grid.size
        moment = self.grid.weight[:index.shape[0]].reshape(-1, e)
        maps[0] += np.bincount(index, np.broadcast_to(w, moment.shape).ravel(), size)
        for row, pos in ((1, self.p.real), (2, self.p.imag)):
            np.multiply(w, pos[1:-1, :e], out=moment)
            maps[row] += np.bincount(index, moment.ravel(), size)

    def move(self, moves: _MoveTable | _NodeMoves) -> None:
        """Each point by the move of its fine cell (complex u + i·v), then one smoothing step
        along each edge: inner ← inner/2 + (previous + next)/4."""
        self.p[1:-1] += moves.at(self.p[1:-1]).reshape(self.p[1:-1].shape)
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


def _node_moves(maps: np.ndarray, sigma: float, pull: np.ndarray, side: int) -> np.ndarray:
    """(slices, side, side) complex64 move u + i·v of each density-map node in fine cells:
    towards the blurred weighted mean, times its slice's pull; nodes with no weight in reach
    stay."""
    node = np.arange(side)
    # splatted mass sits at its cell's centre, half a cell past the node of the same index
    kernel = np.exp(-0.5 * np.square((node[:, None] - node[None, :] - 0.5) / max(sigma, 1e-3)))
    rho, mu, mv = (kernel @ maps.reshape(-1, side, side) @ kernel.T).reshape(3, -1, side, side)
    near = rho > _ALONE
    rho = np.where(near, rho, 1.0)
    scale = near * pull.astype(np.float64).reshape(-1, 1, 1)
    fine = node * _FINE                                   # moments and moves in fine cells
    d = np.empty(rho.shape, np.complex64)
    d.real, d.imag = (mu / rho - fine[:, None]) * scale, (mv / rho - fine[None, :]) * scale
    return d


def _fine_lerp(side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per fine cell along an axis: the node before its centre (the last node's cells
    extrapolate) and the float32 bilinear weights 1 − f and f of that node and the next."""
    centre = (np.arange(side * _FINE) + 0.5) / _FINE
    cell = np.minimum(centre.astype(np.intp), side - 2)
    f = centre - cell
    return cell, (1 - f).astype(np.float32), f.astype(np.float32)


class _MoveTable:
    """The move of every fine cell, bilinear between the nodes at the cell's centre, as one
    complex64 table (slices · (_FINE · side)²,): a point's move is one gather. Building it costs
    a fixed few ms an iteration, which pays from _TABLE_EDGES edges per cell of a slice's table
    on (≈ 52k edges on a 64 grid). Interpolated along u, then along v, with `_NodeMoves`'
    operations in its order: the two give the same moves bit for bit."""

    def __init__(self, d: np.ndarray, grid: _Grid):
        cell, w0, w1 = _fine_lerp(grid.side)
        rows = d[:, cell] * w0[:, None]
        rows += d[:, cell + 1] * w1[:, None]
        table = rows[:, :, cell] * w0
        table += rows[:, :, cell + 1] * w1
        self.table, self.grid = table.ravel(), grid

    def at(self, p: np.ndarray) -> np.ndarray:
        """(p.size,) complex64 move of each point p (slices, edges) u + i·v, in a shared buffer."""
        index = self.grid.cells(p, True).ravel()
        return np.take(self.table, index, out=self.grid.move[:index.shape[0]], mode="clip")


class _NodeMoves:
    """The same moves as `_MoveTable`, bilinear at each point's fine cell centre, evaluated per
    point from the four nodes around it (four gathers and multiply-adds): cheaper than building
    the table for fewer edges than _TABLE_EDGES per table cell."""

    def __init__(self, d: np.ndarray, grid: _Grid):
        self.d, self.grid = d.ravel(), grid
        self.cell, *self.w = _fine_lerp(grid.side)

    def at(self, p: np.ndarray) -> np.ndarray:
        side = self.grid.side
        a, b = p.real.astype(np.intp), p.imag.astype(np.intp)  # the fine cell (positions ≥ 0)
        node = np.take(self.cell, a, mode="clip") * side
        node += np.take(self.cell, b, mode="clip")
        node += (np.arange(p.shape[0]) * side ** 2)[:, None]
        wa0, wa1 = (np.take(w, a, mode="clip") for w in self.w)
        near = np.take(self.d, node) * wa0                     # along u at the node's v and
        near += np.take(self.d, node + side) * wa1             # at the next v, then along v
        far = np.take(self.d, node + 1) * wa0
        far += np.take(self.d, node + side + 1) * wa1
        near *= np.take(self.w[0], b, mode="clip")
        far *= np.take(self.w[1], b, mode="clip")
        near += far
        return near.ravel()
