"""The training on the timeline: one keyframe per recorded epoch on each modifier's `Epoch` input.

Keyframes go in through `keyframe_points.add` + `foreach_set` (≈200× faster than keyframe_insert)
with linear interpolation, so the shown epoch — and with it every activation and weight, which the
shaders blend between the two nearest epochs — moves smoothly and at constant speed.
"""
from __future__ import annotations

import numpy as np

from . import compat

LINEAR = 1  # index of 'LINEAR' in the keyframe interpolation enum


def epoch_frames(epochs: list[int], frames_per_epoch: int, frame_start: int = 1) -> np.ndarray:
    """Frame of each recorded epoch: proportional to the epoch number, so gaps in the recording
    (every k-th epoch) keep their real length on the timeline."""
    first = epochs[0]
    return np.array([frame_start + (e - first) * frames_per_epoch for e in epochs], np.float32)


def key_epoch_input(obj, modifier, socket_id: str, frames: np.ndarray) -> None:
    """Keyframe `modifier[socket_id]` to the epoch index (0, 1, 2, ...) at `frames`."""
    fcurve = compat.new_fcurve(obj, f'modifiers["{modifier.name}"]["{socket_id}"]')
    points = fcurve.keyframe_points
    points.add(len(frames))
    co = np.stack([frames, np.arange(len(frames), dtype=np.float32)], axis=1)
    points.foreach_set("co", co.ravel())
    points.foreach_set("interpolation", [LINEAR] * len(frames))
    fcurve.update()
