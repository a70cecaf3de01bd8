"""Edge curves: one hair-curves object per connected layer pair, one curve per edge.

Curve points come from the connection's `plan.ConnectionPlan` (bundled in numpy, so at import
their ends sit exactly on the cells the layout placed); each curve carries `nnvis_edge`, its index into the pair's weight atlas, from which
the shader colours it by the weight of the shown epoch (blending between epochs like the
activations), and the cells it joins (`nnvis_src`/`nnvis_dst`) with their import-time places
(`nnvis_src_rest`/`nnvis_dst_rest`). The edges group reads where those cells are now from the
Source and Target layer objects' evaluated anchors (see `nodes.cells_group`) and carries each
curve along, so Morph, Spacing, Expansion and moving a layer object keep the network joined — in
geometry nodes, so it animates and renders without the add-on.
"""
from __future__ import annotations

import bpy
import numpy as np

from ..budget import MAX_EDGES
from ..model.edges import EDGE_VALUE_MODES
from . import animation, nodes
from .layers import MODIFIER, atlas_values, material_of, new_image, set_inputs, write_atlas
from .. import names

CYCLES_INSTANCE_SCALE = 4e-6   # > Cycles' 1e-6 tolerance on squared scales (transform_uniform_scale)


def edges_group():
    """Gives the edge curves their radius and material; the curves themselves are data."""
    group = nodes.current(names.GROUP_EDGES)
    if group is not None:
        return group
    group = nodes.new_group(names.GROUP_EDGES)
    gin, gout = nodes.geometry_io(group, epoch=False)
    nodes.socket(group, "Radius", "INPUT", "NodeSocketFloat", 0.004, 0.0, description="Edge radius")
    nodes.socket(group, "Opacity", "INPUT", "NodeSocketFloat", 1.0, 0.0, 1.0,
                 description="How much the edges cover what lies behind them; they fade further "
                             "where they land on their maps (animatable)")
    nodes.socket(group, "Bundle Strength", "INPUT", "NodeSocketFloat", 0.8, 0.0, 1.0,
                 description="0 = straight edges, 1 = fully bundled (animatable)")
    nodes.socket(group, "Colour Mode", "INPUT", "NodeSocketInt", 0, 0, len(EDGE_VALUE_MODES) - 1,
                 description="Colour by 0 weight, 1 |weight|, 2 weight × activation, "
                             "3 importance |w|·|a| (animatable)")
    nodes.socket(group, "Max Edges", "INPUT", "NodeSocketInt", MAX_EDGES, 0,
                 description="Level of detail: show only the N strongest edges (each connection "
                             "starts at its own count: all)")
    nodes.socket(group, "Material", "INPUT", "NodeSocketMaterial",
                 description="The connection's weight material (also in the object's slot)")
    nodes.socket(group, "Source", "INPUT", "NodeSocketObject",
                 description="The layer the edges start from; they follow its cells")
    nodes.socket(group, "Target", "INPUT", "NodeSocketObject",
                 description="The layer the edges end on; they follow its cells")
    nodes.highlight_sockets(group)
    nodes.panels(group, {"Shape": ("Radius", "Opacity", "Bundle Strength"),
                         "Colour": ("Colour Mode",), "Trace": ("Highlight", "Trace Unit"),
                         "Ends": ("Source", "Target"), "Level of Detail": ("Max Edges",)},
                 closed=("Ends", "Level of Detail"))
    i = gin.outputs
    with nodes.section(group, "Bundled, then carried along with the layers' cells"):
        shown = _edge_positions(group, i)
    with nodes.section(group, "Radius and what the shader reads"):
        geo = nodes.add(group, "GeometryNodeSetCurveRadius", {"Curve": shown,
                                                              "Radius": i["Radius"]})
        geo = nodes.store(group, geo.outputs["Curve"], names.MODE, i["Colour Mode"], "FLOAT",
                          "CURVE")
        geo = nodes.store(group, geo, names.OPACITY, i["Opacity"], "FLOAT", "CURVE")
        geo = nodes.store_highlight(group, i, geo, "CURVE")
        geo = nodes.add(group, "GeometryNodeSetMaterial", {"Geometry": geo,
                                                           "Material": i["Material"]})
    group.links.new(geo.outputs["Geometry"], gout.inputs["Geometry"])
    nodes.arrange(group)
    return group


def _edge_positions(group, i):
    """The first Max Edges curves, between straight and bundled (Bundle Strength), each moved
    with the cells at its ends."""
    shown = nodes.first(group, i["Geometry"], i["Max Edges"], "CURVE")
    bundled = nodes.named(group, names.BUNDLED, "FLOAT_VECTOR")
    mixed = nodes.mix(group, i["Bundle Strength"], nodes.position(group), bundled, "VECTOR")
    t = nodes.named(group, names.ALONG)                       # 0 at the source, 1 at the target
    # the two shifts once a curve (captured on the CURVE domain), not once a point: ≈ 25 % less
    # evaluation time per frame at 600k edges
    ends = nodes.add(group, "GeometryNodeCaptureAttribute", domain="CURVE")
    for name in ("Source", "Target"):
        ends.capture_items.new("VECTOR", name)
    group.links.new(shown, ends.inputs["Geometry"])
    group.links.new(_end_shift(group, i["Source"], names.SRC), ends.inputs["Source"])
    group.links.new(_end_shift(group, i["Target"], names.DST), ends.inputs["Target"])
    shown = ends.outputs["Geometry"]
    moved = nodes.mix(group, t, ends.outputs["Source"], ends.outputs["Target"], "VECTOR")
    shown = nodes.add(group, "GeometryNodeSetPosition", {
        "Geometry": shown, "Position": nodes.vec_math(group, "ADD", mixed, moved)}).outputs[0]
    return shown


def _end_shift(group, layer, prefix: str):
    """How far the cell at this curve's `prefix` end (index `<prefix>`, import-time place
    `<prefix>_rest`) has moved: its anchor in `layer`'s evaluated mesh, in this object's space,
    minus the rest place; zero while `layer` is unset or has no anchors."""
    geometry = nodes.add(group, "GeometryNodeObjectInfo", {"Object": layer},
                         transform_space="RELATIVE").outputs["Geometry"]
    mesh = nodes.add(group, "GeometryNodeSeparateComponents", {"Geometry": geometry}
                     ).outputs["Mesh"]
    now = nodes.sample(group, mesh, nodes.position(group), "FLOAT_VECTOR",
                       nodes.named(group, prefix, "INT"))
    shift = nodes.vec_math(group, "SUBTRACT", now, nodes.named(group, f"{prefix}_rest",
                                                               "FLOAT_VECTOR"))
    count = nodes.add(group, "GeometryNodeAttributeDomainSize", {"Geometry": mesh},
                      component="MESH").outputs["Point Count"]
    return nodes.vec_math(group, "SCALE", shift, scale=nodes.math_node(group, "GREATER_THAN",
                                                                        count, 0.0))


def curves_data(name: str, straight: np.ndarray, bundled: np.ndarray, src=None, dst=None):
    """Hair curves from (n, points, 3) polylines, written through the fast attribute path;
    `src`/`dst` (n,): the cells each curve joins (its ends are their rest places).

    Both bundlers are linear in the bundle strength β, so the curves store their straight (β = 0)
    and fully bundled (β = 1) points and the edges group mixes them: β is a live, animatable input.
    """
    count, points = straight.shape[:2]
    curves = bpy.data.hair_curves.new(name)
    curves.add_curves([points] * count)
    curves.attributes["position"].data.foreach_set(
        "vector", np.ascontiguousarray(straight, np.float32).ravel())
    full = curves.attributes.new(names.BUNDLED, "FLOAT_VECTOR", "POINT")
    full.data.foreach_set("vector", np.ascontiguousarray(bundled, np.float32).ravel())
    index = curves.attributes.new(names.EDGE, "FLOAT", "CURVE")
    index.data.foreach_set("value", np.arange(count, dtype=np.float32))
    along = curves.attributes.new(names.ALONG, "FLOAT", "POINT")     # how far along its curve
    along.data.foreach_set("value", np.tile(np.linspace(0.0, 1.0, points, dtype=np.float32),
                                            count))
    ends = {names.SRC: (src, 0), names.DST: (dst, -1)}
    for attr_name, (cells, end) in ends.items():
        if cells is None:
            continue
        attr = curves.attributes.new(attr_name, "INT", "CURVE")
        attr.data.foreach_set("value", np.ascontiguousarray(cells, np.int32))
        rest = curves.attributes.new(f"{attr_name}_rest", "FLOAT_VECTOR", "CURVE")
        rest.data.foreach_set("vector", np.ascontiguousarray(straight[:, end], np.float32).ravel())
    return curves


def weightless_material(run_name: str, atlas):
    """The material of a run's weightless connections: the edge shader at colour scale 0 (every
    edge the map's centre, grey) and dim, over a one-value atlas (`ScenePlan.weightless`): 1,
    every such edge's weight."""
    name = f"{run_name}:weightless links"
    material = nodes.atlas_material(name, new_image(f"{name} weights", atlas), atlas,
                                    "coolwarm", 1.0, 0.5, instanced=False, emission=0.06,
                                    mode_scales=[0.0] * len(EDGE_VALUE_MODES), mode_stride=1)
    nodes.set_default(material.node_tree.nodes[names.STRENGTH_FADE].outputs[0], 0.0)
    return material


def edge_object(run_name: str, plan, src_obj, dst_obj, weightless_atlas,
                shared: dict | None = None):
    """The curves object for a `plan.ConnectionPlan` between the layer objects `src_obj` →
    `dst_obj`, following their cells; `shared` holds the materials this build's connections
    share: the weightless ones' (over `weightless_atlas`)."""
    edges, src_name, dst_name = plan.edges, plan.src, plan.dst
    curves = curves_data(f"{run_name}:{src_name}->{dst_name}", plan.straight, plan.bundled,
                         edges.src, edges.dst)
    if plan.traces is not None:
        for unit, row in zip(plan.traced_units, plan.traces):
            attr = curves.attributes.new(f"{names.TRACE}{unit}", "FLOAT", "CURVE")
            attr.data.foreach_set("value", np.ascontiguousarray(row, np.float32))
    # Weightless connections (pooling, activations, merges: every weight 1) stay neutral grey
    # and recede; they share one material (its colour scale 0, so no values to look up)
    if plan.atlas is None:
        shared = {} if shared is None else shared
        if "weightless" not in shared:
            shared["weightless"] = weightless_material(run_name, weightless_atlas)
        material = shared["weightless"]
    else:
        image = new_image(f"{run_name}:{src_name}->{dst_name} weights", plan.atlas)
        material = nodes.atlas_material(f"{run_name}:{src_name}->{dst_name}", image, plan.atlas,
                                        "coolwarm", 1.0, 0.5, instanced=False, emission=0.4,
                                        mode_scales=plan.scales, mode_stride=len(edges))
    obj = bpy.data.objects.new(f"{run_name}:{src_name} → {dst_name}", curves)
    obj[names.EDGES] = [src_name, dst_name]
    animation.shader_epoch(obj)
    # a scale Cycles takes as non-uniform: it then keeps the curves in a BVH of their own instead
    # of baking them into the scene's, which it rebuilds whenever anything changes (every frame:
    # 75-90 % of a frame's cost beyond samples); 2e-6 relative is far below a pixel, and the
    # curves' ends follow the cells through Object Info (relative) whatever the scale
    obj.scale[2] = 1.0 + CYCLES_INSTANCE_SCALE
    # faint emissive curves cast no shadow worth its cost: a shadow ray evaluates the edge
    # shader at every edge it passes (the demo on the CPU: 5 % of a 40-spp frame; the picture
    # with and without their shadows differs by 55 dB)
    obj.visible_shadow = False
    mod = obj.modifiers.new(MODIFIER, "NODES")
    mod.node_group = edges_group()
    curves.materials.append(material)
    set_inputs(mod, {"Radius": plan.radius, "Opacity": plan.opacity,
                     "Bundle Strength": plan.bundle_strength, "Material": material, "Max Edges": len(curves.curves),
                     "Trace Unit": plan.trace_unit, "Source": src_obj, "Target": dst_obj})
    return obj


def shown_values(obj) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An edges object's drawn edges — their source and target cells — and the values of the
    epochs it shows (`layers.atlas_values`: (E, modes × edges + padding, 1, 1))."""
    attrs = obj.data.attributes
    ends = []
    for name in (names.SRC, names.DST):
        values = np.empty(len(attrs[name].data), np.int32)
        attrs[name].data.foreach_get("value", values)
        ends.append(values)
    return (*ends, atlas_values(material_of(obj)))


def set_values(obj, values) -> None:
    """An edges object shows the `plan.ConnectionValues` of a live refresh: its atlas and
    colour-mode scales."""
    material = material_of(obj)
    write_atlas(material.node_tree.nodes[names.TEX_A].image, values.atlas)
    nodes.set_atlas_values(material, values.atlas, mode_scales=values.scales)
