"""Build a recording from per-epoch Keras checkpoints a user already has (runs Keras, not Blender).

The recording then holds no training logs (the checkpoints don't have them); everything else is as
if the Recorder had watched the run.
"""
from __future__ import annotations

import os
import warnings

import keras
import numpy as np

from ..errors import NNVisError
from ..io.recording import read_recording, RecordingWriter
from .recorder import activation_model


def _load_architecture(path: str):
    try:
        if path.endswith(".keras"):
            return keras.models.load_model(path, compile=False)
        if path.endswith(".json"):
            with open(path, encoding="utf-8") as f:
                return keras.models.model_from_json(f.read())
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise NNVisError(f"{path}: cannot build the model from it ({e})") from None
    raise NNVisError(f"{path}: expected a .keras model or a .json architecture "
                     "(model.to_json())")


def record_checkpoints(architecture_path, epoch_files, probes, out, labels=None,
                       class_names=None):
    """Write a recording at ``out`` from ``epoch_files``: (epoch, path) pairs of ``.keras`` or
    ``.weights.h5`` files holding the weights of the model ``architecture_path`` describes (a
    ``.keras`` model or a ``model.to_json()`` file). Returns the loaded Recording."""
    architecture_path = os.fspath(architecture_path)
    epoch_files = sorted((int(e), os.fspath(p)) for e, p in epoch_files)
    epochs = [e for e, _ in epoch_files]
    if not epochs or len(set(epochs)) != len(epochs):
        raise NNVisError(f"{os.fspath(out)}: need distinct epoch numbers, got {epochs}")
    for _, path in epoch_files:
        if not path.endswith((".keras", ".weights.h5")):
            raise NNVisError(f"{path}: expected a .keras or .weights.h5 checkpoint")
        if not os.path.isfile(path):
            raise NNVisError(f"{path}: no such checkpoint file")
    model = _load_architecture(architecture_path)
    probes = np.asarray(probes, dtype=np.float32)
    act_model = activation_model(model, probes)
    writer = RecordingWriter(out, act_model.architecture(), act_model.names(), probes, labels,
                             class_names, model.name)
    for epoch, path in epoch_files:
        try:
            with warnings.catch_warnings():     # a .keras file's optimizer state: not needed
                warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
                model.load_weights(path)
        except (OSError, ValueError, KeyError) as e:
            raise NNVisError(f"{path}: cannot load its weights into the model from "
                             f"{architecture_path} ({e})") from None
        writer.write_epoch(epoch, *act_model.snapshot(probes))
    return read_recording(writer.path)
