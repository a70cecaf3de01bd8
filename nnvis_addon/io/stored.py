"""Weight arrays left in their file and read when used.

A run shows every epoch, but holding every epoch's weights costs their whole size per epoch
(VGG16: 553 MB an epoch, 4.5 GB peak for three). The large arrays of an uncompressed HDF5 file
are contiguous bytes at a known offset, so a reader hands out a `StoredArray` (path, offset, dtype,
shape) instead: the forward pass reads one epoch (`loaded`), the edges read a kernel's rows in
blocks, and nothing keeps them afterwards. A file changed since it was read is an error, never
silently different numbers.
"""
from __future__ import annotations

import contextlib
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
        row = math.prod(self.shape[1:])
        if isinstance(key, slice) and key.step in (None, 1) and self.ndim:
            start, stop, _ = key.indices(self.shape[0])
            stop = max(stop, start)
            return self._read(start * row, (stop - start) * row).reshape(
                (stop - start,) + self.shape[1:])
        if isinstance(key, np.ndarray) and key.ndim == 1 and key.dtype.kind in "iu" and self.ndim:
            out = np.empty((key.shape[0], row), self.dtype)    # rows one by one, one open file
            with self._opened() as f:
                for i, r in enumerate(np.arange(self.shape[0])[key]):
                    self._read(int(r) * row, row, out[i], f)
            return out.reshape((key.shape[0],) + self.shape[1:])
        return np.asarray(self)[key]

    def read_into(self, out: np.ndarray) -> np.ndarray:
        """The whole array read into `out` (C-contiguous, of its dtype and shape), returned."""
        self._read(0, self.size, out.reshape(-1))
        return out

    @contextlib.contextmanager
    def _opened(self):
        """The file, open for reading, checked to be the one that was read."""
        if _stamp(self.path) != self._stamp:
            raise NNVisError(f"{self.path}: changed since it was read; import it again")
        try:
            with open(self.path, "rb") as f:
                yield f
        except OSError as e:
            raise NNVisError(f"{self.path}: cannot read: {e.strerror or e}") from e

    def _read(self, first: int, count: int, out: np.ndarray | None = None, f=None) -> np.ndarray:
        """`count` elements from element `first`, into `out` if given, from the open file `f`
        if given (else the file is opened and checked)."""
        if f is None:
            with self._opened() as f:
                return self._read(first, count, out, f)
        try:
            f.seek(self.offset + first * self.dtype.itemsize)
            if out is None:
                array = np.fromfile(f, self.dtype, count)
            else:
                array = out[:f.readinto(memoryview(out).cast("B")) // self.dtype.itemsize]
        except OSError as e:
            raise NNVisError(f"{self.path}: cannot read: {e.strerror or e}") from e
        if array.shape[0] != count:
            raise NNVisError(f"{self.path}: ends inside a weight array (truncated?)")
        return array


def loaded(weights: dict[str, list], buffers: dict | None = None) -> dict[str, list[np.ndarray]]:
    """`weights` (layer → arrays) with every StoredArray read into memory. `buffers`: the arrays
    earlier calls read, by (layer, index), no longer needed: one of the same dtype and shape is
    read over instead of a new array (fresh memory costs page faults on first touch, more than
    the read itself: VGG16 reads 553 MB an epoch), and it is updated with what this call read."""
    buffers = {} if buffers is None else buffers

    def read(name, k, a):
        old = buffers.get((name, k))
        fits = old is not None and old.dtype == a.dtype and old.shape == a.shape
        buffers[name, k] = a.read_into(old) if fits else np.asarray(a)
        return buffers[name, k]

    return {name: [read(name, k, a) if isinstance(a, StoredArray) else a
                   for k, a in enumerate(arrays)] for name, arrays in weights.items()}


def may_share(arrays: dict[str, np.ndarray], buffers: dict) -> bool:
    """Whether any of `arrays` (e.g. activations) is a view of one of `loaded`'s `buffers` (a
    view keeps the array that owns its memory as its base): then those cannot be read over."""
    owners = {id(_owner(b)) for b in buffers.values()}
    return any(id(_owner(a)) in owners for a in arrays.values() if isinstance(a, np.ndarray))


def _owner(array: np.ndarray):
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as e:
        raise NNVisError(f"{path}: cannot read: {e.strerror or e}") from e
    return st.st_size, st.st_mtime_ns
