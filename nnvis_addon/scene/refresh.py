"""Live refresh: a run's scene takes in the epochs its source gained since the import.

`refresh_run` asks `run_watch.check` which epochs are complete now (cheap when nothing changed), reads
only the new ones (the shown epochs come back, exact, from the scene's own atlas images and score
points), has the planner compute the values of all epochs (`plan.plan_refresh`, as the import's
`plan_scene`) and writes them into the data the scene already has with the import's writers: each
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

from .. import run_watch
from ..errors import NNVisError
from ..plan import plan_refresh
from . import animation, compat, edges, hud, layers, legend, overlays, runs
from .layers import MODIFIER, set_inputs
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
    found = run_watch.check(record.source, shown, record.source_state, record.source_settling)
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
        write = _planned(record, run, shown, scene)
    except NNVisError as exc:
        failed = exc
    report.notes += [f"epoch {e} left out: {why}" for e, why in bad]
    if run is not None:                                   # a damaged epoch of a recording
        report.notes += [w for w in run.warnings if " left out: " in w]
    if failed is not None:
        report.notes.append(f"{failed}; the scene keeps its {len(shown)} epochs")
        return report
    with all_or_nothing(scene):
        write()
    report.added = list(run.epochs)
    return report


@dataclass
class History:
    """The whole run as the overlays see it: every epoch shown (old and new) and the metrics."""
    epochs: list[int]
    metrics: dict


def _planned(record, run, shown: list[int], scene):
    """Every value of the refreshed scene planned (the shown epochs from the scene's own
    images, the new ones from `run`), as the write that puts them in: nothing fails halfway."""
    collection = record.collection
    drawn = [o for o in collection.objects if MODIFIER in o.modifiers]
    layer_objects = {o[names.LAYER]: o for o in drawn if names.LAYER in o}
    edge_objects = {tuple(o[names.EDGES]): o for o in drawn if names.EDGES in o}
    planned = plan_refresh(run, record.blocks or ("auto", ""), shown,
                           {n: layers.shown_values(o) for n, o in layer_objects.items()},
                           {pair: edges.shown_values(o) for pair, o in edge_objects.items()})
    frames, frame_end = _timeline(record, planned.epochs, scene)
    history = History(planned.epochs, run.metrics)
    scores = _scores(collection, run, planned.order)

    def write():
        for name, values in planned.layers.items():
            layers.set_values(layer_objects[name], values)
        for pair, values in planned.connections.items():
            edges.set_values(edge_objects[pair], values)
        _overlays(record, history, run, scores, frames)
        for obj in collection.all_objects:
            _rekey(obj, frames)
        record.epochs = planned.epochs
        if record.frame_end in (None, scene.frame_end):
            scene.frame_end = frame_end          # unless the user set the range
        record.frame_end = frame_end
    return write


def _scores(collection, run, order) -> tuple[np.ndarray, list[str]] | None:
    """(E, bars) scores of every epoch for the classes the bars show (their points hold the
    shown epochs'), and every epoch's top-class line (the line's own group holds the shown
    epochs': the first of all classes, which a run of 1000 classes keeps nowhere else)."""
    new = overlays.prediction_scores(run)
    kinds = runs.overlays_of(collection).get("predictions", [])
    bars = [o for o in kinds if names.ROW in o]
    if new is None or not bars:
        return None
    new = overlays.bar_scores(new, bool(bars[0].get(names.SOFTMAX, False)))[0]
    classes = list(bars[0].get(names.CLASSES, range(new.shape[1])))
    attr = bars[0].data.attributes[names.SCORE]
    old = np.empty(len(attr.data), np.float32)
    attr.data.foreach_get("value", old)
    shown = np.concatenate([old.reshape(-1, len(classes)), new[:, classes]])[order]
    tops = []
    for obj in (o for o in kinds if o.name.endswith(overlays.TOP)):
        old_lines = overlays.counter_lines_in(obj.modifiers[MODIFIER].node_group)
        tops = old_lines[:len(old) // len(classes)] + overlays.top_lines(
            new, overlays.class_names_of(run, new.shape[1]), obj.get(names.ROOM))
    return shown, [tops[k] for k in order] if tops else []


def _overlays(record, history: History, run, scores, frames) -> None:
    collection = record.collection
    kinds = runs.overlays_of(collection)
    for obj in kinds.get("counter", []):
        if MODIFIER in obj.modifiers:
            overlays.set_counter_lines(obj.modifiers[MODIFIER].node_group,
                                       overlays.counter_lines(history))
    for obj in kinds.get("predictions", []):
        if obj.name.endswith(overlays.TOP) and scores is not None:
            overlays.set_counter_lines(obj.modifiers[MODIFIER].node_group, scores[1])
        if names.ROW in obj and scores is not None:
            old = obj.data
            obj.data = overlays.score_mesh(run, scores[0], obj[names.ROW],
                                           list(obj.get(names.CLASSES, range(scores[0].shape[1]))))
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
