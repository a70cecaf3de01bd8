"""Keras 3 model config (a `.keras` file's config.json, or `model.to_json()`) -> Network.

Plain dict walking, no Keras: it runs inside Blender. Keras writes Functional layers "from the
earliest on", so the config order is already topological; the stable sort below keeps that order
(InputLayers hoisted first), which the weights reader relies on to rebuild Keras' HDF5 group names.
"""
from __future__ import annotations

import heapq
from dataclasses import replace

from ..errors import RECORD_SUBCLASSED, NNVisError
from . import keras2, kinds, ops
from .kinds import INPUT, SHARED_KEY
from .network import Layer, Network

MODEL_KINDS = frozenset({"Sequential", "Functional", "Model"})
UNSUPPORTED_KEY = "_nnvis_unsupported"     # in Layer.config: why nnvis cannot compute the layer
BLOCK_KEY = "_nnvis_block"     # in Layer.config: [[model name, model class], ...] it is nested in
MAX_NESTING = 16


def unsupported_reason(layer: Layer) -> str | None:
    """Why nnvis cannot compute ``layer``'s activations (a warning line), or None if it can."""
    return layer.config.get(UNSUPPORTED_KEY)


def network_from_config(config: dict, source: str) -> Network:
    """The Network of a Keras model config; `source` (the file) is named in every error.

    A layer nnvis cannot compute (unknown or custom kind, Lambda, unsupported option) does not fail
    the import: it is kept with ``config[UNSUPPORTED_KEY]`` set to the reason, no weight shapes
    (unless its kind is known), and the output shape Keras recorded for it in the config (the shape
    of the tensor its consumers read); ``()`` when the config records none (a model output).
    Custom and Lambda code is never deserialised, let alone run. A Keras 2 config is first
    rewritten into the Keras 3 form (``keras2.normalize``). A Keras 3 RandomCrop passes its
    image through uncropped at inference (ops), so it and what it feeds get the shapes inference
    computes, not those the file records.
    """
    config = keras2.normalize(config)
    name, specs = layer_graph(config, source)
    declared = declared_output_shapes(config)
    custom = _custom_layers(config)
    shapes: dict[str, tuple | None] = {}          # None: unknown
    uncropped: set[str] = set()     # a Keras 3 RandomCrop and what it feeds: computed shapes
    layers = []
    for layer_name, kind, layer_config, inbound in specs:
        if kinds.is_(kind, "keras2_formula") and not layer_config.get(kinds.KERAS2_KEY) or \
                uncropped.intersection(inbound):
            uncropped.add(layer_name)
        out, weights, reason = _infer(layer_name, kind, layer_config, [shapes[n] for n in inbound],
                                      None if layer_name in uncropped else declared.get(layer_name),
                                      custom.get(layer_name), source)
        shapes[layer_name] = out
        if reason:
            layer_config = {**layer_config, UNSUPPORTED_KEY: reason}
        if SHARED_KEY in layer_config:
            weights = []              # read once, for the layer it repeats
        layers.append(Layer(name=layer_name, kind=kind, config=layer_config, inbound=inbound,
                            output_shape=() if out is None else out, weight_shapes=weights))
    return Network(name=name, layers=layers, input_names=endpoint_names(config, "input_layers"),
                   output_names=endpoint_names(config, "output_layers"),
                   input_order=_input_order(config))


def _input_order(config: dict) -> str:
    """"chw" where the config says its model takes (C, H, W) inputs (nnvis' extension, written by
    the PyTorch Recorder: `config.input_order`), else Keras' "hwc"."""
    body = config.get("config") if isinstance(config, dict) else None
    return "chw" if isinstance(body, dict) and body.get("input_order") == "chw" else "hwc"


def endpoint_names(config: dict, key: str) -> tuple[str, ...]:
    """A Functional model's inputs or outputs (``key``: `input_layers`, `output_layers`) in its
    own order; Keras 3 writes a single one bare, ``["img", 0, 0]``; () when the config does not
    say."""
    body = config.get("config") if isinstance(config, dict) else None
    entries = body.get(key) if isinstance(body, dict) else None
    if isinstance(entries, list) and len(entries) == 3 and isinstance(entries[0], str):
        entries = [entries]
    if not isinstance(entries, list):
        return ()
    return tuple(e[0] for e in entries if isinstance(e, list) and e and isinstance(e[0], str))


def with_input_shape(network: Network, shape, source: str) -> Network:
    """The network with its variable (None) input sizes set to the probe's, every layer's output
    shape recomputed: a fully convolutional model (`Input((None, None, 3))`) drawn at the probe's
    size. ``shape``: the input's shape, or {input name: shape} for a multi-input model. A size the
    model fixes must match."""
    given = shape if isinstance(shape, dict) else {network.inputs[0]: shape}
    shapes: dict[str, tuple] = {}
    layers = []
    for layer in network.layers:
        out = layer.output_shape
        if layer.name in given:
            want = tuple(given[layer.name])
            if len(want) != len(out) or any(d is not None and d != s for d, s in zip(out, want)):
                raise NNVisError(f"{source}: input of shape {want} does not fit the model's "
                                 f"input {layer.name!r} {out}")
            out = tuple(int(s) for s in want)
        elif layer.inbound and not unsupported_reason(layer) and \
                all(shapes[n] for n in layer.inbound):
            try:
                out = ops.output_shape(layer.kind, layer.config, [shapes[n] for n in layer.inbound],
                                       layer_name=layer.name)
            except NNVisError as e:
                raise NNVisError(f"{source}: at input size {tuple(given.values())}: {e}") from None
        shapes[layer.name] = out
        layers.append(replace(layer, output_shape=out))
    return replace(network, layers=layers)


def _infer(layer_name, kind, layer_config, input_shapes, declared, custom, source):
    """(output shape or None, weight shapes, None or why nnvis cannot compute the layer)."""
    where = f"layer {layer_name!r} ({kind})"
    if custom:
        return declared, [], f"{where}: custom layer class {custom!r} (its code is never run)"
    if kinds.is_(kind, "onnx_only"):
        return declared, [], f"{where}: custom layer class {kind!r} (its code is never run)"
    if None in input_shapes:
        return declared, [], f"{where}: the shape of its input is unknown"
    try:
        out = ops.output_shape(kind, layer_config, input_shapes, layer_name=layer_name)
        weights = ops.weight_shapes(kind, layer_config, input_shapes, layer_name=layer_name)
    except ops.Unsupported as e:
        return declared, [], str(e)
    except NNVisError as e:          # ops names the layer and kind
        raise NNVisError(f"{source}: {e}") from None
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise NNVisError(f"{source}: {where}: bad config ({type(e).__name__}: {e})") from None
    if declared is not None and not _agree(out, declared):
        return declared, [], (f"{where}: nnvis computes output shape {out} but the file records "
                              f"{declared}")
    try:
        ops.check_supported(kind, layer_config, layer_name=layer_name)
    except ops.Unsupported as e:
        return out, weights, str(e)       # shapes known, activations not (a custom activation)
    return out, weights, None


def _agree(shape: tuple, other: tuple) -> bool:
    return len(shape) == len(other) and all(a is None or b is None or a == b
                                            for a, b in zip(shape, other))


def declared_output_shapes(config: dict) -> dict[str, tuple]:
    """Layer name -> output shape (no batch) as Keras recorded it in a model config.

    Keras 3 stores no output shapes per layer, but it stores the shape of every tensor a layer reads
    (Functional: each inbound node's ``__keras_tensor__`` shape; Sequential: the next layer's
    ``build_config.input_shape``), which is the producing layer's output. A layer nothing reads
    (a model output) has no entry. Malformed entries are skipped: this only fills gaps.
    """
    body = config.get("config") if isinstance(config, dict) else None
    entries = body.get("layers") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        return {}
    shapes: dict[str, tuple] = {}
    if config.get("class_name") == "Sequential":
        for entry, after in zip(entries, entries[1:]):
            build = after.get("build_config") if isinstance(after, dict) else None
            shape = _shape(build.get("input_shape") if isinstance(build, dict) else None)
            name = _entry_name(entry)
            if shape is not None and name:
                shapes.setdefault(name, shape)
        return shapes
    for entry in entries:
        if isinstance(entry, dict):
            _tensor_shapes(entry.get("inbound_nodes"), shapes, 0)
    return shapes


def _entry_name(entry) -> str | None:
    if not isinstance(entry, dict):
        return None
    layer_config = entry.get("config")
    name = entry.get("name") or (layer_config.get("name") if isinstance(layer_config, dict) else None)
    return name if isinstance(name, str) else None


def _shape(value) -> tuple | None:
    """A recorded batch shape ([None, 8, 8, 3]) without its batch dimension; None if malformed."""
    if not isinstance(value, list) or not value or not all(
            d is None or type(d) is int and d >= 0 for d in value):
        return None
    return tuple(value[1:])


def _tensor_shapes(value, shapes: dict, depth: int) -> None:
    """Record the shape of every `__keras_tensor__` (output 0 of its layer) found in ``value``."""
    if depth > 32:
        return
    if isinstance(value, list):
        for item in value:
            _tensor_shapes(item, shapes, depth + 1)
    elif isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            tensor = value.get("config") or {}
            history, shape = tensor.get("keras_history"), _shape(tensor.get("shape"))
            if isinstance(history, list) and len(history) == 3 and isinstance(history[0], str) \
                    and history[2] == 0 and shape is not None:
                node = history[1]
                name = f"{history[0]}@{node}" if isinstance(node, int) and node > 0 \
                    else history[0]
                shapes.setdefault(name, shape)
        else:
            for item in value.values():
                _tensor_shapes(item, shapes, depth + 1)


def _custom_layers(config: dict, depth: int = 0) -> dict[str, str]:
    """Layer name -> registered class name, for layers of user-defined classes (never built-ins),
    nested models' layers included.

    Keras 3 writes ``module: keras.layers`` and ``registered_name: null`` for its own layers, its
    own module and the bare class name for the classes it registers itself (keras.applications'
    ``LayerScale``, the ops ``keras.src.ops.numpy.Add``), and a registered name
    (``package>Class``) for user classes, even one named like a built-in ("Conv2D"); other
    packages' layers (keras_hub, ...) name their own module.
    """
    body = config.get("config") if isinstance(config, dict) else None
    custom = {}
    for entry in (body.get("layers") if isinstance(body, dict) else None) or []:
        if not isinstance(entry, dict):
            continue
        registered, module = entry.get("registered_name"), entry.get("module")
        if not _is_keras(module) or registered not in (None, "", entry.get("class_name")):
            name = _entry_name(entry)
            if name:
                custom[name] = registered or f"{module}.{entry.get('class_name')}"
        if depth < MAX_NESTING and isinstance(entry.get("config"), dict) \
                and isinstance(entry["config"].get("layers"), list):
            custom.update(_custom_layers(entry, depth + 1))
    return custom


def _is_keras(module) -> bool:
    """A config's module is Keras' own (keras.layers, keras.src.applications.convnext, ...)."""
    return not isinstance(module, str) or module.split(".")[0] == "keras"


def _op_kind(entry: dict, kind: str) -> str:
    """A Keras 3 functional op (``module: keras.src.ops.numpy``) as nnvis' kind ``ops.<class>``
    (kinds.OP_PREFIX): the op Add is not the layer Add."""
    module = entry.get("module")
    if isinstance(module, str) and (module == "keras.ops" or
                                    module.startswith(("keras.src.ops.", "keras.ops."))):
        return kinds.OP_PREFIX + kind
    return kind


def block_path(layer: Layer) -> list[tuple[str, str]]:
    """(model name, model class) of the nested models ``layer`` sits in, outermost first."""
    return [tuple(b) for b in layer.config.get(BLOCK_KEY, [])]


def layer_graph(config: dict, source: str, depth: int = 0
                ) -> tuple[str, list[tuple[str, str, dict, list[str]]]]:
    """(model name, [(layer name, kind, layer config, inbound names)]) in topological order.

    No shape inference, so any layer kind passes: the graph of a model with unsupported layers.
    A nested model (transfer learning: a backbone inside a Sequential) is flattened: its layers
    keep their own names, its input is wired to what feeds the nested model, consumers of the
    nested model read its output layer, and each inner layer's config records the block
    (``BLOCK_KEY``).
    """
    config = keras2.normalize(config)
    if not isinstance(config, dict):
        raise NNVisError(f"{source}: the architecture is not a JSON object")
    model_kind = config.get("class_name")
    if not isinstance(model_kind, str) or model_kind not in MODEL_KINDS:
        raise NNVisError(f"{source}: model class {model_kind!r} is not one of "
                         f"{', '.join(sorted(MODEL_KINDS))}: {RECORD_SUBCLASSED}")
    body = config.get("config")
    if not isinstance(body, dict):
        raise NNVisError(f"{source}: the model has no 'config' object")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise NNVisError(f"{source}: the model config has no name")
    entries = body.get("layers")
    if not isinstance(entries, list) or not entries:
        raise NNVisError(f"{source}: the model config has no 'layers' list")

    parsed = [_parse_entry(entry, i, source) for i, entry in enumerate(entries)]
    seen = set()
    for layer_name, _, _, _ in parsed:
        if layer_name in seen:
            raise NNVisError(f"{source}: two layers are named {layer_name!r}")
        seen.add(layer_name)

    if model_kind == "Sequential":
        specs = _sequential(parsed, body, source, nested=depth > 0)
    else:
        specs = _functional(parsed, source)
    if any(_is_model(k, c) for _, k, c, _ in specs):
        specs = _flatten(specs, config.get("keras_version"), source, depth)
    return name, _topological(specs, source)


def _is_model(kind: str, layer_config: dict) -> bool:
    return kind in MODEL_KINDS or isinstance(layer_config.get("layers"), list)


def _flatten(specs, version, source: str, depth: int):
    """Replace every nested-model node by its own layers (see ``layer_graph``)."""
    if depth >= MAX_NESTING:
        raise NNVisError(f"{source}: models nested more than {MAX_NESTING} deep")
    out, alias = [], {}
    for layer_name, kind, layer_config, inbound in specs:
        if not _is_model(kind, layer_config):
            out.append((layer_name, kind, layer_config, inbound))
            continue
        inner = {"class_name": kind, "config": layer_config}
        if isinstance(version, str):
            inner["keras_version"] = version
        _, inner_specs = layer_graph(inner, source, depth + 1)
        inputs = [n for n, k, _, _ in inner_specs if k == INPUT]
        if len(inputs) != 1 or len(inbound) != 1:
            raise NNVisError(f"{source}: nested model {layer_name!r} has {len(inputs)} inputs "
                             f"and is fed by {len(inbound)} layers; nnvis flattens nested models "
                             "with one input")
        wire = {inputs[0]: inbound[0]}
        block = [[layer_name, kind]]
        for n, k, c, i in inner_specs:
            if k != INPUT:
                out.append((n, k, {**c, BLOCK_KEY: block + c.get(BLOCK_KEY, [])},
                            [wire.get(x, x) for x in i]))
        alias[layer_name] = _model_output(layer_config, inner_specs, layer_name, source)
    names = [spec[0] for spec in out]
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise NNVisError(f"{source}: after flattening the nested models, several layers are "
                         f"named {', '.join(map(repr, twice))}")
    return [(n, k, c, [alias.get(x, x) for x in i]) for n, k, c, i in out]


def _model_output(layer_config: dict, inner_specs, layer_name: str, source: str) -> str:
    """The layer whose output is a nested model's output (its config's `output_layers`)."""
    outputs = layer_config.get("output_layers")
    if outputs is None:                                   # Sequential: the last layer
        return inner_specs[-1][0]
    if isinstance(outputs, list) and len(outputs) == 3 and isinstance(outputs[0], str):
        outputs = [outputs]                               # Keras 3 writes a single output bare
    if not (isinstance(outputs, list) and len(outputs) == 1 and isinstance(outputs[0], list)
            and outputs[0] and isinstance(outputs[0][0], str)):
        raise NNVisError(f"{source}: nested model {layer_name!r} has outputs {outputs!r}; "
                         "nnvis flattens nested models with one output")
    return outputs[0][0]


def _parse_entry(entry, index: int, source: str) -> tuple[str, str, dict, dict]:
    """(name, kind, config, raw entry) of one item of the config's `layers` list."""
    if not isinstance(entry, dict):
        raise NNVisError(f"{source}: layer #{index} is not a JSON object")
    layer_config = entry.get("config")
    layer_name = entry.get("name")
    if layer_name is None and isinstance(layer_config, dict):
        layer_name = layer_config.get("name")
    if not isinstance(layer_name, str) or not layer_name:
        raise NNVisError(f"{source}: layer #{index} has no name")
    kind = entry.get("class_name")
    if not isinstance(kind, str) or not kind:
        raise NNVisError(f"{source}: layer {layer_name!r} has no class_name")
    if not isinstance(layer_config, dict):
        raise NNVisError(f"{source}: layer {layer_name!r} ({kind}) has no 'config' object")
    return layer_name, _op_kind(entry, kind), layer_config, entry


def _sequential(parsed, body: dict, source: str, nested: bool = False
                ) -> list[tuple[str, str, dict, list[str]]]:
    """A chain; an InputLayer is synthesised from the first layer's declared input shape (a
    nested Sequential may declare none: its input is what feeds it)."""
    for layer_name, kind, _, _ in parsed[1:]:
        if kind == INPUT:
            raise NNVisError(f"{source}: InputLayer {layer_name!r} is not the first layer "
                             "of the Sequential model")
    specs = [(n, k, c, []) for n, k, c, _ in parsed]
    if specs[0][1] != INPUT:
        first_name, _, first_config, _ = parsed[0]
        batch_shape = _declared_batch_shape(first_config, body)
        if batch_shape is None and nested:
            batch_shape = [None, None]
        elif batch_shape is None:
            raise NNVisError(f"{source}: the Sequential model has no InputLayer and its first "
                             f"layer {first_name!r} declares no input shape")
        if not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
                   for d in batch_shape) or len(batch_shape) < 2:
            raise NNVisError(f"{source}: layer {first_name!r} declares a bad input shape "
                             f"{batch_shape!r}")
        names = {n for n, _, _, _ in parsed}
        input_name = "input_layer"
        while input_name in names:
            input_name += "_0"
        specs.insert(0, (input_name, INPUT,
                         {"name": input_name, "batch_shape": batch_shape, "dtype": "float32"}, []))
    for i in range(1, len(specs)):
        specs[i] = specs[i][:3] + ([specs[i - 1][0]],)
    return specs


def _declared_batch_shape(layer_config: dict, body: dict):
    """The batch shape a layer (or Keras 2 style config) declares, with None for the batch."""
    for key in ("batch_shape", "batch_input_shape"):
        if isinstance(layer_config.get(key), list):
            return list(layer_config[key])
    if isinstance(layer_config.get("input_shape"), list):
        return [None] + list(layer_config["input_shape"])
    if isinstance(body.get("build_input_shape"), list):
        return list(body["build_input_shape"])
    return None


def _functional(parsed, source: str) -> list[tuple[str, str, dict, list[str]]]:
    """One spec per call of each layer: a layer applied k times (a shared layer) is drawn once per
    call, call i > 0 named ``<name>@<i>`` and marked ``SHARED_KEY`` (it uses the weights of the
    layer it repeats); inputs refer to the call (node index) they read."""
    calls = {n: _functional_calls(n, k, e, source) for n, k, _, e in parsed}

    def ref(layer: str, node) -> str:
        n_calls = len(calls.get(layer) or [None])
        return f"{layer}@{node}" if isinstance(node, int) and 0 < node < n_calls else layer
    specs = []
    for n, k, c, entry in parsed:
        for i, inbound in enumerate(calls[n] or [[]]):
            call_config = c if i == 0 else {**c, SHARED_KEY: n}
            if k.startswith(kinds.OP_PREFIX):
                call_config = {**call_config,
                               kinds.OPERANDS_KEY: _operands(entry["inbound_nodes"][i])}
            specs.append((n if i == 0 else f"{n}@{i}", k, call_config,
                          [ref(layer, node) for layer, node in inbound]))
    return specs


def _operands(node: dict) -> list | dict:
    """An op call's operands in order (see kinds.OPERANDS_KEY): ``{"input": k}`` for its k-th
    input tensor (the order `_collect_tensors` lists them in), constants as written; the tensors
    of a list argument (concatenate's) one by one. Keyword arguments are listed by name (ops
    refuses them: which operand each is depends on the op's signature)."""
    if node.get("kwargs"):
        return {"keywords": sorted(map(str, node["kwargs"]))}
    count = iter(range(1 << 30))

    def operand(value):
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            return {"input": next(count)}
        return value
    out = []
    for arg in node.get("args", []):
        if isinstance(arg, list) and any(isinstance(v, dict) and
                                         v.get("class_name") == "__keras_tensor__" for v in arg):
            out.extend(operand(v) for v in arg)
        else:
            out.append(operand(arg))
    return out


def _functional_calls(layer_name: str, kind: str, entry: dict, source: str) -> list[list[tuple]]:
    """Per call of a Functional layer (Keras 3 node), the (layer, node index) pairs feeding it."""
    nodes = entry.get("inbound_nodes", [])
    if not isinstance(nodes, list):
        raise NNVisError(f"{source}: layer {layer_name!r} has a bad 'inbound_nodes' entry")
    if kind == INPUT:
        if nodes:
            raise NNVisError(f"{source}: InputLayer {layer_name!r} has inbound nodes")
        return []
    if not nodes:
        raise NNVisError(f"{source}: layer {layer_name!r} ({kind}) is not connected "
                         "(no inbound nodes)")
    calls = []
    for node in nodes:
        if not isinstance(node, dict) or not isinstance(node.get("args", []), list) \
                or not isinstance(node.get("kwargs", {}), dict):
            raise NNVisError(f"{source}: layer {layer_name!r} has an inbound node that is not in "
                             "the Keras 3 format ({'args': [...], 'kwargs': {...}})")
        inbound: list[tuple] = []
        _collect_tensors([node.get("args", []), node.get("kwargs", {})], inbound, layer_name,
                         source)
        if not inbound:
            raise NNVisError(f"{source}: layer {layer_name!r} has an inbound node with no input "
                             "tensor")
        calls.append(inbound)
    return calls


def _collect_tensors(value, out: list[tuple], layer_name: str, source: str, depth: int = 0):
    """Append (source layer, node index) of every `__keras_tensor__` in args/kwargs, in order."""
    if depth > 32:
        raise NNVisError(f"{source}: layer {layer_name!r} has inbound nodes nested too deeply")
    if isinstance(value, list):
        for item in value:
            _collect_tensors(item, out, layer_name, source, depth + 1)
    elif isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            tensor = value.get("config")
            history = tensor.get("keras_history") if isinstance(tensor, dict) else None
            if not (isinstance(history, list) and len(history) == 3
                    and isinstance(history[0], str)):
                raise NNVisError(f"{source}: layer {layer_name!r} has an input tensor without a "
                                 "valid keras_history [layer, node, tensor]")
            out.append((history[0], history[1]))
        else:
            for item in value.values():
                _collect_tensors(item, out, layer_name, source, depth + 1)


def _topological(specs, source: str):
    """Stable topological order (config order wins ties), InputLayers first; reject cycles."""
    index = {spec[0]: i for i, spec in enumerate(specs)}
    waiting = [0] * len(specs)
    consumers: list[list[int]] = [[] for _ in specs]
    for i, (layer_name, _, _, inbound) in enumerate(specs):
        for src in inbound:
            if src not in index:
                raise NNVisError(f"{source}: layer {layer_name!r} is fed by unknown layer {src!r}")
        for src in set(inbound):
            consumers[index[src]].append(i)
            waiting[i] += 1
    ready = [(specs[i][1] != INPUT, i) for i in range(len(specs)) if waiting[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, i = heapq.heappop(ready)
        order.append(specs[i])
        for j in consumers[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, (specs[j][1] != INPUT, j))
    if len(order) < len(specs):
        stuck = [specs[i][0] for i in range(len(specs)) if waiting[i] > 0]
        raise NNVisError(f"{source}: the layer graph has a cycle through {', '.join(stuck)}")
    return order
