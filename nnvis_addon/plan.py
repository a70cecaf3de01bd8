"""The scene as numbers: everything `build_scene` draws, computed without Blender.

`plan_scene` turns a run and its `SceneOptions` into a `ScenePlan`: the drawn network, each
layer's place, activation atlas, colour range and kernel window, each connection's edges (strongest
first), straight and bundled polylines (skip connections arced), colour-mode values and weight
atlas, and the highlight traces. `scene/` only writes a plan into datablocks, so every number a
scene shows can be computed and tested in plain Python. A live refresh asks here too
(`plan_refresh`): the values of every layer and connection over the epochs shown and new.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import arrange, blocks, framing, layout
from . import atlas as atlas_mod
from .atlas import Atlas
from .bundling import density_bundle, structural_bundle
from .errors import NNVisError
from .layout import Placement
from .model.edges import (EDGE_VALUE_MODES, Edges, cell_activations, connection_caps,
                          connection_size, drawable, edge_values, edge_weights, layer_edges)
from .model.keras_config import unsupported_reason
from .model.network import Layer, Network
from .model.trace import Trace, trace, trace_units
from .model.window import Window, kernel_window

WRAP_ABOVE = 16       # deeper networks (as drawn) may wrap into rows (layout.choose_layout)
BUNDLERS = ("structural", "density")
TRACED_UNITS = 16     # at most this many output units get a highlight trace
OPAQUE_EDGES = 200    # a connection of up to this many edges draws them opaque ...
MIN_OPACITY = 0.12    # ... larger ones fainter (1 / √count), down to this
WRAPPED_INPUTS = 4    # a deep network (wrapped into rows) draws each cell's 4 strongest inputs:
                      # its convolutions' hundreds of channels would hide their maps behind walls
ROW_INPUTS = 16       # one row: 16 (a Dense unit's thousand inputs would be a solid cone over it)


@dataclass
class LayerValues:
    """What a layer's epochs set in its drawing: the atlas of its activations (E, cells, H, W),
    its colour (scale, offset) and its per-map gains."""
    atlas: Atlas
    colour: tuple[float, float]
    map_gain: np.ndarray


@dataclass
class ConnectionValues:
    """What a connection's epochs set in its material: the atlas of its colour-mode values, one
    row of cells per epoch, and each mode's diverging scale."""
    atlas: Atlas
    scales: list[float]


@dataclass
class LayerPlan:
    """One drawn layer; `unsupported` (why nnvis cannot compute it) makes it a grey block and
    leaves the rest empty."""
    layer: Layer
    placement: Placement
    unsupported: str | None = None
    atlas: Atlas | None = None               # its activations over epochs (E, cells, H, W)
    colormap: str = ""
    diverging: bool = False                  # signed activations: a diverging map
    colour: tuple[float, float] = (1.0, 0.0)       # (scale, offset): `colour_range`
    map_gain: np.ndarray | None = None       # (cells,) `Normalise Per Map` factors
    arrangements: arrange.Arrangements | None = None
    size: tuple[float, float] = (0.0, 0.0)   # a cell's (width, height) in world units
    window: tuple[Layer, Window] | None = None   # (source, kernel window) for Expansion 3
    traces: np.ndarray | None = None         # (traced units, cells) highlight relevance


@dataclass
class ConnectionPlan:
    """The edges `src` → `dst`, strongest first (the `Max Edges` input keeps a prefix)."""
    src: str
    dst: str
    edges: Edges
    straight: np.ndarray                     # (n, points, 3) polylines at bundle strength 0
    bundled: np.ndarray                      # (n, points, 3) at bundle strength 1
    radius: float
    opacity: float                           # the edges group's Opacity (`edge_opacity`)
    bundle_strength: float
    values: np.ndarray | None                # (E, modes, n) colour-mode values; None: weightless
    atlas: Atlas | None                      # `values` packed, one row of cells per epoch
    scales: list[float]                      # each colour mode's diverging scale
    traced_units: tuple = ()
    traces: np.ndarray | None = None         # (traced units, n) highlight shares, edge order
    trace_unit: int = 0                      # the unit highlighted first


@dataclass
class ScenePlan:
    network: Network                         # as drawn (blocks folded or not)
    rows: int                                # layout rows (> 1: wrapped)
    view: np.ndarray                         # the home view direction (framing.py)
    placements: dict[str, Placement]
    layers: list[LayerPlan]                  # in `network.layers` order
    connections: list[ConnectionPlan]        # by target layer, then source
    trace: Trace
    trace_unit: int                          # the output unit highlighted first
    edges_drawn: int                         # what the caps kept
    edges_total: int                         # of what the connections hold
    edge_cap: int | None = None              # per connection
    weightless: Atlas = field(default_factory=lambda: atlas_mod.pack(
        np.ones((1, 1, 1, 1), np.float32)))  # the one value weightless connections look up


def _noop(fraction: float, message: str) -> None:
    pass


def colour_range(values: np.ndarray, diverging: bool) -> tuple[float, float]:
    """(scale, offset) mapping the run's values into [0, 1] the same way for every epoch:
    diverging maps put zero at the centre; sequential maps run from 0 to the largest value."""
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    peak = peak if peak > 0 else 1.0
    return (0.5 / peak, 0.5) if diverging else (1.0 / peak, 0.0)


def map_gain(cells: np.ndarray) -> np.ndarray:
    """(C,) factor that scales each cell's values (E, C, H, W) to the layer's peak: what
    `Normalise Per Map` = 1 applies, so a quiet map shows its own structure. Fixed across epochs;
    a map that is zero everywhere keeps 1."""
    peaks = np.abs(cells).max(axis=(0, 2, 3)) if cells.size else np.zeros(cells.shape[1])
    top = float(peaks.max()) if peaks.size else 0.0
    return np.divide(top, peaks, out=np.ones_like(peaks), where=peaks > 0).astype(np.float32)


def layer_values(cells: np.ndarray, diverging: bool) -> LayerValues:
    """A layer's `LayerValues` from its (E, cells, H, W) activations; `diverging`: signed ones."""
    return LayerValues(atlas_mod.pack(cells), colour_range(cells, diverging), map_gain(cells))


def connection_values(values: np.ndarray) -> ConnectionValues:
    """A connection's `ConnectionValues` from its (E, modes, n) colour-mode values; weights that
    never change (mode 0) get scale 0: the map's centre."""
    constant = values.size == 0 or float(np.ptp(values[:, 0])) == 0.0
    return ConnectionValues(
        atlas_mod.pack(values.reshape(values.shape[0], -1)[:, :, None, None]),
        [0.0 if constant else colour_range(values[:, k], diverging=True)[0]
         for k in range(values.shape[1])])


def skip_arc(polylines: np.ndarray, src_placement, dst_placement) -> np.ndarray:
    """Lift a connection that jumps over ranks (a residual/skip link) into an arc above the layers
    it passes, so it reads as a skip and not as input to the layers in between."""
    span = dst_placement.rank - src_placement.rank
    if span <= 1:
        return polylines
    top = max(src_placement.extent[1], dst_placement.extent[1]) / 2
    lift = top + 0.08 * abs(dst_placement.x - src_placement.x)
    t = np.linspace(0.0, 1.0, polylines.shape[1], dtype=np.float32)
    polylines = polylines.copy()
    polylines[:, :, 2] += lift * np.sin(np.pi * t)[None, :]
    return polylines


def mode_values(edges, act=None) -> np.ndarray:
    """(E, modes, n): each edge's value per epoch in every colour mode (EDGE_VALUE_MODES), which
    the `Colour Mode` input picks between; without the source's cell activations `act` (epochs,
    source cells; `cell_activations`) the activation modes fall back to the weight."""
    rows = [edge_values(edges, mode, act) if act is not None or mode in ("weight", "abs")
            else edge_values(edges, "weight") for mode in EDGE_VALUE_MODES]
    return np.stack(rows, axis=1).astype(np.float32)


def weightless(edges) -> bool:
    """Pooling, activations, merges: every weight the same (1), nothing to colour by."""
    return edges.weight.size == 0 or float(np.ptp(edges.weight)) == 0.0


def strongest_first(edges) -> np.ndarray:
    """The order of the edges by their largest |weight| over epochs, so the `Max Edges` input of
    the edges group keeps the strongest ones when it hides the rest."""
    score = np.abs(edges.weight).max(axis=0) if len(edges) else np.zeros(0)
    return np.argsort(-score, kind="stable")


def edge_radius(radius: float, edges, crosses_rows: bool = False) -> float:
    """Thinner curves where they would be a mass: one-to-one links (pass-through layers),
    connections of thousands of edges and, in a wrapped layout, the links that sweep back from
    one row's end to the next row's start across the frame — so the layers stay the brightest
    thing in the frame."""
    if crosses_rows:
        return radius * 0.12
    if edges.one_to_one:
        return radius * 0.4
    return radius * float(np.clip(np.sqrt(1500 / max(len(edges), 1)), 0.35, 1.0))


def edge_opacity(edges, crosses_rows: bool = False) -> float:
    """How much a connection's edges cover what lies behind them: fainter the more edges it
    draws, so a sheaf of thousands reads as a haze over the maps and not as a curtain."""
    if crosses_rows:
        return 0.3
    return float(np.clip(np.sqrt(OPAQUE_EDGES / max(len(edges), 1)), MIN_OPACITY, 1.0))


def inputs_per_cell(options, rows: int) -> int | None:
    """How many of its strongest inputs each cell draws (`SceneOptions.inputs_per_cell`; auto:
    `ROW_INPUTS` in a one-row layout, `WRAPPED_INPUTS` in a deep network wrapped into rows),
    None: all."""
    k = options.inputs_per_cell
    if k < 0:
        k = WRAPPED_INPUTS if rows > 1 else ROW_INPUTS
    return k or None


def _has_edges(layer) -> bool:
    """Whether nnvis knows the edges into ``layer``: not for a kind it does not know, such as a
    recorded tensor made by a subclassed model's call() code (drawn from its recorded values)."""
    return drawable(layer.kind)


def edge_cap(network, drawable: set[str], options, per_cell: int | None = None) -> int | None:
    """Per-connection edge cap: `max_edges`, lowered until all connections fit `max_total_edges`
    (a connection counted at most `per_cell` inputs a target cell)."""
    sizes = [min(connection_size(network, layer, network.layer(src)),
                 per_cell * layer.cell_count if per_cell and layer.kind != blocks.KIND
                 else float("inf"))
             for layer in network.layers if layer.name in drawable and _has_edges(layer)
             for src in layer.inbound if src in drawable]
    caps = [c for c in (options.max_edges, connection_caps(sizes, options.max_total_edges)
                        if options.max_total_edges else None) if c is not None]
    return min(caps) if caps else None


def plan_layer(layer: Layer, placement: Placement, activations: np.ndarray,
               colormap: str) -> LayerPlan:
    """A computed layer; `activations` (E, *output_shape), one row per epoch. Signed activations
    take the diverging coolwarm map instead of `colormap`."""
    diverging = bool((activations < 0).any())
    values = layer_values(atlas_mod.as_cells(activations, layer.is_spatial), diverging)
    size = arrange.map_size(placement, layer.output_shape) if layer.is_spatial else \
        (placement.cell_size, placement.cell_size)
    return LayerPlan(layer, placement, atlas=values.atlas,
                     colormap="coolwarm" if diverging else colormap, diverging=diverging,
                     colour=values.colour, map_gain=values.map_gain,
                     arrangements=arrange.arrangements(placement, layer.output_shape), size=size)


def plan_connection(src: Placement, dst: Placement, edges: Edges, options,
                    src_cells: np.ndarray | None = None, trace_of=None,
                    traced_units=(), trace_unit: int = 0) -> ConnectionPlan:
    """The edges between two placed layers (an `Edges` with (E, n) weights, in `layer_edges`
    order); `src_cells` (epochs, source cells), the source's `cell_activations`, give the
    activation colour modes; `trace_of` (units, n), in that same order, each edge's highlight
    share. `options.bundler`: "structural" (hierarchical) or "density" (KDE, weighted by
    max |w|)."""
    if options.bundler not in BUNDLERS:
        raise NNVisError(f"unknown bundler {options.bundler!r}; one of {', '.join(BUNDLERS)}")
    order = strongest_first(edges)
    edges = edges.subset(order)
    ends = (src.centers, dst.centers, edges.src, edges.dst)
    straight = skip_arc(structural_bundle(*ends, beta=0.0), src, dst)
    # one-to-one links (pooling, BN, activations) stay straight: bundling only bends them
    if edges.one_to_one:
        bundled = straight
    elif options.bundler == "density":
        strength = np.abs(edges.weight).max(axis=0) if len(edges) else None
        bundled = skip_arc(density_bundle(*ends, weights=strength, beta=1.0), src, dst)
    else:
        bundled = skip_arc(structural_bundle(*ends, beta=1.0), src, dst)
    # Weightless connections (pooling, activations, merges: every weight 1) stay neutral grey:
    # no values to look up
    values = atlas = None
    scales = []
    if not weightless(edges):
        values = mode_values(edges, src_cells)                         # (E, modes, n)
        colours = connection_values(values)
        atlas, scales = colours.atlas, colours.scales
    return ConnectionPlan(src.name, dst.name, edges, straight, bundled,
                          edge_radius(options.edge_radius, edges, src.row != dst.row),
                          edge_opacity(edges, src.row != dst.row),
                          options.bundle_strength, values, atlas, scales, tuple(traced_units),
                          None if trace_of is None else trace_of[:, order], trace_unit)


def windows(network: Network, drawable: set[str]) -> dict[str, tuple[Layer, Window]]:
    """Each drawn feature-map layer's kernel window over its first drawn feature-map source."""
    found = {}
    for layer in network.layers:
        source = next((network.layer(n) for n in layer.inbound
                       if n in drawable and network.layer(n).is_image), None)
        window = kernel_window(layer, source) if source is not None else None
        if layer.name in drawable and window is not None:
            found[layer.name] = (source, window)
    return found


def plan_traces(run, max_edges: int | None = None, limit: int = TRACED_UNITS, pairs=True
                ) -> tuple[Trace, int]:
    """The highlight traces of up to `limit` units of the output layer (see `trace_units`) at the
    last epoch, with the edges of the (source, layer) `pairs` (True: all), and the unit shown
    first: the predicted class if traced."""
    epoch, network = run.epochs[-1], run.network
    activations = {l.name: run.activations(l.name, epoch) for l in network.layers
                   if run.has_activations(l.name)}
    output = activations.get(network.output)
    units = trace_units(network, output, limit)
    found = trace(network, {l.name: run.weights(l.name, epoch) for l in network.layers},
                  activations, units, with_edges=pairs, max_edges=max_edges)
    shown = int(np.argmax(output)) if output is not None else units[0]
    return found, (shown if shown in units else units[0])


def plan_scene(run, options, aspect: float = 16 / 9,
               place: Callable[[list], list] | None = None,
               progress=_noop) -> ScenePlan:
    """Everything `build_scene` draws for `run` with `options` (a `SceneOptions`), framed for
    `aspect` (width / height); `place` may move the laid-out placements (beside other runs)."""
    network = blocks.drawn(run.network, options.blocks, options.expand)

    def shown(points, rows):
        return framing.shown(points, aspect, rows)

    def high(points):
        return framing.height_share(points, aspect)
    rows, gap = layout.choose_layout(network, shown, high,
                                     most=1 if len(network.layers) <= WRAP_ABOVE else 10)
    placed = layout.layout_network(network, gap=gap, rows=rows)
    view = framing.wrapped_view(layout.corners(placed), aspect) if rows > 1 else \
        framing.VIEW_DIRECTION
    placements = {p.name: p for p in (place(placed) if place else placed)}
    steps = len(network.layers) * 2 + 1
    sources = {src for l in network.layers for src in l.inbound}
    drawable = {l.name for l in network.layers if run.has_activations(l.name)}
    layer_plans, cell_values = [], {}
    for k, layer in enumerate(network.layers):
        progress(k / steps, f"Layer {layer.name}")
        if layer.name not in drawable:
            layer_plans.append(LayerPlan(layer, placements[layer.name], unsupported=(
                unsupported_reason(layer) or "fed by a layer nnvis cannot compute")))
            continue
        acts = np.stack([run.activations(layer.name, e) for e in run.epochs])
        layer_plans.append(plan_layer(layer, placements[layer.name], acts, options.colormap))
        if layer.name in sources:     # once per layer, not per connection it feeds
            cell_values[layer.name] = cell_activations(layer, acts)
    per_cell = inputs_per_cell(options, rows)
    cap = edge_cap(network, drawable, options, per_cell)
    found, first_unit = plan_traces(run, cap, pairs={
        (src, l.name) for l in network.layers if l.kind != blocks.KIND for src in l.inbound})
    computed = {p.layer.name: p for p in layer_plans if p.unsupported is None}
    for name, window in windows(run.network, set(computed)).items():
        computed[name].window = window
    for name, plan in computed.items():
        plan.traces = found.cells.get(name)
    weights_by_epoch = [{l.name: run.weights(l.name, e) for l in run.network.layers
                         if l.weight_shapes} for e in run.epochs]
    connections, drawn, total = [], 0, 0
    for k, layer in enumerate(network.layers):
        progress((len(network.layers) + k) / steps, f"Edges into {layer.name}")
        if not layer.inbound or {layer.name, *layer.inbound} - drawable or not _has_edges(layer):
            continue    # edges join drawn cells only; blocks stand unconnected
        total += sum(connection_size(network, layer, network.layer(n)) for n in layer.inbound)
        top_k = None if layer.kind == blocks.KIND else per_cell
        for src, edges in layer_edges(network, layer.name, weights_by_epoch, cap,
                                      top_k).items():
            drawn += len(edges)
            connections.append(plan_connection(
                placements[src], placements[layer.name], edges, options, cell_values[src],
                found.shares(src, layer.name, edges.src, edges.dst),     # None: a block
                found.units, first_unit))
    return ScenePlan(network, rows, view, placements, layer_plans, connections, found, first_unit,
                     drawn, max(total, drawn), cap)


@dataclass
class RefreshPlan:
    """What a live refresh writes: every epoch shown and new, in order, and over them each
    drawn layer's values and each weighted connection's (weightless ones keep their grey)."""
    epochs: list[int]
    order: np.ndarray                        # rows of the shown then new epochs, in epoch order
    layers: dict[str, LayerValues]
    connections: dict[tuple[str, str], ConnectionValues]


def _merged(old: np.ndarray, new: np.ndarray, order: np.ndarray, what: str) -> np.ndarray:
    """Old and new epochs' (E, C, H, W) values in epoch order; `old` may carry padding cells."""
    if old.shape[2:] != new.shape[2:] or old.shape[1] < new.shape[1]:
        raise NNVisError(f"{what}: the new epochs have cells {new.shape[1:]}, the scene "
                         f"{old.shape[1:]}; the model changed: re-import the run")
    return np.concatenate([old[:, :new.shape[1]], new])[order]


def plan_refresh(run, fold: tuple[str, str], shown: list[int], layers: dict, connections: dict
                 ) -> RefreshPlan:
    """The values of the scene drawn at import with blocks `fold` (mode, expanded names), its
    `shown` epochs extended by `run`'s (the new ones only). `layers`: name → (the scene's values
    of the shown epochs (E, C, H, W), diverging as the import chose); `connections`: (source,
    target) → (the drawn edges' source cells, target cells, the scene's values of the shown
    epochs (E, modes × n, 1, 1)): a refresh keeps the edges the import chose."""
    network = blocks.drawn(run.network, *fold)
    order = np.argsort(shown + list(run.epochs), kind="stable")    # old and new rows, merged
    planned = {}
    for name, (old, diverging) in layers.items():
        new = atlas_mod.as_cells(np.stack([run.activations(name, e) for e in run.epochs]),
                                 network.layer(name).is_spatial)
        planned[name] = layer_values(_merged(old, new, order, f"layer {name!r}"), diverging)
    weights = [{l.name: run.weights(l.name, e) for l in run.layers if l.weight_shapes}
               for e in run.epochs]
    colours = {}
    for (src, dst), (src_cells, dst_cells, old) in connections.items():
        edges = Edges(src_cells, dst_cells,
                      edge_weights(network, dst, src, weights, src_cells, dst_cells))
        if weightless(edges):
            continue
        new = mode_values(edges, cell_activations(network.layer(src), np.stack(
            [run.activations(src, e) for e in run.epochs])))
        values = _merged(old, new.reshape(new.shape[0], -1, 1, 1), order,
                         f"edges {src!r} → {dst!r}")
        colours[src, dst] = connection_values(values.reshape(values.shape[0], new.shape[1], -1))
    return RefreshPlan(sorted(set(shown) | set(run.epochs)), order, planned, colours)
