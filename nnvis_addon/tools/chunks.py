"""Frame-range arithmetic for splitting one render over several processes or machines.

Pure Python (no bpy): the CLI parses `--frames START-END` and `--chunk K/N` with it, and a farm
script can compute the same chunks on any machine.
"""
from __future__ import annotations

from ..errors import NNVisError


def parse_frames(text: str) -> tuple[int, int]:
    """'START-END' (or a single frame 'N') → (start, end), both inclusive."""
    parts = text.strip().split("-")
    try:
        start, end = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (None, None)
    except ValueError:
        start = end = None
    if start is None or start < 0 or end < start:
        raise NNVisError(f"--frames {text!r}: expected START-END with 0 <= START <= END, e.g. 1-120")
    return start, end


def parse_chunk(text: str) -> tuple[int, int]:
    """'K/N' → (k, n): this process renders the K-th (1-based) of N chunks."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        k = n = 0
    if not 1 <= k <= n:
        raise NNVisError(f"--chunk {text!r}: expected K/N with 1 <= K <= N, e.g. 2/4")
    return k, n


def chunk_range(start: int, end: int, k: int, n: int) -> tuple[int, int] | None:
    """Frames of chunk k of n over start..end (inclusive): contiguous, sizes differ by at most one,
    the first chunks take the remainder. None when there are more chunks than frames and chunk k
    is empty."""
    if not 1 <= k <= n:
        raise NNVisError(f"chunk {k}/{n}: K must be between 1 and N")
    total = end - start + 1
    size, extra = divmod(total, n)
    first = start + (k - 1) * size + min(k - 1, extra)
    count = size + (1 if k <= extra else 0)
    return (first, first + count - 1) if count else None
