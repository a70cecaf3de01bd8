"""Build a run's scene: layer objects, edge curves, the epoch animation, camera, lights, settings.

`build_scene` is what the importer operator and scripts call. It first plans everything in numpy
(`plan.plan_scene`: layout, atlases, edges, traces), then writes the plan into datablocks inside
`all_or_nothing`, so bad data never leaves a half-built collection behind.
"""
from __future__ import annotations

import bpy

from .. import layout, names, run_watch
from ..options import SceneOptions
from ..plan import plan_scene
from ..stages import stages
from . import animation, camera_moves, edges as edges_mod, hud, labels as labels_mod, layers, \
    looks, nodes, restack, runs, stage
from .run_record import RunRecord, Timing
from .transaction import all_or_nothing


def _noop(fraction: float, message: str) -> None:
    pass


def build_scene(run, options: SceneOptions | None = None, scene=None, progress=_noop,
                label: str | None = None):
    """Create the collection for `run` in `scene` (default: the context scene) and return it;
    `label` names it and prefixes its objects (default: `runs.new_label`)."""
    options = options or SceneOptions()
    scene = scene or bpy.context.scene
    startup = runs.untouched_startup(scene) if options.setup_render else []
    label = label or runs.new_label(run)
    fps = options.fps if options.setup_render else scene.render.fps
    frames, frame_end = animation.timeline(run.epochs, fps, options.frames_per_epoch,
                                           options.frame_start)
    resolution = options.resolution or (scene.render.resolution_x, scene.render.resolution_y)
    aspect = resolution[0] / resolution[1] if options.setup_render else \
        camera_moves.aspect_of(scene)
    plan = plan_scene(run, options, aspect, lambda placed: runs.beside_others(
        placed, scene, but=label), lambda f, message: progress(f * 0.9, message))
    network, placements = plan.network, plan.placements
    nodes.begin_build()
    with all_or_nothing(scene):
        collection = bpy.data.collections.new(label)
        record = RunRecord(collection)
        record.source, record.epochs = run.source, run.epochs
        # what a refresh repeats: the probe, the timing rule, the frame's aspect, the range, the
        # blocks folded and the source's state
        record.probe = run.probe_source
        record.probe_index = run.probe_index
        record.timing = Timing(options.frames_per_epoch, fps, options.frame_start)
        record.aspect, record.frame_end = aspect, frame_end
        record.blocks = (options.blocks, options.expand)
        record.source_state = run_watch.state(run.source)
        record.view = plan.view
        record.options = options
        record.stops = [[s.name, s.layers] for s in stages(network)]
        scene.collection.children.link(collection)
        animated, objects, shared_materials = [], {}, {}
        progress(0.9, "Layers")
        for layer_plan in plan.layers:
            if layer_plan.unsupported is not None:
                for obj in layers.block_object(layer_plan.layer, layer_plan.placement,
                                               layer_plan.unsupported, label):
                    collection.objects.link(obj)
                continue
            obj = layers.layer_object(layer_plan, label)
            collection.objects.link(obj)
            animated.append(obj)
            objects[layer_plan.layer.name] = obj
        layers.add_controls(plan, objects)
        restack.record_layout(collection, placements.values(), plan.view)
        progress(0.95, "Overlays, labels, camera and lights")
        had_camera = any(o.get(names.SHARED) == "camera" for o in scene.objects)
        (cam,) = runs.shared(scene, collection, "camera",
                             lambda: [camera_moves.add_camera(collection)])
        screen = camera_moves.add_screen(collection, cam)
        overlays = hud.build_overlays(run, collection, screen, aspect, frames, options.overlays)
        animated += [o for o in overlays if layers.MODIFIER in o.modifiers]
        labels_mod.add_labels(collection, network, placements, cam, options.labels,
                              aspect)
        for connection in plan.connections:
            obj = edges_mod.edge_object(label, connection, objects[connection.src],
                                        objects[connection.dst], plan.weightless,
                                        shared_materials)
            collection.objects.link(obj)
            animated.append(obj)
        animated += hud.add_edge_legend(run, collection, aspect, options.overlays)
        # the level-of-detail summary: what the caps left out (the operator reports it)
        record.edges_drawn, record.edges_total = plan.edges_drawn, plan.edges_total
        for obj in animated:
            animation.key_epoch(obj, frames)
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
            record.camera_move = options.camera_move
        if options.setup_render:
            scene.camera = cam
            stage.neutral_world(scene)
            stage.render_settings(scene, resolution, options.samples, fps)
            scene.frame_start = options.frame_start
            scene.frame_end = frame_end
        looks.apply_look(collection, options.look, scene if options.setup_render else None)
        layers.set_run_inputs(collection.objects, options.controls)
        runs.scope_names(collection, label)
    runs.clear_startup(startup)    # the build stands: Blender's startup cube leaves the shot
    progress(1.0, "Done")
    return collection

