"""Live refresh: a run's scene takes in the epochs its source gained since the import.

`refresh_run` asks `live.check` which epochs are complete now (cheap when nothing changed), reads
only the new ones (the shown epochs come back, exact, from the scene's own atlas images and score
points) and writes the values of all epochs into the data the scene already has: each
layer's and connection's atlas image (resized, repacked), the lookup sizes and colour scales of
their materials, the per-map gains, the Epoch keyframes, the epoch counter's lines, the score bars'
points, the legend's values and the training curves (the one overlay rebuilt, as its axes and ticks
depend on the epochs). Objects, looks, camera, visibility and every keyed control stay as the user
left them. Timing: the import's rule is kept — the default spreads the epochs over
`animation.TRAINING_SECONDS` again (the frame range stays), a fixed frames-per-epoch appends at
that spacing (the frame range grows).

A new epoch that is half written, still settling or damaged is left out and named in the report;
a source that is gone, or lost epochs the scene shows, leaves the scene exactly as it was.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

from .. import atlas as atlas_mod
from .. import blocks, live
from ..errors import NNVisError
from ..model.edges import Edges, cell_activations, edge_weights
from . import animation, compat, hud, legend, nodes, overlays, runs
from ..plan import colour_range, map_gain, mode_values
from .layers import MODIFIER, set_inputs, set_point_attribute
from .run_record import RunRecord
from .transaction import all_or_nothing
from .. import names


@dataclass
class Report:
    run: str
    added: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        head = f"{self.run}: " + (f"added epochs {self.added}" if self.added else "nothing new")
        return "; ".join([head, *self.notes])


def refresh_all(scene=None) -> list[Report]:
    """`refresh_run` for every imported run of `scene` (default: the context scene)."""
    scene = scene or bpy.context.scene
    return [refresh_run(c, scene) for c in runs.runs_in(scene)]


def newest_frame(collection, scene=None) -> int:
    """The first whole frame that shows the run's newest epoch (its last Epoch key)."""
    scene = scene or bpy.context.scene
    record = RunRecord(collection)
    frames, _ = _timeline(record, record.epochs, scene)
    return int(np.ceil(frames[-1]))


def _timeline(record, epochs: list[int], scene):
    """(frames, last frame) of `epochs` by the run's timing rule: the import's, or the spacing
    and end hold `animation.retime` set since."""
    fpe, fps, start, hold = record.timing or (0.0, scene.render.fps, 1.0, None)
    frames, frame_end = animation.timeline(epochs, fps, fpe, int(start))
    return frames, frame_end if hold is None else int(frames[-1]) + int(hold)


def follow_step(scene=None) -> list[Report]:
    """One tick of Follow Training: refresh every run, and when one gained epochs put the
    playhead on the newest epoch of the run the camera shows (the newest run)."""
    scene = scene or bpy.context.scene
    reports = refresh_all(scene)
    shown = runs.runs_in(scene)
    if shown and any(r.added for r in reports):
        scene.frame_set(newest_frame(shown[-1], scene))
    return reports


def refresh_run(collection, scene=None) -> Report:
    """Bring the run `collection` up to the epochs its source holds now (see the module doc)."""
    from ..run import load_run
    scene = scene or bpy.context.scene
    report, record = Report(collection.name), RunRecord(collection)
    shown = record.epochs
    found = live.check(record.source, shown, record.source_state, record.source_settling)
    report.notes += found.notes
    record.source_state, record.source_settling = found.state, found.settling
    if found.load is None:
        return report
    if record.probe == "<array>":
        report.notes.append("imported with a probe given as an array: re-import to refresh")
        return report
    bad, run, failed = [], None, None
    try:        # only the new epochs: the shown ones are in the scene's images already
        run = load_run(record.source, probe=record.probe, probe_index=record.probe_index,
                       epochs=sorted(set(found.load) - set(shown)),
                       on_bad_epoch=lambda e, why: bad.append((e, why)))
        writes = _computed(record, run, shown, scene)
    except NNVisError as exc:
        failed = exc
    report.notes += [f"epoch {e} left out: {why}" for e, why in bad]
    if run is not None:                                   # a damaged epoch of a recording
        report.notes += [w for w in run.warnings if " left out: " in w]
    if failed is not None:
        report.notes.append(f"{failed}; the scene keeps its {len(shown)} epochs")
        return report
    with all_or_nothing(scene):
        for write in writes:
            write()
    report.added = list(run.epochs)
    return report


@dataclass
class History:
    """The whole run as the overlays see it: every epoch shown (old and new) and the metrics."""
    epochs: list[int]
    metrics: dict


def _computed(record, run, shown: list[int], scene) -> list:
    """Every value of the refreshed scene computed (the shown epochs from the scene's own
    images, the new ones from `run`), as the writes that put them in: nothing fails halfway."""
    collection = record.collection
    network = blocks.drawn(run.network, *(record.blocks or ("auto", "")))
    epochs = sorted(set(shown) | set(run.epochs))
    order = np.argsort(shown + list(run.epochs), kind="stable")    # old and new rows, merged
    frames, frame_end = _timeline(record, epochs, scene)
    weights = [{l.name: run.weights(l.name, e) for l in run.layers if l.weight_shapes}
               for e in run.epochs]
    writes = [_layer(o, run, network, order) if names.LAYER in o else
              _edges(o, run, network, weights, order)
              for o in collection.objects if MODIFIER in o.modifiers
              and (names.LAYER in o or names.EDGES in o)]
    history = History(epochs, run.metrics)
    scores = _scores(collection, run, order)

    def finish():
        _overlays(record, history, run, scores, frames)
        for obj in collection.all_objects:
            _rekey(obj, frames)
        record.epochs = epochs
        if record.frame_end in (None, scene.frame_end):
            scene.frame_end = frame_end          # unless the user set the range
        record.frame_end = frame_end
    return writes + [finish]


def _shown_cells(material) -> np.ndarray:
    """(E, C, H, W) values of the epochs the material's atlas image holds now."""
    tree = material.node_tree.nodes
    image, lookup = tree[names.TEX_A].image, tree[names.LOOKUP].inputs
    width, height = image.size
    rgba = np.empty(width * height * 4, np.float32)
    image.pixels.foreach_get(rgba)
    tile_w, tile_h, rows = (int(v) for v in lookup["Tile"].default_value)
    cells = width * rows * atlas_mod.PER_TEXEL // (tile_h * tile_w)   # an upper bound: trimmed
    return atlas_mod.unpack(rgba.reshape(height, width, 4)[..., :3], tile_h, tile_w, cells, rows)


def _merged(old: np.ndarray, new: np.ndarray, order: np.ndarray, what: str) -> np.ndarray:
    """Old and new epochs' (E, C, H, W) values in epoch order; `old` may carry padding cells."""
    if old.shape[2:] != new.shape[2:] or old.shape[1] < new.shape[1]:
        raise NNVisError(f"{what}: the new epochs have cells {new.shape[1:]}, the scene "
                         f"{old.shape[1:]}; the model changed: re-import the run")
    return np.concatenate([old[:, :new.shape[1]], new])[order]


def _write_atlas(material, atlas) -> None:
    """The material's atlas image holds `atlas` now (resized and repacked in place), and its
    lookup the new sizes."""
    tree = material.node_tree.nodes
    image = tree[names.TEX_A].image
    if tuple(image.size) != (atlas.width, atlas.height):
        image.scale(atlas.width, atlas.height)
    rgba = np.ones((atlas.height, atlas.width, 4), np.float32)
    rgba[..., :3] = atlas.rgb
    image.pixels.foreach_set(rgba.ravel())
    image.pack()
    lookup = tree[names.LOOKUP]
    nodes.set_default(lookup.inputs["Tile"], (atlas.tile_w, atlas.tile_h, atlas.rows_per_epoch))
    nodes.set_default(lookup.inputs["Atlas"], (atlas.width, atlas.height, atlas.epochs - 1))


def _layer(obj, run, network, order):
    """The layer's atlas, colour scale and per-map gains over all epochs; returns their write."""
    name, material = obj[names.LAYER], legend.material_of(obj)
    new = atlas_mod.as_cells(np.stack([run.activations(name, e) for e in run.epochs]),
                             network.layer(name).is_spatial)
    cells = _merged(_shown_cells(material), new, order, f"layer {name!r}")
    atlas, gain = atlas_mod.pack(cells), map_gain(cells)
    tree = material.node_tree.nodes
    diverging = tree[names.OFFSET].outputs[0].default_value == 0.5    # the import's choice
    scale, offset = colour_range(cells, diverging)

    def write():
        _write_atlas(material, atlas)
        nodes.set_default(tree[names.SCALE].outputs[0], scale)
        nodes.set_default(tree[names.OFFSET].outputs[0], offset)
        set_point_attribute(obj.data, names.MAP_GAIN, gain)
    return write


def _edges(obj, run, network, weights, order):
    """The connection's weight atlas and colour-mode scales over all epochs, for the curves it
    has; returns their write."""
    src_name, dst_name = obj[names.EDGES]
    attrs = obj.data.attributes
    ends = []
    for name in (names.SRC, names.DST):
        values = np.empty(len(attrs[name].data), np.int32)
        attrs[name].data.foreach_get("value", values)
        ends.append(values)
    edges = Edges(*ends, edge_weights(network, dst_name, src_name, weights, *ends))
    if edges.weight.size == 0 or float(np.ptp(edges.weight)) == 0.0:
        return lambda: None         # weightless: the run's shared grey material (edges.py)
    new = mode_values(edges, cell_activations(network.layer(src_name), np.stack(
        [run.activations(src_name, e) for e in run.epochs])))
    material = legend.material_of(obj)
    values = _merged(_shown_cells(material), new.reshape(new.shape[0], -1, 1, 1), order,
                     f"edges {src_name!r} → {dst_name!r}")
    atlas = atlas_mod.pack(values)
    values = values.reshape(values.shape[0], new.shape[1], -1)          # (E, modes, n)
    constant = values.size == 0 or float(np.ptp(values[:, 0])) == 0.0   # mode 0: the weight
    scales = [0.0 if constant else colour_range(values[:, k], diverging=True)[0]
              for k in range(values.shape[1])]

    def write():
        _write_atlas(material, atlas)
        for k, scale in enumerate(scales):
            nodes.set_default(material.node_tree.nodes[f"{names.MODE_SCALE}{k}"].outputs[0], scale)
    return write


def _scores(collection, run, order) -> np.ndarray | None:
    """(E, classes) class scores of every epoch: the bars' points hold the shown ones."""
    new = overlays.prediction_scores(run)
    bars = [o for o in runs.overlays_of(collection).get("predictions", []) if names.ROW in o]
    if new is None or not bars:
        return None
    attr = bars[0].data.attributes[names.SCORE]
    old = np.empty(len(attr.data), np.float32)
    attr.data.foreach_get("value", old)
    new = overlays.bar_scores(new, bool(bars[0].get(names.SOFTMAX, False)))[0]
    return np.concatenate([old.reshape(-1, new.shape[1]), new])[order]


def _overlays(record, history: History, run, scores, frames) -> None:
    collection = record.collection
    kinds = runs.overlays_of(collection)
    for obj in kinds.get("counter", []):
        if MODIFIER in obj.modifiers:
            overlays.set_counter_lines(obj.modifiers[MODIFIER].node_group,
                                       overlays.counter_lines(history))
    for obj in kinds.get("predictions", []):
        if obj.name.endswith(overlays.TOP) and scores is not None:
            overlays.set_counter_lines(obj.modifiers[MODIFIER].node_group, overlays.top_lines(
                scores, overlays.class_names_of(run, scores.shape[1])))
        if names.ROW in obj and scores is not None:
            old = obj.data
            obj.data = overlays.score_mesh(run, scores, obj[names.ROW])
            old.name = obj.data.name = obj.name
            bpy.data.meshes.remove(old)
    for obj in kinds.get("legend", []):
        shown = legend.described(collection, obj)
        if shown is not None:
            lo, hi = legend.range_of(shown)
            set_inputs(obj.modifiers[MODIFIER], {"Min": f"{lo:.3g}", "Max": f"{hi:.3g}"})
    _curves(record, history, frames, kinds.get("curves", []))


def _curves(record, history: History, frames, old: list) -> None:
    """The training curves built again for the epochs there are now, shown or hidden as before."""
    collection = record.collection
    screen = next((o for o in collection.objects if o.get(names.SCREEN)), None)
    if screen is None or overlays.curve_points(history, 1.0, 1.0) is None:
        return
    shown = not old[0].hide_render if old else True
    data = [o.data for o in old if o.data is not None and o.data.users == 1]
    bpy.data.batch_remove(old)
    bpy.data.batch_remove(data)
    made = overlays.build_curves(history, collection, *hud.curves_box(record.aspect), frames)
    hud.hang(made, "curves", screen, shown)
    for obj in made:
        if animation.epoch_path(obj) is not None:
            animation.key_epoch(obj, frames)
    runs.scope_names(collection, collection.name)


def _rekey(obj, frames: np.ndarray) -> None:
    """Epoch keyframe k of `obj` at `frames[k]`, value k, as many keys as epochs (the F-curve
    itself stays: its other settings and every other F-curve are the user's)."""
    path = animation.epoch_path(obj)
    fcurve = next((f for f in compat.fcurves_of(obj) if f.data_path == path), None)
    if fcurve is None:
        return
    points = fcurve.keyframe_points
    if len(points) < len(frames):
        points.add(len(frames) - len(points))
    while len(points) > len(frames):
        points.remove(points[-1], fast=True)
    points.foreach_set("co", np.stack([frames, np.arange(len(frames))], axis=1)
                       .astype(np.float32).ravel())
    points.foreach_set("interpolation", [animation.LINEAR] * len(frames))
    fcurve.update()
