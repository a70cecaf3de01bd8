"""Memory budget: refuse an import that would not fit, before computing or allocating anything.

A run holds, per epoch and probe, every layer's activations (float32), the weights of every epoch
(of one epoch at a time when they stay in their file, `io.stored`), and the scene holds the activation atlases (float32 RGBA for three values: 16/3 bytes a value) and
the edge curves. `estimate` adds these up from the architecture alone; `check` compares that with
the memory the machine has free and, when it does not fit, says by how much and what to lower.
"""
from __future__ import annotations

import math
import os

from .errors import NNVisError
from .model.network import Network

ATLAS_BYTES_PER_VALUE = 16 / 3       # RGBA float32 texels holding three values
CURVE_BYTES_PER_EDGE = 8 * 12 + 16   # 8 float3 points + index/offset attributes
HEADROOM = 0.8                       # use at most this share of the free memory
MAX_EDGES = 250_000                  # default edge caps of the scene (SceneOptions): per connection
MAX_TOTAL_EDGES = 600_000            # and for all connections together


def _size(shape) -> int:
    return math.prod(int(d or 1) for d in shape)


def estimate(network: Network, epochs: int, probes: int, max_edges: int | None = MAX_EDGES,
             max_total_edges: int | None = MAX_TOTAL_EDGES, weight_epochs: int | None = None
             ) -> dict:
    """Bytes by kind for a run of `epochs` epochs and `probes` probes, and their total;
    `weight_epochs`: how many epochs of weights are in memory at once (default all)."""
    values = sum(_size(l.output_shape) for l in network.layers)
    weights = sum(_size(s) for l in network.layers for s in l.weight_shapes)
    edges = 0
    for layer in network.layers:
        for name in layer.inbound:
            n = network.layer(name).cell_count * layer.cell_count
            edges += min(n, max_edges) if max_edges else n
    edges = min(edges, max_total_edges) if max_total_edges else edges
    parts = {"activations": 4 * values * epochs * probes,
             "weights": 4 * weights * (epochs if weight_epochs is None else weight_epochs),
             "atlases": int(ATLAS_BYTES_PER_VALUE * values * epochs),
             "edges": edges * (CURVE_BYTES_PER_EDGE + int(ATLAS_BYTES_PER_VALUE * epochs))}
    parts["total"] = sum(parts.values())
    return parts


def available() -> int:
    """Bytes of memory free for new allocations (MemAvailable on Linux, else physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def check(network: Network, epochs: int, probes: int, source: str, limit: int | None = None,
          weight_epochs: int | None = None) -> dict:
    """Raise NNVisError if the run would need more than `limit` bytes (default: most of the free
    memory), naming the estimate and the level-of-detail options that would make it fit."""
    need = estimate(network, epochs, probes, weight_epochs=weight_epochs)
    limit = int(HEADROOM * available()) if limit is None else limit
    if need["total"] > limit:
        mb = {k: v / 2**20 for k, v in need.items()}
        raise NNVisError(
            f"{source}: importing needs about {mb['total']:,.0f} MB (activations "
            f"{mb['activations']:,.0f}, weights {mb['weights']:,.0f}, textures "
            f"{mb['atlases']:,.0f}, edges {mb['edges']:,.0f}) but only {limit / 2**20:,.0f} MB "
            "are free. Import fewer epochs (a folder with fewer checkpoints, or a recording made "
            "with every=k), fewer probes, or lower the edge cap (max_edges).")
    return need
