"""A folder of rendered frames: their names and formats, the output settings that write them, and
one process's frame loop with claims (`render_sequence`; workers.py starts such processes on one
machine).

A frame whose file exists is done; otherwise the process claims it with `frame_####.png.claim`
(created atomically, holding host and pid), renders it to a hidden temporary name in the same
folder and renames that onto the final name, so a frame file is never half-written. N processes or
machines sharing one folder split the work without talking to each other, and a killed render
resumes at the first missing frame: a claim whose process is gone (same host: pid not running;
another host: older than `STALE_CLAIM_SECONDS`) is taken over. The output settings also carry
Blender's own placeholders, so a saved .blend rendered by a plain `blender -b scene.blend -a`
shares a folder on a farm node without nnvis (placeholders, not claims: see docs/render-farm.md).
"""
from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import bpy

from ..errors import NNVisError
from . import compat

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov")
SEQUENCE_FORMATS = {"PNG": "PNG", "EXR": "OPEN_EXR", "BMP": "BMP"}
SUFFIXES = {"PNG": ".png", "EXR": ".exr", "BMP": ".bmp"}
# An MP4's frames before encoding: the cheapest lossless 8-bit file Blender writes (1920×1080,
# measured: BMP 0.11 s, PNG uncompressed 0.21 s, PNG at Blender's 15 % 0.41 s)
VIDEO_FRAMES = "BMP"
FRAME_PATTERN = "frame_####"          # Blender replaces #### by the frame and adds the extension
FRAME_FILE = re.compile(rf"^frame_(\d+)\.({'|'.join(s[1:] for s in SUFFIXES.values())})$")
STALE_CLAIM_SECONDS = 3 * 3600    # a claim from another host older than this: its node died


def output_format(out: Path, file_format: str | None = None) -> str:
    """MP4 for a video file name, else the sequence format (PNG unless told)."""
    if file_format:
        if file_format != "MP4" and file_format not in SEQUENCE_FORMATS:
            raise NNVisError(f"output format {file_format!r}: expected MP4 or one of "
                              f"{list(SEQUENCE_FORMATS)}")
        return file_format
    return "MP4" if Path(out).suffix.lower() in VIDEO_SUFFIXES else "PNG"


def set_output(scene, out, file_format: str | None = None) -> str:
    """Point the scene's output at `out`: an MP4 file, or a folder of frame_####.png/.exr written
    with placeholders and without overwriting. `out` may be Blender-relative ('//frames/')."""
    out = str(out)
    file_format = output_format(Path(out), file_format)
    if not out.startswith("//"):
        target = Path(out) if file_format != "MP4" else Path(out).parent
        target.mkdir(parents=True, exist_ok=True)
    render = scene.render
    if file_format == "MP4":
        compat.set_video_output(scene)
        render.filepath = out
        return file_format
    compat.set_image_output(scene, SEQUENCE_FORMATS[file_format])
    render.filepath = out.rstrip("/\\") + "/" + FRAME_PATTERN
    render.use_file_extension = True
    render.use_placeholder = True
    render.use_overwrite = False
    return file_format


def render_sequence(scene, folder, file_format: str = "PNG", on_frame=None) -> list[int]:
    """Render the frames of scene.frame_start..frame_end that are neither in `folder` nor claimed
    by a live process, each to a temporary name then renamed into place; returns them."""
    set_output(scene, folder, file_format)
    folder, pattern = Path(bpy.path.abspath(str(folder))), scene.render.filepath
    tag = f"{socket.gethostname()}-{os.getpid()}"
    done = []
    try:
        scene.render.use_file_extension = False
        for frame in range(scene.frame_start, scene.frame_end + 1):
            final = frame_file(folder, frame, file_format)
            if is_rendered(final) or not claim(final):
                continue
            temp = _temp_file(final, tag)
            try:
                for leftover in folder.glob(f".{final.stem}.*"):   # from a process that died
                    leftover.unlink(missing_ok=True)
                scene.frame_set(frame)
                scene.render.filepath = str(temp)
                bpy.ops.render.render(write_still=True, scene=scene.name)
                os.replace(temp, final)
            finally:
                temp.unlink(missing_ok=True)
                _claim_file(final).unlink(missing_ok=True)
            done.append(frame)
            if on_frame:
                on_frame(frame)
    finally:
        scene.render.filepath, scene.render.use_file_extension = pattern, True
    return done


def frame_file(folder, frame: int, file_format: str) -> Path:
    """Where frame `frame` of a `file_format` sequence in `folder` is written."""
    return Path(folder) / f"frame_{frame:04d}{SUFFIXES[file_format]}"


def is_rendered(path: Path) -> bool:
    """A finished frame: a non-empty file (an empty one is a placeholder plain Blender left)."""
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def _temp_file(final: Path, tag: str) -> Path:
    """Where a process tagged `tag` ('host-pid') writes `final` before renaming it into place."""
    return final.with_name(f".{final.stem}.{tag}{final.suffix}")


def release(folder: Path, pids) -> None:
    """Remove the claims and temporary frame files processes `pids` of this host left when they
    were killed mid-frame (finished frames stay: a render started again resumes after them)."""
    pids = {str(pid) for pid in pids}
    for path in folder.glob("*.claim"):
        try:
            if path.read_text().split()[-1] in pids:
                path.unlink()
        except (OSError, IndexError):
            pass
    for temp in folder.glob(".frame_*"):     # .frame_0001.<host>-<pid>.png
        if any(temp.name.endswith(f"-{pid}{temp.suffix}") for pid in pids):
            temp.unlink(missing_ok=True)


def _claim_file(frame_file: Path) -> Path:
    return frame_file.with_name(frame_file.name + ".claim")


def claim(frame_file: Path) -> bool:
    """Claim `frame_file` for this process: create its .claim file atomically (O_EXCL) with
    'host pid'. A stale claim (`claim_is_stale`) is taken over; False while a live one holds it."""
    path = _claim_file(frame_file)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not claim_is_stale(path):
                return False
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{socket.gethostname()} {os.getpid()}\n")
        return True
    return False


def claim_is_stale(path: Path) -> bool:
    """True when the process that wrote claim `path` is gone: on this host its pid is not running;
    from another host (we cannot see its processes) the claim is older than STALE_CLAIM_SECONDS."""
    try:
        host, pid = path.read_text().split()
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    except ValueError:          # being written right now, or garbage
        host, pid, age = None, "0", time.time() - path.stat().st_mtime
    if host == socket.gethostname():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError):
            pass
        else:
            return False
    return age > STALE_CLAIM_SECONDS


def sequence_frames(folder) -> dict[int, Path]:
    """frame number → file of the frame_####.png (or .exr, .bmp) files in `folder`."""
    found: dict[str, dict[int, Path]] = {}
    for path in Path(folder).iterdir():
        match = FRAME_FILE.match(path.name)
        if match:
            found.setdefault(match[2], {})[int(match[1])] = path
    if len(found) > 1:
        raise NNVisError(f"{folder}: holds frames in more than one format "
                         f"({', '.join(sorted(found))}); keep one sequence per folder")
    return next(iter(found.values()), {})


def finished_frame_numbers(folder) -> list[int]:
    """The frames of the sequence in `folder` whose file is written (not a placeholder)."""
    return [frame for frame, path in sequence_frames(folder).items() if is_rendered(path)]


def finished_frames(folder, frames: tuple[int, int] | None = None) -> list[Path]:
    """The sequence's files in frame order; raises if a frame is missing or still a placeholder."""
    found = sequence_frames(folder)
    if not found:
        raise NNVisError(f"{folder}: no frame_####.png/.exr/.bmp files to encode")
    start, end = frames or (min(found), max(found))
    missing = [f for f in range(start, end + 1) if f not in found]
    empty = [f for f in range(start, end + 1) if f in found and found[f].stat().st_size == 0]
    if missing or empty:
        raise NNVisError(
            f"{folder}: sequence {start}-{end} is not finished: missing frames {_spans(missing)}; "
            f"placeholders (still rendering, or left by a render that died: delete them and render "
            f"again) {_spans(empty)}")
    return [found[f] for f in range(start, end + 1)]


def _spans(frames: list[int]) -> str:
    if not frames:
        return "none"
    spans, first = [], frames[0]
    for a, b in zip(frames, frames[1:] + [None]):
        if b != a + 1:
            spans.append(f"{first}-{a}" if a != first else str(a))
            first = b
    return ", ".join(spans)
