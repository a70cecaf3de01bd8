"""Edges do not bury the feature maps (issue 24): real networks at the import defaults, measured
from the built scene through its own camera (`nnvis_addon.tools.bench.maps`: a layer's pixels are
the ones its maps show in front of every other layer; a pixel is buried when showing the edges
changes its colour by more than 0.12 of full scale). The median drawn layer keeps ≥ 75 % of its map
pixels visible, the worst ≥ 50 %, and the network still covers ≥ 15 % of the frame.

`nnvis bench maps` on 2026-12-04, median / worst layer, network's share of the frame: before
(64b9f76) ResNet50 25 % / 5 %, 17.5 %; MobileNetV2 96 % / 57 %, 9.9 %; DenseNet121 91 % / 39 %,
17.1 %; resnet18 77 % / 33 %, 15.4 %. Edges that fade towards their targets and with their
strength, fainter the more a connection draws, a one-row network's cells drawing their 16
strongest inputs, wrapped rows seen less edge-on and hung closer: 85 % / 75 %, 100 % / 91 %,
100 % / 91 %, 90 % / 81 %. EfficientNetB0 and mobilenet_v3_small (ONNX) covered 13.8 % and 14.7 %
of the frame, their two rows wider than the network area, until wrapped rows were seen lower and
turned towards their maps' faces while too wide (`framing.wrapped_view`): 16.6 % and 16.1 %.

Every row of a wrapped network keeps ≥ 85 % of its map pixels past the stage labels (the same
renders with the labels drawn). Keras MobileNetV3Small, wrapped into the 3 rows that showed largest
from the front, kept 67 % of its top row (under the stage 2 and 3 labels: a thin strip) and
covered 9.8 % of the frame; in the 2 rows its own view shows larger (`framing.shown`) 97 % / 98 %
and 12.1 %: short of the 15 % goal, its two rows as wide as the network area and 71 % of its
height, its maps small and far apart. With the gap between ranks shortened while that shows the
network 5 % larger (`layout.choose_gap`: 0.6 → 0.4 of a rank's extent) it covers 19.4 %
(100 % / 82 %, rows 99 % / 98 %); EfficientNetB0 16.6 → 17.6 % and InceptionV3 19.5 → 20.0 %
(0.5) grew with it.

A Keras Conv1D classifier (187 samples, 3 epochs of ModelCheckpoint) covered 13.7 % of the frame,
its strips an eighth as high as long; a quarter as high (`layout.STRIP_ASPECT`), 16.4 %.
"""
from __future__ import annotations

import pytest

from nnvis_addon.tools.bench import maps

TIER = "render"
MEDIAN, WORST, COVERAGE = 0.75, 0.50, 0.15
ROW = 0.85
NETWORKS = ("resnet50", "mobilenetv2", "densenet121", "resnet18-onnx", "efficientnetb0",
            "mobilenet_v3_small-onnx", "mobilenetv3small", "conv1d")
WRAPPED = ("resnet50", "mobilenetv2", "efficientnetb0", "mobilenet_v3_small-onnx",
           "mobilenetv3small")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Every network's file, built before the measuring starts (Keras and torch, weights=None,
    96×96 inputs; the Conv1D classifier trained 3 epochs on random signals)."""
    pytest.importorskip("keras")
    pytest.importorskip("torchvision")
    folder = tmp_path_factory.mktemp("networks")
    return maps.sources(sorted({*NETWORKS, *WRAPPED}), folder)


@pytest.fixture(scope="module")
def measured(sources, addon, tmp_path_factory):
    """Each network measured once (`maps.measure`), on first use, for every test here."""
    found = {}

    def get(name):
        if name not in found:
            found[name] = maps.measure(sources[name], keep=tmp_path_factory.mktemp(name))
        return found[name]
    return get


@pytest.mark.parametrize("name", NETWORKS)
def test_edges_leave_the_maps_visible(name, measured):
    found = measured(name)
    median, worst = maps.summary(found.layers)
    seen = [f for f in found.layers if f.visible]
    assert len(seen) >= 0.8 * len(found.layers), "layers hidden behind others"
    assert median >= MEDIAN, f"{name}: the median layer shows {median:.0%} of its maps"
    assert worst.share >= WORST, f"{name}: {worst.name} shows {worst.share:.0%} of its maps"
    assert found.coverage >= COVERAGE, f"{name}: the network covers {found.coverage:.1%}"


@pytest.mark.parametrize("name", WRAPPED)
def test_every_row_shows_past_the_labels(name, measured):
    rows = measured(name).rows()
    assert len(rows) >= 2, f"{name}: not wrapped"
    assert min(rows) >= ROW, f"{name}: its rows keep {' / '.join(f'{r:.0%}' for r in rows)}"


def imported(path, resolution=(1280, 720)):
    """`path` imported with the dialog's defaults into an empty scene at `resolution`; returns
    (the run's collection, the scene)."""
    import bpy
    from nnvis_addon.tools.headless import import_with_operator
    bpy.ops.wm.read_homefile(use_empty=True)
    render = bpy.context.scene.render
    render.resolution_x, render.resolution_y = resolution
    collection = import_with_operator(path)
    return collection, bpy.context.scene


def middle(scene):
    scene.frame_set((scene.frame_start + scene.frame_end) // 2)
    return scene, scene.camera


def test_a_label_between_rows_reads_as_its_rows(sources, addon):
    """MobileNetV2's stage 2 label hung under the end of its row as near it as over the head
    below (0.019 and 0.022 of the frame height): now lifted onto its row's edge (`labels.HUG`)."""
    from test_picture import check_labels_by_their_rows
    _, scene = imported(sources["mobilenetv2"])
    check_labels_by_their_rows(*middle(scene))


def test_labels_stay_off_the_overlays(sources, addon):
    """ONNX resnet18's head label stood centred over its last layer at the right edge of the
    network's area and ran into the top-class line under its 10-of-1000 score bars: placed again
    in the view fitted around them, labels keep clear of the overlays (`labels.overlay_boxes`)."""
    from test_picture import check_labels_clear
    _, scene = imported(sources["resnet18-onnx"])
    check_labels_clear(*middle(scene))


def test_labels_keep_apart_after_morph_0_on_all_layers(sources, addon):
    """Morph 0 set on all of MobileNetV2's layers left its stage 2 label no free place (stage 1's
    label beside it, the score bars and legends round it): it fell onto stage 1's label. It now
    stands where the others cover it least (`labels._least_covered`)."""
    import bpy
    from nnvis_addon.scene.nodes import input_ids
    from test_picture import check_labels_apart, check_labels_clear
    from test_scene import modifier_input
    collection, scene = imported(sources["mobilenetv2"], (640, 360))
    layer = next(o for o in collection.objects if o.modifiers.get("NNVis")
                 and "Morph" in input_ids(o.modifiers["NNVis"].node_group))
    mod, ident = modifier_input(layer, "Morph")
    mod[ident] = 0.0
    bpy.context.view_layer.objects.active = layer
    assert bpy.ops.nnvis.input_to_run(input_name="Morph") == {"FINISHED"}
    check_labels_apart(*middle(scene))
    check_labels_clear(scene, scene.camera)
