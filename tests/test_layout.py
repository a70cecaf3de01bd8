"""Where layers stand (layout.py): the gap behind a layer depends on what its edges do — a fan of
edges (Conv2D, Dense) needs the full gap to spread out, map-to-map links (BatchNorm, activations,
pooling, Add) and folded blocks' sheaves stand closer."""
import pytest

from nnvis_addon import layout
from nnvis_addon.model.network import Layer, Network

TIER = "fast"


def layer(name, kind, shape, *inbound):
    return Layer(name, kind, {}, list(inbound), tuple(shape))


def test_map_to_map_layers_stand_closer_than_convolutions():
    net = Network("net", [
        layer("in", "InputLayer", (8, 8, 4)),
        layer("conv", "Conv2D", (8, 8, 4), "in"),
        layer("bn", "BatchNormalization", (8, 8, 4), "conv"),
        layer("relu", "ReLU", (8, 8, 4), "bn"),
        layer("conv2", "Conv2D", (8, 8, 4), "relu"),
        layer("add", "Add", (8, 8, 4), "relu", "conv2"),
        layer("gap", "GlobalAveragePooling2D", (4,), "add"),
        layer("out", "Dense", (2,), "gap"),
    ])
    x = {p.name: p.x for p in layout.layout_network(net, gap=0.6)}
    extent = {p.name: max(p.extent) for p in layout.layout_network(net)}["conv"]
    full = 0.6 * extent                       # every spatial layer here has the same extent
    assert x["conv"] - x["in"] == pytest.approx(full)
    assert x["bn"] - x["conv"] == pytest.approx(layout.MAPWISE_GAP * full)
    assert x["relu"] - x["bn"] == pytest.approx(layout.MAPWISE_GAP * full)
    assert x["conv2"] - x["relu"] == pytest.approx(full)
    assert x["add"] - x["conv2"] == pytest.approx(layout.MAPWISE_GAP * full)
    assert x["gap"] - x["add"] == pytest.approx(full)           # maps to units: a full gap
    assert layout.MAPWISE_GAP < 1


def test_a_rank_keeps_the_full_gap_if_any_of_its_layers_fans_out():
    net = Network("net", [
        layer("in", "InputLayer", (8, 8, 4)),
        layer("a", "ReLU", (8, 8, 4), "in"),
        layer("b", "Conv2D", (8, 8, 4), "in"),          # beside `a`, at the same rank
        layer("add", "Add", (8, 8, 4), "a", "b"),
    ])
    placed = {p.name: p for p in layout.layout_network(net, gap=0.6)}
    assert placed["a"].rank == placed["b"].rank == 1
    assert placed["a"].x == placed["b"].x == pytest.approx(0.6 * max(placed["in"].extent))
