"""Design a network without a checkpoint: a layer stack (plain dicts) ⇄ a Keras Sequential config.

A row is ``{"type": "Conv2D", "filters": 8, "kernel_size": 3, "padding": "same", ...}``: the type
(`TYPES`; ``"Input"`` with a ``"shape"`` is always the first row), an optional ``"name"``, and Keras
config keys (square 2-tuples may be written as one int). `keras_config` fills in every other key
exactly as Keras 3.15's ``model.to_json()`` writes it, so the export loads with
``keras.models.model_from_json``; `layers_from_config` keeps the keys a config sets to non-default
values, so config → stack → config is exact. The stack becomes a `Run` with one epoch (random or
neutral weights) that the importer's scene builder draws; `scene/design_writer.py` builds and rebuilds
it in Blender. Pure Python.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import NNVisError
from .io.keras_files import read_architecture
from .model import kinds, ops
from .model.keras_config import layer_graph, network_from_config
from .model.kinds import DESIGN, INPUT
from .model.kinds.config import DTYPE_POLICY
from .model.network import Network
from .probe import load_probe
from .run import Run

TYPES = tuple(DESIGN)
WEIGHT_MODES = ("random", "structure")
DEFAULT_NAME = "cnn"
DEFAULT_LAYERS = [
    {"type": "Input", "shape": [28, 28, 1]},
    {"type": "Conv2D", "filters": 8, "kernel_size": 3, "padding": "same", "activation": "relu"},
    {"type": "MaxPooling2D", "pool_size": 2},
    {"type": "Conv2D", "filters": 16, "kernel_size": 3, "padding": "same", "activation": "relu"},
    {"type": "MaxPooling2D", "pool_size": 2},
    {"type": "Flatten"},
    {"type": "Dense", "units": 10, "activation": "softmax"},
]

def _template(row_type) -> dict:
    """The Keras 3.15 config of a row type with every default, key order as model.to_json()
    writes it (each kind's own, `kinds.Design.template`); {} for an unknown type."""
    return DESIGN[row_type].template if row_type in DESIGN else {}


def _main(kind) -> tuple[str, ...]:
    """The parameters a row of `kind` always shows (and the editor edits); None in a template
    means required."""
    return DESIGN[kind].main if kind in DESIGN else ()


_PAIRS = ("kernel_size", "strides", "pool_size", "dilation_rate")
_POSITIVE_INTS = ("filters", "units", "groups")


def main_params(row: dict) -> dict:
    """The row's main parameters (`_main`) with Keras' defaults filled in (pools: strides =
    pool_size); a required one that is missing stays None."""
    kind = row.get("type")
    template = _template(kind)
    values = {}
    for key in _main(kind):
        value = row.get(key, template.get(key))
        if key == "strides" and "pool_size" in template and row.get("strides") is None:
            value = row.get("pool_size", template["pool_size"])
        values[key] = _compact(key, copy.deepcopy(value))
    return values


class RowCheck(NamedTuple):
    shape: tuple | None     # output shape without the batch dimension; None if unknown
    error: str | None       # why this row is impossible; None if it is fine


# --------------------------------------------------------------------------------------------------
# Rows → Keras layer configs, row by row, with what Keras (and nnvis) refuse.


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _pair(key: str, value) -> list[int]:
    if _is_int(value):
        value = [value, value]
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(map(_is_int, value))):
        raise NNVisError(f"{key} must be an int or two ints, got {value!r}")
    if min(value) <= 0:
        raise NNVisError(f"{key} must be positive, got {value!r}")
    return [int(v) for v in value]


def _input_shape(value) -> list[int]:
    if not (isinstance(value, (list, tuple)) and value):
        raise NNVisError(f"shape must be a list of sizes, e.g. [28, 28, 1], got {value!r}")
    if any(v is None for v in value):
        raise NNVisError(f"shape {list(value)} has a variable size (None); a design needs fixed "
                         "sizes to compute its activations")
    if not all(map(_is_int, value)) or min(value) <= 0:
        raise NNVisError(f"shape must hold positive ints, got {list(value)!r}")
    return [int(v) for v in value]


def _layer_config(row, name: str) -> tuple[str, dict]:
    """(Keras class name, Keras layer config) of one row; NNVisError for what Keras refuses."""
    if not isinstance(row, dict):
        raise NNVisError(f"a row must be a dict, got {type(row).__name__}")
    kind = row.get("type")
    if kind not in DESIGN:
        raise NNVisError(f"unknown layer type {kind!r} (supported: {', '.join(TYPES)})")
    template = _template(kind)
    allowed = set(template) - {"name", "batch_shape"} | set(_main(kind)) | {"type"}
    unknown = sorted(set(row) - allowed - {"name"}, key=str)
    if unknown:
        raise NNVisError(f"{kind} has no parameter {unknown[0]!r} "
                         f"(known: {', '.join(sorted(allowed - {'type'}))})")
    config = copy.deepcopy(template)
    config["name"] = name
    for key, value in row.items():
        if key in ("type", "name"):
            continue
        if key == "shape":
            config["batch_shape"] = [None, *_input_shape(value)]
        elif key in _PAIRS and not (key == "strides" and value is None and "pool_size" in config):
            config[key] = _pair(key, value)
        else:
            config[key] = copy.deepcopy(value)
    required = [k for k in _main(kind) if template.get(k, "") is None]
    missing = [k for k in required if config[k] is None]
    if kind == "Input" and config["batch_shape"] is None:
        missing.append("shape")
    if missing:
        raise NNVisError(f"{kind} needs {missing[0]!r}")
    if "pool_size" in config and config["strides"] is None:
        config["strides"] = list(config["pool_size"])      # Keras: strides None means pool_size
    _check_values(kind, config)
    return DESIGN[kind].kind, config


def _check_values(kind: str, config: dict) -> None:
    for key in _POSITIVE_INTS:
        if key in config and not (_is_int(config[key]) and config[key] > 0):
            raise NNVisError(f"{key} must be a positive int, got {config[key]!r}")
    if "activation" in config:
        if config["activation"] is None:
            config["activation"] = "linear"                 # what Keras writes for None
        if config["activation"] not in ops.ACTIVATIONS:
            raise NNVisError(f"unsupported activation {config['activation']!r} "
                             f"(supported: {', '.join(sorted(ops.ACTIVATIONS))})")
    if "padding" in config and config["padding"] not in ("valid", "same"):
        raise NNVisError(f"padding must be 'valid' or 'same', got {config['padding']!r}")
    if DESIGN[kind].check is not None:                      # what the kind itself refuses
        DESIGN[kind].check(config)


def _window_fits(config: dict, shape: tuple) -> None:
    """A friendlier message than the shape rule's for the common mistake: a too-large window."""
    if not ("kernel_size" in config or "pool_size" in config) or len(shape) != 3:
        return
    if config.get("padding") != "valid":
        return
    window = config.get("kernel_size") or config.get("pool_size")
    dilation = config.get("dilation_rate", [1, 1])
    span = [(k - 1) * d + 1 for k, d in zip(window, dilation)]
    if span[0] > shape[0] or span[1] > shape[1]:
        what = "kernel" if "kernel_size" in config else "pool"
        raise NNVisError(f"{what} {span[0]}×{span[1]} is larger than its {shape[0]}×{shape[1]} "
                         "input; use padding 'same' or a smaller window")


def _names(layers: list) -> list[str]:
    """Each row's layer name: its own, else Keras' automatic one (conv2d, conv2d_1, ...)."""
    used = {row["name"] for row in layers if isinstance(row, dict) and row.get("name")
            and isinstance(row["name"], str)}
    counts: dict[str, int] = {}
    names = []
    for row in layers:
        given = row.get("name") if isinstance(row, dict) else None
        if given:
            names.append(given)
            continue
        kind = DESIGN.get(row.get("type")) if isinstance(row, dict) else None
        base = kind.auto_name if kind else "layer"
        n = counts.get(base, 0)
        while (candidate := base if n == 0 else f"{base}_{n}") in used:
            n += 1
        counts[base] = n + 1
        used.add(candidate)
        names.append(candidate)
    return names


def _analyse(layers) -> list[tuple[RowCheck, tuple[str, dict] | None]]:
    if not isinstance(layers, (list, tuple)) or not layers:
        raise NNVisError("a design needs at least an Input row")
    names = _names(layers)
    first_use: dict[str, int] = {}
    out = []
    shape = None                   # the previous row's output shape, None after an error
    for i, row in enumerate(layers):
        try:
            if not isinstance(names[i], str) or "/" in names[i]:
                raise NNVisError(f"name {names[i]!r} must be a string without '/'")
            if names[i] in first_use:
                raise NNVisError(f"name {names[i]!r} is already used by row "
                                 f"{first_use[names[i]] + 1}")
            first_use[names[i]] = i
            kind, config = _layer_config(row, names[i])
            if (kind == INPUT) != (i == 0):
                raise NNVisError("the first row must be an Input" if i == 0 else
                                 "an Input can only be the first row")
            if i == 0:
                shape = tuple(config["batch_shape"][1:])
            elif shape is None:
                out.append((RowCheck(None, None), (kind, config)))
                continue
            else:
                _window_fits(config, shape)
                new_shape = ops.output_shape(kind, config, [shape])
                ops.weight_shapes(kind, config, [shape])
                if any(d is not None and d <= 0 for d in new_shape):
                    raise NNVisError(f"output shape {new_shape} is empty")
                shape = new_shape
        except NNVisError as exc:
            out.append((RowCheck(None, str(exc)), None))
            shape = None
            continue
        out.append((RowCheck(shape, None), (kind, config)))
    return out


def check(layers) -> list[RowCheck]:
    """Every row's output shape or the reason it is impossible (rows after an error: unknown)."""
    return [status for status, _ in _analyse(layers)]


def validate(layers) -> list[tuple[int, str]]:
    """(row index from 0, message) for every impossible row; empty when the stack is valid."""
    return [(i, status.error) for i, status in enumerate(check(layers)) if status.error]


def _raise_if_invalid(analysed, layers, what: str) -> None:
    errors = [(i, status.error) for i, (status, _) in enumerate(analysed) if status.error]
    if errors:
        lines = "; ".join(f"row {i + 1} ({_type_of(layers[i])}): {msg}" for i, msg in errors)
        raise NNVisError(f"{what}: {lines}")


def _type_of(row) -> str:
    return str(row.get("type")) if isinstance(row, dict) else "?"


# --------------------------------------------------------------------------------------------------
# Stack ⇄ Keras model config


def keras_config(layers, name: str = DEFAULT_NAME) -> dict:
    """The Keras 3 Sequential config (as `model.to_json()` writes it) of a valid stack."""
    if not isinstance(name, str) or not name or "/" in name:
        raise NNVisError(f"model name {name!r} must be a non-empty string without '/'")
    analysed = _analyse(layers)
    _raise_if_invalid(analysed, layers, f"design {name!r}")
    entries, shape = [], None
    for status, (kind, config) in analysed:
        entry = {"module": "keras.layers", "class_name": kind, "config": config,
                 "registered_name": None}
        if kind in DESIGN and DESIGN[kind].built:
            entry["build_config"] = {"input_shape": [None, *shape]}
        entries.append(entry)
        shape = status.shape
    batch_shape = list(analysed[0][1][1]["batch_shape"])
    return {"module": "keras", "class_name": "Sequential",
            "config": {"name": name, "trainable": True, "dtype": copy.deepcopy(DTYPE_POLICY),
                       "layers": entries, "build_input_shape": batch_shape},
            "registered_name": None, "build_config": {"input_shape": list(batch_shape)},
            "compile_config": {}}


def _compact(key: str, value):
    if key in _PAIRS and isinstance(value, list) and len(value) == 2 and value[0] == value[1]:
        return value[0]
    return value


def _without_shared_ids(value):
    """The value without the `shared_object_id` keys a `.keras` file's config.json adds to objects
    it stores once (the dtype policy): a saving artifact, not configuration; nor nnvis' own
    `_nnvis*` notes (a flattened nested model's block)."""
    if isinstance(value, dict):
        return {k: _without_shared_ids(v) for k, v in value.items()
                if k != "shared_object_id" and not k.startswith("_nnvis")}
    if isinstance(value, list):
        return [_without_shared_ids(v) for v in value]
    return value


def _row(kind: str, config: dict, source: str) -> dict:
    row_type = next((t for t in TYPES if DESIGN[t].kind == kind), None)
    if row_type is None:
        raise NNVisError(f"{source}: layer {config.get('name')!r} is a {kind}, which the designer "
                         f"does not offer (supported: {', '.join(TYPES)})")
    template = _template(row_type)
    row = {"type": row_type, "name": config.get("name")}
    if row_type == "Input":
        batch_shape = config.get("batch_shape") or config.get("batch_input_shape")
        row["shape"] = list(batch_shape[1:]) if isinstance(batch_shape, list) else batch_shape
        skip = {"name", "batch_shape", "batch_input_shape"}
    else:
        for key in _main(row_type):
            row[key] = _compact(key, copy.deepcopy(config.get(key, template[key])))
        skip = {"name", *_main(row_type)}
    for key, value in config.items():
        if key not in skip and (key not in template or value != template[key]):
            row[key] = copy.deepcopy(value)
    return row


def layers_from_config(config: dict, source: str = "Keras config") -> list[dict]:
    """The stack of a Keras model config (Sequential, or a Functional chain); weights are not read.

    Rows keep the layer names and every config key set to a non-default value, so
    `keras_config(layers_from_config(c), name)` gives `c` back for a Sequential `c` (a Functional
    chain comes back as the equivalent Sequential; `compile_config` is not kept).
    """
    _, specs = layer_graph(config, source)
    for (prev, *_), (name, _, _, inbound) in zip(specs, specs[1:]):
        if inbound != [prev]:
            raise NNVisError(f"{source}: layer {name!r} is fed by {inbound}, not by the layer "
                             f"before it ({prev!r}); the designer edits plain stacks only")
    return [_row(kind, _without_shared_ids(config), source) for _, kind, config, _ in specs]


def read_keras_design(path) -> tuple[str, list[dict]]:
    """(model name, stack) of a `.keras` file's or `model.to_json()` file's architecture; the
    weights are not read."""
    config = read_architecture(path)
    name, _ = layer_graph(config, str(path))
    return name, layers_from_config(config, str(path))


def export_keras_json(layers, path, name: str = DEFAULT_NAME) -> Path:
    """Write the stack as a `model.to_json()` file that `keras.models.model_from_json` loads."""
    text = json.dumps(keras_config(layers, name))
    path = Path(path)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise NNVisError(f"{path}: can't write the Keras JSON ({exc})") from None
    return path


# --------------------------------------------------------------------------------------------------
# A Run from a stack: weights (seeded Glorot-uniform, or all-zero "structure") and activations


def design_network(layers, name: str = DEFAULT_NAME) -> Network:
    """The Network the importer would read from the exported JSON (the very same code path)."""
    return network_from_config(keras_config(layers, name), f"design {name!r}")


def _glorot(rng, shape: tuple) -> np.ndarray:
    """Keras' GlorotUniform: U(±sqrt(6 / (fan_in + fan_out))), conv fans times the kernel area."""
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def design_weights(network: Network, mode: str = "random", seed: int = 0) -> dict:
    """Layer name → weights in Keras order. Kernels: Glorot-uniform from `seed` ("random") or zero
    ("structure"); biases zero; a kind's own neutral start where it has one (`Design.neutral`:
    BatchNormalization the identity, gamma 1, beta 0, mean 0, var 1)."""
    if mode not in WEIGHT_MODES:
        raise NNVisError(f"weights must be one of {', '.join(WEIGHT_MODES)}, got {mode!r}")
    rng = np.random.default_rng(seed)
    weights = {}
    for layer in network.layers:
        if not layer.weight_shapes:
            continue
        offered = kinds.get(layer.kind).design if kinds.get(layer.kind) else None
        if offered is not None and offered.neutral is not None:
            weights[layer.name] = offered.neutral(layer.config, layer.weight_shapes)
            continue
        kernel, *rest = layer.weight_shapes
        first = _glorot(rng, kernel) if mode == "random" else np.zeros(kernel, np.float32)
        weights[layer.name] = [first] + [np.zeros(s, np.float32) for s in rest]
    return weights


def design_run(layers, weights: str = "random", seed: int = 0, probe=None,
               name: str = DEFAULT_NAME) -> Run:
    """A one-epoch Run of the stack, what the scene builder draws.

    "random": seeded Glorot-uniform weights and the probe's activations from the numpy forward
    pass; the probe is an image/.npy path or an array (fitted like the importer's), default uniform
    noise from `seed`. "structure": zero weights, zero activations (the probe is not used).
    """
    network = design_network(layers, name)
    values = design_weights(network, weights, seed)
    source = f"design ({weights}{', seed ' + str(seed) if weights == 'random' else ''})"
    if weights == "structure":       # every map the colormap's zero colour, every edge grey
        blank = {layer.name: np.zeros((1, *layer.output_shape), np.float32)
                 for layer in network.layers}
        return Run(name, source, network, [0], {0: values}, blank[network.layers[0].name],
                   activations={0: blank})
    if probe is None:
        probe_array = np.random.default_rng(seed).random(network.input_shape).astype(np.float32)
    else:
        probe_array = load_probe(probe, network.input_shape)
    return Run(name, source, network, [0], {0: values}, probe_array[None])
