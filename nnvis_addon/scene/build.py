"""Build a run's scene: layer objects, edge curves, the epoch animation, camera, lights, settings.

`build_scene` is what the importer operator and scripts call. It first computes everything in numpy
(layout, atlases, edges), then creates datablocks inside `all_or_nothing`, so bad data never leaves
a half-built collection behind.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import bpy
import numpy as np

from .. import blocks, budget, framing, layout, names
from ..model.edges import cell_activations, connection_caps, connection_size, layer_edges
from ..model.keras_config import unsupported_reason
from ..stages import stages
from . import animation, camera_moves, edges as edges_mod, hud, labels as labels_mod, layers, \
    looks, nodes, overlays as overlays_mod, runs, stage
from . import refresh as live_mod
from .transaction import all_or_nothing


WRAP_ABOVE = 16       # deeper networks (as drawn) wrap into rows that fill the frame (layout.choose_rows)


@dataclass
class SceneOptions:
    frames_per_epoch: float = 0           # 0: the default timing (animation.timeline)
    colormap: str = "viridis"             # for non-negative outputs; signed ones use coolwarm
    bundle_strength: float = 0.8
    bundler: str = "structural"           # or "density": KDE bundling, the organic look
    max_edges: int | None = budget.MAX_EDGES              # per connection: the strongest
    max_total_edges: int | None = budget.MAX_TOTAL_EDGES  # all together (caps shrink to fit)
    edge_radius: float = 0.0025
    overlays: tuple = overlays_mod.KINDS    # overlays shown (all are built; the rest hidden)
    labels: str = "auto"                  # a labels.MODES key
    blocks: str = "auto"                  # a blocks.MODES key: fold repeated blocks into units
    expand: str = ""                      # folded blocks drawn layer by layer (comma-separated)
    setup_render: bool = True             # camera as scene camera, world, Cycles settings, range
    resolution: tuple[int, int] | None = None   # None: keep the scene's
    samples: int = 0                      # 0: the draft quality preset's (stage.QUALITY)
    fps: int = 24
    frame_start: int = 1
    look: str = "default"                 # a looks.LOOKS key
    camera_move: str = "static"           # a camera_moves.MOVES key
    orthographic: bool = False            # an orthographic camera (paper figures)
    controls: dict = field(default_factory=dict)   # initial modifier inputs, e.g. {"Morph": 0.5}
    extra: dict = field(default_factory=dict)


def _noop(fraction: float, message: str) -> None:
    pass


def edge_cap(network, drawable: set[str], options: SceneOptions) -> int | None:
    """Per-connection edge cap: `max_edges`, lowered until all connections fit `max_total_edges`."""
    sizes = [connection_size(network, layer, network.layer(src)) for layer in network.layers
             if layer.name in drawable for src in layer.inbound if src in drawable]
    caps = [c for c in (options.max_edges, connection_caps(sizes, options.max_total_edges)
                        if options.max_total_edges else None) if c is not None]
    return min(caps) if caps else None


def build_scene(run, options: SceneOptions | None = None, scene=None, progress=_noop,
                label: str | None = None):
    """Create the collection for `run` in `scene` (default: the context scene) and return it;
    `label` names it and prefixes its objects (default: `runs.new_label`)."""
    options = options or SceneOptions()
    scene = scene or bpy.context.scene
    network = blocks.drawn(run.network, options.blocks, options.expand)
    label = label or runs.new_label(run)
    fps = options.fps if options.setup_render else scene.render.fps
    frames, frame_end = animation.timeline(run.epochs, fps, options.frames_per_epoch,
                                           options.frame_start)
    resolution = options.resolution or (scene.render.resolution_x, scene.render.resolution_y)
    aspect = resolution[0] / resolution[1] if options.setup_render else \
        camera_moves.aspect_of(scene)
    rows = 1 if len(network.layers) <= WRAP_ABOVE else \
        layout.choose_rows(network, lambda pts: framing.magnification(pts, aspect))
    placements = {p.name: p for p in runs.beside_others(layout.layout_network(network, rows=rows),
                                                        scene, but=label)}
    weights_by_epoch = [{l.name: run.weights(l.name, e) for l in run.network.layers
                         if l.weight_shapes} for e in run.epochs]
    steps = len(network.layers) * 2 + 1
    nodes.begin_build()
    with all_or_nothing(scene):
        collection = bpy.data.collections.new(label)
        collection[names.RUN] = run.source
        collection[names.EPOCHS] = list(run.epochs)
        live_mod.remember(collection, run, (options.frames_per_epoch, fps, options.frame_start),
                          aspect, frame_end, (options.blocks, options.expand))
        collection[names.VIEW] = list(framing.WRAPPED_VIEW_DIRECTION if rows > 1
                                        else framing.VIEW_DIRECTION)
        collection[names.STOPS] = json.dumps([[s.name, s.layers] for s in stages(network)])
        scene.collection.children.link(collection)
        animated, objects, cell_values, shared_materials = [], {}, {}, {}
        sources = {src for l in network.layers for src in l.inbound}
        drawable = {l.name for l in network.layers if run.has_activations(l.name)}
        for k, layer in enumerate(network.layers):
            progress(k / steps, f"Layer {layer.name}")
            if layer.name not in drawable:
                reason = unsupported_reason(layer) or "fed by a layer nnvis cannot compute"
                for obj in layers.block_object(layer, placements[layer.name], reason, label):
                    collection.objects.link(obj)
                continue
            acts = np.stack([run.activations(layer.name, e) for e in run.epochs])
            signed = bool((acts < 0).any())
            cmap = "coolwarm" if signed else options.colormap
            obj = layers.layer_object(layer, placements[layer.name], acts, cmap, signed, label)
            if layer.name in sources:     # once per layer, not per connection it feeds
                cell_values[layer.name] = cell_activations(layer, acts)
            collection.objects.link(obj)
            animated.append(obj)
            objects[layer.name] = obj
        cap = edge_cap(network, drawable, options)
        drawn = total = 0
        traced, first_unit = layers.add_controls(run, objects, cap)
        progress((steps - 1) / steps, "Overlays, labels, camera and lights")
        had_camera = any(o.get(names.SHARED) == "camera" for o in scene.objects)
        (cam,) = runs.shared(scene, collection, "camera",
                             lambda: [camera_moves.add_camera(collection)])
        screen = camera_moves.add_screen(collection, cam)
        overlays = hud.build_overlays(run, collection, screen, aspect, frames, options.overlays)
        animated += [o for o in overlays if layers.MODIFIER in o.modifiers]
        labels_mod.add_labels(collection, network, placements, cam, options.labels)
        for k, layer in enumerate(network.layers):
            progress((len(network.layers) + k) / steps, f"Edges into {layer.name}")
            if not layer.inbound or {layer.name, *layer.inbound} - drawable:
                continue    # edges join drawn cells only; blocks stand unconnected
            total += sum(connection_size(network, layer, network.layer(n)) for n in layer.inbound)
            for src, edges in layer_edges(network, layer.name, weights_by_epoch, cap).items():
                drawn += len(edges)
                obj = edges_mod.edge_object(label, objects[src], objects[layer.name], edges,
                                            placements[src], placements[layer.name],
                                            options.bundle_strength,
                                            options.edge_radius, traced.units,
                                            None if layer.kind == blocks.KIND else
                                            traced.edges.get((src, layer.name)), first_unit,
                                            options.bundler, cell_values[src], shared_materials)
                collection.objects.link(obj)
                animated.append(obj)
        # the level-of-detail summary: what the caps left out (the operator reports it)
        collection[names.EDGES_DRAWN], collection[names.EDGES_TOTAL] = drawn, max(total, drawn)
        for obj in animated:
            mod = obj.modifiers[layers.MODIFIER]
            animation.key_epoch_input(obj, mod, nodes.input_ids(mod.node_group)["Epoch"], frames)
        cells = layout.corners(list(placements.values()))
        runs.shared(scene, collection, "lights", lambda: stage.add_lights(
            collection, cells.min(axis=0), cells.max(axis=0)))
        # the camera before any scene setting, so a failure leaves the scene as it was; the
        # shared camera turns to the new run unless asked to leave the scene as it is
        if options.setup_render or not had_camera:
            camera_moves.apply_move(collection, options.camera_move, scene, options.orthographic,
                                    cells, aspect, (options.frame_start, frame_end)
                                    if options.setup_render else None)
        else:           # its overlays wait, out of sight, until its camera move is applied
            screen.scale = (0.0, 0.0, 0.0)
            collection[names.CAMERA_MOVE] = options.camera_move
        if options.setup_render:
            scene.camera = cam
            stage.neutral_world(scene)
            stage.render_settings(scene, resolution, options.samples, fps)
            scene.frame_start = options.frame_start
            scene.frame_end = frame_end
        looks.apply_look(collection, options.look, scene if options.setup_render else None)
        layers.set_run_inputs(collection.objects, options.controls)
        runs.scope_names(collection, label)
    progress(1.0, "Done")
    return collection

