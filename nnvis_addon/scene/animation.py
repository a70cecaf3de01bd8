"""The training on the timeline: one keyframe per recorded epoch on each animated object's epoch.

Layers and edges key their `nnvis_epoch` property, which only their shaders read (an Attribute
node, *Object*): their geometry stays the same from frame to frame, so geometry nodes do not run
again, and with the edge curves kept out of Cycles' top-level BVH (`edges.edge_object`) a frame
re-syncs almost nothing (docs/benchmarks.md: 1.8 → 0.26 s a 64×36 frame of the demo). Overlays
whose geometry shows the epoch (counter, curves' marker, score bars) key their modifier's `Epoch`
input. Keyframes go in through `keyframe_points.add` + `foreach_set` (≈200× faster than keyframe_insert)
with linear interpolation, so the shown epoch — and with it every activation and weight, which the
shaders blend between the two nearest epochs — moves smoothly and at constant speed.
"""
from __future__ import annotations

import numpy as np

from ..errors import NNVisError
from . import compat
from .. import names
from .run_record import RunRecord, Timing

LINEAR = 1  # index of 'LINEAR' in the keyframe interpolation enum
# The default timing: the training lasts this long whatever the epoch count, between a hold on
# the untrained network and one on the trained network (seconds).
TRAINING_SECONDS, HOLD_START_SECONDS, HOLD_END_SECONDS = 12.0, 1.0, 1.5
EXPLICIT_HOLDS = (0, 12)   # frames before / after the epochs when frames per epoch is given


def timeline(epochs: list[int], fps: float, frames_per_epoch: float = 0,
             frame_start: int = 1) -> tuple[np.ndarray, int]:
    """(frame of each epoch, last frame). `frames_per_epoch` 0 is the default timing: the epochs
    spread over TRAINING_SECONDS (fractional frames are fine: the Epoch input is interpolated),
    after HOLD_START_SECONDS and before HOLD_END_SECONDS; a number > 0 spaces them exactly."""
    span = epochs[-1] - epochs[0]
    if frames_per_epoch > 0:
        spacing, (first, last) = frames_per_epoch, EXPLICIT_HOLDS
    else:
        spacing = TRAINING_SECONDS * fps / span if span else 1.0
        first, last = round(HOLD_START_SECONDS * fps), round(HOLD_END_SECONDS * fps)
        if not span:        # one checkpoint: the same length, for the camera move to play
            last += round(TRAINING_SECONDS * fps)
    frames = epoch_frames(epochs, spacing, frame_start + first)
    return frames, int(np.ceil(frames[-1])) + last


def epoch_frames(epochs: list[int], frames_per_epoch: float, frame_start: int = 1) -> np.ndarray:
    """Frame of each recorded epoch: proportional to the epoch number, so gaps in the recording
    (every k-th epoch) keep their real length on the timeline."""
    first = epochs[0]
    return np.array([frame_start + (e - first) * frames_per_epoch for e in epochs], np.float32)


def linear_keys(id_data, path: str, frames, values, index: int = 0, eased: bool = False,
                sharp=None) -> None:
    """Linear keyframes of `id_data.<path>[index]` (values at frames), written in bulk; `eased`:
    Bézier keys with auto-clamped handles instead, so a move eases out of and into each hold,
    but those flagged in `sharp` with vector handles (a jump between two keys close together
    would otherwise bend the curve on either side)."""
    fcurve = compat.new_fcurve(id_data, path, index)
    points = fcurve.keyframe_points
    points.add(len(frames))
    points.foreach_set("co", np.stack([frames, values], axis=1).astype(np.float32).ravel())
    if eased:
        for point in points:
            point.interpolation = "BEZIER"
            point.handle_left_type = point.handle_right_type = "AUTO_CLAMPED"
    else:
        points.foreach_set("interpolation", [LINEAR] * len(frames))
    if eased and sharp is not None:
        for point, flag in zip(points, sharp):
            if flag:
                point.handle_left_type = point.handle_right_type = "VECTOR"
    fcurve.update()


def epoch_path(obj) -> str | None:
    """The data path of `obj`'s shown epoch: its NNVis modifier's `Epoch` input (overlays) or its
    `nnvis_epoch` property (layers, edges); None for an object that shows no epoch."""
    from .nodes import input_ids
    mod = obj.modifiers.get(names.MODIFIER)
    if mod is not None and mod.type == "NODES" and mod.node_group is not None:
        ids = input_ids(mod.node_group)
        if "Epoch" in ids:
            return f'modifiers["{mod.name}"]["{ids["Epoch"]}"]'
    return f'["{names.EPOCH}"]' if names.EPOCH in obj else None


def shader_epoch(obj) -> None:
    """Give `obj` the `nnvis_epoch` property its shaders read (shown in the sidebar's Layer
    panel, animatable like any property)."""
    obj[names.EPOCH] = 0.0
    obj.id_properties_ui(names.EPOCH).update(
        min=0.0, soft_min=0.0, description="Which recorded epoch the shaders show (fractional "
                                           "values blend two epochs)")


def key_epoch(obj, frames: np.ndarray) -> None:
    """Keyframe `obj`'s epoch (`epoch_path`) to the epoch index (0, 1, 2, ...) at `frames`."""
    linear_keys(obj, epoch_path(obj), frames, np.arange(len(frames), dtype=np.float32))


def retime(collection, frames_per_epoch: int, hold_first: int = 0, hold_last: int = 0,
           frame_start: int = 1) -> tuple[int, int]:
    """Move the run's Epoch keyframes to `frames_per_epoch` spacing, after `hold_first` frames on
    the first epoch; returns the frame range, which ends `hold_last` frames after the last epoch.
    Key k of every Epoch F-curve belongs to recorded epoch k, so only the frames change."""
    record = RunRecord(collection)
    frames = epoch_frames(record.epochs, frames_per_epoch,
                          frame_start + hold_first)
    for obj in collection.all_objects:
        path = epoch_path(obj)
        for fcurve in compat.fcurves_of(obj):
            if path is None or fcurve.data_path != path:
                continue
            points = fcurve.keyframe_points
            if len(points) != len(frames):
                raise NNVisError(f"{obj.name}: {len(points)} Epoch keyframes for {len(frames)} "
                                 "recorded epochs; re-import the run to re-time it")
            co = np.empty(2 * len(points), np.float32)
            points.foreach_get("co", co)
            co[0::2] = frames
            points.foreach_set("co", co)
            fcurve.update()
    if record.timing is not None:        # a live refresh keeps this spacing (refresh.py)
        record.timing = Timing(frames_per_epoch, record.timing.fps, frame_start + hold_first,
                               hold_last)
        record.frame_end = int(frames[-1]) + hold_last
    return frame_start, int(frames[-1]) + hold_last
