"""A deep network's repeated blocks, folded into one drawn unit each.

ResNet50 has 177 layers but reads as 16 bottleneck blocks; drawn layer by layer its feature maps
are slivers. Folded, each block is one unit showing its output maps (what the next block sees),
labelled with the block's name, and the edges into it carry the block's composed channel-to-channel
influence. Any block can be expanded again by name.

Blocks are found from the graph, not from names: a layer every input-to-output path goes through
(no connection jumps over it) closes a block, so a residual or dense block — whose shortcut jumps
over its inner layers — folds into the layer that merges it. Chains of single layers sharing a
numbered name prefix (`conv1_pad`, `conv1_conv`, `conv1_bn`; MobileNetV2's `block_1_*`) fold too.
Cells that read the two cells before them (NASNet's) have no such layer: a unit that would swallow
much of the network is cut where the fewest tensors cross (`_cells`).
Pure Python: no bpy.
"""
from __future__ import annotations

import re
from dataclasses import replace

from .errors import NNVisError
from .model.edges import BLOCK
from .model.kinds import INPUT
from .model.network import Layer, Network

FOLD_ABOVE = 40          # "auto" folds networks with more layers than this
WHOLE = 0.25             # a unit holding more of the network's layers than this share is split
#                          at its cells (`_cells`)
MODES = ("auto", "folded", "expanded")
KIND = BLOCK             # a folded unit's layer kind
EXPANDED = "expanded_block"   # config key of a layer drawn expanded: its block's name
PART = "expanded_part"       # ... and of the block within it (a folded stage holds many)


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
    by_name = {layer.name: layer for layer in network.layers}
    units = [cell for unit in units for cell in
             (_cells(by_name, unit) if len(unit) > WHOLE * len(network.layers) else [unit])]
    readers = _readers(network)
    merged: list[list[str]] = []
    for unit in units:
        if len(unit) == 1 and merged and _joins(network, merged[-1], unit[0], readers):
            merged[-1] = merged[-1] + unit
        else:
            merged.append(unit)
    return merged


def _cells(layers: dict[str, Layer], unit: list[str]) -> list[list[str]]:
    """A unit that swallows much of the network, split where the fewest tensors cross.

    NASNet's cells each read the two cells before them, so no single layer closes a cell (765 of
    NASNetMobile's 771 layers were one unit). Cut at a merge `v` into what `v` depends on and the
    rest: the tensors crossing are the layers on `v`'s side that the rest still reads (2 at each
    NASNet cell's concatenation: its own output and the cell's before it). The cuts are the
    merges where the fewest cross, each kept only when it depends on the cut before it (the cells
    follow one another, a side branch that merges early is no cell) and every tensor crossing it
    besides `v` is an earlier cut's or comes from before the unit: so every connection between
    the pieces starts at a piece's shown output (a cell read two cells on becomes an edge that
    skips one), and a piece's edges compose its own layers as any folded block's do."""
    at = {name: i for i, name in enumerate(unit)}
    needs = []                  # per layer: the bits of the unit's layers it depends on, itself too
    readers: dict[str, int] = {}    # per layer read inside the unit: the bits of its readers
    for i, name in enumerate(unit):
        bits = 1 << i
        for src in layers[name].inbound:
            bits |= needs[at[src]] if src in at else 0
            readers[src] = readers.get(src, 0) | 1 << i
        needs.append(bits)
    crossing = {}
    for i, name in enumerate(unit[:-1]):
        if len(layers[name].inbound) > 1:     # a merge: where a cell's branches close
            side = needs[i]
            crossing[name] = [src for src, read in readers.items()
                              if read & ~side and (src not in at or side >> at[src] & 1)]
    if not crossing:
        return [unit]
    fewest = min(map(len, crossing.values()))
    cuts: list[str] = []
    for name, crossed in crossing.items():
        if len(crossed) == fewest and (not cuts or needs[at[name]] >> at[cuts[-1]] & 1) and \
                all(src == name or src in cuts or src not in at for src in crossed):
            cuts.append(name)
    pieces, taken = [], 0
    for name in cuts + [None]:              # the rest: the last cut to the unit's end
        piece = (needs[at[name]] if name else (1 << len(unit)) - 1) & ~taken
        pieces.append([n for i, n in enumerate(unit) if piece >> i & 1])
        taken |= piece
    return pieces


def _joins(network: Network, unit: list[str], name: str, readers: dict[str, set[str]]) -> bool:
    """A single layer joins the unit before it when it takes only that unit's output, nothing
    else reads that output, and its name continues the unit's numbered prefix: `conv1_bn` after
    `conv1_conv`, `conv2_block1_out` after the residual block `conv2_block1`."""
    layer = network.layer(name)
    if layer.kind == INPUT or layer.inbound != [unit[-1]] or readers[unit[-1]] != {name} or \
            network.layer(unit[0]).kind == INPUT:
        return False
    joined = _numbered(_prefix(unit + [name]))
    return bool(joined) and (len(unit) == 1 or joined == _numbered(_prefix(unit)))


def _readers(network: Network) -> dict[str, set[str]]:
    """Per layer, the layers that read its output: a unit whose output a later unit reads too
    (a cell read two cells on, `_cells`) stays a unit of its own."""
    readers: dict[str, set[str]] = {layer.name: set() for layer in network.layers}
    for layer in network.layers:
        for src in layer.inbound:
            readers[src].add(layer.name)
    return readers


def _coarser(network: Network, units: list[list[str]]) -> list[list[str]]:
    """Runs of blocks under one numbered prefix fold into one (DenseNet's `conv2_block1` …
    `conv2_block6` → `conv2`, its dense block 1), for networks whose blocks are still too many."""
    readers = _readers(network)
    out: list[list[str]] = []
    for unit in units:
        if out and len(unit) > 1 and len(out[-1]) > 1 and readers[out[-1][-1]] <= set(unit):
            joined = _numbered(_prefix([block_name(network, out[-1]), block_name(network, unit)]))
            if joined and joined == _numbered(_prefix(out[-1])[:len(joined)]):
                out[-1] = out[-1] + unit
                continue
        out.append(unit)
    return out


def block_name(network: Network, names: list[str]) -> str:
    """`conv2_block1` for the layers `conv2_block1_1_conv` … `conv2_block1_out`: their common
    name prefix, else the output layer's name. A block closing in a layer Keras named for its
    class (Xception's `add_2` after `block4_sepconv1` …) is named by its other layers' common
    numbered prefix where they have one (`block4`)."""
    tokens = _prefix(names)
    if tokens and tokens != _tokens(names[-1]):
        return _spelled(names[0], tokens)
    if network.layer(names[-1]).auto_named:
        named = [n for n in names if not network.layer(n).auto_named]
        tokens = _numbered(_prefix(named)) if named else []
        if tokens:
            return _spelled(named[0], tokens)
    return names[-1]


def _spelled(name: str, tokens: list[str]) -> str:
    """The name prefix `tokens` as spelled in `name` (its separators kept)."""
    end = 0
    for token in tokens:
        end = name.index(token, end) + len(token)
    return name[:end]


def named(name: str, units: dict[str, list[str]]) -> list[str]:
    """The folded units (title: its layers' names) that the name a user gives stands for: a unit's
    title, one of its layers, or a block's name prefix (`conv3_block2` for the unit holding
    `conv3_block2_1_conv` …; `conv4` for every unit of stage 4); none when nothing matches."""
    if name in units:
        return [name]
    tokens = _tokens(name)
    return [title for title, inner in units.items()
            if name in inner or (tokens and any(_tokens(n)[:len(tokens)] == tokens
                                                for n in inner))]


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
    `expand` (`named`: block names, their layers' names, name prefixes; an NNVisError for a
    name that is none of these) stay layer by layer, each of their
    layers' configs naming the block (`EXPANDED`) and the block of `find_blocks` within it that
    holds the layer (`PART`: a stage folded by `_coarser` holds many), for the labels."""
    unit_of: dict[str, str] = {}
    layers: list[Layer] = []
    units = fine = find_blocks(network)
    if len(units) > FOLD_ABOVE:
        units = _coarser(network, units)
    expand = _expanded_titles(network, units, expand)
    parts = [block_name(network, names) for names in fine]
    for k in range(len(parts) - 2, -1, -1):     # conv3_block1_preact joins conv3_block1
        ahead = _tokens(parts[k + 1])
        if _tokens(parts[k])[:len(ahead)] == ahead:
            parts[k] = parts[k + 1]
    part = {n: p for names, p in zip(fine, parts) for n in names}
    for names in units:
        name = block_name(network, names)
        if len(names) == 1 or name in expand:
            for n in names:
                unit_of[n] = n
            layers.extend(replace(network.layer(n), inbound=[unit_of[i] for i in
                                                             network.layer(n).inbound],
                                  config={**network.layer(n).config,
                                          **({EXPANDED: name, PART: part[n]}
                                             if len(names) > 1 else {})})
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


def _expanded_titles(network: Network, units: list[list[str]], expand) -> set[str]:
    """The block names of `units` that the Expand Blocks names stand for (`named`); a name that
    is no block, no layer and no name prefix is an NNVisError (it was ignored in silence)."""
    folded = {block_name(network, names): names for names in units if len(names) > 1}
    titles: set[str] = set()
    for name in expand:
        found = named(name, folded)
        if not found and not any(name in names for names in units):
            shown = ", ".join(list(folded)[:8]) + (", …" if len(folded) > 8 else "")
            raise NNVisError(f"Expand Blocks: {network.name} has no block {name!r} (its "
                             f"blocks: {shown})")
        titles.update(found)
    return titles


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
