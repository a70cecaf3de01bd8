"""The Keras callback that records a training run for nnvis (format: nnvis_addon/io/recording.py).

Only this module, subclassed.py and from_checkpoints.py import Keras; ``nnvis_addon.record`` loads
them lazily.
"""
from __future__ import annotations

import os

import keras
import numpy as np

from ..errors import NNVisError
from ..io.recording import RecordingWriter
from .subclassed import CallGraph, is_subclassed

_PROBE_BATCH = 32


def recorded_layers(model) -> list:
    """The layers a recording holds, as nnvis draws them: ``model.layers`` with every nested model
    (a transfer-learning backbone) replaced by its own layers, its InputLayer left out
    (keras_config flattens the architecture the same way)."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out += [inner for inner in recorded_layers(layer)
                    if not isinstance(inner, keras.layers.InputLayer)]
        else:
            out.append(layer)
    return out


def _call(model, layer):
    """(input, output) tensors of ``layer``'s one call in ``model``'s graph. A nested model's own
    ``.input``/``.output`` are those of its inner graph, so its call node is asked instead."""
    if not isinstance(layer, keras.Model):
        try:
            return None, layer.output
        except (AttributeError, ValueError) as e:   # e.g. a layer used more than once
            raise NNVisError(f"Recorder: cannot record layer '{layer.name}' of model "
                             f"'{model.name}': {e}") from None
    nodes = getattr(layer, "_inbound_nodes", [])
    calls = [n for n in nodes if n.input_tensors]       # a Functional's own Input node has none
    if len(calls) != 1 or len(calls[0].input_tensors) != 1:
        raise NNVisError(f"Recorder: nested model '{layer.name}' of '{model.name}' is called "
                         f"{len(calls)} times or with several inputs; nnvis records a nested model "
                         "called once on one input")
    return calls[0].input_tensors[0], calls[0].output_tensors[0]


class ActivationModel:
    """Maps probes to each of ``recorded_layers(model)``' outputs (in that order), then the model
    output. A nested model's inner layers are computed by an extractor of their own, fed with what
    the outer graph feeds the nested model (its inner tensors are not in the outer graph)."""

    def __init__(self, model, inputs=None):
        nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
        outs = [_call(model, layer)[1] for layer in model.layers]
        feeds = [_call(model, layer)[0] for layer in nested]
        self.model = model
        self.outer = keras.Model(inputs if inputs is not None else model.inputs[0],
                                 outs + feeds + [model.outputs[0]])
        self.inner = {layer.name: ActivationModel(layer, layer.inputs[0]) for layer in nested}
        self.layers = model.layers
        self.output_size = self.outer.outputs[-1].shape[-1]

    def __call__(self, probes, training=False) -> list:
        outs = list(self.outer(probes, training=training))
        count = len(self.layers)
        fed = dict(zip(self.inner, outs[count:-1]))
        found = []
        for layer, out in zip(self.layers, outs):
            if layer.name in self.inner:
                inner = self.inner[layer.name](fed[layer.name], training)[:-1]
                found += [o for l, o in zip(recorded_layers(layer), inner)
                          if not isinstance(l, keras.layers.InputLayer)]
            else:
                found.append(out)
        return found + [outs[-1]]

    def names(self) -> list[str]:
        """The recorded layers' names, in the recording's order."""
        return [layer.name for layer in recorded_layers(self.model)]

    def architecture(self) -> str:
        return self.model.to_json()

    def snapshot(self, probes: np.ndarray):
        """(weights, activations, predictions) of the model now, as numpy, ready for write_epoch;
        nested models' layers under their own names (``recorded_layers``).

        Calls the extractor directly in inference mode (no ``predict``), so under tf.distribute it
        runs on this process alone, with no collective ops the other workers would have to join."""
        chunks = [self(probes[i:i + _PROBE_BATCH], training=False)
                  for i in range(0, len(probes), _PROBE_BATCH)]
        outs = [np.concatenate([keras.ops.convert_to_numpy(c[k]) for c in chunks])
                for k in range(len(chunks[0]))]
        layers = recorded_layers(self.model)
        weights = {layer.name: layer.get_weights() for layer in layers}
        activations = {layer.name: out for layer, out in zip(layers, outs)}
        return weights, activations, outs[-1]


def activation_model(model, probes: np.ndarray):
    """What records ``model``: its ``ActivationModel``, or for a subclassed model the
    ``subclassed.CallGraph`` of its sublayer calls on the probes (same interface).

    Refuses (NNVisError) models it cannot record and probes that don't fit the model's input."""
    got = tuple(probes.shape)
    if is_subclassed(model):
        return CallGraph(model, probes)
    try:
        inputs, outputs = model.inputs, model.outputs
    except AttributeError:      # a Sequential without keras.Input, not built
        raise NNVisError(f"Recorder: model '{model.name}' has no defined input shape to check the "
                         f"probes {got} against; start the Sequential with keras.Input(shape) "
                         "(or call model.build(input_shape) before fit)") from None
    if len(inputs) != 1 or len(outputs) != 1:
        raise NNVisError(f"Recorder: model '{model.name}' has {len(inputs)} inputs and "
                         f"{len(outputs)} outputs; only single-input, single-output models "
                         "can be recorded")
    expected = tuple(inputs[0].shape)
    if len(expected) != len(got) or any(e is not None and e != g
                                        for e, g in zip(expected[1:], got[1:])):
        raise NNVisError(f"Recorder: probes of shape {got} do not fit model '{model.name}', "
                         f"which expects input shape {expected}")
    return ActivationModel(model)


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
            n_out = self._act_model.output_size
            if self.class_names is not None and n_out != len(self.class_names):
                raise NNVisError(f"Recorder: {len(self.class_names)} class names but model "
                                 f"'{model.name}' outputs {n_out} scores")
        self._chief = is_chief(model)
        if self._chief and self._writer is None:
            self._writer = RecordingWriter(self.path, self._act_model.architecture(),
                                           self._act_model.names(), self.probes,
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
            self._writer.write_epoch(self._epoch, *self._act_model.snapshot(self.probes), metrics)
