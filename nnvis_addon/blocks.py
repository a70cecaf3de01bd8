"""A deep network's repeated blocks, folded into one drawn unit each.

ResNet50 has 177 layers but reads as 16 bottleneck blocks; drawn layer by layer its feature maps
are slivers. Folded, each block is one unit showing its output maps (what the next block sees),
labelled with the block's name, and the edges into it carry the block's composed channel-to-channel
influence. Any block can be expanded again by name.

Blocks are found from the graph, not from names: a layer every input-to-output path goes through
(no connection jumps over it) closes a block, so a residual or dense block — whose shortcut jumps
over its inner layers — folds into the layer that merges it. Chains of single layers sharing a
numbered name prefix (`conv1_pad`, `conv1_conv`, `conv1_bn`; MobileNetV2's `block_1_*`) fold too.
Pure Python: no bpy.
"""
from __future__ import annotations

import re
from dataclasses import replace

from .model.edges import BLOCK
from .model.kinds import INPUT
from .model.network import Layer, Network

FOLD_ABOVE = 40          # "auto" folds networks with more layers than this
MODES = ("auto", "folded", "expanded")
KIND = BLOCK             # a folded unit's layer kind
EXPANDED = "expanded_block"   # config key of a layer drawn expanded: its block's name


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[_/.:]", name) if t]


def _prefix(names: list[str]) -> list[str]:
    """The name tokens every name starts with."""
    common = _tokens(names[0])
    for name in names[1:]:
        tokens = _tokens(name)
        n = 0
        while n < min(len(common), len(tokens)) and common[n] == tokens[n]:
            n += 1
        common = common[:n]
    return common


def _numbered(tokens: list[str]) -> list[str]:
    """The block-like part of a name prefix: up to its last token with a digit (`conv1`,
    `block_1`); empty when no token has one."""
    last = max((k for k, t in enumerate(tokens) if any(c.isdigit() for c in t)), default=-1)
    return tokens[:last + 1]


def _closing(network: Network) -> list[bool]:
    """Per layer: no connection jumps over it, so every path from the input passes through it."""
    pos = {layer.name: i for i, layer in enumerate(network.layers)}
    jumped = [0] * (len(network.layers) + 1)
    for i, layer in enumerate(network.layers):
        for src in layer.inbound:
            if pos[src] + 1 < i:               # covers pos[src]+1 .. i-1
                jumped[pos[src] + 1] += 1
                jumped[i] -= 1
    out, running = [], 0
    for i, layer in enumerate(network.layers):
        running += jumped[i]
        out.append(running == 0 or layer.kind == INPUT)
    return out


def find_blocks(network: Network) -> list[list[str]]:
    """The network's layers in drawing units, in order: each list is one unit (its last layer the
    unit's output); a unit of one layer is drawn as that layer."""
    units: list[list[str]] = []
    current: list[str] = []
    for layer, closes in zip(network.layers, _closing(network)):
        current.append(layer.name)
        if closes:
            units.append(current)
            current = []
    if current:
        units.append(current)
    merged: list[list[str]] = []
    for unit in units:
        if len(unit) == 1 and merged and _joins(network, merged[-1], unit[0]):
            merged[-1] = merged[-1] + unit
        else:
            merged.append(unit)
    return merged


def _joins(network: Network, unit: list[str], name: str) -> bool:
    """A single layer joins the unit before it when it takes only that unit's output and its name
    continues the unit's numbered prefix: `conv1_bn` after `conv1_conv`, `conv2_block1_out`
    after the residual block `conv2_block1`."""
    layer = network.layer(name)
    if layer.kind == INPUT or layer.inbound != [unit[-1]] or \
            network.layer(unit[0]).kind == INPUT:
        return False
    joined = _numbered(_prefix(unit + [name]))
    return bool(joined) and (len(unit) == 1 or joined == _numbered(_prefix(unit)))


def _coarser(units: list[list[str]]) -> list[list[str]]:
    """Runs of blocks under one numbered prefix fold into one (DenseNet's `conv2_block1` …
    `conv2_block6` → `conv2`, its dense block 1), for networks whose blocks are still too many."""
    out: list[list[str]] = []
    for unit in units:
        if out and len(unit) > 1 and len(out[-1]) > 1:
            joined = _numbered(_prefix([block_name(out[-1]), block_name(unit)]))
            if joined and joined == _numbered(_prefix(out[-1])[:len(joined)]):
                out[-1] = out[-1] + unit
                continue
        out.append(unit)
    return out


def block_name(names: list[str]) -> str:
    """`conv2_block1` for the layers `conv2_block1_1_conv` … `conv2_block1_out`: their common
    name prefix, else the output layer's name."""
    tokens = _prefix(names)
    if not tokens or tokens == _tokens(names[-1]):
        return names[-1]
    first = names[0]
    end = 0
    for token in tokens:            # the prefix as spelled in the name (its separators kept)
        end = first.index(token, end) + len(token)
    return first[:end]


def should_fold(network: Network, mode: str) -> bool:
    if mode not in MODES:
        raise ValueError(f"blocks mode {mode!r}: choose one of {', '.join(MODES)}")
    return mode == "folded" or (mode == "auto" and len(network.layers) > FOLD_ABOVE)


def expand_names(expand: str) -> list[str]:
    """The block names of an Expand Blocks text (comma-separated)."""
    return [n.strip() for n in expand.split(",") if n.strip()]


def drawn(network: Network, mode: str = "auto", expand: str = "") -> Network:
    """`network` as a scene draws it for the Blocks option `mode` and the comma-separated Expand
    Blocks names: the import and a live refresh fold it the same way."""
    if not should_fold(network, mode):
        return network
    return fold(network, expand_names(expand))


def fold(network: Network, expand=()) -> Network:
    """The network with each block of two or more layers (runs of blocks under one numbered
    prefix too, while there are more than `FOLD_ABOVE`) replaced by one `Block` layer named
    after the block's output layer (so activations keyed by layer name stay the unit's), its
    config naming the block, its `inner` holding the block's own layers. Blocks named in
    `expand` (block names or any of their layers' names) stay layer by layer, each of their
    layers' configs naming the block (`EXPANDED`: labelled one by one in a wrapped layout)."""
    expand = set(expand)
    unit_of: dict[str, str] = {}
    layers: list[Layer] = []
    units = find_blocks(network)
    if len(units) > FOLD_ABOVE:
        units = _coarser(units)
    for names in units:
        name = block_name(names)
        if len(names) == 1 or name in expand or expand & set(names):
            for n in names:
                unit_of[n] = n
            mark = {EXPANDED: name} if len(names) > 1 else {}
            layers.extend(replace(network.layer(n), inbound=[unit_of[i] for i in
                                                             network.layer(n).inbound],
                                  config={**network.layer(n).config, **mark})
                          for n in names)
            continue
        inner = [network.layer(n) for n in names]
        for n in names:
            unit_of[n] = names[-1]
        outer = list(dict.fromkeys(unit_of[i] for layer in inner for i in layer.inbound
                                   if i not in names))
        layers.append(Layer(names[-1], KIND, {"block": name, "layers": len(names)}, outer,
                            inner[-1].output_shape, inner=inner))
    return replace(network, layers=layers)      # inputs, outputs and their order kept


def title(layer: Layer) -> str:
    """What a label calls a layer: a folded block by its block name."""
    return layer.config["block"] if layer.kind == KIND else readable(layer.name)


def readable(name: str) -> str:
    """A layer name as a viewer reads it: torch.onnx's node paths without their repeats
    (`/features/features.1/Relu` → `features.1/Relu`, `/layer1/layer1.0/conv1/Conv` →
    `layer1.0/conv1`); other names as they are."""
    if not name.startswith("/"):
        return name
    parts = [p for p in name.strip("/").split("/") if p]
    kept = [p for p, after in zip(parts, parts[1:] + [""]) if not after.startswith(p)]
    if len(kept) > 1 and kept[-2].lower().startswith(kept[-1].lower()):
        kept.pop()         # `conv1/Conv`: the op repeats its module's name
    return "/".join(kept) or name


def layer_count(layer: Layer) -> int:
    """How many of the model's layers a drawn layer stands for."""
    return len(layer.inner) or 1
