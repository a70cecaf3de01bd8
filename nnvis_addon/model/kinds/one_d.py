"""1D kinds over (L, C) maps, each computed as the 2D kind it names on a map one row high: its
kernels gain a leading axis of one, outputs lose it; it draws and links as the 2D kind does."""
from __future__ import annotations

from dataclasses import replace

from ...errors import NNVisError
from .config import check_channels_last, pair, sizes
from .registry import Kind, get, register


def _lift(lifts: str, config: dict) -> dict:
    """A 1D kind's config as its 2D kind's: every window one row high, pads only along L; a
    causal convolution becomes explicit left padding."""
    lifted = dict(config)
    for key in ("kernel_size", "strides", "dilation_rate", "pool_size"):
        if config.get(key) is not None:
            lifted[key] = (1, *sizes(config[key], 1, key))
    if lifts == "size":
        lifted["size"] = (1, *sizes(config.get("size", 2), 1, "size"))
    elif lifts in ("padding", "cropping"):
        lifted[lifts] = ((0, 0), pair(config.get(lifts, 1), lifts, 0))    # int or (before, after)
    elif config.get("padding") == "causal":
        (k,), (d,) = sizes(config["kernel_size"], 1), sizes(config.get("dilation_rate", 1), 1)
        lifted["padding"] = ((0, 0), ((k - 1) * d, 0))
    return lifted


def register_1d(name: str, of: str, config_keys, lifts: str = "window") -> Kind:
    """Register `name` as the registered 2D kind `of` on (N, 1, L, C); `lifts` names the config
    key that changes meaning ("size", "padding", "cropping"; else the window keys)."""
    base = get(of)

    def shape(config, shape):
        check_channels_last(config)
        if len(shape) != 2:
            raise NNVisError(f"expected an (L, C) input, got shape {shape}")
        out = base.shape(_lift(lifts, config), (1, *shape))
        return out[1:] if len(out) == 3 else out

    def weights(config, shape):
        return [w[1:] if len(w) >= 4 else w
                for w in base.weights(_lift(lifts, config), (1, *shape))]

    def apply(config, weights, x):
        y = base.apply(_lift(lifts, config), [w[None] if w.ndim >= 3 else w for w in weights],
                       x[:, None])
        return y[:, 0] if y.ndim == 4 else y
    return register(replace(base, name=name, apply=apply, shape=shape, weights=weights,
                            config_keys=config_keys, window=None, design=None,
                            geometric=False))
