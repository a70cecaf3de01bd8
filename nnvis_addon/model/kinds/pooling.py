"""Pooling: Max/AveragePooling1D/2D/3D and their global forms. Channel i feeds channel i: each
output map's cells are linked to the same map's cells, weight 1, and they only move values."""
from __future__ import annotations

import numpy as np

from ..kernels import Unsupported, avg_pool, max_pool, out_length, pool3d, precise_mean
from .cells import same_cells
from .config import COMMON, check_dhwc, check_hwc, padding_of, pair, sizes, spatial_shape, window_of
from .one_d import register_1d
from .registry import Design, Kind, register

POOL_KEYS = {"padding", "pool_size", "strides"}
GLOBAL_KEYS = {"keepdims"}


def _pool_params(config):
    k = pair(config["pool_size"], "pool_size")
    s = pair(config.get("strides") or k, "strides")     # Keras: strides None means pool_size
    return k, s


def _pool_shape(config, shape):
    k, s = _pool_params(config)
    return spatial_shape(config, shape, k, s, (1, 1), shape[-1])


def _pool_apply(pool):
    def apply(config, weights, x):
        k, s = _pool_params(config)
        return pool(x, k, s, padding_of(config))
    return apply


def _global_pool_shape(config, shape):
    check_hwc(config, shape)
    return (1, 1, shape[-1]) if config.get("keepdims") else (shape[-1],)


def _global_pool_apply(reduce):
    return lambda config, weights, x: reduce(x, axis=(1, 2), keepdims=bool(config.get("keepdims")))


def _pool3d_params(config):
    k = sizes(config["pool_size"], 3, "pool_size")
    padding = config.get("padding", "valid")
    if padding not in ("valid", "same"):
        raise Unsupported(f"unsupported padding {padding!r} (supported: 'valid', 'same')")
    return k, sizes(config.get("strides") or k, 3, "strides"), padding


def _pool3d_shape(config, shape):
    check_dhwc(config, shape)
    k, s, padding = _pool3d_params(config)
    return (*(out_length(shape[a], k[a], s[a], 1, padding) for a in range(3)), shape[-1])


def _pool3d_apply(mean: bool):
    return lambda config, weights, x: pool3d(x, *_pool3d_params(config), mean=mean)


def _global_pool3d_shape(config, shape):
    check_dhwc(config, shape)
    return (1, 1, 1, shape[-1]) if config.get("keepdims") else (shape[-1],)


def _global_pool3d_apply(reduce):
    return lambda config, weights, x: reduce(x, axis=(1, 2, 3),
                                             keepdims=bool(config.get("keepdims")))


def _window(config, in_hw):
    k, s = _pool_params(config)
    return window_of(k, s, (1, 1), padding_of(config), in_hw)


def _pooling(name, apply, shape, keys, **facts) -> Kind:
    return register(Kind(name, apply, shape, config_keys=keys, edges=same_cells, passes=True,
                         mapwise=True, **facts))


_POOL_TEMPLATE = {**COMMON, "pool_size": [2, 2], "padding": "valid", "strides": [2, 2],
                  "data_format": "channels_last"}
_POOL_ROW = dict(main=("pool_size", "strides", "padding"), row=("pool_size",))

_pooling("MaxPooling2D", _pool_apply(max_pool), _pool_shape, POOL_KEYS, window=_window,
         design=Design(2, "max_pooling2d", _POOL_TEMPLATE, **_POOL_ROW))
_pooling("AveragePooling2D", _pool_apply(avg_pool), _pool_shape, POOL_KEYS, window=_window,
         design=Design(3, "average_pooling2d", _POOL_TEMPLATE, **_POOL_ROW))
_pooling("GlobalAveragePooling2D", _global_pool_apply(precise_mean), _global_pool_shape,
         GLOBAL_KEYS, design=Design(8, "global_average_pooling2d", {
             **COMMON, "data_format": "channels_last", "keepdims": False}))
_pooling("GlobalMaxPooling2D", _global_pool_apply(np.max), _global_pool_shape, GLOBAL_KEYS)
_pooling("MaxPooling3D", _pool3d_apply(mean=False), _pool3d_shape, POOL_KEYS)
_pooling("AveragePooling3D", _pool3d_apply(mean=True), _pool3d_shape, POOL_KEYS)
_pooling("GlobalAveragePooling3D", _global_pool3d_apply(precise_mean), _global_pool3d_shape,
         GLOBAL_KEYS)
_pooling("GlobalMaxPooling3D", _global_pool3d_apply(np.max), _global_pool3d_shape, GLOBAL_KEYS)
register_1d("MaxPooling1D", "MaxPooling2D", POOL_KEYS)
register_1d("AveragePooling1D", "AveragePooling2D", POOL_KEYS)
register_1d("GlobalAveragePooling1D", "GlobalAveragePooling2D", GLOBAL_KEYS)
register_1d("GlobalMaxPooling1D", "GlobalMaxPooling2D", GLOBAL_KEYS)
