"""The layers a recorder saw, written as the Keras 3 Functional config nnvis reads.

The PyTorch Recorder and the Keras Recorder of a subclassed model have no Keras config to store
(a torch module, a Python ``call()``): both describe what they recorded as ``RecordedLayer`` entries
and store ``functional_config`` of them, so layout, edges and the scene treat the recording like a
Keras Functional model. No framework is imported here.
"""
from __future__ import annotations

import dataclasses

from ..model.kinds import INPUT


@dataclasses.dataclass
class RecordedLayer:
    """One recorded layer: its Keras kind and config, the layers it reads, its output shape (no
    batch). ``call_of``: the layer this is a later call of (a shared layer); such a call is named
    ``<call_of>@<i>`` (i = 1, 2, ...), as nnvis names a Keras model's later calls."""
    name: str
    kind: str
    config: dict
    inbound: list
    shape: tuple
    warning: str | None = None
    keras_module: str = "keras.layers"
    registered_name: str | None = None
    call_of: str | None = None


def unique(name: str, taken: set) -> str:
    """``name``, or ``name:1``, ``name:2``... if taken; the result is added to ``taken``."""
    out, k = name, 1
    while out in taken:
        out, k = f"{name}:{k}", k + 1
    taken.add(out)
    return out


def functional_config(name: str, layers: list[RecordedLayer], input_order: str = "hwc") -> dict:
    """The layers as a Keras 3 Functional config (what nnvis' config reader parses): one entry per
    layer, a shared layer's later calls as further inbound nodes of its entry. `input_order`
    "chw" (a PyTorch model's (C, H, W) input) is written as the config's `input_order`, so that
    probe arrays are read in that layout."""
    shapes = {l.name: l.shape for l in layers}
    history, entries = {}, {}
    for l in layers:
        owner = l.call_of or l.name
        history[l.name] = [owner, len(entries[owner]["inbound_nodes"]) if l.call_of else 0, 0]
        args = [{"class_name": "__keras_tensor__",
                 "config": {"shape": [None, *shapes[src]], "dtype": "float32",
                            "keras_history": history[src]}} for src in l.inbound]
        nodes = [] if not args else [{"args": [args] if len(args) > 1 else args, "kwargs": {}}]
        if l.call_of:
            entries[owner]["inbound_nodes"] += nodes
            continue
        config = {"name": l.name, **l.config}
        if l.kind == INPUT:
            config["batch_shape"] = [None, *l.shape]
        entries[l.name] = {"module": l.keras_module, "class_name": l.kind, "name": l.name,
                           "registered_name": l.registered_name, "config": config,
                           "inbound_nodes": nodes}
    order = {"input_order": input_order} if input_order != "hwc" else {}
    return {"module": "keras", "class_name": "Functional",
            "config": {"name": name, "layers": list(entries.values()), **order}}
