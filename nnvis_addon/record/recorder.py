"""The Keras callback that records a training run for nnvis (format: nnvis_addon/io/recording.py).

Only this module and from_checkpoints.py import Keras; ``nnvis_addon.record`` loads them lazily.
"""
from __future__ import annotations

import os

import keras
import numpy as np

from ..errors import NNVisError
from ..io.recording import RecordingWriter

_PROBE_BATCH = 32


def activation_model(model, probes: np.ndarray):
    """One Keras model mapping probes to [each of ``model.layers``' outputs..., the model output].

    Refuses (NNVisError) models it cannot record and probes that don't fit the model's input."""
    got = tuple(probes.shape)
    try:
        inputs, outputs = model.inputs, model.outputs
    except AttributeError:      # subclassed, or Sequential without keras.Input and not built
        raise NNVisError(f"Recorder: model '{model.name}' has no defined input shape to check the "
                         f"probes {got} against; record a Functional model, or a Sequential one "
                         "that starts with keras.Input(shape) (or call model.build(input_shape) "
                         "before fit)") from None
    if len(inputs) != 1 or len(outputs) != 1:
        raise NNVisError(f"Recorder: model '{model.name}' has {len(inputs)} inputs and "
                         f"{len(outputs)} outputs; only single-input, single-output models "
                         "can be recorded")
    expected = tuple(inputs[0].shape)
    if len(expected) != len(got) or any(e is not None and e != g
                                        for e, g in zip(expected[1:], got[1:])):
        raise NNVisError(f"Recorder: probes of shape {got} do not fit model '{model.name}', "
                         f"which expects input shape {expected}")
    outs = []
    for layer in model.layers:
        try:
            outs.append(layer.output)
        except (AttributeError, ValueError) as e:   # e.g. a layer used more than once
            raise NNVisError(f"Recorder: cannot record layer '{layer.name}' of model "
                             f"'{model.name}': {e}") from None
    return keras.Model(inputs[0], outs + [outputs[0]])


def snapshot(model, act_model, probes: np.ndarray):
    """(weights, activations, predictions) of ``model`` now, as numpy, ready for write_epoch.

    Calls the activation model directly in inference mode (no ``predict``), so under tf.distribute
    it runs on this process alone, with no collective ops the other workers would have to join."""
    chunks = [act_model(probes[i:i + _PROBE_BATCH], training=False)
              for i in range(0, len(probes), _PROBE_BATCH)]
    outs = [np.concatenate([keras.ops.convert_to_numpy(c[k]) for c in chunks])
            for k in range(len(chunks[0]))]
    layers = model.layers
    weights = {layer.name: layer.get_weights() for layer in layers}
    activations = {layer.name: out for layer, out in zip(layers, outs)}
    return weights, activations, outs[-1]


def is_chief(model) -> bool:
    """Whether this process writes the recording.

    Under tf.distribute we ask TensorFlow whether this worker should write checkpoints
    (``strategy.extended.should_checkpoint``): False on the non-chief workers of a
    MultiWorkerMirroredStrategy cluster (the chief is the "chief" task, or worker 0 when TF_CONFIG
    names none), True in single-process strategies and without a strategy."""
    if keras.backend.backend() != "tensorflow":
        return True
    extended = getattr(getattr(model, "distribute_strategy", None), "extended", None)
    try:
        return bool(getattr(extended, "should_checkpoint", True))
    except NotImplementedError:
        return True


def _learning_rate(model) -> dict[str, float]:
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)    # LossScaleOptimizer
    try:
        return {"learning_rate": float(keras.ops.convert_to_numpy(optimizer.learning_rate))}
    except (AttributeError, TypeError, ValueError):     # no optimizer, or several
        return {}


def _scalar_logs(logs) -> dict[str, float]:
    """The epoch's logs that are numbers (loss, metrics, val_*); per-class vectors are skipped."""
    out = {}
    for key, value in (logs or {}).items():
        value = np.asarray(keras.ops.convert_to_numpy(value))
        if value.size == 1 and value.dtype.kind in "fiub":
            out[str(key)] = float(value.reshape(()))
    return out


class Recorder(keras.callbacks.Callback):
    """Records weights, activations and predictions for a few probe images while ``model.fit`` runs.

    Epoch numbers: the state before the first batch is epoch ``initial_epoch`` (0), the state after
    the n-th training epoch is epoch n. Snapshots: that first one, every ``every``-th epoch, and the
    last epoch of a ``fit`` (or the one where a callback listed before this one stopped training).
    Logs (loss, metrics, val_*, learning_rate) are kept for every epoch. Calling ``fit`` again with
    the same Recorder continues the numbering in the same recording.
    """

    def __init__(self, path, probes, labels=None, every: int = 1, class_names=None):
        super().__init__()
        self.path = os.fspath(path)
        if os.path.exists(self.path) and (not os.path.isdir(self.path) or os.listdir(self.path)):
            raise NNVisError(f"Recorder: {self.path} already exists and is not an empty folder; "
                             "record into a new folder")
        self.probes = np.asarray(probes, dtype=np.float32)
        if self.probes.ndim < 2 or len(self.probes) == 0:
            raise NNVisError(f"Recorder: probes must be an array (P, ...input shape) with P >= 1, "
                             f"got shape {self.probes.shape}")
        self.labels = None if labels is None else np.asarray(labels)
        if self.labels is not None and (self.labels.ndim == 0
                                        or len(self.labels) != len(self.probes)):
            raise NNVisError(f"Recorder: {len(self.probes)} probes but labels of shape "
                             f"{self.labels.shape}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise NNVisError(f"Recorder: every must be a positive integer, got {every!r}")
        self.every = every
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self._writer = None
        self._act_model = None
        self._act_model_of = None       # the model _act_model was built for
        self._chief = True
        self._epoch = None              # the recording's number for the model's current state

    def on_train_begin(self, logs=None):
        model = self.model
        if self._act_model_of is not model:
            self._act_model = activation_model(model, self.probes)
            self._act_model_of = model
            n_out = self._act_model.outputs[-1].shape[-1]
            if self.class_names is not None and n_out != len(self.class_names):
                raise NNVisError(f"Recorder: {len(self.class_names)} class names but model "
                                 f"'{model.name}' outputs {n_out} scores")
        self._chief = is_chief(model)
        if self._chief and self._writer is None:
            self._writer = RecordingWriter(self.path, model.to_json(),
                                           [layer.name for layer in model.layers], self.probes,
                                           self.labels, self.class_names, model.name)

    def on_epoch_begin(self, epoch, logs=None):
        if self._epoch is None:
            self._epoch = epoch
            self._record(_learning_rate(self.model))

    def on_epoch_end(self, epoch, logs=None):
        self._epoch += 1
        metrics = {**_learning_rate(self.model), **_scalar_logs(logs)}
        last = epoch + 1 >= self.params.get("epochs", 0) or getattr(self.model, "stop_training",
                                                                    False)
        if self._epoch % self.every == 0 or last:
            self._record(metrics)
        elif self._chief:
            self._writer.write_metrics(self._epoch, metrics)

    def _record(self, metrics):
        if self._chief:
            weights, activations, predictions = snapshot(self.model, self._act_model, self.probes)
            self._writer.write_epoch(self._epoch, weights, activations, predictions, metrics)
