"""Where an ONNX value's elements sit in nnvis' array of it.

nnvis draws an (H, W, C) array as C feature maps; ONNX computes in NCHW, and networks move between
layouts: ConvNeXt transposes to NHWC around its LayerNorm and MLP and back, ShuffleNet reshapes
(N, C, H, W) to (N, g, C/g, H, W), swaps g and C/g, and reshapes back. A `Layout` says which ONNX
axes each nnvis axis holds (several, merged row-major): nnvis' array is the ONNX value (without its
batch) transposed to those axes and reshaped. A Transpose or Reshape that only relabels axes keeps
nnvis' array as it is (an identity to the picture: the same maps); one that reorders elements
within an nnvis axis (a channel shuffle) becomes a `Rearrange` of nnvis' array, whose config says
how: split into atoms, permute them, reshape. Pure numpy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class LayoutError(ValueError):
    """A reshape nnvis cannot follow (its axes cut across each other)."""


@dataclass(frozen=True)
class Layout:
    shape: tuple[int, ...]                  # the ONNX value's shape without the batch
    groups: tuple[tuple[int, ...], ...]     # per nnvis axis: the ONNX axes it merges (0: after
                                            # the batch), row-major in the order given
    batchless: bool = False                 # the ONNX value is `shape` itself: a reshape to
                                            # [-1] merged the batch of 1 in (the dynamo exporter's
                                            # as_strided: Reshape to [-1], then a Gather)

    @staticmethod
    def default(shape) -> "Layout":
        """(C, H, W) as (H, W, C) feature maps; any other rank in its own order."""
        shape = tuple(int(d) for d in shape)
        if len(shape) == 3:
            return Layout(shape, ((1,), (2,), (0,)))
        return Layout(shape, tuple((a,) for a in range(len(shape))))

    @property
    def is_default(self) -> bool:
        return self == Layout.default(self.shape)

    @property
    def nnvis_shape(self) -> tuple[int, ...]:
        return tuple(math.prod(self.shape[a] for a in g) for g in self.groups)

    def nnvis_axis(self, onnx_axis: int) -> int | None:
        """The nnvis axis (without the batch) that is exactly ONNX axis `onnx_axis` (counting the
        batch as ONNX does, negative from the end), or None when it is merged with others."""
        a = onnx_axis % (len(self.shape) + 1) - 1
        return next((i for i, g in enumerate(self.groups) if g == (a,)), None)

    def nnvis_axes(self, onnx_axes) -> list[int] | None:
        """The nnvis axes that hold exactly these ONNX axes (counting the batch), or None."""
        wanted = {a % (len(self.shape) + 1) - 1 for a in onnx_axes}
        out = [i for i, g in enumerate(self.groups) if set(g) & wanted]
        if {a for i in out for a in self.groups[i]} != wanted:
            return None
        return out

    def as_nnvis(self, value: np.ndarray) -> np.ndarray:
        """An array that broadcasts against the ONNX value (batch included, NumPy rules) as one
        that broadcasts against nnvis' array of it (batch dropped): a per-channel (C, 1, 1)
        constant becomes (1, 1, C); the ONNX value itself (1, *shape) becomes nnvis' array."""
        value = np.asarray(value)
        if self.batchless:
            value = value[None]
        rank = len(self.shape) + 1
        if value.ndim > rank:
            raise LayoutError(f"an array of shape {value.shape} against a rank-{rank} value")
        value = value.reshape((1,) * (rank - value.ndim) + value.shape)
        if value.shape[0] != 1:
            raise LayoutError(f"an array of shape {value.shape} varies along the batch")
        value = value[0]
        sizes = []
        for g in self.groups:                   # broadcast only the groups it varies along
            if all(value.shape[a] == 1 for a in g):
                sizes.append(1)
            else:
                full = list(value.shape)
                for a in g:
                    full[a] = self.shape[a]
                value = np.broadcast_to(value, full)
                sizes.append(math.prod(self.shape[a] for a in g))
        return value.transpose([a for g in self.groups for a in g]).reshape(sizes)

    def config(self) -> dict:
        """The layer config entries that record a layout other than the default."""
        return ({} if self.groups == Layout.default(self.shape).groups else
                {LAYOUT_KEY: [list(g) for g in self.groups]}) | (
            {BATCHLESS_KEY: True} if self.batchless else {})


LAYOUT_KEY = "_nnvis_onnx_layout"       # in a layer config: its ONNX value's Layout.groups
BATCHLESS_KEY = "_nnvis_onnx_batchless"     # ... and that the value has no batch axis


def of_layer(onnx_shape, config: dict) -> Layout:
    """The Layout of a layer's ONNX value (its whole shape, batch included if it has one), from
    its config."""
    batchless = bool(config.get(BATCHLESS_KEY))
    shape = tuple(int(d) for d in onnx_shape)[0 if batchless else 1:]
    groups = config.get(LAYOUT_KEY)
    if groups is None:
        return Layout(shape, Layout.default(shape).groups, batchless)
    return Layout(shape, tuple(tuple(g) for g in groups), batchless)


def transpose(layout: Layout, perm) -> tuple[Layout, dict | None]:
    """The Layout after an ONNX Transpose(perm) (batch first and kept), and None when nnvis' array
    stays as it is, else the `Rearrange` config that reorders it (an axis whose merged ONNX axes
    changed order, e.g. ShuffleNet's (g, C/g) → (C/g, g))."""
    perm = [int(p) for p in perm]
    if sorted(perm) != list(range(len(perm))) or perm[0] != 0:
        raise LayoutError(f"perm {perm} moves the batch axis")
    perm = [p - 1 for p in perm[1:]]
    new_axis = {old: new for new, old in enumerate(perm)}
    shape = tuple(layout.shape[p] for p in perm)
    groups = tuple(tuple(new_axis[a] for a in g) for g in layout.groups)
    if all(list(g) == sorted(g) for g in groups):
        return Layout(shape, groups), None
    out = Layout(shape, tuple(tuple(sorted(g)) for g in groups))
    atoms_in = {a: [a] for a in range(len(shape))}          # atoms named by the input's axes
    atoms_out = {new: [old] for new, old in enumerate(perm)}
    return out, rearrangement(layout, atoms_in, out, atoms_out, layout.shape)


def reshape(layout: Layout, shape) -> tuple[Layout, dict | None]:
    """The Layout after an ONNX Reshape to `shape` (without the batch; sizes resolved), and None
    when nnvis' array stays as it is, else the `Rearrange` config into the new shape's default
    layout. A new (C, H, W) value is feature maps; feature maps keep their axes where the new
    value only splits or merges them (ShuffleNet's (C, H, W) → (g, C/g, H, W): the same maps);
    otherwise the default wins where nnvis' elements keep their order (a flattened NHWC value,
    (N, 64) → (N, 8, 8))."""
    shape = tuple(int(d) for d in shape)
    atoms_in, atoms_out, sizes = _common_atoms(layout.shape, shape)
    groups_atoms = [[t for a in g for t in atoms_in[a]] for g in layout.groups]
    default = Layout.default(shape)
    if [[t for a in g for t in atoms_out[a]] for g in default.groups] == groups_atoms:
        return default, None
    moved = rearrangement(layout, atoms_in, default, atoms_out, sizes)
    groups = None if len(shape) == 3 else _groups_of(groups_atoms, atoms_out)
    if groups is not None and (len(layout.groups) == 3 or moved["perm"] != sorted(
            moved["perm"])):
        return Layout(shape, groups), None
    return default, moved


def rearrangement(before: Layout, atoms_in: dict, after: Layout, atoms_out: dict,
                  size) -> dict:
    """The `Rearrange` config that turns nnvis' array of `before` into that of `after`, the two
    ONNX values being the same atoms (atoms_*: ONNX axis → its atoms, named alike on both
    sides; size[atom]): split nnvis' array into its atoms, permute, reshape."""
    order_in = [t for g in before.groups for a in g for t in atoms_in[a]]
    order_out = [t for g in after.groups for a in g for t in atoms_out[a]]
    return {"split": [size[t] for t in order_in],
            "perm": [order_in.index(t) for t in order_out],
            "target_shape": list(after.nnvis_shape)}


def _common_atoms(a: tuple, b: tuple):
    """The coarsest common refinement of two row-major shapes of the same size: atoms (named
    0, 1, ...) each a run of elements that both shapes keep together. Returns (a's axis → its
    atoms, b's axis → its atoms, atom sizes); a size-1 axis has none."""
    if math.prod(a) != math.prod(b):
        raise LayoutError(f"{a} and {b} hold different numbers of values")
    atoms_a = {i: [] for i in range(len(a))}
    atoms_b = {j: [] for j in range(len(b))}
    sizes = []
    i = j = 0
    left_a = a[0] if a else 1
    left_b = b[0] if b else 1
    while i < len(a) and j < len(b):
        if left_a == 1:
            i += 1
            left_a = a[i] if i < len(a) else 1
            continue
        if left_b == 1:
            j += 1
            left_b = b[j] if j < len(b) else 1
            continue
        n = math.gcd(left_a, left_b)
        if n != min(left_a, left_b):
            raise LayoutError(f"reshaping {a} to {b} cuts across axes")
        atoms_a[i].append(len(sizes))
        atoms_b[j].append(len(sizes))
        sizes.append(n)
        left_a //= n
        left_b //= n
    return atoms_a, atoms_b, sizes


def _groups_of(groups_atoms, atoms_out) -> tuple[tuple[int, ...], ...] | None:
    """nnvis' axes (as lists of atoms) written as runs of whole ONNX axes of the new value, or
    None when an axis of the new value spans two nnvis axes. The new value's size-1 axes go to
    nnvis' axes of size 1 (a 1×1 map's H and W), in order, and the rest to the last axis."""
    starts = {atoms[0]: axis for axis, atoms in atoms_out.items() if atoms}
    ones = [axis for axis, atoms in atoms_out.items() if not atoms]
    groups = []
    for atoms in groups_atoms:
        group, k = [], 0
        while k < len(atoms):
            axis = starts.get(atoms[k])
            if axis is None or atoms[k:k + len(atoms_out[axis])] != atoms_out[axis]:
                return None
            group.append(axis)
            k += len(atoms_out[axis])
        if not group:
            if not ones:
                return None
            group.append(ones.pop(0))
        groups.append(group)
    if ones and not groups:
        return None
    if ones:
        groups[-1] += ones
    return tuple(tuple(g) for g in groups)
