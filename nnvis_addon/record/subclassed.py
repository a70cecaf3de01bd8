"""Recording a subclassed ``keras.Model``: the sublayer calls seen while it runs on the probes.

A subclassed model has no layer graph (its ``call()`` is Python), so the Recorder watches it run:
every call of a *leaf* sublayer (a Keras built-in layer, or a user layer holding no layers) is a
recorded layer named by its attribute path (``stem.0``, ``blocks.1.conv``, like PyTorch's
``named_modules``), a later call of the same layer ``path@1``. Blocks (user layers holding layers,
nested models, ``Sequential``) are not layers: their leaves are. A tensor that ``call()`` code
computes between layers (``x + y``, ``tf.nn.relu(x)``) and a layer then reads is a recorded layer
too, of kind ``<Class>.call`` named ``<path>.call`` after the block whose ``call()`` made it: nnvis
shows its recorded values but cannot compute it.

Edges follow tensor identity: a layer reads the recorded layer whose output tensor it was given.
What a ``<Class>.call`` tensor was computed from is found with TensorFlow's gradient tape (the
nearest recorded tensors it depends on through code alone, each layer's inputs cut off); on
another Keras backend it is drawn as reading the tensor recorded just before it (call order).
"""
from __future__ import annotations

import contextlib

import keras
import numpy as np

from ..errors import NNVisError
from ..model.kinds import INPUT
from .architecture import RecordedLayer, functional_config, unique

_PROBE_BATCH = 32
CODE_SUFFIX = ".call"


def is_subclassed(model) -> bool:
    """A model whose layers are its ``call()`` code's business: not Sequential, not Functional."""
    from keras.src.models.functional import Functional
    return not isinstance(model, (keras.Sequential, Functional))


def named_layers(model) -> list[tuple[str, object, bool]]:
    """(attribute path, layer, is leaf) of every layer under ``model``, the model itself first
    (path ""); a layer reachable by two paths is named by the first."""
    found, seen = [], set()

    def visit(layer, path):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        children = _children(layer)
        leaf = not isinstance(layer, keras.Model) and (
            not children or type(layer).__module__.startswith("keras."))
        found.append((path, layer, leaf))
        if not leaf:
            for name, child in children:
                visit(child, f"{path}.{name}" if path else name)

    visit(model, "")
    return found


def _children(layer) -> list[tuple[str, object]]:
    """(name, sublayer): a Sequential's by index, a Functional's by layer name, any other's by
    attribute (lists and dicts of layers by index and key), in assignment order."""
    if isinstance(layer, keras.Sequential):
        return [(str(i), child) for i, child in enumerate(layer.layers)]
    if isinstance(layer, keras.Model) and not is_subclassed(layer):
        return [(child.name, child) for child in layer.layers
                if not isinstance(child, keras.layers.InputLayer)]
    out = []
    for attr, value in vars(layer).items():
        if attr.startswith("_"):
            continue
        if isinstance(value, keras.layers.Layer):
            out.append((attr, value))
        elif isinstance(value, (list, tuple)):
            out += [(f"{attr}.{i}", v) for i, v in enumerate(value)
                    if isinstance(v, keras.layers.Layer)]
        elif isinstance(value, dict):
            out += [(f"{attr}.{k}", v) for k, v in value.items()
                    if isinstance(v, keras.layers.Layer)]
    named = {id(v) for _, v in out}
    out += [(child.name, child) for child in getattr(layer, "_layers", [])
            if id(child) not in named]          # tracked but not an attribute: by its name
    return out


def _tensors(value) -> list:
    return [t for t in keras.tree.flatten(value) if keras.ops.is_tensor(t)]


def _shape(t) -> tuple:
    return tuple(int(d) for d in t.shape[1:])


def _entry(layer) -> tuple[str, dict, str, str | None]:
    """(kind, config, module, registered name) of a leaf, as Keras serializes it."""
    entry = keras.saving.serialize_keras_object(layer)
    config = {k: v for k, v in entry.get("config", {}).items() if k != "name"}
    return entry["class_name"], config, entry.get("module") or "keras.layers", \
        entry.get("registered_name")


class _Run:
    """One pass of the model over a batch with every layer's ``call`` watched: the recorded
    layers in the order they appear, and their values."""

    def __init__(self, paths: list[tuple[str, object, bool]], describe: bool, tape=None):
        self.paths, self.describe, self.tape = paths, describe, tape
        self.layers: list[RecordedLayer] = []
        self.values: list = []
        self.producer: dict[int, str] = {}      # id(tensor) -> recorded layer that made it
        self.keep: list = []                    # the tensors, alive: their ids stay theirs
        self.calls: dict[str, int] = {}
        self.stack: list[tuple[str, object]] = []
        self.taken = {path for path, _, _ in paths}
        self.input_name = unique("input", self.taken)
        self.code: list[tuple[RecordedLayer, object, list]] = []    # for the tape, after

    def _add(self, name, value, kind="", config=None, inbound=(), **extra):
        self.keep.append(value)
        self.producer[id(value)] = name
        self.values.append(value)
        if self.describe:
            self.layers.append(RecordedLayer(name, kind, config or {}, list(inbound),
                                             _shape(value), **extra))
        else:
            self.layers.append(RecordedLayer(name, "", {}, [], ()))
        if self.tape is not None and value.dtype.is_floating:     # the tape follows floats
            self.tape.watch(value)

    def _source(self, t, owner) -> str:
        """The recorded layer that made ``t``; code of ``owner``'s call() if none did."""
        found = self.producer.get(id(t))
        if found is not None:
            return found
        path, layer = owner
        name = unique(f"{path}{CODE_SUFFIX}" if path else CODE_SUFFIX[1:], self.taken)
        before = [l.name for l in self.layers]
        self._add(name, t, f"{type(layer).__name__}{CODE_SUFFIX}", inbound=before[-1:])
        if self.tape is not None and self.describe:
            self.code.append((self.layers[-1], t, list(zip(before, self.values))))
        return name

    def leaf(self, path, layer, call):
        def watched(*args, **kwargs):
            inputs = args[0] if args else next(iter(kwargs.values()), None)
            inbound = [self._source(t, self.stack[-1]) for t in _tensors(inputs)]
            if self.tape is not None and args:      # a layer's inside is not code between layers
                import tensorflow as tf
                args = (keras.tree.map_structure(
                    lambda v: tf.stop_gradient(v) if keras.ops.is_tensor(v) else v, args[0]),
                    *args[1:])
            out = call(*args, **kwargs)
            if keras.ops.is_tensor(out):
                k = self.calls.get(path, 0)
                self.calls[path] = k + 1
                if k == 0:
                    kind, config, module, registered = _entry(layer) if self.describe else \
                        ("", {}, "", None)
                    self._add(path, out, kind, config, inbound, keras_module=module,
                              registered_name=registered)
                else:
                    self.taken.add(f"{path}@{k}")
                    self._add(f"{path}@{k}", out, "", {}, inbound, call_of=path)
            return out
        return watched

    def block(self, path, layer, call):
        def watched(*args, **kwargs):
            inputs = args[0] if args else next(iter(kwargs.values()), None)
            for t in _tensors(inputs):
                if not self.stack:                  # the model's own input
                    self._add(self.input_name, t, INPUT)
                else:
                    self._source(t, self.stack[-1])
            self.stack.append((path, layer))
            try:
                out = call(*args, **kwargs)
            finally:
                self.stack.pop()
            if keras.ops.is_tensor(out):
                self._source(out, (path, layer))
            return out
        return watched

    def link_code(self):
        """Inbound of each code tensor: the nearest recorded tensors it was computed from (the
        tape; a tensor reached through an earlier code tensor counts as that one's input)."""
        through: dict[str, set] = {}        # code layer -> what it reads through code
        for layer, t, earlier in self.code:
            sources = [v for _, v in earlier]
            try:
                grads = self.tape.gradient(t, sources) if sources else []
            except (LookupError, ValueError, TypeError):    # an op without a gradient
                grads = []                                  # keep call order
            found = [name for (name, _), g in zip(earlier, grads) if g is not None]
            if found:
                behind = set().union(*(through.get(name, set()) for name in found))
                layer.inbound = [name for name in found if name not in behind]
            through[layer.name] = set(layer.inbound).union(
                *(through.get(name, set()) for name in layer.inbound))


@contextlib.contextmanager
def _watching(run: _Run):
    """Every named layer's ``call`` replaced by the run's watcher, restored after."""
    patched = []
    try:
        for path, layer, leaf in run.paths:
            call = layer.call
            patched.append((layer, layer.__dict__.get("call")))
            object.__setattr__(layer, "call", (run.leaf if leaf else run.block)(path, layer, call))
        yield run
    finally:
        for layer, own in patched:
            if own is None:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", own)


class CallGraph:
    """A subclassed model's recorded layers, and how to get their values for a batch of probes.

    Built from one call of the model on the first probe (which also builds a model never called).
    The same interface as ``recorder.ActivationModel``: names, architecture, snapshot."""

    def __init__(self, model, probes: np.ndarray):
        self.model = model
        self.paths = named_layers(model)
        probe = keras.ops.convert_to_tensor(probes[:1])
        try:
            model(probe, training=False)            # built, so the watched pass is one pass
        except Exception as exc:                    # noqa: BLE001 (whatever the model raises)
            raise NNVisError(f"Recorder: subclassed model '{model.name}' fails on probes of "
                             f"shape {tuple(probes.shape[1:])}: {type(exc).__name__}: "
                             f"{exc}") from None
        tape = None
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf
            tape = tf.GradientTape(persistent=True)
        run = _Run(self.paths, describe=True, tape=tape)
        with contextlib.ExitStack() as stack:
            if tape is not None:
                stack.enter_context(tape)
            out = self._call(run, probe)
        if tape is not None:
            run.link_code()
        if not keras.ops.is_tensor(out):
            raise NNVisError(f"Recorder: subclassed model '{model.name}' returns "
                             f"{type(out).__name__}; nnvis records models with one output")
        self.layers = run.layers
        self.output_size = int(out.shape[-1])
        self._weights = {path: layer for path, layer, leaf in self.paths if leaf}

    def _call(self, run, probes):
        with _watching(run):
            return self.model(probes, training=False)

    def names(self) -> list[str]:
        return [l.name for l in self.layers]

    def architecture(self) -> dict:
        return functional_config(self.model.name, self.layers)

    def snapshot(self, probes: np.ndarray):
        """(weights, activations, predictions) of the model now, for ``RecordingWriter``."""
        chunks, preds = [], []
        for i in range(0, len(probes), _PROBE_BATCH):
            run = _Run(self.paths, describe=False)
            preds.append(keras.ops.convert_to_numpy(
                self._call(run, keras.ops.convert_to_tensor(probes[i:i + _PROBE_BATCH]))))
            got = [l.name for l in run.layers]
            if got != self.names():
                raise NNVisError(f"Recorder: subclassed model '{self.model.name}' called its "
                                 f"layers in another order than when it was first recorded "
                                 f"({got} instead of {self.names()}); nnvis records models "
                                 "whose call() runs the same layers for every input")
            chunks.append([keras.ops.convert_to_numpy(v) for v in run.values])
        activations = {name: np.concatenate([c[k] for c in chunks])
                       for k, name in enumerate(self.names())}
        weights = {l.name: self._weights[l.name].get_weights() for l in self.layers
                   if l.name in self._weights}
        return weights, activations, np.concatenate(preds)
