"""Per-unit highlight: which cells (and edges) feed one output unit most, traced back through the
layers by |weight × activation|.

Relevance starts as 1 on the chosen unit. Each layer hands a cell's relevance to its inputs in
proportion to their share of that cell's input magnitude, v = |w| · |a| (the edge's weight times
its source cell's activation — a feature map's mean; the `importance` edge value), so relevance is
conserved from layer to layer, like LRP's z-rule on magnitudes. A cell feeding several layers sums
what flows back. Shown values are each layer's relevance over its largest, in [0, 1]. Kinds without
known edges end the trace on their path. Pure numpy.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import NNVisError
from .edges import cell_activations, layer_edges
from .kinds.cells import all_pairs
from .network import Network


@dataclass
class Trace:
    units: list[int]                                   # the traced units of the target layer
    cells: dict[str, np.ndarray]                       # layer → (units, cells) float32 in [0, 1]
    edges: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    # (source, layer) → (units, n) in [0, 1], in the order of layer_edges(...)[source]
    ends: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # (source, layer) → the (src, dst) cells of those n edges

    def shares(self, source: str, layer: str, src: np.ndarray, dst: np.ndarray):
        """(units, len(src)): the highlight share of the edges `src` → `dst` of that connection
        (0 for an edge the trace did not go through); None if it was not kept."""
        if (source, layer) not in self.edges:
            return None
        flow, (t_src, t_dst) = self.edges[source, layer], self.ends[source, layer]
        cols = int(max(t_dst.max(initial=0), np.max(dst, initial=0))) + 1
        keys = t_src.astype(np.int64) * cols + t_dst
        order = np.argsort(keys, kind="stable")
        wanted = np.asarray(src, np.int64) * cols + np.asarray(dst, np.int64)
        pos = np.minimum(np.searchsorted(keys[order], wanted), max(len(keys) - 1, 0))
        found = (keys[order][pos] == wanted) if len(keys) else np.zeros(len(wanted), bool)
        out = np.zeros((flow.shape[0], len(wanted)), np.float32)
        out[:, found] = flow[:, order[pos[found]]]
        return out


def trace_units(network: Network, output: np.ndarray | None, limit: int = 16) -> list[int]:
    """Which units of the output layer (``Network.output``) to trace: all of them when there are
    at most `limit` (class scores), else the `limit` with the largest `output` (the top
    predictions), else the first."""
    count = network.layer(network.output).cell_count
    if count <= limit:
        return list(range(count))
    if output is None:
        return list(range(limit))
    score = np.asarray(output, np.float64).reshape(-1)[:count]
    return sorted(int(u) for u in np.argsort(-score, kind="stable")[:limit])


def trace(network: Network, weights: dict[str, list[np.ndarray]],
          activations: dict[str, np.ndarray], units: list[int], target: str | None = None,
          with_edges=False, max_edges: int | None = None) -> Trace:
    """Relevance of every cell for each of `units` of layer `target` (default: the output layer).

    `weights`: layer → its Keras weight list (one epoch); `activations`: layer → its output for
    the probe (one epoch, no batch axis; a layer missing here counts as activation 1).
    `max_edges` traces through each connection's strongest edges only (`layer_edges`' cap).
    `with_edges`: True, or the (source, layer) pairs whose per-edge shares `Trace.edges` keeps.
    """
    target = target or network.output
    size = network.layer(target).cell_count
    units = [int(u) for u in units]
    if any(not 0 <= u < size for u in units):
        raise NNVisError(f"layer {target!r} has {size} units; cannot trace {units}")
    relevance = {target: np.zeros((len(units), size))}
    relevance[target][np.arange(len(units)), units] = 1.0
    edge_flow, ends = {}, {}
    for layer in reversed(network.layers):
        r_out = relevance.get(layer.name)
        if r_out is None or not layer.inbound or not r_out.any():
            continue
        try:
            edges = layer_edges(network, layer.name, [weights], max_edges)
        except NNVisError:
            continue
        parts, total = [], np.zeros(layer.cell_count)
        for src, e in edges.items():
            v = np.abs(e.weight[0].astype(np.float64))
            if src in activations:
                a = cell_activations(network.layer(src), np.asarray(activations[src])[None])[0]
                v = v * np.abs(a.astype(np.float64))[e.src]
            total += np.bincount(e.dst, v, minlength=layer.cell_count)
            parts.append((src, e, v))
        share = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
        for src, e, v in parts:
            cells = network.layer(src).cell_count
            r_src = relevance.setdefault(src, np.zeros((len(units), cells)))
            wanted = with_edges is True or (src, layer.name) in (with_edges or ())
            if not wanted and all_pairs(e.src, e.dst, cells, layer.cell_count):  # a conv's
                r_src += (r_out * share) @ v.reshape(cells, layer.cell_count).T   # channels
                continue
            flows = r_out[:, e.dst] * v * share[e.dst]          # (units, edges)
            # one bincount for all units: bin u·cells + cell sums unit u's flows in edge order
            bins = (np.arange(len(units))[:, None] * cells + e.src).ravel()
            r_src += np.bincount(bins, flows.ravel(), minlength=len(units) * cells).reshape(
                len(units), cells)
            if wanted:
                edge_flow[(src, layer.name)] = _per_row_max(flows)
                ends[(src, layer.name)] = (e.src, e.dst)
    cells = {name: _per_row_max(r) for name, r in relevance.items()}
    for layer in network.layers:
        cells.setdefault(layer.name, np.zeros((len(units), layer.cell_count), np.float32))
    return Trace(units, cells, edge_flow, ends)


def _per_row_max(values: np.ndarray) -> np.ndarray:
    peak = values.max(axis=1, keepdims=True) if values.size else np.zeros((len(values), 1))
    return np.divide(values, peak, out=np.zeros_like(values), where=peak > 0).astype(np.float32)
