"""Pack per-epoch values (activations, edge weights) into one float texture per object.

Why an atlas: a layer of C feature maps over E epochs becomes one image that a shader samples by
(cell index, epoch) — one texture per layer instead of one per map, no per-pixel geometry, and the
shader can blend two epochs for smooth motion. Values are stored raw (float32), so the .blend keeps
the true activations and the colour normalisation stays a shader setting.

Layout: tiles of H×W texels; `columns` tiles per row; each epoch takes `rows_per_epoch` tile rows,
epoch 0 at the bottom. Pixel rows count from the bottom (Blender's order) and each tile is stored
upside down so that row 0 of an activation shows at the top of its plane.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_WIDTH = 16384  # texels; Blender and Cycles handle this comfortably on every platform


@dataclass
class Atlas:
    pixels: np.ndarray     # (height, width) float32, row 0 = bottom
    tile_h: int
    tile_w: int
    columns: int           # tiles per texel row
    rows_per_epoch: int    # tile rows per epoch
    epochs: int

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    def texel(self, cell: int, epoch: int, h: int, w: int) -> tuple[int, int]:
        """(row, column) of value [h, w] of `cell` at `epoch` — the inverse the shader computes."""
        tile_row = epoch * self.rows_per_epoch + cell // self.columns
        return tile_row * self.tile_h + (self.tile_h - 1 - h), (cell % self.columns) * self.tile_w + w


def as_cells(values: np.ndarray, spatial: bool) -> np.ndarray:
    """(E, ...) per-epoch layer outputs → (E, cells, H, W): feature maps, or 1×1 tiles for units."""
    values = np.asarray(values, dtype=np.float32)
    if spatial:
        return np.ascontiguousarray(values.transpose(0, 3, 1, 2))
    return values.reshape(values.shape[0], -1, 1, 1)


def pack(cells: np.ndarray) -> Atlas:
    """(E, C, H, W) → Atlas."""
    epochs, count, tile_h, tile_w = cells.shape
    columns = max(1, min(count, MAX_WIDTH // tile_w))
    rows = math.ceil(count / columns)
    padded = np.zeros((epochs, rows * columns, tile_h, tile_w), np.float32)
    padded[:, :count] = cells
    tiles = padded.reshape(epochs, rows, columns, tile_h, tile_w)[:, :, :, ::-1, :]
    pixels = tiles.transpose(0, 1, 3, 2, 4).reshape(epochs * rows * tile_h, columns * tile_w)
    return Atlas(np.ascontiguousarray(pixels), tile_h, tile_w, columns, rows, epochs)
