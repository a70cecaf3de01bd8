"""The other arrangements of a layer's cells that the `Morph` and `Expansion` inputs blend between:
a line, a circle, a stack — beside `layout.py`'s grid — and the box the layer becomes at
Expansion 0.

Every arrangement is an offset from the layer's centre (the middle of its grid), so the geometry
nodes place a cell at centre + offset × Spacing. The scene stores them as vertex attributes of the
layer mesh; edge curves are bundled on the grid and follow the cells from there (scene/edges.py).
Pure numpy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .layout import Placement, map_aspect
from .model.network import map_shape

# Beyond these counts a line or a ring of cells would outgrow the grid many times (a Flatten of
# 1024 units: a ring ten times as wide as its grid) and swallow the frame, so the
# line folds into columns and the ring fills into a disc.
LINE_CELLS, RING_CELLS = 32, 32
GOLDEN_ANGLE = math.pi * (3 - math.sqrt(5))


@dataclass
class Arrangements:
    centre: np.ndarray   # (3,) middle of the layer's grid
    grid: np.ndarray     # (n, 3) offsets of layout.py's grid (Morph 1)
    line: np.ndarray     # (n, 3) a column, first cell on top (Morph 0); side by side columns
                         # of LINE_CELLS for longer layers
    circle: np.ndarray   # (n, 3) a ring, clockwise from the top as the camera sees it (Morph
                         # 0.5); a disc (a sunflower's florets) for more than RING_CELLS cells
    stack: np.ndarray    # (n, 3) Expansion 1: maps as a deck along depth, units packed tight
    block: np.ndarray    # (3,) size of the layer's box (Expansion 0) at Scale 1


def pitch_of(placement: Placement) -> float:
    """Distance between neighbouring cells in the grid (the grid's spacing)."""
    steps = [np.diff(np.unique(placement.centers[:, k])) for k in (1, 2)]
    steps = np.concatenate(steps)
    steps = steps[steps > 1e-6]
    return float(steps.min()) if steps.size else placement.cell_size * 1.15


def map_size(placement: Placement, output_shape) -> tuple[float, float]:
    """World (width, height) of one feature map (``network.map_shape``): the longer side is the
    placement's cell size; a map at least `MIN_ASPECT` of it thick, a strip `STRIP_ASPECT`."""
    return tuple(placement.cell_size * a for a in map_aspect(output_shape))



def arrangements(placement: Placement, output_shape) -> Arrangements:
    centers = np.asarray(placement.centers, np.float64)
    n = len(centers)
    centre = (centers.min(axis=0) + centers.max(axis=0)) / 2 if n else np.zeros(3)
    grid = centers - centre
    pitch = pitch_of(placement)
    line, circle = _line(n, pitch), _circle(n, pitch)
    stack = np.zeros((n, 3))
    if placement.spatial:
        h, w = map_shape(output_shape)
        width, height = map_size(placement, output_shape)
        thickness = min(n * placement.cell_size / max(h, w), placement.cell_size)   # C pixels deep
        stack[:, 0] = (np.arange(n) - (n - 1) / 2.0) * thickness / max(n, 1)
        block = np.array([thickness, width, height])
    else:
        stack = grid * (placement.cell_size / pitch)          # units packed face to face
        block = np.ptp(stack, axis=0) + placement.cell_size if n else np.zeros(3)
    f32 = np.float32
    return Arrangements(centre.astype(f32), grid.astype(f32), line.astype(f32), circle.astype(f32),
                        stack.astype(f32), np.asarray(block, f32))


def _line(n: int, pitch: float) -> np.ndarray:
    """(n, 3) offsets: a vertical column, first cell on top; more than LINE_CELLS cells fill
    columns of √n·2 cells (at least LINE_CELLS) side by side, left to right as the camera sees
    them (-Y is its right)."""
    k = np.arange(n, dtype=np.float64)
    per = n if n <= LINE_CELLS else max(LINE_CELLS, math.ceil(2 * math.sqrt(n)))
    columns = math.ceil(n / per) if n else 1
    line = np.zeros((n, 3))
    line[:, 1] = -((k // per) - (columns - 1) / 2.0) * pitch
    line[:, 2] = -((k % per) - (min(n, per) - 1) / 2.0) * pitch
    return line


def _circle(n: int, pitch: float) -> np.ndarray:
    """(n, 3) offsets: a ring clockwise from the top; more than RING_CELLS cells fill a disc from
    its centre out (Vogel's sunflower: cell k at radius ∝ √k, turned by the golden angle), a
    cell's share of the disc 1.2 pitches squared, so neighbours stay a pitch apart."""
    k = np.arange(n, dtype=np.float64)
    if n > RING_CELLS:
        radius, angle = pitch * np.sqrt(1.2 * (k + 0.5) / math.pi), k * GOLDEN_ANGLE
    else:
        radius, angle = (n * pitch / (2 * math.pi) if n > 1 else 0.0), 2 * math.pi * k / max(n, 1)
    circle = np.zeros((n, 3))
    circle[:, 1] = -radius * np.sin(angle)      # -Y is the camera's right
    circle[:, 2] = radius * np.cos(angle)
    return circle
