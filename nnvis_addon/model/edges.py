"""The edges the scene draws between two layers: which cell feeds which, how strongly, per epoch.

A cell is what a layer is drawn as (``Layer.is_spatial``): feature map c of an (H, W, C) output,
else a unit of the flattened output. An edge joins a cell of an inbound layer to a cell of the layer
it feeds; its weight is one number per epoch, so colour and radius animate with the ``Epoch``
input. Pruning picks one edge set for all epochs, so the bundled curves are computed once.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import NNVisError
from . import kinds
from .kinds.cells import all_pairs, strongest
from .network import Layer, Network


@dataclass
class Edges:
    src: np.ndarray      # (n,) int32: cell index in the source (inbound) layer
    dst: np.ndarray      # (n,) int32: cell index in the target layer
    weight: np.ndarray   # (E, n) float32: one row per epoch

    def __len__(self) -> int:
        return int(self.src.shape[0])

    @property
    def one_to_one(self) -> bool:
        """No cell appears twice on either side (pass-through layers): nothing to bundle, so
        bundling would only bend them; draw them straight."""
        return len(np.unique(self.src)) == len(self) == len(np.unique(self.dst))

    def subset(self, keep: np.ndarray) -> "Edges":
        """The edges at `keep` (e.g. what `prune` returns), all epochs."""
        return Edges(self.src[keep], self.dst[keep], self.weight[:, keep])


def layer_edges(network: Network, layer_name: str,
                weights_by_epoch: list[dict[str, list[np.ndarray]]],
                max_edges: int | None = None, top_k: int | None = None) -> dict[str, Edges]:
    """Edges into `layer_name`, keyed by inbound layer name; weights read per epoch.

    `max_edges` caps each connection to its strongest edges (`prune`'s max over epochs of |w|);
    a huge Dense layer (VGG16's 25088 × 4096) is pruned before its edge list is ever built.
    `top_k` keeps each target cell's k strongest inputs first (a sheaf, not a wall).

    `weights_by_epoch[e][layer]` is that layer's weight list in Keras ``get_weights()`` order.
    Which cell feeds which, and how strongly, is each kind's own rule (`Kind.edges`, told in its
    family module of `model.kinds`: a convolution's channel pairs weigh the norm of their kernel
    slice, a pooling links matching maps with weight 1, ...). A folded block (blocks.py): input
    channel → output cell, weight composed through the block's layers; each output cell's
    strongest inputs only. The input has no edges ({}); a kind without a rule: NNVisError naming
    the layer.
    """
    layer = _layer(network, layer_name)
    kind = kinds.get(layer.kind)
    if kind is not None and kind.arity == 0:
        return {}
    if not weights_by_epoch:
        raise NNVisError(f"layer {layer.name!r}: no epochs of weights given")
    handler = _rule(layer)
    sources = [_layer(network, name) for name in layer.inbound]
    edges: dict[str, Edges] = {}
    for k, source in enumerate(sources):
        if kind is not None and kind.strongest and max_edges is not None \
                and len(source.output_shape) == 1 \
                and source.cell_count * layer.cell_count > max_edges:
            src, dst, weight = kind.strongest(layer, source, weights_by_epoch, max_edges)
        else:
            src, dst, weight = handler(layer, source, weights_by_epoch, sources, k)
        if weight is None:
            weight = np.ones((len(weights_by_epoch), src.shape[0]), np.float32)
        new = Edges(src.astype(np.int32, copy=False), dst.astype(np.int32, copy=False), weight)
        if top_k or (max_edges is not None and len(new) > max_edges):
            new = new.subset(prune(new, new.weight, top_k=top_k or None, max_edges=max_edges))
        old = edges.get(source.name)                    # the same layer fed in twice: keep both
        edges[source.name] = new if old is None else Edges(
            np.concatenate([old.src, new.src]), np.concatenate([old.dst, new.dst]),
            np.concatenate([old.weight, new.weight], axis=1))
    return edges


def edge_weights(network: Network, layer_name: str, source_name: str,
                 weights_by_epoch: list[dict[str, list[np.ndarray]]], src: np.ndarray,
                 dst: np.ndarray) -> np.ndarray:
    """(E, n) weights of the given edges `src[i]` → `dst[i]` of one connection, as `layer_edges`
    gives them: a live refresh extends the edges a scene already draws (its pruning was done
    once, on the epochs of the import). A kind with its own way (`Kind.edge_weights`: a Dense
    kernel, which may be huge, indexed directly) uses it on a flat source, a folded block its
    composed reach (its strongest inputs depend on the epochs)."""
    layer, source = _layer(network, layer_name), _layer(network, source_name)
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    if layer.kind == BLOCK:             # its drawn edges are each output's strongest inputs
        sources = [_layer(network, n) for n in layer.inbound]
        return np.stack([reach[src, dst] for reach in
                         block_reach(layer, source, weights_by_epoch, sources)])
    kind = kinds.get(layer.kind)
    if kind is not None and kind.edge_weights and len(source.output_shape) == 1:
        return kind.edge_weights(layer, source, weights_by_epoch, src, dst)
    full = layer_edges(network, layer_name, weights_by_epoch).get(source_name)
    if full is None:
        raise NNVisError(f"layer {layer_name!r} has no edges from {source_name!r}")
    stride = int(max(full.dst.max(initial=0), dst.max(initial=0))) + 1
    keys = full.src.astype(np.int64) * stride + full.dst
    order = np.argsort(keys, kind="stable")
    wanted = src * stride + dst
    at = np.minimum(np.searchsorted(keys[order], wanted), len(keys) - 1)
    if len(keys) == 0 or not np.array_equal(keys[order][at], wanted):
        raise NNVisError(f"edges {source_name!r} → {layer_name!r}: the drawn edges are not "
                         "edges of this connection; re-import the run")
    return full.weight[:, order[at]]


def cell_activations(layer: Layer, activation: np.ndarray) -> np.ndarray:
    """(E, cells) per-cell activation from a layer's output (E, *output_shape): map mean or unit."""
    activation = np.asarray(activation)
    if activation.shape[1:] != tuple(layer.output_shape):
        raise NNVisError(f"layer {layer.name!r}: activation shape {activation.shape[1:]} is not "
                         f"its output shape {tuple(layer.output_shape)}")
    if layer.is_spatial:
        return activation.mean(axis=tuple(range(1, activation.ndim - 1)),
                               dtype=np.float64).astype(np.float32)
    return activation.reshape(activation.shape[0], -1).astype(np.float32, copy=False)


EDGE_VALUE_MODES = ("weight", "abs", "weight_x_activation", "importance")


def edge_values(edges: Edges, mode: str, src_activation: np.ndarray | None = None) -> np.ndarray:
    """(E, n) float32 value per edge and epoch, what colour and radius show.

    weight: w; abs: |w|; weight_x_activation: w · a; importance: |w| · |a|, where a is the source
    cell's activation that epoch (`src_activation` (E, source cells), see `cell_activations`).
    The absolute value of a keeps importance a magnitude for sources that go negative (tanh,
    linear, BN); after ReLU it equals |w| · a.
    """
    if mode == "weight":
        return edges.weight.astype(np.float32, copy=True)
    if mode == "abs":
        return np.abs(edges.weight).astype(np.float32, copy=False)
    if mode not in EDGE_VALUE_MODES:
        raise NNVisError(f"unknown edge value mode {mode!r}; one of {', '.join(EDGE_VALUE_MODES)}")
    if src_activation is None:
        raise NNVisError(f"edge value mode {mode!r} needs the source layer's activations")
    act = np.asarray(src_activation, np.float32)
    cells = int(edges.src.max()) + 1 if len(edges) else 0
    if act.ndim != 2 or act.shape[0] != edges.weight.shape[0] or act.shape[1] < cells:
        raise NNVisError(f"source activations of shape {act.shape} do not cover "
                         f"{edges.weight.shape[0]} epochs × {cells} source cells")
    a = act[:, edges.src]
    if mode == "weight_x_activation":
        return edges.weight * a
    return np.abs(edges.weight) * np.abs(a)


def prune(edges: Edges, values: np.ndarray, top_k: int | None = None,
          threshold: float | None = None, max_edges: int | None = None) -> np.ndarray:
    """Indices (ascending, int64) of the edges to draw; one set for every epoch.

    Each edge is scored by the max over epochs of |values| (so an edge strong in any epoch stays).
    Applied in order: `threshold` keeps score ≥ threshold; `top_k` keeps the k strongest edges INTO
    each target cell (every target keeps its main inputs, which an overall top-k would starve);
    `max_edges` (the level-of-detail cap) keeps the strongest overall. Ties go to the lower index.
    """
    values = np.asarray(values)
    n = len(edges)
    if values.ndim != 2 or values.shape[1] != n:
        raise NNVisError(f"edge values of shape {values.shape} do not match {n} edges")
    score = np.abs(values).max(axis=0) if values.shape[0] else np.zeros(n, values.dtype)
    keep = np.arange(n)
    if threshold is not None:
        keep = keep[score >= threshold]
    if top_k is not None:
        if top_k < 0:
            raise NNVisError(f"top_k must be ≥ 0, got {top_k}")
        dst = edges.dst[keep]
        order = _by_target_strongest_first(dst, score[keep])
        dst_sorted = dst[order]
        first = np.searchsorted(dst_sorted, dst_sorted, side="left")
        rank = np.arange(order.shape[0]) - first
        keep = keep[order[rank < top_k]]
    if max_edges is not None:
        if max_edges < 0:
            raise NNVisError(f"max_edges must be ≥ 0, got {max_edges}")
        if keep.shape[0] > max_edges:
            keep = keep[strongest(score[keep], max_edges)]
    return np.sort(keep).astype(np.int64)


def _by_target_strongest_first(dst: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The order of the edges by target cell, strongest first within a target, ties by index
    (NaN scores last). Non-negative float32 scores order like their bits, so (target, bits) packed
    in one uint64 key takes one stable sort instead of two (VGG16's convolutions: 0.46 s)."""
    if score.dtype == np.float32 and dst.size and dst.min() >= 0 and not np.isnan(score).any() \
            and not (score < 0).any():
        key = dst.astype(np.uint64) << np.uint64(32)
        key |= np.uint64(0xFFFFFFFF) - score.view(np.uint32)
        return np.argsort(key, kind="stable")
    order = np.argsort(-score, kind="stable")                           # strongest first, ties
    return order[np.argsort(dst[order], kind="stable")]                 # by index; then by target


# --------------------------------------------------------------------------------------------------


def _layer(network: Network, name: str) -> Layer:
    try:
        return network.layer(name)
    except KeyError:
        raise NNVisError(f"network {network.name!r} has no layer {name!r}") from None


def connection_size(network: Network, layer: Layer, source: Layer) -> int:
    """How many edges `source` → `layer` has, from the shapes alone (for level-of-detail budgets)."""
    fan = "all" if layer.kind == BLOCK else getattr(kinds.get(layer.kind), "fan", "cells")
    if fan == "all":
        return source.cell_count * layer.cell_count // max(int(layer.config.get("groups", 1)), 1)
    if fan == "elements":
        return max(source.cell_count, layer.cell_count)
    return layer.cell_count


def connection_caps(sizes: list[int], total: int) -> int | None:
    """One per-connection cap c with Σ min(size, c) ≤ total (None when everything fits)."""
    if sum(sizes) <= total:
        return None
    lo, hi = 0, max(sizes)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(min(s, mid) for s in sizes) <= total:
            lo = mid
        else:
            hi = mid - 1
    return max(lo, 1)


BLOCK = "Block"           # a folded block's kind (blocks.KIND: blocks.py folds them)
BLOCK_INPUTS = 2          # edges drawn into each output cell of a folded block


def _block(layer: Layer, source: Layer, weights_by_epoch, sources: list[Layer], _k):
    """A folded block (blocks.py): source channel i → output cell o, weight = the sum over every
    path through the block's own layers of the product of their |edge weights| — how strongly i
    reaches o, composed the way the block computes. Every input reaches every output through a
    block's convolutions, so only each output's `BLOCK_INPUTS` strongest inputs are drawn: a
    block's connection reads as a sheaf, not a wall. A block reading several sources shares them
    out (at least one each): a NASNet cell draws each output's strongest input from each of the
    two cells it reads, not two from each."""
    composed = block_reach(layer, source, weights_by_epoch, sources)
    peak = functools.reduce(np.maximum, composed).T.copy()   # (output, source): fast row argmax
    outputs = np.arange(peak.shape[0])
    inputs, keep = [], []
    drawn = max(1, BLOCK_INPUTS // len(sources))
    for _ in range(min(drawn, peak.shape[1])):   # strongest first, ties to the lower input
        best = peak.argmax(axis=1)
        inputs.append(best)
        keep.append(peak[outputs, best] > 0)
        peak[outputs, best] = -np.inf
    keep = np.stack(keep)
    src = np.stack(inputs)[keep]
    dst = np.broadcast_to(outputs, keep.shape)[keep]
    return src, dst, np.stack([reach[src, dst] for reach in composed])


def block_reach(layer: Layer, source: Layer, weights_by_epoch, sources: list[Layer]
                ) -> list[np.ndarray]:
    """Per epoch, (source cells, block output cells): how strongly each source cell reaches each
    output cell of the folded block `layer` (see `_block`), in float32: the products of
    ResNet50's bottlenecks are most of its import, and float32 halves them. A list, not one
    array: its callers read a few pairs of each epoch, and stacking would copy them all."""
    known = {s.name: s for s in sources} | {inner.name: inner for inner in layer.inner}
    steps = {}      # (inner, inbound) → its edges for every epoch: the same pairs each epoch
    rows = []
    for e, weights in enumerate(weights_by_epoch):
        reach: dict[str, np.ndarray | None] = {source.name: None}     # None: the identity
        for inner in layer.inner:
            total = None
            inputs = [known[n] for n in inner.inbound]
            for k, name in enumerate(inner.inbound):
                if name not in reach:
                    continue
                if (inner.name, name) not in steps:
                    src, dst, w = _rule(inner)(inner, known[name], weights_by_epoch, inputs, k)
                    steps[inner.name, name] = _Step(src, dst, w, known[name].cell_count,
                                                    inner.cell_count)
                part = steps[inner.name, name].after(reach[name], e)
                total = part if total is None else total + part
            if total is not None:
                reach[inner.name] = total
        rows.append(reach.get(layer.inner[-1].name))
    if rows[0] is None:
        raise NNVisError(f"block {layer.name!r}: no path from {source.name!r} to its output")
    return rows


class _Step:
    """One inner layer's edges as the matrix `step` (source cells × its cells) that `after`
    multiplies the reach so far by. When each of its cells has at most one input (batch norm,
    activations, merges, a concatenation's part), the product is a column gather, scattered into
    the cells that have an input (nothing at all for the identity): bit for bit what the matrix
    product gives, without building the matrix or multiplying by its zeros. When every pair of
    cells is joined once, in row-major order (a convolution's channels), the weights are the
    matrix as they stand."""

    def __init__(self, src, dst, w, rows: int, cols: int):
        self.shape = (rows, cols)
        self.src, self.dst = src, dst
        # float32 first: abs commutes with rounding, and the cast is the only copy
        self.w = None if w is None else np.abs(np.asarray(w, np.float32))
        self.picks = None           # each cell's one input, when no cell has two
        self.into = None            # the cells that have one, when some have none
        order = np.argsort(dst, kind="stable") if 0 < len(dst) <= cols else None
        if order is not None and (np.diff(dst[order]) > 0).all():
            self.picks = src[order].astype(np.int64)
            self.picked_w = None if w is None else self.w[:, order]
            if len(dst) < cols:
                self.into = dst[order].astype(np.int64)
            self.identity = self.into is None and rows == cols and np.array_equal(
                self.picks, np.arange(cols))
        self.full = self.w is not None and all_pairs(src, dst, rows, cols)

    def after(self, before: np.ndarray | None, epoch: int) -> np.ndarray:
        if before is not None and self.picks is not None:
            part = before if self.identity else before[:, self.picks]
            part = part if self.w is None else part * self.picked_w[epoch]
            if self.into is None:
                return part
            out = np.zeros((before.shape[0], self.shape[1]), part.dtype)
            out[:, self.into] = part
            return out
        if self.full:
            step = self.w[epoch].reshape(self.shape)
            return step if before is None else before @ step
        if self.picks is not None:      # from the block's input (an identity shortcut's add)
            step = np.zeros(self.shape, np.float32)
            step[self.picks, np.arange(self.shape[1]) if self.into is None else self.into] = \
                1.0 if self.w is None else self.picked_w[epoch]
            return step
        step = np.bincount(self.src.astype(np.int64) * self.shape[1] + self.dst,
                           np.broadcast_to(1.0 if self.w is None else self.w[epoch],
                                           self.src.shape),
                           minlength=self.shape[0] * self.shape[1]).reshape(self.shape)
        step = step.astype(np.float32)
        return step if before is None else before @ step


def _rule(layer: Layer):
    """The edge rule of `layer`'s kind (`Kind.edges`; a folded block's is `_block`)."""
    if layer.kind == BLOCK:
        return _block
    kind = kinds.get(layer.kind)
    if kind is None or kind.edges is None:
        raise NNVisError(f"layer {layer.name!r}: no edges known for layer kind {layer.kind!r}")
    return kind.edges


def drawable(kind: str) -> bool:
    """Whether layers of `kind` get edges (the input's are none): a registered kind with an edge
    rule, or a folded block."""
    known = kinds.get(kind)
    return kind == BLOCK or known is not None and (known.edges is not None or known.arity == 0)


def passes_through(layer: Layer) -> bool:
    """Layers that only move or gate values (Flatten, Dropout, activations, ...): the layout
    draws them small and the scene their links thin, so the layers that learn stand out."""
    return kinds.is_(layer.kind, "passes")
