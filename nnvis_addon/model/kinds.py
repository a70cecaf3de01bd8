"""Facts about layer kinds (Keras class names), one place: which kinds convolve or pool through a
kernel window, which are identities at inference, which only move or gate values, and what the
design editor knows of the kinds it offers. The forward pass (`ops`), the edges (`edges`), the
kernel windows (`window`) and the design editor read them from here. Pure Python."""
from __future__ import annotations

from dataclasses import dataclass

CONV = frozenset({"Conv2D", "DepthwiseConv2D", "SeparableConv2D"})   # a kernel over every map
POOL = frozenset({"MaxPooling2D", "AveragePooling2D"})               # a window over each map

# identity at inference: regularisers, and the random augmentations (Keras applies them only with
# training=True; their configs hold factors and seeds, never the shape they would produce)
IDENTITY = frozenset({
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout",
    "GaussianNoise", "AlphaDropout", "ActivityRegularization", "Identity",
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomContrast", "RandomTranslation",
    "RandomBrightness", "RandomHeight", "RandomWidth", "RandomGrayscale", "RandomHue",
    "RandomSaturation", "RandomSharpness", "RandomShear", "RandomColorJitter",
    "RandomColorDegeneration", "RandomPosterization", "RandomInvert", "RandomErasing",
    "RandomGaussianBlur", "RandomElasticTransform", "RandomPerspective", "RandAugment", "AugMix",
    "Solarization"})

# channel i feeds channel i only (pooling, padding, resizing, activations, normalisation): their
# edges join matching cells, and they count as moving or gating values, not learning
PASS_THROUGH = POOL | IDENTITY | frozenset({
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D", "Cropping2D", "UpSampling2D",
    "Resizing", "CenterCrop", "RandomCrop", "Activation", "ReLU", "LeakyReLU", "ThresholdedReLU", "Softmax",
    "Rescaling", "Normalization", "LayerNormalization", "Square", "Sqrt", "Erf"})

# nnvis' own kinds (not Keras') that only move values: ONNX reshapes that reorder elements (a
# channel shuffle), slices and gathers; their edges follow the elements (`ops.moved_elements`)
MOVE = frozenset({"Rearrange", "Slice", "Gather"})

# kinds only nnvis' ONNX import makes (its configs, not Keras'): a Keras file's class of that name
# (a legacy file's custom `Slice` layer) is not one of them
ONNX_ONLY = MOVE | {"Affine"}

MERGE = frozenset({"Add", "Subtract", "Multiply", "Divide", "Maximum", "Minimum",  # element-wise
                   "Average"})

# map i of the output comes from map i of each input alone: no fan of edges to spread out, so the
# layout sets such a layer close behind its inputs
MAPWISE = PASS_THROUGH | MERGE | frozenset({"BatchNormalization", "DepthwiseConv2D", "Concatenate",
                                             "Affine"})


@dataclass(frozen=True)
class DesignKind:
    """A kind the design editor offers (its row type)."""
    auto_name: str                        # Keras' automatic layer name (conv2d, conv2d_1, ...)
    main: tuple[str, ...] = ()            # parameters the row always has (the editor's fields)
    row: tuple[str, ...] = ()             # those shown in the stack's row itself
    built: bool = False                   # Keras writes a build_config for it
    strides: tuple[int, int] | None = None  # default strides (None: a pool's are its pool_size)


_POOLING = dict(main=("pool_size", "strides", "padding"), row=("pool_size",))
DESIGN = {      # in the order the editor lists them; "Input" is always the first row
    "Input": DesignKind("input_layer", ("shape",), ("shape",)),
    "Conv2D": DesignKind("conv2d", ("filters", "kernel_size", "strides", "padding", "activation"),
                         ("filters", "kernel_size"), built=True, strides=(1, 1)),
    "MaxPooling2D": DesignKind("max_pooling2d", **_POOLING),
    "AveragePooling2D": DesignKind("average_pooling2d", **_POOLING),
    "BatchNormalization": DesignKind("batch_normalization", built=True),
    "Activation": DesignKind("activation", ("activation",), ("activation",)),
    "Dropout": DesignKind("dropout", ("rate",), ("rate",)),
    "Flatten": DesignKind("flatten", built=True),
    "GlobalAveragePooling2D": DesignKind("global_average_pooling2d"),
    "Dense": DesignKind("dense", ("units", "activation"), ("units",), built=True),
}
