"""Pack per-epoch values (activations, edge weights) into one float texture per object.

Why an atlas: a layer of C feature maps over E epochs becomes one image that a shader samples by
(cell index, epoch) — one texture per layer instead of one per map, no per-pixel geometry, and the
shader can blend two epochs for smooth motion. Values are stored raw (float32), so the .blend keeps
the true activations and the colour normalisation stays a shader setting.

Layout: each epoch's values, in cell-major order (cell, row, column — row 0 is the top row of a
feature map), are laid out linearly, three per texel (R, G, B), `width` texels per texel row; each
epoch takes `rows_per_epoch` texel rows, epoch 0 at the bottom. Three values a texel cut memory to a
third of one-value-per-texel and keep alpha out of it (Blender may premultiply alpha).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .model.network import map_shape

MAX_WIDTH = 8192   # texels a row; Blender and Cycles handle this comfortably everywhere
PER_TEXEL = 3      # values per texel: R, G, B


@dataclass
class Atlas:
    rgb: np.ndarray        # (height, width, 3) float32, texel row 0 = bottom (Blender's order)
    tile_h: int            # a cell's rows (1 for units and edges)
    tile_w: int            # a cell's columns
    cells: int
    rows_per_epoch: int
    epochs: int

    @property
    def height(self) -> int:
        return self.rgb.shape[0]

    @property
    def width(self) -> int:
        return self.rgb.shape[1]

    def locate(self, cell: int, epoch: int, h: int, w: int) -> tuple[int, int, int]:
        """(texel row, texel column, channel) of value [h, w] of `cell` at `epoch` — what the
        `NNVis Atlas Lookup` shader group computes."""
        i = (cell * self.tile_h + h) * self.tile_w + w
        texel, channel = divmod(i, PER_TEXEL)
        return epoch * self.rows_per_epoch + texel // self.width, texel % self.width, channel

    def value(self, cell: int, epoch: int, h: int = 0, w: int = 0) -> float:
        row, col, channel = self.locate(cell, epoch, h, w)
        return float(self.rgb[row, col, channel])


def as_cells(values: np.ndarray, spatial: bool) -> np.ndarray:
    """(E, ...) per-epoch layer outputs → (E, cells, rows, columns): feature maps as
    ``network.map_shape`` draws them (a 1D map a strip, a 3D map its slices stacked), or 1×1
    tiles for units."""
    values = np.asarray(values, dtype=np.float32)
    if spatial:
        maps = np.moveaxis(values, -1, 1)               # (E, C, *sizes)
        return np.ascontiguousarray(maps).reshape(*maps.shape[:2], *map_shape(values.shape[1:]))
    return values.reshape(values.shape[0], -1, 1, 1)


def pack(cells: np.ndarray) -> Atlas:
    """(E, C, H, W) → Atlas."""
    epochs, count, tile_h, tile_w = cells.shape
    per_epoch = count * tile_h * tile_w
    texels = max(1, math.ceil(per_epoch / PER_TEXEL))
    width = min(MAX_WIDTH, texels)
    rows = math.ceil(texels / width)
    flat = np.zeros((epochs, rows * width * PER_TEXEL), np.float32)
    flat[:, :per_epoch] = cells.reshape(epochs, per_epoch)
    return Atlas(flat.reshape(epochs * rows, width, PER_TEXEL), tile_h, tile_w, count, rows, epochs)


def unpack(rgb: np.ndarray, tile_h: int, tile_w: int, cells: int, rows_per_epoch: int
           ) -> np.ndarray:
    """Atlas texels (height, width, 3) → (E, C, H, W): the inverse of `pack`, so a live refresh
    takes the epochs a scene already holds from its images and reads only the new ones."""
    epochs = rgb.shape[0] // rows_per_epoch
    flat = np.ascontiguousarray(rgb, np.float32).reshape(epochs, -1)
    return flat[:, :cells * tile_h * tile_w].reshape(epochs, cells, tile_h, tile_w)
