"""Argument checks and straight lines shared by both bundlers."""
from __future__ import annotations

import numpy as np

from ..errors import NNVisError


def checked(src_pos, dst_pos, src, dst, beta: float, points: int):
    """(src_pos, dst_pos) float64 (cells, 3) and (src, dst) intp (n,), validated."""
    src_pos = np.asarray(src_pos, np.float64)
    dst_pos = np.asarray(dst_pos, np.float64)
    for name, pos in (("src_pos", src_pos), ("dst_pos", dst_pos)):
        if pos.ndim != 2 or pos.shape[1] != 3 or not np.isfinite(pos).all():
            raise NNVisError(f"{name} must be finite (cells, 3) positions, got shape {pos.shape}")
    src = np.asarray(src)
    dst = np.asarray(dst)
    if src.ndim != 1 or src.shape != dst.shape or src.dtype.kind not in "iu" or \
            dst.dtype.kind not in "iu":
        raise NNVisError(f"src and dst must be equal-length integer arrays, got {src.shape} "
                         f"{src.dtype} and {dst.shape} {dst.dtype}")
    for name, index, pos in (("src", src, src_pos), ("dst", dst, dst_pos)):
        if index.size and (index.min() < 0 or index.max() >= pos.shape[0]):
            raise NNVisError(f"{name} indices must lie in [0, {pos.shape[0]})")
    if not 0.0 <= beta <= 1.0:
        raise NNVisError(f"bundle strength beta must be in [0, 1], got {beta}")
    if points < 2:
        raise NNVisError(f"points per curve must be ≥ 2, got {points}")
    return src_pos, dst_pos, src.astype(np.intp, copy=False), dst.astype(np.intp, copy=False)
