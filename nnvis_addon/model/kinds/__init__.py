"""Every layer kind nnvis knows, one module per family, each kind saying everything about itself:
output shape, weight shapes, inference forward pass (numpy), edges, the config keys it reads,
its kernel window, how it is drawn, and its design-editor template (`registry.Kind`).

Importing this package registers them all; callers ask the registry (`get`, `having`, `is_`),
so adding a kind is adding a `register(Kind(...))` to one family module (or a module of one's
own, imported after this package). Pure Python and numpy.
"""
from __future__ import annotations

from . import (convolution, dense, elementwise, identity, input, keras_ops, merge,  # noqa: F401
               normalization, pooling, reshape, resampling)
from .config import KERAS2_KEY, SHARED_KEY
from .input import INPUT
from .keras_ops import OP_PREFIX, OPERANDS_KEY
from .registry import DESIGN, Design, Kind, get, having, is_, names, register

__all__ = ["DESIGN", "INPUT", "KERAS2_KEY", "OPERANDS_KEY", "OP_PREFIX", "SHARED_KEY", "Design",
           "Kind", "get", "having", "is_", "names", "register"]
