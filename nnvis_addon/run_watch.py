"""Following a training that is still running: which epochs of a run's source are complete now.

A refresh must never read a file that is still being written. A recording says so itself: its
writer lists an epoch in manifest.json only after the epoch's folder is complete and renamed into
place (io/recording.py), so the manifest is the completion marker, and a `.tmp-epoch_N` folder is
an epoch being written (or half written by a writer that died). Checkpoint folders have no marker
(Keras writes `.weights.h5`/`.keras` in place): a new checkpoint counts once its files' size and
mtime hold between two refreshes, and a `.keras` must also be a whole zip.

`check` compares a source's `state` (names, sizes, mtimes: a few `stat` calls) with the previous
one first, so a refresh of a source that did not change costs nothing. numpy-free, bpy-free.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import NNVisError
from .io import discover as disc
from .io import recording
from .run import is_recording

TMP_EPOCH = ".tmp-epoch_"


@dataclass
class Check:
    """What a source holds now: `state` to remember for the next check; `load` the epochs to show
    (the ones shown plus the complete new ones; None when there is nothing to add); `notes` name
    every epoch left out and why (half written, still settling, damaged, gone); `settling`: a new
    checkpoint waits for the next check, which must look again even if nothing changed."""
    state: dict
    load: list[int] | None = None
    notes: list[str] = field(default_factory=list)
    settling: bool = False


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def state(source) -> dict:
    """name → [size, mtime_ns] of what tells whether `source` grew: a recording's manifest and the
    entries of its epochs/ folder; every file of a checkpoint folder (SavedModel folders by their
    own files); a single checkpoint file. {} when the source is gone."""
    path = Path(source)
    if not path.exists():
        return {}
    if is_recording(path):
        folder = path if path.is_dir() else path.parent
        found = {recording.MANIFEST: _stat(folder / recording.MANIFEST)}
        epochs = folder / recording.EPOCHS_DIR
        for entry in (sorted(epochs.iterdir()) if epochs.is_dir() else []):
            found[f"{recording.EPOCHS_DIR}/{entry.name}"] = _stat(entry)
        return found
    if path.is_file():
        return {path.name: _stat(path)}
    found = {}
    for root, _, files in os.walk(path):
        for name in files:
            file = Path(root, name)
            found[file.relative_to(path).as_posix()] = _stat(file)
    return found


def check(source, shown: list[int], previous: dict | None, settling: bool = False) -> Check:
    """Which epochs `source` can add to the `shown` ones now (see `Check`); `previous` is the
    `state` the last check saw (None: never checked, so nothing new counts as settled yet) and
    `settling` whether that check was waiting for a new checkpoint to settle."""
    now = state(source)
    if not now:
        return Check(now, notes=[f"{source}: gone (deleted or moved); the scene keeps its "
                                 f"{len(shown)} epochs"])
    if now == previous and not settling:
        return Check(now)
    path = Path(source)
    try:
        if is_recording(path):
            (found, notes), waiting = _recorded(path if path.is_dir() else path.parent, now), False
        else:
            found, notes, waiting = _checkpoints(path, now, previous or {}, set(shown))
    except NNVisError as exc:
        return Check(now, notes=[f"{exc}; the scene keeps its {len(shown)} epochs"])
    lost = sorted(set(shown) - set(found))
    if lost:
        return Check(now, notes=notes + [f"{source}: epochs {lost} are no longer there; the scene "
                                         f"keeps its {len(shown)} epochs"])
    new = sorted(set(found) - set(shown))
    return Check(now, sorted(set(shown) | set(new)) if new else None, notes, waiting)


def _recorded(folder: Path, now: dict) -> tuple[list[int], list[str]]:
    """The epochs the manifest lists (their files are checked as they are read), and what else
    lies there."""
    epochs, notes = recording.listed_epochs(folder), []
    listed = {recording.epoch_dir_name(e) for e in epochs}
    for name in now:
        entry = name.split("/", 1)[-1]
        if entry.startswith(TMP_EPOCH):
            notes.append(f"{folder}: epoch {int(entry[len(TMP_EPOCH):])} is half written "
                         f"({name}): left out until its writer completes it")
        elif entry.startswith("epoch_") and entry not in listed and "/" in name:
            notes.append(f"{folder}: epoch {int(entry[6:])} ({name}) is not listed in "
                         f"{recording.MANIFEST} yet: left out")
    return epochs, notes


def _checkpoints(path: Path, now: dict, previous: dict, shown: set):
    """(epochs, notes, settling): the epochs of a checkpoint folder whose files are complete —
    shown already, or new and unchanged since the previous check (and a whole zip for `.keras`)
    — what is left out, and whether a new one is still settling."""
    folder = path if path.is_dir() else path.parent
    found, notes, settling = [], [], False
    for source in disc.discover(path).epochs:
        if source.epoch in shown:
            found.append(source.epoch)
            continue
        files = _files_of(source, folder, now)
        moving = [f for f in files if previous.get(f) != now.get(f)]
        if moving:
            settling = True
            notes.append(f"{folder / moving[0]}: epoch {source.epoch} is new or still being "
                         "written; taken once its size holds between two refreshes")
        elif source.kind == disc.KERAS and source.path.suffix == ".keras" and \
                not zipfile.is_zipfile(source.path):
            notes.append(f"{source.path}: epoch {source.epoch} is not a complete .keras zip")
        else:
            found.append(source.epoch)
    return found, notes, settling


def _files_of(source: disc.EpochSource, folder: Path, now: dict) -> list[str]:
    """The names (as in `state`) of the files that make up one epoch's checkpoint."""
    if source.kind == disc.TF2:              # a prefix: <prefix>.index + <prefix>.data-*
        stem = Path(source.path).relative_to(folder).as_posix()
        return [n for n in now if n.startswith(stem + ".") or n.startswith(stem + "/")]
    name = Path(source.path).relative_to(folder).as_posix()
    return [name]
