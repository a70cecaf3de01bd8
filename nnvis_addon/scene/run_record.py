"""A run's record: what an import stores on the run's collection for the operations that come
later (refresh, rebuild, retime, camera moves, the sidebar), read and written here only.

`RunRecord(collection)` is a typed view of the collection's custom properties: each field is one
`names` key, stored as it always was (a .blend saved by an earlier nnvis reads the same), read back
as a Python value, with the default an earlier import that did not record it implies. Every reader
spells a value the one way; the import, the rebuild and the refresh share it without importing
each other.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any, Callable, NamedTuple

from .. import framing, names
from ..options import SceneOptions


def is_run(collection) -> bool:
    """Whether `collection` is an imported run's (it records its source)."""
    return collection is not None and names.RUN in collection


class Timing(NamedTuple):
    """The import's timing rule (`animation.timeline`): frames per epoch (0: spread over
    `animation.TRAINING_SECONDS`), fps, first frame; `hold_last` once `animation.retime` set a
    spacing and end hold."""
    frames_per_epoch: float
    fps: float
    frame_start: float
    hold_last: float | None = None


class _Field:
    """One recorded value: its key on the collection, the value a run that lacks it had, and how
    the value is stored (`write`) and read back (`read`)."""

    def __init__(self, key: str, default: Any = None, read: Callable = lambda v: v,
                 write: Callable = lambda v: v):
        self.key, self.default, self.read, self.write = key, default, read, write

    def __get__(self, record, owner=None):
        if record is None:
            return self
        stored = record.collection.get(self.key)
        return copy.deepcopy(self.default) if stored is None else self.read(stored)

    def __set__(self, record, value) -> None:
        record.collection[self.key] = self.write(value)


def _options(stored: str) -> SceneOptions:
    """The recorded `SceneOptions` (defaults for options an earlier nnvis did not record)."""
    fields = {f.name for f in dataclasses.fields(SceneOptions)}
    return SceneOptions(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in json.loads(stored).items() if k in fields})


def _timing(stored) -> Timing:
    return Timing(*(float(v) for v in stored))


def _unstored(value: Timing) -> list[float]:
    return [float(v) for v in value if v is not None]


def _ints(values) -> list[int]:
    return [int(v) for v in values]


def _dict(stored) -> dict:
    return stored.to_dict() if hasattr(stored, "to_dict") else dict(stored)


class RunRecord:
    """The typed record of the run in `collection` (see the module doc); setting a field stores
    it on the collection."""

    source = _Field(names.RUN, write=str)                        # its checkpoint/recording path
    epochs = _Field(names.EPOCHS, [], _ints, _ints)               # the recorded epoch numbers
    options = _Field(names.OPTIONS, SceneOptions(), _options,     # the import's options
                     lambda o: json.dumps(dataclasses.asdict(o), default=str))
    # what a refresh or rebuild repeats of the import
    probe = _Field(names.PROBE, None, lambda v: v or None,        # "<array>": given as an array
                   lambda p: "" if p is None else str(p))
    probe_index = _Field(names.PROBE_INDEX, 0, int, int)
    timing = _Field(names.TIMING, None, _timing, _unstored)
    aspect = _Field(names.ASPECT, 16 / 9, float, float)          # the frame's width / height
    frame_end = _Field(names.FRAME_END, None, int, int)
    blocks = _Field(names.BLOCKS, None, tuple, lambda f: [str(v) for v in f])  # (mode, expand)
    source_state = _Field(names.SOURCE_STATE, None, json.loads, json.dumps)    # `run_watch.state`
    source_settling = _Field(names.SOURCE_SETTLING, False, bool, bool)
    # the view: home direction, the tour's stages, the camera move, the look
    view = _Field(names.VIEW, tuple(framing.VIEW_DIRECTION), tuple, list)
    # the layout's spacing, kept by restack.py when controls resize the layers
    row_gaps = _Field(names.ROW_GAPS, [], list, list)
    row_z = _Field(names.ROW_Z, [], list, list)
    rank_x = _Field(names.RANK_X, [], list, list)
    rank_reach = _Field(names.RANK_REACH, [], list, list)
    rank_width = _Field(names.RANK_WIDTH, [], list, list)
    stops = _Field(names.STOPS, [], json.loads, json.dumps)        # [[stage, [layer, ...]], ...]
    camera_move = _Field(names.CAMERA_MOVE)
    orthographic = _Field(names.ORTHOGRAPHIC, None, bool, bool)
    look = _Field(names.LOOK)
    # the level-of-detail summary the import operator reports
    edges_drawn = _Field(names.EDGES_DRAWN, 0, int, int)
    edges_total = _Field(names.EDGES_TOTAL, 0, int, int)
    design = _Field(names.DESIGN, None, _dict)                   # the design editor's settings

    def __init__(self, collection):
        self.collection = collection
