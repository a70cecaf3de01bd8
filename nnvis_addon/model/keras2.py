"""Keras 2 (tf.keras ≤ 2.15) model configs rewritten into the Keras 3 form `keras_config` reads.

Keras 2 writes the same layer classes with a few differences that matter for the graph or the
numbers (audited against tf.keras 2.15 and Keras 3; docs/architecture.md lists them):

- Functional `inbound_nodes` are lists of calls, each a list of `[layer, node, tensor, kwargs]`
  (Keras 3: `{"args": [...], "kwargs": {...}}` holding `__keras_tensor__`s);
- `InputLayer` declares `batch_input_shape` (Keras 3: `batch_shape`);
- `LeakyReLU(alpha=...)` (Keras 3: `negative_slope`): renamed as each kind says
  (`Kind.keras2_renames`);
- the activation `"hard_sigmoid"` is clip(0.2x + 0.5, 0, 1) (Keras 3: relu6(x + 3) / 6);
- a `.keras` written by Keras 2.13–2.15 may serialise an activation as
  `{"module": "keras.activations", "class_name": "function", "config": "relu"}`;
- `RandomCrop` smart_resizes to its size at inference (Keras 3: passes the image through): a
  kind with `Kind.keras2_formula` is marked with `KERAS2_KEY`;
- a SavedModel's Keras metadata writes tuples as `{"class_name": "__tuple__", "items": [...]}`.

A config is Keras 2 when its `keras_version` says so (`keras_files` fills it in from the file's
metadata), or, with no version, when an inbound node is in the list form. Nothing is evaluated.
"""
from __future__ import annotations

from .kernels import KERAS2_HARD_SIGMOID
from . import kinds
from .kinds import KERAS2_KEY

_BUILTIN_ACTIVATION_MODULES = ("keras.activations", "keras.src.activations")


def is_keras2(config: dict) -> bool:
    version = config.get("keras_version") if isinstance(config, dict) else None
    if isinstance(version, str) and version[:1].isdigit():
        return int(version.split(".")[0]) < 3
    return any(isinstance(node, list) for entry in _entries(config)
               if isinstance(entry.get("inbound_nodes"), list) for node in entry["inbound_nodes"])


def normalize(config: dict) -> dict:
    """The Keras 3 form of a Keras 2 model config (a new dict); any other config unchanged."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict) \
            or not is_keras2(config):
        return config                     # a malformed config: keras_config names the problem
    body = dict(config["config"])
    version = config.get("keras_version")
    body["layers"] = [_layer(entry, version) for entry in _entries(config)]
    return {**config, "config": body}


def _entries(config) -> list[dict]:
    body = config.get("config") if isinstance(config, dict) else None
    layers = body.get("layers") if isinstance(body, dict) else None
    return [e for e in layers if isinstance(e, dict)] if isinstance(layers, list) else []


def _layer(entry: dict, version) -> dict:
    entry = dict(entry)
    layer_config = entry.get("config")
    if isinstance(layer_config, dict):
        layer_config = {key: _untuple(value, 0) for key, value in layer_config.items()}
        if "batch_input_shape" in layer_config and "batch_shape" not in layer_config:
            layer_config["batch_shape"] = layer_config.pop("batch_input_shape")
        kind = kinds.get(entry["class_name"]) if isinstance(entry.get("class_name"), str) \
            else None
        for old, new in kind.keras2_renames if kind else ():
            if old in layer_config:
                layer_config[new] = layer_config.pop(old)
        if "activation" in layer_config:
            layer_config["activation"] = _activation(layer_config["activation"])
        if kind is not None and kind.keras2_formula:
            layer_config[KERAS2_KEY] = True
        if isinstance(layer_config.get("layers"), list):          # a nested model
            inner = {"class_name": entry.get("class_name"), "config": layer_config,
                     "keras_version": version if isinstance(version, str) else "2"}
            layer_config = normalize(inner)["config"]
        entry["config"] = layer_config
    nodes = entry.get("inbound_nodes")
    if isinstance(nodes, list):
        entry["inbound_nodes"] = [_node(node) if isinstance(node, list) else node
                                  for node in nodes]
    return entry


def _untuple(value, depth: int):
    if depth > 32:
        return value
    if isinstance(value, dict) and value.get("class_name") == "__tuple__" \
            and isinstance(value.get("items"), list):
        value = value["items"]
    if isinstance(value, list):
        return [_untuple(v, depth + 1) for v in value]
    return value


def _activation(value):
    if isinstance(value, dict) and value.get("module") in _BUILTIN_ACTIVATION_MODULES \
            and isinstance(value.get("config"), str):
        value = value["config"]
    return KERAS2_HARD_SIGMOID if value == "hard_sigmoid" else value


def _node(calls: list) -> dict:
    """One Keras 2 call `[[layer, node, tensor, kwargs], ...]` as Keras 3 args; a malformed item
    is kept as it is, for `keras_config` to name in its error."""
    tensors = [_tensor(item) for item in calls]
    return {"args": [tensors[0]] if len(tensors) == 1 else [tensors], "kwargs": {}}


def _tensor(item):
    if isinstance(item, list) and len(item) >= 3 and isinstance(item[0], str):
        return {"class_name": "__keras_tensor__",
                "config": {"keras_history": [item[0], item[1], item[2]]}}
    return item
