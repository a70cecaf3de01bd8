"""Keras layer weights from TF2 checkpoints (`tf.train.Checkpoint(model=m, optimizer=opt)`).

The tensor keys of a Keras 3 checkpoint do not name layers: TensorFlow stores each variable
once, under the first path that reaches it (often `optimizer/_trainable_variables/3/...`). The
layers are found through the object graph instead (measured with TF 2.21 / Keras 3.15):

    root ─ model ─┬─ _functional ─ _operations   (Sequential)
                  └─ _operations                 (Functional)
    _operations ─ "0", "1", ...   one node per operation, in `model.operations` order, which is
                                  the order of the config's "layers" list; a Sequential's
                                  InputLayer is operation 0 although `model.layers` omits it
    operation ─ _kernel | kernel, bias, gamma, beta, moving_mean, ...   (attribute order)
    variable  ─ attribute VARIABLE_VALUE = the tensor key

A layer's weights, in `get_weights()` order, are its direct variable children in attribute
(= creation) order, then those of its sub-objects (a nested model: `_functional` →
`_operations` → its layers) depth-first; the model's `optimizer` child is never followed.
Keras creates trainable weights before non-trainable ones in its own layers, so creation order
is `weights` order.

Keras 2 (tf.keras ≤ 2.15: `save_weights("ckpt/w")`, `tf.train.Checkpoint(model=m)`, and a
SavedModel's `variables/`) tracks a model's layers directly as children `layer-N` (every layer)
and `layer_with_weights-N` (the N-th layer that has weights, in `model.layers` order); the model
is the root, or the root's child `model`. Those children are the operations with variables. Layers without variables (InputLayer, pooling, Flatten, Dropout — whose
seed is not checkpointed) are skipped on both sides; the operations holding variables are
paired in order with the Network's layers that have weights, and every shape is checked. If
that fails but each layer's list of weight shapes is unique on both sides, layers are paired
by those shapes instead; anything else raises NNVisError rather than guessing.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import NNVisError
from ..model.network import Network
from .object_graph import TrackableObject, parse_object_graph
from .tensorbundle import TensorBundle

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def read_tf_checkpoint(prefix, network: Network) -> dict[str, list[np.ndarray]]:
    """Layer name -> weights in Keras `get_weights()` order, for the layers that have weights."""
    bundle = TensorBundle(prefix)
    where = bundle.index_path
    nodes = object_graph(bundle)
    operations = [(i, _variable_keys(nodes, node_id))
                  for i, node_id in enumerate(_operations(nodes, where))]
    found = [(i, keys) for i, keys in operations if keys]
    layers = [layer for layer in network.layers if layer.weight_shapes]
    got = [tuple(bundle.shape(k) for k in keys) for _, keys in found]
    want = [tuple(tuple(int(d) for d in s) for s in layer.weight_shapes) for layer in layers]
    if got == want:
        pairs = zip(layers, found)
    elif len(set(got)) == len(got) == len(want) == len(set(want)) and set(got) == set(want):
        by_shapes = dict(zip(got, found))
        pairs = ((layer, by_shapes[shapes]) for layer, shapes in zip(layers, want))
    else:
        raise NNVisError(_mismatch(where, layers, want, found, got))
    return {layer.name: [bundle.read(k) for k in keys] for layer, (_, keys) in pairs}


def object_graph(bundle: TensorBundle) -> list[TrackableObject]:
    """The checkpoint's TrackableObjectGraph nodes (node 0 is the tf.train.Checkpoint)."""
    if OBJECT_GRAPH_KEY not in bundle:
        raise NNVisError(f"{bundle.index_path}: no object graph; not a TF2 object-based "
                         f"checkpoint (tf.train.Checkpoint)")
    raw = bundle.read(OBJECT_GRAPH_KEY)
    if raw.shape != () or raw.dtype != object:
        raise NNVisError(f"{bundle.index_path}: the object graph is not a scalar string")
    return parse_object_graph(raw[()], f"{bundle.index_path}: object graph")


def _operations(nodes: list[TrackableObject], where: str) -> list[int]:
    """Node ids of the model's operations, in order, nested models' operations in their place:
    those of the root's child `model`, else of the root, else the only ones reachable from the
    root's children."""
    found = {}
    for name, node_id in [("(root)", 0)] + [(c.local_name, c.node_id) for c in nodes[0].children]:
        ops = _model_ops(nodes, node_id, where, 0)
        if ops is not None:
            found.setdefault(name, ops)
    for name in ("model", "(root)"):          # Checkpoint(model=m); save_weights (root = model)
        if name in found:
            return found[name]
    if len({tuple(v) for v in found.values()}) == 1:
        return next(iter(found.values()))
    if not found:
        raise NNVisError(f"{where}: no Keras model in the checkpoint (expected "
                         f"tf.train.Checkpoint(model=...) or model.save_weights of a Sequential "
                         f"or Functional model)")
    raise NNVisError(f"{where}: several Keras models in the checkpoint ({', '.join(found)}); "
                     f"cannot tell which one to read")


_MAX_NESTING = 16


def _model_ops(nodes: list[TrackableObject], node_id: int, where: str, depth: int
               ) -> list[int] | None:
    """A model node's operations (Keras 3 `_operations`, Keras 2 `layer_with_weights-N`) with
    nested models expanded, or None if the node is not a model."""
    node = nodes[node_id]
    ops = _keras2_layers(node)
    if not ops:
        functional = node.child("_functional")
        container = nodes[functional].child("_operations") if functional is not None \
            else node.child("_operations")
        if container is None:
            return None
        children = nodes[container].children
        if sorted(c.local_name for c in children) != sorted(str(i) for i in range(len(children))):
            raise NNVisError(f"{where}: the model's operations are not numbered "
                             f"0..{len(children) - 1}")
        ops = [c.node_id for c in sorted(children, key=lambda c: int(c.local_name))]
    if depth >= _MAX_NESTING:
        raise NNVisError(f"{where}: models nested more than {_MAX_NESTING} deep")
    flat = []
    for op in ops:
        inner = _model_ops(nodes, op, where, depth + 1) if op != node_id else None
        flat.extend(inner if inner is not None else [op])
    return flat


_KERAS2_LAYER = re.compile(r"^layer_with_weights-(\d+)$")


def _keras2_layers(node: TrackableObject) -> list[int]:
    """Node ids of a Keras 2 model's `layer_with_weights-N` children, by N (empty if none)."""
    numbered = {}
    for c in node.children:
        match = _KERAS2_LAYER.match(c.local_name)
        if match:
            numbered.setdefault(int(match.group(1)), c.node_id)
    if sorted(numbered) != list(range(len(numbered))):
        return []
    return [numbered[n] for n in sorted(numbered)]


def _variable_keys(nodes: list[TrackableObject], node_id: int) -> list[str]:
    """Tensor keys of a layer's variables: its own in attribute order, then its sub-objects'
    depth-first (an explicit stack: a hostile graph can nest deeper than Python recursion)."""
    seen, keys, stack = {node_id}, [], [iter([node_id])]
    while stack:
        current = next(stack[-1], None)
        if current is None:
            stack.pop()
            continue
        subs = []
        for c in nodes[current].children:
            if c.node_id in seen or c.local_name == "optimizer":
                continue
            seen.add(c.node_id)
            key = nodes[c.node_id].variable_key
            if key is not None:
                keys.append(key)
            else:
                subs.append(c.node_id)
        stack.append(iter(subs))
    return keys


def _mismatch(where: str, layers, want, found, got) -> str:
    if len(layers) != len(found):
        return (f"{where}: the network has {len(layers)} layers with weights "
                f"({', '.join(layer.name for layer in layers)}), the checkpoint's model "
                f"{len(found)}")
    for layer, shapes, (op, _), held in zip(layers, want, found, got):
        if shapes != held:
            return (f"{where}: layer {layer.name!r} ({layer.kind}) expects weights of shapes "
                    f"{list(shapes)}, the checkpoint's operation #{op} holds {list(held)}")
    raise AssertionError("called without a mismatch")


# --- which checkpoints a folder holds ---------------------------------------------------

_STATE_FIELD = re.compile(r'^\s*(?:all_model_checkpoint_paths|model_checkpoint_path)\s*:\s*'
                          r'"((?:[^"\\]|\\.)*)"', re.MULTILINE)
_ESCAPE = re.compile(rb"\\([0-7]{1,3}|x[0-9a-fA-F]{1,2}|.)")
_SIMPLE_ESCAPES = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"a": b"\a", b"b": b"\b",
                   b"f": b"\f", b"v": b"\v"}
_NUMBERED = re.compile(r"^(.*)-(\d+)(?:\.ckpt)?$")
_MAX_STATE_BYTES = 16 << 20     # CheckpointManager writes some 100 bytes per kept checkpoint


def list_checkpoints(folder) -> list[tuple[int, str]]:
    """(N, prefix) of the folder's numbered checkpoints, ascending by N.

    Numbered: `<name>-N` (tf.train.Checkpoint.save, CheckpointManager) or `<name>-N.ckpt`
    (the TF tutorial's `cp-{epoch:04d}.ckpt`). Every such prefix on disk counts, whatever the
    `checkpoint` state file says (Checkpoint.save without a manager lists only the last one);
    the state file adds the checkpoints it names elsewhere (paths relative or absolute; absolute
    paths from another machine are looked up by file name in this folder) and, when the folder
    holds checkpoints of several names, says which name is meant.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NNVisError(f"{folder}: not a folder")
    listed = _from_state_file(folder)
    on_disk = _from_index_files(folder)
    names = {name for name, _, _ in on_disk}
    if len(names) > 1:
        wanted = {name for name, _, _ in listed}
        if not wanted:
            raise NNVisError(f"{folder}: checkpoints of several names ({', '.join(sorted(names))}) "
                             f"and no `checkpoint` state file saying which to use")
        on_disk = [entry for entry in on_disk if entry[0] in wanted]
    by_number = {}
    for _, n, prefix in listed + on_disk:
        if by_number.setdefault(n, prefix) != prefix and \
                Path(by_number[n]).resolve() != Path(prefix).resolve():
            raise NNVisError(f"{folder}: two checkpoints are numbered {n} "
                             f"({by_number[n]}, {prefix})")
    return sorted(by_number.items())


def _from_state_file(folder: Path) -> list[tuple[str, int, str]]:
    state = folder / "checkpoint"
    if not state.is_file():
        return []
    try:
        if state.stat().st_size > _MAX_STATE_BYTES:
            raise NNVisError(f"{state}: {state.stat().st_size} bytes is too large for a "
                             f"checkpoint state file")
        content = state.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise NNVisError(f"{state}: cannot read the checkpoint state file ({e.strerror})") from None
    found = []
    for quoted in _STATE_FIELD.findall(content):
        text = _unescape(quoted)
        path = Path(text) if Path(text).is_absolute() else folder / text
        if not _is_file(f"{path}.index"):           # folder copied from another machine
            path = folder / re.split(r"[\\/]", text)[-1]
        match = _NUMBERED.match(path.name)
        if match and _is_file(f"{path}.index"):
            found.append((match.group(1), int(match.group(2)), str(path)))
    return found


def _is_file(path: str) -> bool:
    """Path.is_file, also False for names the OS refuses (too long, NUL bytes)."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def _from_index_files(folder: Path) -> list[tuple[str, int, str]]:
    found = []
    for index in folder.glob("*.index"):
        match = _NUMBERED.match(index.name[:-len(".index")])
        if match:
            found.append((match.group(1), int(match.group(2)), str(index.with_suffix(""))))
    return found


def _unescape(text: str) -> str:
    """A protobuf text-format string literal's content (C escapes; octal bytes are UTF-8)."""
    def one(m: re.Match) -> bytes:
        code = m.group(1)
        if code[:1] in b"01234567":
            return bytes([int(code, 8) & 0xFF])
        if code[:1] == b"x":
            return bytes([int(code[1:], 16)])
        return _SIMPLE_ESCAPES.get(code, code)
    return _ESCAPE.sub(one, text.encode("utf-8")).decode("utf-8", "replace")
