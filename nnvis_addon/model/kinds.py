"""Facts about layer kinds (Keras class names), one place: which kinds convolve or pool through a
kernel window, which are identities at inference, which only move or gate values, and what the
design editor knows of the kinds it offers. The forward pass (`ops`), the edges (`edges`), the
kernel windows (`window`) and the design editor read them from here. Pure Python."""
from __future__ import annotations

from dataclasses import dataclass

CONV = frozenset({"Conv2D", "DepthwiseConv2D", "SeparableConv2D"})   # a kernel over every map
POOL = frozenset({"MaxPooling2D", "AveragePooling2D"})               # a window over each map

# 1D kinds over (L, C) maps, each computed as the 2D kind it names on a map one row high
ONE_D = {"Conv1D": "Conv2D", "DepthwiseConv1D": "DepthwiseConv2D",
         "SeparableConv1D": "SeparableConv2D", "MaxPooling1D": "MaxPooling2D",
         "AveragePooling1D": "AveragePooling2D", "GlobalAveragePooling1D": "GlobalAveragePooling2D",
         "GlobalMaxPooling1D": "GlobalMaxPooling2D", "ZeroPadding1D": "ZeroPadding2D",
         "Cropping1D": "Cropping2D", "UpSampling1D": "UpSampling2D"}
# 3D kinds over (D, H, W, C) maps (model.kernels: 2D math over depth slices)
THREE_D = frozenset({"Conv3D", "MaxPooling3D", "AveragePooling3D", "GlobalAveragePooling3D",
                     "GlobalMaxPooling3D", "ZeroPadding3D", "Cropping3D", "UpSampling3D"})
# whatever their map's rank, these read channels through a kernel like Conv2D's (edges: the norm
# of each channel pair's kernel slice)
KERNEL_CONV = frozenset({"Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D"})
DEPTHWISE = frozenset({"DepthwiseConv1D", "DepthwiseConv2D"})

# Keras 3 functional ops (`x + 3.0`, `keras.ops.relu6(x)`): nodes of a Functional model whose
# config names a `keras.src.ops.*` module; nnvis calls them "ops.<class>" (model.keras_config),
# apart from the layers of the same class name (the op Add may add a constant)
OP_PREFIX = "ops."
OP_UNARY = frozenset(OP_PREFIX + name for name in (     # element-wise on one tensor
    "Relu", "Relu6", "Sigmoid", "HardSigmoid", "Silu", "Swish", "HardSilu", "HardSwish", "Gelu",
    "Elu", "Selu", "LeakyRelu", "Softplus", "Softsign", "Tanh", "Exp", "Log", "Sqrt", "Square",
    "Absolute", "Abs", "Negative", "Reciprocal", "Clip", "Softmax", "LogSoftmax"))
OP_BINARY = frozenset(OP_PREFIX + name for name in (    # element-wise on two, broadcast
    "Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Maximum", "Minimum", "Power"))
OP_REDUCE = frozenset(OP_PREFIX + name for name in ("Mean", "Max", "Min", "Sum"))
OP_CONCAT = OP_PREFIX + "Concatenate"

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
PASS_THROUGH = POOL | IDENTITY | OP_UNARY | frozenset({
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D", "Cropping2D", "UpSampling2D",
    "Resizing", "CenterCrop", "RandomCrop", "Activation", "ReLU", "LeakyReLU", "ThresholdedReLU", "Softmax",
    "Rescaling", "Normalization", "LayerNormalization", "Square", "Sqrt", "Erf"}) | \
    (frozenset(ONE_D) | THREE_D) - KERNEL_CONV - DEPTHWISE

# nnvis' own kinds (not Keras') that only move values: ONNX reshapes that reorder elements (a
# channel shuffle), slices and gathers; their edges follow the elements (`ops.moved_elements`)
MOVE = frozenset({"Rearrange", "Slice", "Gather"})

# kinds only nnvis' ONNX import makes (its configs, not Keras'): a Keras file's class of that name
# (a legacy file's custom `Slice` layer) is not one of them
ONNX_ONLY = MOVE | {"Affine"}

# element-wise on several inputs
MERGE = OP_BINARY | frozenset({"Add", "Subtract", "Multiply", "Divide", "Maximum", "Minimum",
                               "Average"})

# map i of the output comes from map i of each input alone: no fan of edges to spread out, so the
# layout sets such a layer close behind its inputs
MAPWISE = PASS_THROUGH | MERGE | DEPTHWISE | OP_REDUCE | frozenset({
    "BatchNormalization", "Concatenate", OP_CONCAT, "LayerScale", "Affine"})


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
