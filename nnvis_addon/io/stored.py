"""Weight arrays left in their file and read when used.

A run shows every epoch, but holding every epoch's weights costs their whole size per epoch
(VGG16: 553 MB an epoch, 4.5 GB peak for three). The large arrays of an uncompressed HDF5 file
are contiguous bytes at a known offset, so a reader hands out a `StoredArray` (path, offset, dtype,
shape) instead: the forward pass reads one epoch (`loaded`), the edges read a kernel's rows in
blocks, and nothing keeps them afterwards. A file changed since it was read is an error, never
silently different numbers.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..errors import NNVisError

LAZY_BYTES = 1 << 20     # arrays at least this big stay in the file


class StoredArray:
    """An array of `dtype` and `shape` at byte `offset` of `path`, read on use: `np.asarray(a)`
    reads it whole, `a[i:j]` reads only those rows."""

    __slots__ = ("path", "offset", "dtype", "shape", "_stamp")

    def __init__(self, path, offset: int, dtype, shape: tuple):
        self.path = Path(path)
        self.offset = int(offset)
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(d) for d in shape)
        self._stamp = _stamp(self.path)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"StoredArray({str(self.path)!r}, offset={self.offset}, {self.dtype}, {self.shape})"

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        array = self._read(0, self.size).reshape(self.shape)
        return array if dtype is None else array.astype(dtype, copy=False)

    def __getitem__(self, key):
        if isinstance(key, slice) and key.step in (None, 1) and self.ndim:
            start, stop, _ = key.indices(self.shape[0])
            stop = max(stop, start)
            row = math.prod(self.shape[1:])
            return self._read(start * row, (stop - start) * row).reshape(
                (stop - start,) + self.shape[1:])
        return np.asarray(self)[key]

    def _read(self, first: int, count: int) -> np.ndarray:
        if _stamp(self.path) != self._stamp:
            raise NNVisError(f"{self.path}: changed since it was read; import it again")
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset + first * self.dtype.itemsize)
                array = np.fromfile(f, self.dtype, count)
        except OSError as e:
            raise NNVisError(f"{self.path}: cannot read: {e.strerror or e}") from e
        if array.shape[0] != count:
            raise NNVisError(f"{self.path}: ends inside a weight array (truncated?)")
        return array


def loaded(weights: dict[str, list]) -> dict[str, list[np.ndarray]]:
    """`weights` (layer → arrays) with every StoredArray read into memory."""
    return {name: [np.asarray(a) if isinstance(a, StoredArray) else a for a in arrays]
            for name, arrays in weights.items()}


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as e:
        raise NNVisError(f"{path}: cannot read: {e.strerror or e}") from e
    return st.st_size, st.st_mtime_ns
