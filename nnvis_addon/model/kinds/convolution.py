"""Convolutions: Conv1D/2D/3D, DepthwiseConv1D/2D, SeparableConv1D/2D.

Edges: input channel i → output channel o, weight = the L2 norm of the kernel slice K[..., i, o]
(how much of channel i reaches channel o, sign-free); grouped convolutions connect only the
channels of each group. Depthwise: c → c·multiplier + m, norm of K[..., c, m]. Separable:
i → o, norm of the effective kernel Σ_m D[..., i, m] · P[i·multiplier+m, o].
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...errors import NNVisError
from ..kernels import Unsupported, conv2d, conv3d, depthwise_conv2d, out_length
from .cells import kernels_of, slice_norms
from .config import (COMMON, GLOROT, INIT_KEYS, bias_act, check_dhwc, keras_initializer,
                     padding_of, pair, sizes, spatial_shape, window_of)
from .one_d import register_1d
from .registry import Design, Kind, register

if TYPE_CHECKING:
    from ..network import Layer

CONV_KEYS = {"activation", "dilation_rate", "filters", "groups", "kernel_size", "padding",
             "strides", "use_bias"} | INIT_KEYS


def _conv_params(config):
    return (pair(config["kernel_size"], "kernel_size"), pair(config.get("strides", 1), "strides"),
            pair(config.get("dilation_rate", 1), "dilation_rate"), int(config.get("groups", 1)))


def _conv2d_shape(config, shape):
    k, s, d, _ = _conv_params(config)
    return spatial_shape(config, shape, k, s, d, int(config["filters"]))


def _kernel_weights(config, window: tuple, channels) -> list[tuple]:
    """A (grouped) convolution's kernel (*window, channels/groups, filters) and bias shapes."""
    filters, groups = int(config["filters"]), int(config.get("groups", 1))
    if channels is None or groups < 1 or channels % groups or filters % groups:
        raise NNVisError(f"{channels} input channels / {filters} filters do not split into "
                         f"{groups} groups")
    kernel = (*window, channels // groups, filters)
    return [kernel, (filters,)] if config.get("use_bias", True) else [kernel]


def _conv2d_weights(config, shape):
    return _kernel_weights(config, _conv_params(config)[0], shape[-1])


def _conv2d_apply(config, weights, x):
    k, s, d, groups = _conv_params(config)
    y = conv2d(x, weights[0], s, d, padding_of(config), groups)
    return bias_act(config, weights, y, 1)


def _depthwise_channels(config, shape) -> tuple[int, int]:
    """(input channels, depth_multiplier); the channel count must be known for the kernel."""
    if not shape or shape[-1] is None:
        raise NNVisError(f"needs a known channel count, got shape {shape}")
    return int(shape[-1]), int(config.get("depth_multiplier", 1))


def _depthwise_shape(config, shape):
    k, s, d, _ = _conv_params(config)
    c, m = _depthwise_channels(config, shape)
    return spatial_shape(config, shape, k, s, d, c * m)


def _depthwise_weights(config, shape):
    (kh, kw), _, _, _ = _conv_params(config)
    c, m = _depthwise_channels(config, shape)
    return [(kh, kw, c, m)] + ([(c * m,)] if config.get("use_bias", True) else [])


def _depthwise_apply(config, weights, x):
    k, s, d, _ = _conv_params(config)
    y = depthwise_conv2d(x, weights[0], s, d, padding_of(config))
    return bias_act(config, weights, y, 1)


def _separable_weights(config, shape):
    (kh, kw), _, _, _ = _conv_params(config)
    c, m = _depthwise_channels(config, shape)
    filters = int(config["filters"])
    return ([(kh, kw, c, m), (1, 1, c * m, filters)]
            + ([(filters,)] if config.get("use_bias", True) else []))


def _separable_apply(config, weights, x):
    """Depthwise then pointwise (1×1) convolution; Keras' one bias comes after the pointwise."""
    k, s, d, _ = _conv_params(config)
    y = depthwise_conv2d(x, weights[0], s, d, padding_of(config))
    y = conv2d(y, weights[1], (1, 1), (1, 1), "valid")
    return bias_act(config, weights, y, 2)


def _conv3d_params(config):
    padding = config.get("padding", "valid")
    if padding not in ("valid", "same"):
        raise Unsupported(f"unsupported padding {padding!r} (supported: 'valid', 'same')")
    return (sizes(config["kernel_size"], 3, "kernel_size"),
            sizes(config.get("strides", 1), 3, "strides"),
            sizes(config.get("dilation_rate", 1), 3, "dilation_rate"), padding)


def _conv3d_shape(config, shape):
    check_dhwc(config, shape)
    k, s, d, padding = _conv3d_params(config)
    return (*(out_length(shape[a], k[a], s[a], d[a], padding) for a in range(3)),
            int(config["filters"]))


def _conv3d_weights(config, shape):
    return _kernel_weights(config, _conv3d_params(config)[0], shape[-1])


def _conv3d_apply(config, weights, x):
    _, s, d, padding = _conv3d_params(config)
    return bias_act(config, weights, conv3d(x, weights[0], s, d, padding,
                                             int(config.get("groups", 1))), 1)


def _conv_edges(layer: Layer, source: Layer, weights_by_epoch, *_):
    cin, cout = int(source.output_shape[-1]), int(layer.output_shape[-1])
    groups = int(layer.config.get("groups", 1))
    if groups < 1 or cin % groups or cout % groups:
        raise NNVisError(f"layer {layer.name!r}: {cin} → {cout} channels do not split into "
                         f"{groups} groups")
    cin_g, cout_g = cin // groups, cout // groups
    kernels = kernels_of(layer, weights_by_epoch, 1, [(..., cin_g, cout)])
    j = np.repeat(np.arange(cin_g), cout)
    dst = np.tile(np.arange(cout), cin_g)
    src = (dst // cout_g) * cin_g + j
    weight = np.empty((len(kernels), cin_g * cout), np.float32)
    for e, (k,) in enumerate(kernels):
        weight[e] = slice_norms(k).ravel()
    return src, dst, weight


def _depthwise_edges(layer: Layer, source: Layer, weights_by_epoch, *_):
    cin, cout = int(source.output_shape[-1]), int(layer.output_shape[-1])
    mult = cout // cin
    kernels = kernels_of(layer, weights_by_epoch, 1, [(..., cin, mult)])
    src = np.repeat(np.arange(cin), mult)
    weight = np.stack([slice_norms(k).ravel() for (k,) in kernels]).astype(np.float32)
    return src, np.arange(cin * mult), weight


def _separable_edges(layer: Layer, source: Layer, weights_by_epoch, *_):
    cin, cout = int(source.output_shape[-1]), int(layer.output_shape[-1])
    mult = int(layer.config.get("depth_multiplier", 1))
    kernels = kernels_of(layer, weights_by_epoch, 2, [(..., cin, mult), (..., cin * mult, cout)])
    rows = []
    for depthwise, pointwise in kernels:
        effective = np.einsum("...cm,cmf->...cf", depthwise.astype(np.float64),
                              pointwise.reshape(cin, mult, cout).astype(np.float64))
        rows.append(slice_norms(effective).ravel())
    return np.repeat(np.arange(cin), cout), np.tile(np.arange(cout), cin), \
        np.stack(rows).astype(np.float32)


def _window(config, in_hw):
    k, s, d, _ = _conv_params(config)
    return window_of(k, s, d, padding_of(config), in_hw)


def _check_conv2d(config) -> None:
    if max(config["strides"]) > 1 and max(config["dilation_rate"]) > 1:
        raise NNVisError("strides > 1 and dilation_rate > 1 can't be combined (Keras refuses it)")


_CONV2D_TEMPLATE = {
    **COMMON, "filters": None, "kernel_size": None, "strides": [1, 1], "padding": "valid",
    "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1, "activation": "linear",
    "use_bias": True, "kernel_initializer": GLOROT, "bias_initializer": keras_initializer("Zeros"),
    "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
    "kernel_constraint": None, "bias_constraint": None}

register(Kind("Conv2D", _conv2d_apply, _conv2d_shape, _conv2d_weights, config_keys=CONV_KEYS,
              edges=_conv_edges, fan="all", window=_window,
              design=Design(1, "conv2d", _CONV2D_TEMPLATE,
                            ("filters", "kernel_size", "strides", "padding", "activation"),
                            ("filters", "kernel_size"), built=True, strides=(1, 1),
                            check=_check_conv2d)))
register(Kind("DepthwiseConv2D", _depthwise_apply, _depthwise_shape, _depthwise_weights,
              config_keys=CONV_KEYS | {"depth_multiplier"}, edges=_depthwise_edges,
              window=_window, mapwise=True))
register(Kind("SeparableConv2D", _separable_apply, _conv2d_shape, _separable_weights,
              config_keys=CONV_KEYS | {"depth_multiplier"}, edges=_separable_edges, fan="all",
              window=_window))
register(Kind("Conv3D", _conv3d_apply, _conv3d_shape, _conv3d_weights, config_keys=CONV_KEYS,
              edges=_conv_edges, fan="all"))
register_1d("Conv1D", "Conv2D", CONV_KEYS)
register_1d("DepthwiseConv1D", "DepthwiseConv2D", CONV_KEYS | {"depth_multiplier"})
register_1d("SeparableConv1D", "SeparableConv2D", CONV_KEYS | {"depth_multiplier"})
