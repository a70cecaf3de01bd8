"""InputLayer: the network's input. It computes nothing (its output is the probe) and has no
edges; the design editor offers it as its first row, "Input"."""
from __future__ import annotations

from ...errors import NNVisError
from .registry import Design, Kind, register

INPUT = "InputLayer"


def _input_shape(config):
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    if not shape:
        raise NNVisError("InputLayer config has no batch_shape")
    return tuple(None if d is None else int(d) for d in shape[1:])


register(Kind(INPUT, None, _input_shape, arity=0,
              config_keys={"batch_shape", "batch_input_shape", "ragged", "sparse", "optional"},
              design=Design(0, "input_layer", {
                  "batch_shape": None, "dtype": "float32", "sparse": False, "ragged": False,
                  "name": None, "optional": False}, ("shape",), ("shape",), row_type="Input")))
