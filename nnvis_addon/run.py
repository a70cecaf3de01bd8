"""`load_run`: a checkpoint, a folder of epoch checkpoints or a recording → one Run.

Everything is read and computed up front (and checked: every epoch's weights must fit the
architecture), so a scene build never starts on data that would fail halfway. Activations come from
the recording when it has them (TensorFlow's own numbers), else from the numpy forward pass.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import budget
from .errors import NNVisError
from .io import discover as disc
from .io import keras_files, recording, tf_checkpoint
from .io.onnx import read_onnx_epoch, read_onnx_weights
from .io.stored import loaded
from .model.forward import forward_batch_partial, forward_missing
from .model.keras_config import network_from_config, with_input_shape
from .model.network import Network
from .model.kinds import KERAS2_KEY, SHARED_KEY, is_
from .model.ops import unread_keys
from .probe import DEFAULT_SIZE, load_probes


def config_warnings(network: Network) -> list[str]:
    """One line per layer whose config has keys nnvis does not read (ops.unread_keys), and per
    Keras 3 RandomCrop that inference leaves at another size than its own (ops: it differs from
    the model summary)."""
    lines = []
    for layer in network.layers:
        if is_(layer.kind, "keras2_formula") and not layer.config.get(KERAS2_KEY) and \
                tuple(layer.output_shape[:2]) != (layer.config.get("height"),
                                                  layer.config.get("width")):
            lines.append(f"layer {layer.name!r} (RandomCrop): Keras 3 crops only in training; at "
                         f"inference (model.predict) the image passes uncropped, "
                         f"{layer.output_shape}, and so it is shown")
        keys = unread_keys(layer.kind, layer.config)
        if keys:
            lines.append(f"layer {layer.name!r} ({layer.kind}): config "
                         f"{'keys' if len(keys) > 1 else 'key'} {', '.join(map(repr, keys))} not "
                         "understood by nnvis; its activations may differ from Keras'")
    return lines


class Run:
    """A training run: the network, its recorded epochs, per epoch the weights and the probes'
    activations (numpy), and — from a recording — the training metrics and predictions.

    `probes` is (P, *input_shape); the scene shows probe `probe_index`. `activations(layer, epoch)`
    and `probe` are that probe's (batch dimension dropped); `predictions(epoch)` is (P, classes).
    A multi-input model's `probes` is {input name: (P, *shape)} in the model's input order;
    `probe` is then the first input's (each input's own probe is its InputLayer's activations).
    """

    def __init__(self, name: str, source: str, network: Network, epochs: list[int],
                 weights: dict[int, dict[str, list[np.ndarray]]], probes: np.ndarray,
                 activations: dict[int, dict[str, np.ndarray]] | None = None,
                 predictions: dict[int, np.ndarray] | None = None,
                 metrics: dict[int, dict[str, float]] | None = None, labels=None,
                 class_names: list[str] | None = None, probe_index: int = 0,
                 warnings: list[str] | None = None):
        if not epochs:
            raise NNVisError(f"{source}: no epochs to show")
        count = len(next(iter(probes.values()))) if isinstance(probes, dict) else len(probes)
        if not 0 <= probe_index < count:
            raise NNVisError(f"{source}: probe {probe_index} asked for, the run has {count}")
        self.name = name
        self.source = source
        self.network = network
        self.epochs = list(epochs)
        self.probes = probes
        self.probe_index = probe_index
        self.labels = labels
        self.class_names = class_names
        self.metrics = metrics or {}
        self.warnings = list(warnings or []) + config_warnings(network)
        self._weights = weights
        start = time.perf_counter()
        if activations is None:
            activations, skipped = {}, {}
            for e in self.epochs:                   # one epoch's weights in memory at a time
                activations[e], skipped = forward_batch_partial(network, loaded(weights[e]),
                                                                probes)
            self.warnings += [f"layer {name!r}: no activations ({why})" for name, why in
                              skipped.items()]
        self.forward_seconds = time.perf_counter() - start   # 0 when the recording had them
        self.probe_source = None      # load_run: the probe path asked for (a refresh reuses it)
        self._activations = activations
        output = network.output
        if predictions is None and output in activations[self.epochs[0]]:
            predictions = {e: activations[e][output] for e in self.epochs}
        self._predictions = predictions or {}

    @property
    def layers(self):
        return self.network.layers

    @property
    def probe(self) -> np.ndarray:
        probes = self.probes
        if isinstance(probes, dict):
            probes = probes[self.network.inputs[0]]
        return np.asarray(probes[self.probe_index])

    @property
    def label(self):
        """The shown probe's true label, if the run knows it."""
        return None if self.labels is None else self.labels[self.probe_index]

    def weights(self, layer_name: str, epoch: int) -> list[np.ndarray]:
        """The layer's weights; a shared layer's later call (`name@i`) has the original's."""
        owner = self.network.layer(layer_name).config.get(SHARED_KEY, layer_name)
        return list(self._weights[epoch].get(owner, []))

    def has_activations(self, layer_name: str) -> bool:
        """False for layers nnvis cannot compute (unknown kinds, and layers fed by them)."""
        return layer_name in self._activations[self.epochs[0]]

    def activations(self, layer_name: str, epoch: int) -> np.ndarray:
        if not self.has_activations(layer_name):
            raise NNVisError(f"layer {layer_name!r}: no activations (see run.warnings)")
        return np.asarray(self._activations[epoch][layer_name][self.probe_index])

    def predictions(self, epoch: int) -> np.ndarray | None:
        """(P, classes) class scores, None if the output layer could not be computed."""
        found = self._predictions.get(epoch)
        return None if found is None else np.asarray(found)


def read_weights(source: disc.EpochSource, network: Network) -> dict[str, list[np.ndarray]]:
    if source.kind == disc.TF2:
        return tf_checkpoint.read_tf_checkpoint(source.path, network)
    if source.kind == disc.ONNX:
        return read_onnx_weights(source.path, network)
    return keras_files.read_weights(source.path, network)


def is_recording(path: Path) -> bool:
    manifest = path / recording.MANIFEST if path.is_dir() else path
    return manifest.name == recording.MANIFEST and manifest.is_file() and \
        b"nnvis-recording" in manifest.read_bytes()[:4096]


def load_run(path, probe=None, probe_index: int = 0, progress=None,
             memory_limit: int | None = None, epochs=None, on_bad_epoch=None) -> Run:
    """Read `path` and compute what the scene shows.

    `path`: a recording folder (or its manifest.json), a .keras or .onnx file, a .weights.h5 /
    TF2 checkpoint with its architecture beside it, or a folder of per-epoch checkpoints.
    `probe`: an image/.npy path or an array fed through the network instead of the recording's
    probes; default the recording's probe `probe_index`, or a probe.npy/png next to the checkpoints,
    else mid-grey. `progress(fraction, message)` is called as epochs are read. A run that would
    need more than `memory_limit` bytes (default: most of the free memory) is refused up front.
    `epochs`: only these epoch numbers (default all). `on_bad_epoch(epoch, message)`: an epoch
    that does not read is left out and reported there instead of failing the whole run (live
    refresh: a corrupt new checkpoint must not cost the epochs already shown).
    """
    path = Path(path)
    if is_recording(path):
        run = _load_recording(path if path.is_dir() else path.parent, probe, probe_index,
                              progress, memory_limit, epochs, on_bad_epoch)
    else:
        run = _load_checkpoints(path, probe, progress, memory_limit, epochs, on_bad_epoch)
    run.probe_source = probe if probe is None or isinstance(probe, (str, Path)) else "<array>"
    return run


def _read_or_report(epoch, read, on_bad_epoch):
    """`read()`, or None after telling `on_bad_epoch` why it failed (raises without one)."""
    if on_bad_epoch is None:
        return read()
    try:
        return read()
    except NNVisError as exc:
        on_bad_epoch(epoch, str(exc))
        return None


def _load_checkpoints(path: Path, probe, progress, memory_limit, epochs, on_bad_epoch) -> Run:
    found = disc.discover(path)
    found.epochs = [s for s in found.epochs if epochs is None or s.epoch in epochs]
    if not found.epochs:
        raise NNVisError(f"{path}: none of the epochs {list(epochs)} is there")
    first = None                     # an ONNX file is architecture and weights in one
    if found.epochs[0].kind == disc.ONNX:
        network, first = read_onnx_epoch(found.epochs[0].path)
        # titled after what the user picked: exporters name every graph alike ("main_graph",
        # "torch_jit"); a folder of epoch files by the folder
        network = replace(network, name=Path(found.epochs[0].path).stem
                          if len(found.epochs) == 1 else Path(found.epochs[0].path).parent.name)
    else:
        network = keras_files.read_network(found.architecture)
    folder = path if path.is_dir() else path.parent
    probes = load_probes(probe, network, folder)
    network, warnings = _sized(network, probes, probe, str(found.architecture))
    in_file = all(s.path.name.endswith((".weights.h5", ".keras")) for s in found.epochs)
    budget.check(network, len(found.epochs), 1, str(path), memory_limit,   # io.stored: one
                 weight_epochs=1 if in_file else None)                     # epoch at a time
    weights = {}
    for k, source in enumerate(found.epochs):
        if progress:
            progress(k / len(found.epochs), f"Reading epoch {source.epoch}: {source.path.name}")
        read = _read_or_report(source.epoch, lambda: first if k == 0 and first is not None else
                               read_weights(source, network), on_bad_epoch)
        if read is not None:
            weights[source.epoch] = read
    name = path.name if path.is_dir() else path.name.split(".")[0]
    return Run(name or network.name, str(path), network, sorted(weights), weights, probes,
               warnings=warnings)


def _sized(network: Network, probes: np.ndarray, probe, source: str) -> tuple[Network, list[str]]:
    """A variable-size model (None in its input shapes) at the probes' sizes, and a warning when
    that size is nnvis' default rather than a probe's."""
    sizes = {n: network.layer(n).output_shape for n in network.inputs}
    variable = [n for n, shape in sizes.items() if None in shape]
    if not variable:
        return network, []
    warnings = [] if probe is not None else [
        f"the model's input {n!r} takes any size {sizes[n]}; without a probe it is shown at "
        f"{DEFAULT_SIZE}×{DEFAULT_SIZE} (pass a probe image to choose)" for n in variable]
    given = probes if isinstance(probes, dict) else {network.inputs[0]: probes}
    return with_input_shape(network, {n: given[n].shape[1:] for n in sizes}, source), warnings


def _load_recording(folder: Path, probe, probe_index: int, progress, memory_limit,
                    epochs=None, on_bad_epoch=None) -> Run:
    rec = recording.read_recording(folder, epochs)
    network = network_from_config(rec.architecture, str(folder / recording.ARCHITECTURE))
    wanted = rec.epochs
    budget.check(network, len(wanted), 1 if probe is not None else len(rec.probes),
                 str(folder), memory_limit)
    weights, activations, predictions, skipped = {}, {}, {}, {}
    for k, epoch in enumerate(wanted):
        if progress:
            progress(k / len(wanted), f"Reading recorded epoch {epoch}")

        def read(epoch=epoch):
            acts = rec.activations(epoch) if probe is None else None
            return rec.weights(epoch), acts, None if probe is not None else \
                rec.predictions(epoch)

        read = _read_or_report(epoch, read, on_bad_epoch)
        if read is None:
            continue
        weights[epoch], acts, preds = read
        if probe is None:
            acts.setdefault(network.layers[0].name, rec.probes)   # a Sequential's InputLayer
            if any(layer.name not in acts for layer in network.layers):     # Keras ops: computed
                acts, skipped = forward_missing(network, weights[epoch], acts)
            activations[epoch] = acts
            predictions[epoch] = preds
    if probe is not None:
        probes, labels, activations, predictions = load_probes(probe, network), None, None, None
        probe_index = 0
    else:
        probes, labels = np.asarray(rec.probes), rec.labels
    return Run(folder.name or rec.model_name, str(folder), network, sorted(weights), weights, probes,
               activations=activations, predictions=predictions, metrics=rec.metrics,
               labels=labels, class_names=rec.class_names, probe_index=probe_index,
               warnings=rec.warnings + [f"layer {name!r}: no activations ({why})"
                                        for name, why in skipped.items()])
