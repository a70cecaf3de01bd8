"""Which input pixels one output pixel of a layer reads: the kernel window that Expansion level 3
("show the computation") draws on the inbound layer's feature maps.

A window is linear in the output position: along each axis the first input pixel is
floor(stride · o + offset) and the window spans `size` pixels (the dilated kernel), the rule TF uses
for 'valid'/'same' convolution and pooling ('same' pads the odd extra pixel after). Pure numpy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from . import kinds
from .network import Layer


@dataclass(frozen=True)
class Window:
    stride: tuple[float, float]   # (rows, columns): input pixels per output pixel
    offset: tuple[float, float]   # where output pixel 0's window starts (negative: padding)
    size: tuple[int, int]         # window extent in input pixels

    def span(self, oy: int, ox: int, in_h: int, in_w: int) -> tuple[int, int, int, int]:
        """(row0, row1, col0, col1), half-open, of the window of output pixel (oy, ox), clipped
        to the input map (padding is not drawn)."""
        r0 = math.floor(self.stride[0] * oy + self.offset[0])
        c0 = math.floor(self.stride[1] * ox + self.offset[1])
        return (max(r0, 0), min(r0 + self.size[0], in_h), max(c0, 0), min(c0 + self.size[1], in_w))


def kernel_window(layer: Layer, source: Layer) -> Window | None:
    """The window through which `layer` reads `source`, or None when there is no spatial one
    (either side is not a 2D feature-map layer, or an unknown kind changes the map size)."""
    if not (layer.is_image and source.is_image):
        return None
    in_hw = [int(v) for v in source.output_shape[:2]]
    kind = kinds.get(layer.kind)
    if kind is not None and kind.window is not None:     # a kernel, a pad, a crop, an upsampling
        stride, offset, size = kind.window(layer.config, in_hw)
        return Window(stride, offset, size)
    if [int(v) for v in layer.output_shape[:2]] == in_hw:   # pixel-wise: BN, activations, merges
        return Window((1.0, 1.0), (0.0, 0.0), (1, 1))
    return None                                   # resizes nnvis has no rule for
