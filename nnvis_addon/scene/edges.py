"""Edge curves: one hair-curves object per connected layer pair, one curve per edge.

Curve points come from the numpy bundler (so their ends sit exactly on the cells the layout
placed); each curve carries `nnvis_edge`, its index into the pair's weight atlas, from which the
shader colours it by the weight of the shown epoch (blending between epochs like the activations).
"""
from __future__ import annotations

import bpy
import numpy as np

from .. import atlas as atlas_mod
from ..bundling import density_bundle, structural_bundle
from ..errors import NNVisError
from ..model.edges import EDGE_VALUE_MODES, cell_activations, edge_values

BUNDLERS = ("structural", "density")
from . import nodes
from .layers import MODIFIER, colour_range, new_image, set_inputs

GROUP_EDGES = "NNVis Edges"


def edges_group():
    """Gives the edge curves their radius, epoch and material; the curves themselves are data."""
    group = nodes.current(GROUP_EDGES)
    if group is not None:
        return group
    group = nodes.new_group(GROUP_EDGES)
    gin, gout = nodes.geometry_io(group)
    nodes.socket(group, "Radius", "INPUT", "NodeSocketFloat", 0.004, 0.0, description="Edge radius")
    nodes.socket(group, "Bundle Strength", "INPUT", "NodeSocketFloat", 0.8, 0.0, 1.0,
                 description="0 = straight edges, 1 = fully bundled (animatable)")
    nodes.socket(group, "Colour Mode", "INPUT", "NodeSocketInt", 0, 0, len(EDGE_VALUE_MODES) - 1,
                 description="Colour by 0 weight, 1 |weight|, 2 weight × activation, "
                             "3 importance |w|·|a| (animatable)")
    nodes.socket(group, "Max Edges", "INPUT", "NodeSocketInt", 1 << 30, 0,
                 description="Level of detail: show only the N strongest edges")
    nodes.socket(group, "Material", "INPUT", "NodeSocketMaterial")
    nodes.highlight_sockets(group)
    shown = nodes.first(group, gin.outputs["Geometry"], gin.outputs["Max Edges"], "CURVE")
    bundled = nodes.add(group, "GeometryNodeInputNamedAttribute", {"Name": "nnvis_bundled"},
                        data_type="FLOAT_VECTOR").outputs["Attribute"]
    position = nodes.add(group, "GeometryNodeInputPosition").outputs[0]
    mixed = nodes.add(group, "ShaderNodeMix", {"Factor": gin.outputs["Bundle Strength"],
                                               "A": position, "B": bundled},
                      data_type="VECTOR").outputs[1]
    shown = nodes.add(group, "GeometryNodeSetPosition", {"Geometry": shown,
                                                         "Position": mixed}).outputs[0]
    geo = nodes.add(group, "GeometryNodeSetCurveRadius", {"Curve": shown,
                                                          "Radius": gin.outputs["Radius"]})
    geo = nodes.store(group, geo.outputs["Curve"], "nnvis_epoch", gin.outputs["Epoch"], "FLOAT",
                      "CURVE")
    geo = nodes.store(group, geo, "nnvis_mode", gin.outputs["Colour Mode"], "FLOAT", "CURVE")
    geo = nodes.store_highlight(group, gin.outputs, geo, "CURVE")
    geo = nodes.add(group, "GeometryNodeSetMaterial", {"Geometry": geo,
                                                       "Material": gin.outputs["Material"]})
    group.links.new(geo.outputs["Geometry"], gout.inputs["Geometry"])
    return group


def curves_data(name: str, straight: np.ndarray, bundled: np.ndarray):
    """Hair curves from (n, points, 3) polylines, written through the fast attribute path.

    Both bundlers are linear in the bundle strength β, so the curves store their straight (β = 0)
    and fully bundled (β = 1) points and the edges group mixes them: β is a live, animatable input.
    """
    count, points = straight.shape[:2]
    curves = bpy.data.hair_curves.new(name)
    curves.add_curves([points] * count)
    curves.attributes["position"].data.foreach_set(
        "vector", np.ascontiguousarray(straight, np.float32).ravel())
    full = curves.attributes.new("nnvis_bundled", "FLOAT_VECTOR", "POINT")
    full.data.foreach_set("vector", np.ascontiguousarray(bundled, np.float32).ravel())
    index = curves.attributes.new("nnvis_edge", "FLOAT", "CURVE")
    index.data.foreach_set("value", np.arange(count, dtype=np.float32))
    return curves


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


def mode_values(edges, src_layer=None, src_activations=None) -> np.ndarray:
    """(E, modes, n): each edge's value per epoch in every colour mode (EDGE_VALUE_MODES), which
    the `Colour Mode` input picks between; without source activations the activation modes fall
    back to the weight."""
    act = None
    if src_layer is not None and src_activations is not None:
        act = cell_activations(src_layer, src_activations)
    rows = [edge_values(edges, mode, act) if act is not None or mode in ("weight", "abs")
            else edge_values(edges, "weight") for mode in EDGE_VALUE_MODES]
    return np.stack(rows, axis=1).astype(np.float32)


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


def edge_object(run_name: str, src_name: str, dst_name: str, edges, src_placement,
                dst_placement, bundle_strength: float, radius: float, traced_units=(),
                traces=None, trace_unit: int = 0, bundler: str = "structural",
                src_layer=None, src_activations=None):
    """The curves object for the edges `src_name` → `dst_name` (an `Edges` with (E, n) weights).
    `traces` (units, n): each edge's share in the highlight trace of `traced_units`; `bundler`:
    "structural" (hierarchical, the default) or "density" (KDE, weighted by max |w|);
    `src_activations` (E, *source output shape) of `src_layer` give the activation colour modes."""
    if bundler not in BUNDLERS:
        raise NNVisError(f"unknown bundler {bundler!r}; one of {', '.join(BUNDLERS)}")
    order = strongest_first(edges)
    edges = edges.subset(order)
    ends = (src_placement.centers, dst_placement.centers, edges.src, edges.dst)
    straight = skip_arc(structural_bundle(*ends, beta=0.0), src_placement, dst_placement)
    # one-to-one links (pooling, BN, activations) stay straight: bundling only bends them
    if edges.one_to_one:
        bundled = straight
    elif bundler == "density":
        strength = np.abs(edges.weight).max(axis=0) if len(edges) else None
        bundled = skip_arc(density_bundle(*ends, weights=strength, beta=1.0), src_placement,
                           dst_placement)
    else:
        bundled = skip_arc(structural_bundle(*ends, beta=1.0), src_placement, dst_placement)
    curves = curves_data(f"{run_name}:{src_name}->{dst_name}", straight, bundled)
    if traces is not None:
        for unit, row in zip(traced_units, traces):
            attr = curves.attributes.new(f"nnvis_trace_{unit}", "FLOAT", "CURVE")
            attr.data.foreach_set("value", np.ascontiguousarray(row[order], np.float32))
    values = mode_values(edges, src_layer, src_activations)            # (E, modes, n)
    atlas = atlas_mod.pack(values.reshape(values.shape[0], -1)[:, :, None, None])
    image = new_image(f"{run_name}:{src_name}->{dst_name} weights", atlas)
    # Weightless connections (pooling, flatten: every weight 1) stay neutral grey: scale 0.
    constant = edges.weight.size == 0 or float(np.ptp(edges.weight)) == 0.0
    scales = [0.0 if constant else colour_range(values[:, k], diverging=True)[0]
              for k in range(values.shape[1])]
    emission = 0.06 if constant else 0.4   # weightless links recede, weighted ones glow
    material = nodes.atlas_material(f"{run_name}:{src_name}->{dst_name}", image, atlas,
                                    "coolwarm", 1.0, 0.5, instanced=False, emission=emission,
                                    mode_scales=scales, mode_stride=len(edges))
    obj = bpy.data.objects.new(f"{src_name} → {dst_name}", curves)
    obj["nnvis_edges"] = [src_name, dst_name]
    mod = obj.modifiers.new(MODIFIER, "NODES")
    mod.node_group = edges_group()
    set_inputs(mod, {"Radius": edge_radius(radius, edges, src_placement.row != dst_placement.row),
                     "Bundle Strength": bundle_strength, "Material": material,
                     "Trace Unit": trace_unit})
    return obj
