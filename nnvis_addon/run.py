"""`load_run`: a checkpoint file, a folder of epoch checkpoints → one Run with weights and activations.

Everything is read and computed up front (and checked: every epoch's weights must fit the
architecture), so a scene build never starts on data that would fail halfway.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import NNVisError
from .io import discover as disc
from .io import keras_files, tf_checkpoint
from .model.forward import forward
from .model.network import Network
from .probe import load_probe


class Run:
    """A training run: the network, its recorded epochs, and per epoch its weights and the probe's
    activations (numpy, batch dimension dropped)."""

    def __init__(self, name: str, source: str, network: Network, epochs: list[int],
                 weights: dict[int, dict[str, list[np.ndarray]]], probe: np.ndarray):
        self.name = name
        self.source = source
        self.network = network
        self.epochs = epochs
        self.probe = probe
        self._weights = weights
        self._activations = {e: forward(network, weights[e], probe) for e in epochs}

    @property
    def layers(self):
        return self.network.layers

    def weights(self, layer_name: str, epoch: int) -> list[np.ndarray]:
        self.network.layer(layer_name)
        return list(self._weights[epoch].get(layer_name, []))

    def activations(self, layer_name: str, epoch: int) -> np.ndarray:
        return self._activations[epoch][layer_name]


def read_weights(source: disc.EpochSource, network: Network) -> dict[str, list[np.ndarray]]:
    if source.kind == disc.TF2:
        return tf_checkpoint.read_tf_checkpoint(source.path, network)
    return keras_files.read_weights(source.path, network)


def load_run(path, probe=None, progress=None) -> Run:
    """Read `path` (a .keras file, a .weights.h5 / TF2 checkpoint with its architecture beside it,
    or a folder of per-epoch checkpoints) and compute the probe's activations for every epoch.

    `probe`: an image/.npy path or an array; default a probe.npy/png next to the checkpoints, else
    mid-grey. `progress(fraction, message)` is called as epochs are read.
    """
    path = Path(path)
    found = disc.discover(path)
    network = keras_files.read_network(found.architecture)
    weights = {}
    for k, source in enumerate(found.epochs):
        if progress:
            progress(k / len(found.epochs), f"Reading epoch {source.epoch}: {source.path.name}")
        weights[source.epoch] = read_weights(source, network)
    epochs = [s.epoch for s in found.epochs]
    folder = path if path.is_dir() else path.parent
    probe_array = load_probe(probe, network.input_shape, folder)
    name = path.name if path.is_dir() else path.name.split(".")[0]
    if not epochs:
        raise NNVisError(f"{path}: no epochs to show")
    return Run(name or network.name, str(path), network, epochs, weights, probe_array)
