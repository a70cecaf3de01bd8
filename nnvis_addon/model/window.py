"""Which input pixels one output pixel of a layer reads: the kernel window that Expansion level 3
("show the computation") draws on the inbound layer's feature maps.

A window is linear in the output position: along each axis the first input pixel is
floor(stride · o + offset) and the window spans `size` pixels (the dilated kernel), the rule TF uses
for 'valid'/'same' convolution and pooling ('same' pads the odd extra pixel after). Pure numpy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .kernels import axis_padding, pad_amounts
from .kinds import CONV, POOL
from .network import Layer
from .ops import _pad_pairs, padding_of, pair


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
    config, kind = layer.config, layer.kind
    in_hw = [int(v) for v in source.output_shape[:2]]
    if kind in CONV or kind in POOL:
        if kind in CONV:
            k = pair(config["kernel_size"], "kernel_size")
            s = pair(config.get("strides", 1), "strides")
            d = pair(config.get("dilation_rate", 1), "dilation_rate")
        else:
            k = pair(config["pool_size"], "pool_size")
            s = pair(config.get("strides") or k, "strides")
            d = (1, 1)
        padding = padding_of(config)
        before = [pad_amounts(n, k[a], s[a], d[a], axis_padding(padding, a))[0]
                  for a, n in enumerate(in_hw)]
        return Window((float(s[0]), float(s[1])), (-float(before[0]), -float(before[1])),
                      ((k[0] - 1) * d[0] + 1, (k[1] - 1) * d[1] + 1))
    if kind == "ZeroPadding2D":
        (top, _), (left, _) = _pad_pairs(config.get("padding", 1), "padding")
        return Window((1.0, 1.0), (-float(top), -float(left)), (1, 1))
    if kind == "Cropping2D":
        (top, _), (left, _) = _pad_pairs(config.get("cropping", 0), "cropping")
        return Window((1.0, 1.0), (float(top), float(left)), (1, 1))
    if kind == "UpSampling2D":
        a, b = pair(config.get("size", 2), "size")
        return Window((1.0 / a, 1.0 / b), (0.0, 0.0), (1, 1))
    if [int(v) for v in layer.output_shape[:2]] == in_hw:   # pixel-wise: BN, activations, merges
        return Window((1.0, 1.0), (0.0, 0.0), (1, 1))
    return None                                   # resizes nnvis has no rule for
