"""The network as nnvis sees it: layers (Keras names, kinds, configs, output shapes) and their graph.

Built from a Keras architecture config (see ``keras_config``); readers use it to map stored weights
to layers, the forward pass walks it, the layout and scene draw it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .kinds.input import INPUT


def map_shape(output_shape) -> tuple[int, int]:
    """(rows, columns) of one drawn map of a feature-map output (channels last, no batch): an
    (H, W, C) map as it is; a 1D map (L, C) as a strip, one row of L; a 3D map (D, H, W, C) as its
    D slices of H × W stacked top to bottom (D·H rows)."""
    sizes = [int(d or 1) for d in output_shape[:-1]]
    if len(sizes) == 1:
        return 1, sizes[0]
    if len(sizes) == 3:
        return sizes[0] * sizes[1], sizes[2]
    if len(sizes) == 2:
        return sizes[0], sizes[1]
    raise ValueError(f"output shape {tuple(output_shape)} has no feature maps")


@dataclass
class Layer:
    name: str                      # the Keras layer name, e.g. "conv2d_1" or the user's "conv_a"
    kind: str                      # the Keras class name, e.g. "Conv2D", "InputLayer"
    config: dict                   # the layer's Keras config dict (as in config.json)
    inbound: list[str]             # names of the layers feeding this one (empty for inputs)
    output_shape: tuple            # without the batch dimension, e.g. (30, 30, 8)
    weight_shapes: list[tuple] = field(default_factory=list)  # in Keras get_weights() order
    inner: list["Layer"] = field(default_factory=list)  # a folded block's own layers (blocks.py)

    @property
    def is_spatial(self) -> bool:
        """True for feature-map outputs — (L, C), (H, W, C), (D, H, W, C): drawn as C maps (see
        ``map_shape``); anything else is drawn as units."""
        return 2 <= len(self.output_shape) <= 4

    @property
    def is_image(self) -> bool:
        """True for (H, W, C) outputs: 2D maps, what kernel windows and probe images are of."""
        return len(self.output_shape) == 3

    @property
    def map_shape(self) -> tuple[int, int]:
        """(rows, columns) of one drawn feature map (see ``map_shape``)."""
        return map_shape(self.output_shape)

    @property
    def cell_count(self) -> int:
        """How many things the layer is drawn as: feature maps (spatial) or units (everything else)."""
        if self.is_spatial:
            return int(self.output_shape[-1])
        n = 1
        for d in self.output_shape:
            n *= int(d or 1)        # an unknown (None) size counts as one
        return n

    @property
    def auto_named(self) -> bool:
        """Whether the layer has Keras' automatic name for its class (`add`, `add_1`,
        `batch_normalization_3`; an op's `ops.Add` is `add` too): the name says what the layer
        is, not where it stands."""
        auto = snake_case(self.kind.rpartition(".")[2])
        return re.fullmatch(re.escape(auto) + r"(_\d+)?", self.name) is not None


def snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


@dataclass
class Network:
    name: str                      # the model's Keras name
    layers: list[Layer]            # topological order, inputs first (InputLayer included)
    input_order: str = "hwc"       # "chw": the model's own input is (C, H, W) (PyTorch, ONNX);
                                   # probe arrays in that order are transposed to input_shape
    input_names: tuple = ()        # a multi-input model's inputs in the model's order (Keras
                                   # `input_layers`); empty: InputLayers in network order
    output_names: tuple = ()       # the model's outputs in its order (Keras `output_layers`)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def inputs(self) -> list[str]:
        """The InputLayers' names in the order the model takes its inputs (probes follow it)."""
        found = [layer.name for layer in self.layers if layer.kind == INPUT]
        ordered = [n for n in self.input_names if n in found]
        return ordered + [n for n in found if n not in ordered]

    @property
    def output(self) -> str:
        """The layer whose output is the prediction: the model's first output (a multi-output
        model's first head), else the last layer."""
        names = {layer.name for layer in self.layers}
        return next((n for n in self.output_names if n in names), self.layers[-1].name)

    @property
    def input_shape(self) -> tuple:
        """The (first) input's shape; see ``inputs`` for a multi-input model."""
        return self.layer(self.inputs[0]).output_shape if self.inputs else \
            self.layers[0].output_shape
