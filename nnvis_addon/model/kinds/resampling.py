"""Padding, cropping, upsampling and resizing (1D/2D/3D): each map is moved or resampled on its
own, so channel i feeds channel i (edges join matching cells, weight 1). Resizing and the crops
keep the pixels' scale (``geometric``: the probe's pixel scale looks through them)."""
from __future__ import annotations

import numpy as np

from ...errors import NNVisError
from ..kernels import Unsupported, resize_bilinear, smart_resize, upsample
from .cells import same_cells
from .config import KERAS2_KEY, check_dhwc, check_hwc, grow, pad_pairs, pads, pair, sizes
from .one_d import register_1d
from .registry import Kind, register


def _zero_pad_shape(config, shape):
    check_hwc(config, shape)
    (t, b), (l, r) = pad_pairs(config.get("padding", 1), "padding")
    return grow(shape[0], t + b), grow(shape[1], l + r), shape[2]


def _zero_pad_apply(config, weights, x):
    (t, b), (l, r) = pad_pairs(config.get("padding", 1), "padding")
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))


def _crop_shape(config, shape):
    check_hwc(config, shape)
    (t, b), (l, r) = pad_pairs(config.get("cropping", 0), "cropping")
    out = grow(shape[0], -t - b), grow(shape[1], -l - r)
    if any(n is not None and n <= 0 for n in out):
        raise NNVisError(f"cropping {config.get('cropping')!r} leaves nothing of {shape}")
    return (*out, shape[2])


def _crop_apply(config, weights, x):
    (t, b), (l, r) = pad_pairs(config.get("cropping", 0), "cropping")
    return x[:, t:x.shape[1] - b, l:x.shape[2] - r]


def _upsample_shape(config, shape):
    check_hwc(config, shape)
    a, b = pair(config.get("size", 2), "size")
    return (None if shape[0] is None else shape[0] * a,
            None if shape[1] is None else shape[1] * b, shape[2])


def _upsample_apply(config, weights, x):
    return upsample(x, pair(config.get("size", 2), "size"), config.get("interpolation", "nearest"))


def _target_size(config) -> tuple[int, int]:
    return pair([config["height"], config["width"]], "height/width")


def _resize_shape(config, shape):
    check_hwc(config, shape)
    if config.get("interpolation", "bilinear") != "bilinear" or config.get("antialias") \
            or config.get("pad_to_aspect_ratio"):
        raise Unsupported("only bilinear Resizing without antialias or padding is supported")
    return (*_target_size(config), shape[2])


def _resize_apply(config, weights, x):
    """Keras' Resizing: bilinear (half-pixel), after a centred aspect-ratio crop if asked."""
    h, w = _target_size(config)
    resize = smart_resize if config.get("crop_to_aspect_ratio") else resize_bilinear
    return np.stack([resize(image, h, w) for image in x])


def _center_crop_shape(config, shape):
    check_hwc(config, shape)
    return (*_target_size(config), shape[2])


def _center_crop_apply(config, weights, x):
    """Keras' CenterCrop: a centred window when the image is large enough, else smart_resize."""
    h, w = _target_size(config)
    H, W = x.shape[1:3]
    if H >= h and W >= w:
        top, left = (H - h) // 2, (W - w) // 2
        return x[:, top:top + h, left:left + w]
    return np.stack([smart_resize(image, h, w) for image in x])


def _random_crop_shape(config, shape):
    check_hwc(config, shape)
    _target_size(config)
    return (*_target_size(config), shape[2]) if config.get(KERAS2_KEY) else tuple(shape)


def _random_crop_apply(config, weights, x):
    """RandomCrop at inference (training=False, as model.predict): Keras 2 smart_resizes to
    (height, width) (tf.keras 2.15 `RandomCrop.call`); Keras 3 passes the image through uncropped
    (`transform_images` crops only when training), whatever shape its config declares."""
    if not config.get(KERAS2_KEY):
        return x
    h, w = _target_size(config)
    return np.stack([smart_resize(image, h, w) for image in x])


def _zero_pad3d_shape(config, shape):
    check_dhwc(config, shape)
    amounts = pads(config.get("padding", 1), 3, "padding")
    return (*(grow(n, a + b) for n, (a, b) in zip(shape, amounts)), shape[-1])


def _zero_pad3d_apply(config, weights, x):
    return np.pad(x, ((0, 0), *pads(config.get("padding", 1), 3, "padding"), (0, 0)))


def _crop3d_shape(config, shape):
    check_dhwc(config, shape)
    crops = pads(config.get("cropping", 1), 3, "cropping")
    out = tuple(grow(n, -a - b) for n, (a, b) in zip(shape, crops))
    if any(n is not None and n <= 0 for n in out):
        raise NNVisError(f"cropping {config.get('cropping')!r} leaves nothing of {shape}")
    return (*out, shape[-1])


def _crop3d_apply(config, weights, x):
    crops = pads(config.get("cropping", 1), 3, "cropping")
    return x[(slice(None),) + tuple(slice(a, n - b) for (a, b), n in zip(crops, x.shape[1:4]))]


def _upsample3d_shape(config, shape):
    check_dhwc(config, shape)
    factors = sizes(config.get("size", 2), 3, "size")
    return (*(None if n is None else n * f for n, f in zip(shape, factors)), shape[-1])


def _upsample3d_apply(config, weights, x):
    for axis, f in enumerate(sizes(config.get("size", 2), 3, "size"), start=1):
        x = x.repeat(f, axis=axis)
    return x


def _zero_pad_window(config, in_hw):
    (top, _), (left, _) = pad_pairs(config.get("padding", 1), "padding")
    return (1.0, 1.0), (-float(top), -float(left)), (1, 1)


def _crop_window(config, in_hw):
    (top, _), (left, _) = pad_pairs(config.get("cropping", 0), "cropping")
    return (1.0, 1.0), (float(top), float(left)), (1, 1)


def _upsample_window(config, in_hw):
    a, b = pair(config.get("size", 2), "size")
    return (1.0 / a, 1.0 / b), (0.0, 0.0), (1, 1)


def _resampling(name, apply, shape, keys, **facts) -> Kind:
    return register(Kind(name, apply, shape, config_keys=keys, edges=same_cells, passes=True,
                         mapwise=True, **facts))


_SIZE = {"height", "width"}
_resampling("ZeroPadding2D", _zero_pad_apply, _zero_pad_shape, {"padding"},
            window=_zero_pad_window)
_resampling("Cropping2D", _crop_apply, _crop_shape, {"cropping"}, window=_crop_window)
_resampling("UpSampling2D", _upsample_apply, _upsample_shape, {"interpolation", "size"},
            window=_upsample_window)
_resampling("Resizing", _resize_apply, _resize_shape,
            _SIZE | {"interpolation", "crop_to_aspect_ratio", "pad_to_aspect_ratio", "fill_mode",
                     "fill_value", "antialias"}, geometric=True)
_resampling("CenterCrop", _center_crop_apply, _center_crop_shape, _SIZE, geometric=True)
_resampling("RandomCrop", _random_crop_apply, _random_crop_shape, _SIZE, geometric=True,
            keras2_formula=True)
_resampling("ZeroPadding3D", _zero_pad3d_apply, _zero_pad3d_shape, {"padding"})
_resampling("Cropping3D", _crop3d_apply, _crop3d_shape, {"cropping"})
_resampling("UpSampling3D", _upsample3d_apply, _upsample3d_shape, {"size"})
register_1d("ZeroPadding1D", "ZeroPadding2D", {"padding"}, lifts="padding")
register_1d("Cropping1D", "Cropping2D", {"cropping"}, lifts="cropping")
register_1d("UpSampling1D", "UpSampling2D", {"size"}, lifts="size")
