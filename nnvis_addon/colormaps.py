"""Colour maps for activations and weights: perceptually uniform, sampled from matplotlib's tables.

17 evenly spaced stops each (sRGB, as matplotlib defines them); Blender's Color Ramp interpolates
between them in linear light, so stops are converted with `srgb_to_linear` when built. Sequential maps
(viridis, inferno) suit non-negative outputs such as ReLU's; the diverging coolwarm suits signed values
(weights, linear layers), with white-grey at zero.
"""
from __future__ import annotations

import numpy as np

STOPS = {
    "viridis": [
        (0.267, 0.0049, 0.3294), (0.2823, 0.095, 0.4173), (0.2788, 0.1755, 0.4834),
        (0.259, 0.2515, 0.5247), (0.2297, 0.3224, 0.5457), (0.1994, 0.3876, 0.5546),
        (0.1727, 0.4488, 0.5579), (0.149, 0.5081, 0.5573), (0.1276, 0.5669, 0.5506),
        (0.1201, 0.6222, 0.5349), (0.1539, 0.6802, 0.5042), (0.2394, 0.7356, 0.4557),
        (0.3607, 0.786, 0.3878), (0.5063, 0.8288, 0.3004), (0.6681, 0.862, 0.1963),
        (0.8353, 0.886, 0.1026), (0.9932, 0.9062, 0.1439)],
    "inferno": [
        (0.0015, 0.0005, 0.0139), (0.0423, 0.0281, 0.1411), (0.1293, 0.0473, 0.2908),
        (0.2383, 0.0366, 0.3964), (0.3415, 0.0623, 0.4294), (0.4412, 0.0993, 0.4316),
        (0.5409, 0.1347, 0.4151), (0.6401, 0.1714, 0.3811), (0.7357, 0.2159, 0.3302),
        (0.8173, 0.271, 0.2704), (0.8903, 0.348, 0.1983), (0.9443, 0.4428, 0.1204),
        (0.9771, 0.5508, 0.0391), (0.9879, 0.6677, 0.0583), (0.9761, 0.79, 0.196),
        (0.9487, 0.9105, 0.3953), (0.9884, 0.9984, 0.6449)],
    "coolwarm": [
        (0.2298, 0.2987, 0.7537), (0.3039, 0.4065, 0.845), (0.383, 0.5094, 0.9174),
        (0.4667, 0.6046, 0.9682), (0.553, 0.6889, 0.9954), (0.6392, 0.7596, 0.9982),
        (0.7222, 0.814, 0.9766), (0.7987, 0.8498, 0.9317), (0.8654, 0.8654, 0.8654),
        (0.9241, 0.8274, 0.7745), (0.9589, 0.7698, 0.678), (0.97, 0.6943, 0.5794),
        (0.958, 0.6028, 0.4818), (0.9239, 0.4973, 0.388), (0.8692, 0.3783, 0.3003),
        (0.7956, 0.2413, 0.2205), (0.7057, 0.0156, 0.1502)],
}
DIVERGING = frozenset({"coolwarm"})


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def sample(name: str, t) -> np.ndarray:
    """sRGB colours of map `name` at positions t in [0, 1] (what the scene's ramp shows)."""
    stops = np.asarray(STOPS[name])
    x = np.linspace(0.0, 1.0, len(stops))
    t = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)
    return np.stack([np.interp(t, x, stops[:, k]) for k in range(3)], axis=-1)
