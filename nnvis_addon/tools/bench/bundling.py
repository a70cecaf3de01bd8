"""`nnvis bench bundling`: edges per second of both bundlers, and of datashader's hammer_bundle.

Every size is one dense layer pair (all-to-all, like a Dense layer) with its cells on a line at
x = 0 and x = 1, so hammer_bundle (2-D only) gets exactly the same geometry and edges as ours.
Times are wall clock, best of 3 runs (of 1 when a run takes over 2 s): the machine may be shared.
hammer_bundle is timed after a small warm-up call, so numba's JIT compilation is not counted.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

from ...bundling import density_bundle, structural_bundle

SIZES = (5_000, 100_000, 1_000_000)
HAMMER_SIZES = (5_000, 50_000)
MISSING = "datashader not installed: pip install nnvis[bench]"


def dense_pair(edges: int, seed: int = 0):
    """(src_pos, dst_pos, src, dst, weights): the first `edges` edges of a ~2:1 all-to-all layer."""
    n_src = math.ceil(math.sqrt(2 * edges))
    n_dst = math.ceil(edges / n_src)
    src_pos, dst_pos = _line(n_src, 0.0), _line(n_dst, 1.0)
    src = np.repeat(np.arange(n_src, dtype=np.int32), n_dst)[:edges]
    dst = np.tile(np.arange(n_dst, dtype=np.int32), n_src)[:edges]
    weights = np.random.default_rng(seed).normal(size=edges).astype(np.float32)
    return src_pos, dst_pos, src, dst, weights


def run(sizes=SIZES, hammer_sizes=HAMMER_SIZES, points: int = 8, log=print) -> list[dict]:
    """Rows {"bundler", "edges", "seconds", "edges_per_s"}; ours at every size and hammer size."""
    rows = []
    for n in sorted(set(sizes) | set(hammer_sizes)):
        src_pos, dst_pos, src, dst, w = dense_pair(n)
        rows.append(_row("structural", n,
                         lambda: structural_bundle(src_pos, dst_pos, src, dst, points=points)))
        rows.append(_row("density", n,
                         lambda: density_bundle(src_pos, dst_pos, src, dst, w, points=points)))
    if hammer_sizes:
        hammer = _hammer_bundle()
        if hammer is None:
            log(MISSING)
        else:
            hammer(*dense_pair(50))                                  # numba JIT warm-up
            for n in hammer_sizes:
                pair = dense_pair(n)
                rows.append(_row("hammer_bundle", n, lambda: hammer(*pair)))
    return rows


def table(rows: list[dict]) -> str:
    """Aligned text table; rows at a size hammer_bundle ran also show the speed-up over it."""
    hammer = {r["edges"]: r["edges_per_s"] for r in rows if r["bundler"] == "hammer_bundle"}
    head = ("bundler", "edges", "seconds", "edges/s", "× hammer_bundle")
    lines = ["{:<14} {:>10} {:>9} {:>12} {:>16}".format(*head)]
    for r in rows:
        ratio = hammer.get(r["edges"])
        ratio = f"{r['edges_per_s'] / ratio:,.0f}×" if ratio else ""
        lines.append(f"{r['bundler']:<14} {r['edges']:>10,} {r['seconds']:>9.3f} "
                     f"{r['edges_per_s']:>12,.0f} {ratio:>16}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nnvis bench bundling",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    parser.add_argument("--sizes", type=_sizes, default=SIZES,
                        help="edge counts for our bundlers, comma separated (default 5000,100000,"
                             "1000000)")
    parser.add_argument("--hammer-sizes", type=_sizes, default=HAMMER_SIZES,
                        help="edge counts for hammer_bundle (and ours beside it), comma separated; "
                             "'' to skip it (default 5000,50000)")
    parser.add_argument("--points", type=int, default=8, help="points per curve (default 8)")
    args = parser.parse_args(argv)
    log = (lambda line: print(line, file=sys.stderr)) if args.json else print
    rows = run(args.sizes, args.hammer_sizes, args.points, log)
    print(json.dumps(rows, indent=1) if args.json else table(rows))
    return 0


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of edge counts: {text!r}")
    if any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError(f"edge counts must be ≥ 1: {text!r}")
    return sizes


def _line(cells: int, x: float) -> np.ndarray:
    pos = np.zeros((cells, 3))
    pos[:, 0] = x
    pos[:, 1] = np.linspace(-1.0, 1.0, cells)
    return pos


def _row(bundler: str, edges: int, fn, repeat: int = 3, long: float = 2.0) -> dict:
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
        if best > long:
            break
    return {"bundler": bundler, "edges": edges, "seconds": best, "edges_per_s": edges / best}


def _hammer_bundle():
    """A callable bundling our edges with datashader's hammer_bundle, or None without datashader."""
    try:
        import pandas as pd
        from datashader.bundling import hammer_bundle
    except ImportError:
        return None

    def bundle(src_pos, dst_pos, src, dst, weights):
        nodes = pd.DataFrame({"x": np.concatenate([src_pos[:, 0], dst_pos[:, 0]]),
                              "y": np.concatenate([src_pos[:, 1], dst_pos[:, 1]])})
        edges = pd.DataFrame({"source": src.astype(np.int64),
                              "target": dst.astype(np.int64) + src_pos.shape[0],
                              "weight": np.abs(weights)})
        return hammer_bundle(nodes, edges)

    return bundle
