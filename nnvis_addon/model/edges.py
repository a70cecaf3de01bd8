"""The edges the scene draws between two layers: which cell feeds which, how strongly, per epoch.

A cell is what a layer is drawn as (``Layer.is_spatial``): feature map c of an (H, W, C) output,
else a unit of the flattened output. An edge joins a cell of an inbound layer to a cell of the layer
it feeds; its weight is one number per epoch, so colour and radius animate with the ``Epoch``
input. Pruning picks one edge set for all epochs, so the bundled curves are computed once.
"""
from __future__ import annotations

import functools
import math
import weakref
from dataclasses import dataclass

import numpy as np

from ..errors import NNVisError
from .network import Layer, Network
from .keras_config import SHARED_KEY
from .kinds import KERNEL_CONV, MERGE, MOVE, OP_CONCAT, OP_REDUCE, PASS_THROUGH
from .ops import moved_elements, output_shape


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
    - Dense: unit i → unit o, weight W[i, o]. On a rank>1 input Keras applies W along the last axis
      at every position: for an (H, W, C) input (drawn as C maps, output H×W×U drawn as U maps) the
      edges are channel c → map o, weight W[c, o]; for any other shape (..., F) each position p gets
      its own edges, unit p·F+f → unit p·U+o, weight W[f, o].
    - Conv2D: input channel i → output channel o, weight = L2 norm of the kernel slice K[:, :, i, o]
      (how much of channel i reaches channel o, sign-free); grouped convolutions connect only the
      channels of each group. DepthwiseConv2D: c → c·multiplier + m, norm of K[:, :, c, m].
      SeparableConv2D: i → o, norm of the effective kernel Σ_m D[:, :, i, m] · P[i·multiplier+m, o].
    - Affine (ONNX's learned bias or scale): cell c → c, weight = its scale.
    - BatchNormalization: cell c → c, weight = its effective scale gamma / sqrt(moving_var + eps),
      the factor BN multiplies that channel by (gamma = 1 when ``scale`` is off); normalised over
      another axis than the last, a cell has no single scale: weight 1.
    - Pooling, padding, cropping, resizing, dropout/noise, augmentation (identity at inference),
      activations (Softmax and LayerNormalization too, though they couple a pixel's channels),
      Rescaling, Normalization: cell c → c, weight 1.
    - Add, Subtract, Multiply, Maximum, Minimum, Average: from each input, c → c (a broadcast input
      cell → every cell it is broadcast to), weight 1. Concatenate: each input's cells → their cells
      in the output (offset along the channel axis), weight 1.
    - Flatten, Reshape: each input cell → every output cell its elements land in (Flatten of
      (H, W, C): map c → units (h·W + w)·C + c), weight 1. Rearrange, Slice (ONNX reshapes and
      slices): the same, so a channel shuffle is one edge per map, map π(c) → map c. Mean: each
      input cell → the cells it is averaged into, weight 1.
    - Block (a folded block, blocks.py): input channel → output cell, weight composed through the
      block's layers; each output cell's strongest inputs only.
    - InputLayer: no edges ({}). Any other kind: NNVisError naming the layer.
    """
    layer = _layer(network, layer_name)
    if layer.kind == "InputLayer":
        return {}
    if not weights_by_epoch:
        raise NNVisError(f"layer {layer.name!r}: no epochs of weights given")
    handler = _KINDS.get(layer.kind)
    if handler is None:
        raise NNVisError(f"layer {layer.name!r}: no edges known for layer kind {layer.kind!r}")
    sources = [_layer(network, name) for name in layer.inbound]
    edges: dict[str, Edges] = {}
    for k, source in enumerate(sources):
        if layer.kind == "Dense" and max_edges is not None and len(source.output_shape) == 1 \
                and source.cell_count * layer.cell_count > max_edges:
            src, dst, weight = _dense_strongest(layer, source, weights_by_epoch, max_edges)
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
    once, on the epochs of the import). A Dense kernel is indexed directly (it may be huge), a
    folded block's composed reach too (its strongest inputs depend on the epochs)."""
    layer, source = _layer(network, layer_name), _layer(network, source_name)
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    if layer.kind == "Block":           # its drawn edges are each output's strongest inputs
        sources = [_layer(network, n) for n in layer.inbound]
        return np.stack([reach[src, dst] for reach in
                         block_reach(layer, source, weights_by_epoch, sources)])
    if layer.kind == "Dense" and len(source.output_shape) == 1:
        units = int(layer.output_shape[-1])
        kernels = [np.asarray(w[0], np.float32) for w in
                   _epoch_weights(layer, weights_by_epoch, 1)]
        return np.stack([k.ravel()[src * units + dst] for k in kernels])
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
            keep = keep[_strongest(score[keep], max_edges)]
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


def _strongest(score: np.ndarray, k: int) -> np.ndarray:
    """The positions of the `k` largest scores, ties (and NaNs, last) to the lower position: the
    set `argsort(-score, kind="stable")[:k]` gives, found by a partition instead of a full sort."""
    if k <= 0:
        return np.zeros(0, np.int64)
    negated = -score
    cut = np.partition(negated, k - 1)[k - 1]            # the k-th largest score, negated
    if np.isnan(cut):                                     # every number, then NaNs
        above, at_cut = np.flatnonzero(~np.isnan(negated)), np.isnan(negated)
    else:
        above, at_cut = np.flatnonzero(negated < cut), negated == cut
    return np.concatenate([above, np.flatnonzero(at_cut)[:k - above.shape[0]]])


# --------------------------------------------------------------------------------------------------


def _layer(network: Network, name: str) -> Layer:
    try:
        return network.layer(name)
    except KeyError:
        raise NNVisError(f"network {network.name!r} has no layer {name!r}") from None


def _epoch_weights(layer: Layer, weights_by_epoch, count: int, stored: bool = False
                   ) -> list[list[np.ndarray]]:
    """Each epoch's weight list for `layer`, checked to hold at least `count` arrays; read into
    memory unless `stored` (the caller reads `io.stored.StoredArray`s in row blocks)."""
    out = []
    for e, weights in enumerate(weights_by_epoch):
        w = weights.get(layer.config.get(SHARED_KEY, layer.name))   # a shared layer's call
        if w is None or len(w) < count:
            raise NNVisError(f"layer {layer.name!r}: epoch {e} has "
                             f"{'no' if w is None else len(w)} weight arrays, needs {count}")
        out.append(list(w) if stored else [np.asarray(a) for a in w])
    return out


def _check_shape(layer: Layer, what: str, array: np.ndarray, expected: tuple) -> None:
    if array.shape != tuple(expected):
        raise NNVisError(f"layer {layer.name!r}: {what} has shape {array.shape}, expected "
                         f"{tuple(expected)}")


def _dense(layer: Layer, source: Layer, weights_by_epoch, *_):
    fan_in, units = int(source.output_shape[-1]), int(layer.output_shape[-1])
    kernels = [w[0] for w in _epoch_weights(layer, weights_by_epoch, 1)]
    for k in kernels:
        _check_shape(layer, "Dense kernel", k, (fan_in, units))
    positions = 1 if source.is_spatial else math.prod(source.output_shape[:-1])
    f = np.repeat(np.arange(fan_in), units)
    o = np.tile(np.arange(units), fan_in)
    p = np.repeat(np.arange(positions), fan_in * units)
    src = p * fan_in + np.tile(f, positions)
    dst = p * units + np.tile(o, positions)
    weight = np.stack([np.tile(k.astype(np.float32).ravel(), positions) for k in kernels])
    return src, dst, weight


def _dense_strongest(layer: Layer, source: Layer, weights_by_epoch, limit: int):
    """The `limit` strongest unit → unit edges of a Dense layer (max over epochs of |W|, ties to
    the lower index, as `prune`), found on the kernel in row blocks: a sample of whole rows gives a
    safe lower cut, one pass keeps the candidates above it with their weights, an exact partition
    (`_strongest`) picks the top. Extra memory stays a few blocks, not the 100M-edge list of VGG16's first dense layer,
    and a kernel left in its file (`StoredArray`) is read once, a block at a time."""
    fan_in, units = int(source.output_shape[-1]), int(layer.output_shape[-1])
    kernels = [w[0] for w in _epoch_weights(layer, weights_by_epoch, 1, stored=True)]
    for k in kernels:
        _check_shape(layer, "Dense kernel", k, (fan_in, units))
    n = fan_in * units
    rows = np.unique(np.random.default_rng(0).integers(0, fan_in, max(1, (1 << 20) // units)))
    sample = np.max([np.abs(np.asarray(k[rows], np.float32)) for k in kernels], axis=0).ravel()
    keep_share = min(1.0, 2.0 * limit / n)
    cut = float(np.quantile(sample, 1.0 - keep_share)) if keep_share < 1.0 else -np.inf
    block = max(1, (1 << 22) // units)
    while True:
        idx, val, weight = [], [], []
        for r0 in range(0, fan_in, block):
            w = [np.asarray(k[r0:r0 + block], np.float32).ravel() for k in kernels]
            s = np.abs(w[0])
            for other in w[1:]:
                np.maximum(s, np.abs(other), out=s)
            hit = np.flatnonzero(s >= cut)
            idx.append(hit + r0 * units)
            val.append(s[hit])
            weight.append(np.stack([other[hit] for other in w]))
        idx, val = np.concatenate(idx), np.concatenate(val)
        if idx.size >= limit or cut == -np.inf:
            break
        cut = -np.inf                   # the sample misjudged the tail: take everything
    top = np.sort(_strongest(val, min(limit, val.shape[0])))   # idx ascends: ties to the lower
    return idx[top] // units, idx[top] % units, np.concatenate(weight, axis=1)[:, top]


def connection_size(network: Network, layer: Layer, source: Layer) -> int:
    """How many edges `source` → `layer` has, from the shapes alone (for level-of-detail budgets)."""
    if layer.kind in KERNEL_CONV or layer.kind in ("Dense", "Block"):
        return source.cell_count * layer.cell_count // max(int(layer.config.get("groups", 1)), 1)
    if layer.kind in ("Flatten", "Reshape", "Mean") or layer.kind in MOVE:
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


def _slice_norms(kernel: np.ndarray) -> np.ndarray:
    """(a, b) L2 norms of the window slices of a (*window, a, b) kernel (1D, 2D or 3D). A window
    of one tap's norm is its absolute value, exactly (float32 squared is exact in float64, and so
    is its square root): half of ResNet50's kernels are 1 × 1, and |k| is one pass instead of
    three."""
    if np.prod(kernel.shape[:-2]) == 1:
        return np.abs(kernel.reshape(kernel.shape[-2:]), dtype=np.float64)
    return np.sqrt(np.square(kernel, dtype=np.float64).sum(axis=tuple(range(kernel.ndim - 2))))


def _kernels(layer: Layer, weights_by_epoch, count: int, shapes: list[tuple]) -> list[list]:
    """Each epoch's first `count` kernels, checked against `shapes` (None matches any size; a
    leading ``...``: the window's axes, as many as the layer's maps have)."""
    out = []
    for w in _epoch_weights(layer, weights_by_epoch, count):
        for k, shape in zip(w[:count], shapes):
            if shape[0] is Ellipsis:
                shape = (None,) * (len(layer.output_shape) - 1) + shape[1:]
            if k.ndim != len(shape) or any(e not in (None, g) for e, g in zip(shape, k.shape)):
                want = ", ".join("k" if e is None else str(e) for e in shape)
                raise NNVisError(f"layer {layer.name!r}: {layer.kind} kernel has shape {k.shape}, "
                                 f"expected ({want})")
        out.append(w[:count])
    return out


def _conv2d(layer: Layer, source: Layer, weights_by_epoch, *_):
    cin, cout = int(source.output_shape[-1]), int(layer.output_shape[-1])
    groups = int(layer.config.get("groups", 1))
    if groups < 1 or cin % groups or cout % groups:
        raise NNVisError(f"layer {layer.name!r}: {cin} → {cout} channels do not split into "
                         f"{groups} groups")
    cin_g, cout_g = cin // groups, cout // groups
    kernels = _kernels(layer, weights_by_epoch, 1, [(..., cin_g, cout)])
    j, dst = _pairs(cin_g, cout)
    src = j if groups == 1 else (dst // cout_g) * cin_g + j
    weight = np.empty((len(kernels), cin_g * cout), np.float32)
    for e, (k,) in enumerate(kernels):
        weight[e] = _slice_norms(k).ravel()
    return src, dst, weight


def _depthwise(layer: Layer, source: Layer, weights_by_epoch, *_):
    cin, cout = int(source.output_shape[-1]), int(layer.output_shape[-1])
    mult = cout // cin
    kernels = _kernels(layer, weights_by_epoch, 1, [(..., cin, mult)])
    src = np.repeat(np.arange(cin), mult)
    weight = np.stack([_slice_norms(k).ravel() for (k,) in kernels]).astype(np.float32)
    return src, np.arange(cin * mult), weight


def _separable(layer: Layer, source: Layer, weights_by_epoch, *_):
    cin, cout = int(source.output_shape[-1]), int(layer.output_shape[-1])
    mult = int(layer.config.get("depth_multiplier", 1))
    kernels = _kernels(layer, weights_by_epoch, 2, [(..., cin, mult), (..., cin * mult, cout)])
    rows = []
    for depthwise, pointwise in kernels:
        effective = np.einsum("...cm,cmf->...cf", depthwise.astype(np.float64),
                              pointwise.reshape(cin, mult, cout).astype(np.float64))
        rows.append(_slice_norms(effective).ravel())
    return np.repeat(np.arange(cin), cout), np.tile(np.arange(cout), cin), \
        np.stack(rows).astype(np.float32)


def _batch_norm(layer: Layer, source: Layer, weights_by_epoch, *_):
    cells = _same_cells(layer, source)[0]
    axis = layer.config.get("axis", -1)
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    if axis not in (-1, len(layer.output_shape)):       # Keras counts the batch axis
        return cells, cells, None
    channels = int(layer.output_shape[-1])
    scale_on = bool(layer.config.get("scale", True))
    count = 2 + scale_on + bool(layer.config.get("center", True))
    eps = float(layer.config.get("epsilon", 1e-3))
    rows = []
    for w in _epoch_weights(layer, weights_by_epoch, count):
        for a in w[:count]:
            _check_shape(layer, "a BatchNormalization weight", a, (channels,))
        gamma = w[0].astype(np.float64) if scale_on else 1.0
        rows.append((gamma / np.sqrt(w[count - 1].astype(np.float64) + eps))[cells % channels])
    return cells, cells, np.stack(rows).astype(np.float32)


def _layer_scale(layer: Layer, source: Layer, weights_by_epoch, *_):
    """LayerScale: cell c → c, weight its learned scale gamma[c]."""
    cells = _same_cells(layer, source)[0]
    rows = [w[0][cells % int(layer.output_shape[-1])]
            for w in _epoch_weights(layer, weights_by_epoch, 1)]
    return cells, cells, np.stack(rows).astype(np.float32)


def _affine(layer: Layer, source: Layer, weights_by_epoch, *_):
    """Affine (ONNX's learned bias or scale): cell c → c, weight = the factor it multiplies that
    cell by (its mean over the map where it varies), like BatchNormalization's."""
    cells = _same_cells(layer, source)[0]
    rows = []
    for w in _epoch_weights(layer, weights_by_epoch, 2):
        scale = np.broadcast_to(np.asarray(w[0], np.float32), layer.output_shape)
        rows.append(scale.reshape(-1, layer.cell_count).mean(axis=0, dtype=np.float64)
                    if layer.is_spatial else scale.ravel())
    return cells, cells, np.stack(rows).astype(np.float32)


def _same_cells(layer: Layer, source: Layer, *_):
    if layer.cell_count != source.cell_count:
        raise NNVisError(f"layer {layer.name!r} ({layer.kind}): {source.cell_count} cells in "
                         f"{source.name!r} but {layer.cell_count} out; expected the same")
    cells = np.arange(layer.cell_count)
    return cells, cells, None


def _reshape(layer: Layer, source: Layer, *_):
    """Flatten, Reshape: output element i is input element i (C order); a Flatten with
    ``order: "chw"`` (PyTorch/ONNX) reads the (H, W, C) map in (C, H, W) order."""
    size = math.prod(source.output_shape)
    if size != math.prod(layer.output_shape):
        raise NNVisError(f"layer {layer.name!r}: {layer.kind} of {source.output_shape} gives "
                         f"{size} elements, not {math.prod(layer.output_shape)}")
    index = np.arange(size)
    if layer.config.get("order") == "chw" and len(source.output_shape) == 3:
        index = index.reshape(source.output_shape).transpose(2, 0, 1).ravel()
    return _element_edges(source, layer, index)


def _moved(layer: Layer, source: Layer, *_):
    """Rearrange, Slice: output element i is the input element the kind moves there (a channel
    shuffle: map c from map π(c), one edge each)."""
    index = moved_elements(layer.kind, layer.config, tuple(int(d) for d in source.output_shape))
    return _element_edges(source, layer, index)


def _mean(layer: Layer, source: Layer, *_):
    """Mean, and the Keras ops' reductions (mean, max, ... over axes): every input cell → the
    cells it is reduced into (over the maps' own axes: map c → cell c; over the channels: every
    map → the one map)."""
    shape = tuple(int(d) for d in source.output_shape)
    kept = output_shape(layer.kind, {**layer.config, "keepdims": True}, [shape])
    into = np.broadcast_to(np.arange(math.prod(kept)).reshape(kept), shape).ravel()
    return _element_edges(source, layer, into, inverse=True)


def _merge(layer: Layer, source: Layer, *_):
    """Element-wise merges: each output element reads its (possibly broadcast) input element."""
    if source.is_spatial == layer.is_spatial and source.cell_count == layer.cell_count:
        return _same_cells(layer, source)
    shape = tuple(int(d) for d in source.output_shape)
    index = np.arange(math.prod(shape)).reshape(shape)
    return _element_edges(source, layer, np.broadcast_to(index, layer.output_shape).ravel())


def _concat(layer: Layer, source: Layer, _, sources: list[Layer], k: int):
    rank = len(layer.output_shape)
    axis = layer.config.get("axis", -1)
    axis = (axis[0] if isinstance(axis, (list, tuple)) else axis) % (rank + 1) - 1
    offset = sum(int(s.output_shape[axis]) for s in sources[:k])
    if layer.is_spatial:                    # cells are channels: shifted, or kept if H/W grows
        cells = np.arange(source.cell_count)
        return cells, cells + (offset if axis == rank - 1 else 0), None
    out = np.arange(layer.cell_count).reshape(layer.output_shape)
    block = [slice(None)] * rank
    block[axis] = slice(offset, offset + int(source.output_shape[axis]))
    return _element_edges(source, layer, out[tuple(block)].ravel(), inverse=True)


def _element_edges(source: Layer, layer: Layer, index: np.ndarray, inverse: bool = False):
    """Unique (source cell, output cell) pairs of an element map, weight 1.

    index[i]: the source element that output element i reads; with `inverse`, the output element
    that source element i lands in.
    """
    src_el, dst_el = (np.arange(index.shape[0]), index) if inverse else \
        (index, np.arange(index.shape[0]))
    src = _cell_of_element(source, src_el)
    dst = _cell_of_element(layer, dst_el)
    pairs = np.unique(src.astype(np.int64) * layer.cell_count + dst)
    return pairs // layer.cell_count, pairs % layer.cell_count, None


def _cell_of_element(layer: Layer, element: np.ndarray) -> np.ndarray:
    return element % int(layer.output_shape[-1]) if layer.is_spatial else element


BLOCK_INPUTS = 2          # edges drawn into each output cell of a folded block


def _block(layer: Layer, source: Layer, weights_by_epoch, sources: list[Layer], _k):
    """A folded block (blocks.py): source channel i → output cell o, weight = the sum over every
    path through the block's own layers of the product of their |edge weights| — how strongly i
    reaches o, composed the way the block computes. Every input reaches every output through a
    block's convolutions, so only each output's `BLOCK_INPUTS` strongest inputs are drawn: a
    block's connection reads as a sheaf, not a wall."""
    composed = block_reach(layer, source, weights_by_epoch, sources)
    peak = functools.reduce(np.maximum, composed).T.copy()   # (output, source): fast row argmax
    outputs = np.arange(peak.shape[0])
    strongest, keep = [], []
    for _ in range(min(BLOCK_INPUTS, peak.shape[1])):   # strongest first, ties to the lower input
        best = peak.argmax(axis=1)
        strongest.append(best)
        keep.append(peak[outputs, best] > 0)
        peak[outputs, best] = -np.inf
    keep = np.stack(keep)
    src = np.stack(strongest)[keep]
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
                    src, dst, w = _KINDS[inner.kind](inner, known[name], weights_by_epoch,
                                                     inputs, k) \
                        if inner.kind in _KINDS else _unknown(inner)
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


_PAIRS = weakref.WeakValueDictionary()     # (rows, cols, side) → a live `_pairs` array


def _pairs(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(src, dst) int32, read-only: every row joined to every column once, row-major. Networks
    repeat a few convolution shapes, and building these (and checking edges against them) was a
    third of ResNet50's folded-block reach: the arrays are shared while any edges hold them."""
    src, dst = _PAIRS.get((rows, cols, 0)), _PAIRS.get((rows, cols, 1))
    if src is None or dst is None:
        src, dst = np.repeat(np.arange(rows, dtype=np.int32), cols), \
            np.tile(np.arange(cols, dtype=np.int32), rows)
        src.flags.writeable = dst.flags.writeable = False
        _PAIRS[rows, cols, 0], _PAIRS[rows, cols, 1] = src, dst
    return src, dst


def all_pairs(src: np.ndarray, dst: np.ndarray, rows: int, cols: int) -> bool:
    """Every source cell joined to every cell once, in row-major order: the edges are a
    (rows, cols) matrix (a convolution's channels). Instant for `_conv2d`'s own pairs."""
    if len(src) != rows * cols:
        return False
    full_src, full_dst = _pairs(rows, cols)
    return (src is full_src or np.array_equal(src, full_src)) and \
        (dst is full_dst or np.array_equal(dst, full_dst))


def _unknown(layer: Layer):
    raise NNVisError(f"layer {layer.name!r}: no edges known for layer kind {layer.kind!r}")


_KINDS = {
    "Block": _block, "Dense": _dense, "Conv1D": _conv2d, "Conv2D": _conv2d, "Conv3D": _conv2d,
    "DepthwiseConv1D": _depthwise, "DepthwiseConv2D": _depthwise,
    "SeparableConv1D": _separable, "SeparableConv2D": _separable,
    "BatchNormalization": _batch_norm, "LayerScale": _layer_scale,
    "Flatten": _reshape, "Reshape": _reshape, "Concatenate": _concat, OP_CONCAT: _concat,
    **{kind: _merge for kind in sorted(MERGE)},
    **{kind: _same_cells for kind in sorted(PASS_THROUGH)},
    **{kind: _mean for kind in sorted(OP_REDUCE)},
    **{kind: _moved for kind in sorted(MOVE)}, "Mean": _mean, "Affine": _affine,
}
KINDS = frozenset(_KINDS) - {"Block"} | {"InputLayer"}    # every model layer kind it knows


def passes_through(layer: Layer) -> bool:
    """Layers that only move or gate values (Flatten, Dropout, activations, ...): the layout
    draws them small and the scene their links thin, so the layers that learn stand out."""
    return layer.kind in PASS_THROUGH or layer.kind in MOVE or layer.kind in ("Flatten",
                                                                              "Reshape")
