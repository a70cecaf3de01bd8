"""What a layer kind is (`Kind`: everything nnvis knows of it) and the one registry of them.

Each family module (`convolution`, `pooling`, ...) registers its kinds; callers ask `get(name)`,
so nothing outside the family modules spells a kind's facts. Shapes passed around exclude the
batch dimension, arrays passed to ``apply`` include it (float32, channels-last). Pure Python.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from .config import ANY_KEYS


def _same_shape(config, shape):
    return shape


def _no_weights(config, *shapes):
    return []


@dataclass(frozen=True)
class Design:
    """How the design editor offers a kind (a row type of its layer stack)."""
    position: int                         # its place in the editor's list of types
    auto_name: str                        # Keras' automatic layer name (conv2d, conv2d_1, ...)
    template: dict                        # the Keras 3.15 config with every default (None: needed)
    main: tuple[str, ...] = ()            # parameters the row always has (the editor's fields)
    row: tuple[str, ...] = ()             # those shown in the stack's row itself
    built: bool = False                   # Keras writes a build_config for it
    strides: tuple[int, int] | None = None  # default strides (None: a pool's are its pool_size)
    row_type: str = ""                    # the editor's name for it (default: the kind's)
    check: Callable[[dict], None] | None = None   # what Keras refuses beyond the shape rules
    neutral: Callable | None = None       # (config, weight shapes) -> the weights a design
    #                                       starts with instead of Glorot kernels and zero biases
    kind: str = ""                        # the Keras class name (filled in by `register`)


@dataclass(frozen=True)
class Kind:
    """One layer kind: a Keras class name, or one of nnvis' own (ONNX reshapes, Affine)."""
    name: str
    apply: Callable | None                # (config, weights, input array(s)) -> output array;
    #                                       None: computes nothing (the network's input)
    shape: Callable = _same_shape         # (config, input shape(s)) -> output shape
    weights: Callable = _no_weights       # (config, input shape(s)) -> [weight shapes], Keras order
    arity: int | None = 1                 # number of inputs; None: any number (functions get lists)
    config_keys: frozenset | None = None  # keys it reads or knows harmless; None: not checked
    # edges (model.edges): (layer, source, weights_by_epoch, sources, k) -> (src, dst, weight or
    # None for all ones); None: no edges known for the kind
    edges: Callable | None = None
    strongest: Callable | None = None     # (layer, source, weights_by_epoch, limit): the strongest
    #                                       edges of a connection too large to list (Dense)
    edge_weights: Callable | None = None  # (layer, source, weights_by_epoch, src, dst) -> (E, n):
    #                                       weights of given edges without listing them all
    fan: str = "cells"                    # edges of a connection: "all" (every source cell to
    #                                       every cell, per group), "elements" (as many as the
    #                                       larger side), "cells" (one per output cell)
    window: Callable | None = None        # (config, input (H, W)) -> (stride, offset, size) of the
    #                                       input pixels one output pixel reads (model.window)
    passes: bool = False                  # only moves or gates values: drawn small, linked thin
    mapwise: bool = False                 # map i of the output reads map i of its inputs only
    identity: bool = False                # the identity at inference (dropout, augmentation)
    geometric: bool = False               # moves pixels but keeps their scale (crops, resizes)
    onnx_only: bool = False               # nnvis' own kind that only its ONNX import makes
    keras2_formula: bool = False          # computed differently for a tf.keras 2 file (KERAS2_KEY)
    keras2_renames: tuple = ()            # (tf.keras 2 config key, Keras 3's name) pairs
    design: Design | None = None          # offered by the design editor


_KINDS: dict[str, Kind] = {}
DESIGN: dict[str, Design] = {}      # row type -> Design, in the editor's order


def register(kind: Kind) -> Kind:
    """Add (or replace) a kind; its config keys gain those every kind may carry."""
    if kind.config_keys is not None:
        kind = replace(kind, config_keys=frozenset(kind.config_keys) | ANY_KEYS)
    if kind.design is not None:
        kind = replace(kind, design=replace(kind.design, kind=kind.name,
                                            row_type=kind.design.row_type or kind.name))
    _KINDS[kind.name] = kind
    if kind.design is not None:
        rows = {**DESIGN, kind.design.row_type: kind.design}
        DESIGN.clear()
        DESIGN.update(sorted(rows.items(), key=lambda item: item[1].position))
    return kind


def get(name: str) -> Kind | None:
    """The registered kind of that name, or None."""
    return _KINDS.get(name)


def names() -> frozenset[str]:
    """Every registered kind's name."""
    return frozenset(_KINDS)


def having(flag: str) -> frozenset[str]:
    """The names of the kinds whose `flag` (a Kind field) is set."""
    return frozenset(name for name, kind in _KINDS.items() if getattr(kind, flag))


def is_(name: str, flag: str) -> bool:
    """Whether kind `name` is registered with `flag` set (an unknown kind has none)."""
    kind = _KINDS.get(name)
    return kind is not None and bool(getattr(kind, flag))
