"""Legacy Keras HDF5 weights (`model.save("m.h5")`, `save_weights("w.h5")`), keyed by layer name.

Keras 2's default format, still written by Keras 3 for a `.h5` name: a group per layer, listed in
the `layer_names` attribute (under `model_weights/` in a full model, whose `model_config` attribute
is the architecture), each with a `weight_names` attribute giving its datasets in `get_weights()`
order (keras/src/legacy/saving/legacy_h5_format.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import NNVisError
from ..model.network import Network
from .hdf5 import array, attribute


def is_legacy(h5) -> bool:
    return "layers" not in h5 and (attribute(h5, "layer_names") is not None
                                   or "model_weights" in h5)


def read_weights(h5, network: Network, path: Path, file_size: int
                         ) -> dict[str, list[np.ndarray]]:
    """Legacy HDF5 weights: per stored layer group, its `weight_names` datasets in order.

    A group named like a network layer is that layer's; a nested model's group holds its inner
    layers' weights, each named `<inner layer>/<variable>:0`. If names do not place every
    array, they are handed out in order, as Keras 2's own `load_weights` does; shapes are
    checked either way.
    """
    root = h5["model_weights"] if "model_weights" in h5 else h5
    names = attribute(root, "layer_names")
    if not isinstance(names, list):
        raise NNVisError(f"{path}: no 'layer_names' attribute: not a Keras weights file")
    wanted = [layer for layer in network.layers if layer.weight_shapes]
    by_name = {layer.name: [] for layer in wanted}
    flat, placed = [], True
    for name in names:
        for weight_name, array in _legacy_group(root, name, path, file_size):
            flat.append(array)
            owner = name if name in by_name else next(
                (p for p in reversed(weight_name.split("/")[:-1]) if p in by_name), None)
            if owner is None:
                placed = False
            else:
                by_name[owner].append(array)
    if not placed or any(len(by_name[layer.name]) != len(layer.weight_shapes)
                         for layer in wanted):
        need = sum(len(layer.weight_shapes) for layer in wanted)
        if len(flat) != need:
            raise NNVisError(f"{path}: holds {len(flat)} weight arrays in layers "
                             f"{', '.join(names)}; the architecture needs {need}: saved from a "
                             "different architecture?")
        start = 0
        for layer in wanted:
            by_name[layer.name] = flat[start:start + len(layer.weight_shapes)]
            start += len(layer.weight_shapes)
    for layer in wanted:
        got = [tuple(a.shape) for a in by_name[layer.name]]
        if got != [tuple(s) for s in layer.weight_shapes]:
            raise NNVisError(f"{path}: layer {layer.name!r} ({layer.kind}) has weights of shapes "
                             f"{got}, expected {[tuple(s) for s in layer.weight_shapes]}")
    return by_name


def _legacy_group(root, name: str, path: Path, file_size: int) -> list[tuple[str, np.ndarray]]:
    try:        # opened once: a pyfive group reads its link table each time it is opened
        group = root[name]
    except KeyError:
        group = None
    if group is None:
        raise NNVisError(f"{path}: layer group {name!r} listed in layer_names is missing")
    weight_names = attribute(group, "weight_names")
    found = []
    for weight_name in weight_names if isinstance(weight_names, list) else []:
        try:
            dataset = group[weight_name]
        except (KeyError, ValueError):
            raise NNVisError(f"{path}: layer {name!r} lacks its weight {weight_name!r}") from None
        where = f"{path}: layer {name!r} weight {weight_name!r}"
        found.append((weight_name, array(dataset, tuple(int(d) for d in dataset.shape), where,
                                          file_size)))
    return found
