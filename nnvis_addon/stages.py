"""A deep network's stages: the spans of layers that work at one spatial resolution.

ResNet50's 177 layers read as input, stem, four stages and a head — the words an explainer uses.
Stages name the labels of deep networks (scene/labels.py) and the rows of the wrapped layout.
Pure Python: no bpy.
"""
from __future__ import annotations

from dataclasses import dataclass

from .blocks import KIND as BLOCK, layer_count
from .model.keras_config import block_path
from .model.kinds import INPUT
from .model.network import Network

SHORT = 3        # spans shorter than this (padding, a lone pool) join the next span


def shape_text(layer) -> str:
    """'32×32×8': a layer's output shape as labels print it."""
    return "×".join(str(d) for d in layer.output_shape)


@dataclass
class Stage:
    name: str                 # "input", "stem", "stage 1", ..., "head"
    layers: list[str]

    def text(self, network: Network) -> str:
        shape = shape_text(network.layer(self.layers[-1]))
        folded = sum(network.layer(n).kind == BLOCK for n in self.layers)
        total = _count(network, self.layers)
        count = f"{folded} blocks" if folded > 1 else f"{total} layers" if total > 1 \
            else self.layers[0]
        if self.name == "input" and total == 1:      # its layer's name ('input_layer') adds nothing
            return f"{self.name}\n{shape}"
        return f"{self.name} · {count}\n{shape}"


def _resolution(layer) -> object:
    return layer.output_shape[0] if layer.is_spatial else "head"


def stages(network: Network) -> list[Stage]:
    """Input, stem, stage 1..n, head: contiguous spans (in network order) of one resolution,
    short spans merged into the next, and a span then of its neighbour's resolution joining it
    (a padding layer inside an expanded block had split ResNet101V2's conv3 into four 8×8
    'stages')."""
    layers = network.layers
    spans: list[list] = []
    for layer in layers:
        key = "input" if layer.kind == INPUT else _resolution(layer)
        if spans and spans[-1][0] == key:
            spans[-1][1].append(layer.name)
        else:
            spans.append([key, [layer.name]])
    merged: list[list] = []
    carry: list[str] = []
    for key, names in spans:
        names = carry + names
        carry = []
        if key not in ("input", "head") and _count(network, names) < SHORT \
                and key is not spans[-1][0]:
            carry = names
            continue
        if merged and merged[-1][0] == key:
            merged[-1][1].extend(names)
            continue
        merged.append([key, names])
    if carry:
        merged.append(["head", carry])
    body = [m for m in merged if m[0] not in ("input", "head")]
    out, number = [], 0
    for key, names in merged:
        if key in ("input", "head"):
            name = key
        elif _is_stem(network, body, names):
            name = "stem"
        else:
            number += 1
            name = f"stage {number}"
        out.append(Stage(_in_block(network, names) + name, names))
    return out


def _in_block(network: Network, names: list[str]) -> str:
    """'mobilenetv2_1.00_224 · ' when every layer of a span sits in that nested model (a
    flattened transfer-learning backbone keeps its name, keras_config.BLOCK_KEY), else ''."""
    blocks = {(block_path(network.layer(n)) or [(None,)])[0][0] for n in names}
    block = blocks.pop() if len(blocks) == 1 else None
    return f"{block} · " if block else ""


def _count(network: Network, names: list[str]) -> int:
    """The model's layers behind `names` (a folded block counts its own)."""
    return sum(layer_count(network.layer(n)) for n in names)


def _is_stem(network: Network, body: list[list], names: list[str]) -> bool:
    """The first body span is the stem when it is short next to the stages after it."""
    return (len(body) >= 4 and names is body[0][1]
            and _count(network, names) * 3 < max(_count(network, b[1]) for b in body[1:]))
