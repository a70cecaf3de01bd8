"""The picture explains itself: scenes made by `nnvis render` with default options (and each camera
move), checked from the saved .blend through its own camera at the first, middle and last frame —
the network fills the frame and stays in it, every layer (or stage) is labelled legibly, no overlay
covers a layer, text faces the camera, the default video is long enough, and the network itself
covers a good share of the pixels.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TIER = "render"

ROOT = Path(__file__).resolve().parent.parent
RESOLUTION = "320x180"
# the issue asks 15 % network pixels in the default view (measured: the digits CNN 15.6 %, was 5.5 %;
# the small functional CNN 15.8 %; ResNet50 folded into blocks on two rows 15.3 %, was 1.6 %;
# DenseNet121, one row of 16 blocks standing closer, 15.7 %)
MIN_FILL, MIN_LABEL, MIN_COVERAGE = 0.60, 0.015, 0.15
# the network alone: 12 px labels (at 640×360) over a wrapped network's first row, or framed in the
# fly-through's first view from behind the input, take the rest of the network and labels' 60 %
# (ResNet50 at 32×32: 57.5 %; the digits' fly-through: 57 %)
MIN_FILL_NETWORK = 0.55
MIN_COVERAGE_DEEP = 0.15
MIN_TEXT_PX = 12        # every label and overlay text at least this tall in a 640×360 video
# ... and a label not much taller in any frame of a move (one placement for the whole move: the
# digits' labels near a fly-through's first view stood 22 px tall, on an orbit's far side 16 px)
MAX_LABEL_PX = 1.25 * MIN_TEXT_PX


def nnvis_render(path, tmp, *options) -> Path:
    """`nnvis render` in its own process (the extension installed from a fresh zip); returns the
    saved .blend."""
    blend = tmp / "scene.blend"
    out = subprocess.run(
        [sys.executable, "-m", "nnvis_addon.tools.cli", "render", str(path), "--out", str(tmp / "frames"),
         "--sequence", "--frames", "1-1", "--resolution", RESOLUTION, "--samples", "1",
         "--blend", str(blend), "--dist", str(tmp / "dist"), "--user-folder", str(tmp / "user"),
         *options], cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=900)
    assert out.returncode == 0, out.stdout[-3000:]
    return blend


@pytest.fixture(scope="module")
def functional_run(tmp_path_factory):
    """A functional CNN with BatchNorm, a residual Add and global average pooling, recorded for
    3 epochs on the digits."""
    keras = pytest.importorskip("keras")
    from keras import layers as L
    from nnvis_addon.tools.demo import digits
    from nnvis_addon.record import Recorder
    x, y = digits(16)
    keras.utils.set_random_seed(3)
    inp = keras.Input((16, 16, 1), name="image")
    a = L.ReLU(name="relu1")(L.BatchNormalization(name="bn1")(L.Conv2D(8, 3, padding="same",
                                                                      name="conv1")(inp)))
    b = L.BatchNormalization(name="bn2")(L.Conv2D(8, 3, padding="same", name="conv2")(a))
    c = L.MaxPooling2D(name="pool")(L.Add(name="residual")([a, b]))
    out = L.Dense(10, activation="softmax", name="classes")(L.GlobalAveragePooling2D(name="gap")(c))
    model = keras.Model(inp, out, name="residual_cnn")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    folder = tmp_path_factory.mktemp("functional") / "recording"
    model.fit(x[8:600], y[8:600], epochs=3, batch_size=64, verbose=0,
              callbacks=[Recorder(folder, probes=x[:4], labels=y[:4])])
    return folder


CASES = {
    "digits-static": ("digits", ()),
    "digits-orbit": ("digits", ("--camera", "orbit")),
    "digits-fly-through": ("digits", ("--camera", "fly-through")),
    "functional-static": ("functional", ()),
}


@pytest.fixture(scope="module", params=list(CASES))
def scene_blend(request, digits_run, functional_run, tmp_path_factory):
    model, options = CASES[request.param]
    path = digits_run[0] / "recording" if model == "digits" else functional_run
    return nnvis_render(path, tmp_path_factory.mktemp(request.param), *options), not options


def _project(scene, cam, points) -> np.ndarray:
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector
    return np.array([tuple(world_to_camera_view(scene, cam, Vector(p))) for p in points])


def _box(uvz) -> tuple[float, float, float, float]:
    return uvz[:, 0].min(), uvz[:, 1].min(), uvz[:, 0].max(), uvz[:, 1].max()


def layer_boxes(scene, cam) -> dict:
    """Screen box (u0, v0, u1, v1) of every layer object as evaluated now (cells included)."""
    from nnvis_addon.framing import box_corners
    from nnvis_addon.scene.camera_moves import evaluated_boxes
    boxes = {}
    layers = [o for o in scene.objects if "nnvis_layer" in o and not o.hide_render]
    for name, (lo, hi) in evaluated_boxes(layers).items():
        boxes[name] = _box(_project(scene, cam, box_corners(lo, hi)))
    return boxes


def object_box(scene, cam, obj):
    """Screen box of an object's evaluated geometry (text, overlay meshes); None if empty."""
    import bpy
    ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    corners = np.array([tuple(ev.matrix_world @ __import__("mathutils").Vector(c))
                        for c in ev.bound_box])
    if np.ptp(corners, axis=0).max() == 0:
        return None
    return _box(_project(scene, cam, corners))


def overlap(a, b, eps=1e-3) -> bool:
    return a[0] < b[2] - eps and b[0] < a[2] - eps and a[1] < b[3] - eps and b[1] < a[3] - eps


def inside(box, eps=0.005) -> bool:
    return box[0] >= -eps and box[1] >= -eps and box[2] <= 1 + eps and box[3] <= 1 + eps


def shown_labels(scene) -> list:
    """The labels the frame shows: not hidden, nor shrunk away (`labels.HIDDEN`: a tour's
    close-up does not show the labels of the stages beside it)."""
    return [o for o in scene.objects if "nnvis_label" in o and not o.hide_render
            and o.data.size > 1e-3]


def check_frame(scene, cam, deep: bool) -> None:
    boxes = layer_boxes(scene, cam)
    assert boxes
    net = np.array(list(boxes.values()))
    whole = (net[:, 0].min(), net[:, 1].min(), net[:, 2].max(), net[:, 3].max())
    assert inside(whole), f"frame {scene.frame_current}: network box {whole} leaves the frame"
    fill = max(whole[2] - whole[0], whole[3] - whole[1])
    assert fill >= MIN_FILL_NETWORK, f"frame {scene.frame_current}: network fills {fill:.0%}"
    labels = shown_labels(scene)
    shown = np.array([whole] + [object_box(scene, cam, o) for o in labels])
    fill = max(shown[:, 2].max() - shown[:, 0].min(), shown[:, 3].max() - shown[:, 1].min())
    assert fill >= MIN_FILL, f"frame {scene.frame_current}: network and labels fill {fill:.0%}"
    if deep:
        assert len(labels) >= 5
    else:
        assert {o["nnvis_label"] for o in labels} == {o["nnvis_layer"] for o in scene.objects
                                                    if "nnvis_layer" in o}
    cam_axes = np.array(cam.matrix_world.to_3x3())
    for label in labels:
        box = object_box(scene, cam, label)
        assert box is not None and inside(box), f"{label.name} at {box} leaves the frame"
        assert box[3] - box[1] >= MIN_LABEL, f"{label.name}: {box[3] - box[1]:.3f} of the height"
    check_text_size(scene, cam)
    texts = labels + [o for o in scene.objects if o.type == "FONT" and "nnvis_overlay" in o]
    for text in texts:                       # faces the camera, upright, not mirrored
        axes = np.array(text.matrix_world.to_3x3().normalized())
        assert (axes * cam_axes).sum(axis=0).min() > 0.99, text.name
    for obj in scene.objects:
        if "nnvis_overlay" not in obj or obj.hide_render:
            continue
        box = object_box(scene, cam, obj)
        if box is None:
            continue
        assert inside(box, 0.01), f"overlay {obj.name} at {box} leaves the frame"
        hit = [name for name, b in boxes.items() if overlap(box, b)]
        assert not hit, f"frame {scene.frame_current}: overlay {obj.name} covers {hit}"


def check_labels_apart(scene, cam) -> None:
    """No two labels overlap on screen (the digits' orbit and fly-through labels did, kept apart
    at SIZE while they grew to stay 12 px in a move's farthest view; placed for the move's first
    view only, on the orbit's far side conv1's label stood over pool1's)."""
    placed = {}
    for label in shown_labels(scene):
        box = object_box(scene, cam, label)
        hit = [name for name, b in placed.items() if overlap(box, b, 0.002)]
        assert not hit, f"frame {scene.frame_current}: {label.name} overlaps {hit}"
        placed[label.name] = box


def check_labels_clear(scene, cam) -> None:
    """No label covers an overlay (counter, legends, curves, prediction bars, input image): an
    expanded block's labels had spread over both legends and the epoch counter."""
    overlays = {o.name: object_box(scene, cam, o) for o in scene.objects
                if "nnvis_overlay" in o and not o.hide_render}
    for label in shown_labels(scene):
        box = object_box(scene, cam, label)
        hit = [name for name, b in overlays.items() if b is not None and overlap(box, b)]
        assert not hit, f"frame {scene.frame_current}: {label.name} at {box} covers {hit}"


def check_labels_by_their_rows(scene, cam) -> None:
    """A label hanging under its own layers over other layers (a wrapped network's, between two
    rows) stands clearly nearer its own: the gap under it at least half its height wider than
    the one over it (MobileNetV2's stem label and EfficientNetB0's stage 1 label, hung at the
    same small gap under their row as over the next, read as the next row's)."""
    layers = {o.name: o["nnvis_layer"] for o in scene.objects if "nnvis_layer" in o}
    boxes = {layers[n]: b for n, b in layer_boxes(scene, cam).items()}
    for label in shown_labels(scene):
        box = object_box(scene, cam, label)
        across = [(n, b) for n, b in boxes.items() if b[0] < box[2] and box[0] < b[2]]
        own = set(label["nnvis_label_layers"])
        over = [b[1] for n, b in across if n in own and b[1] + b[3] > 2 * box[3]]
        under = [b[3] for n, b in across if n not in own and b[1] < box[1] and b[3] < box[3]]
        if over and under:
            gaps = min(over) - box[3], box[1] - max(under)
            assert gaps[1] - gaps[0] >= (box[3] - box[1]) / 2, \
                f"{label.name}: {gaps[0]:.3f} under its row, {gaps[1]:.3f} over the next"


def check_labels_through_the_move(scene, cam, step: int = 3, clear: bool = True) -> None:
    """At every `step`-th frame of the scene, between the move's keys too: labels apart, off
    the overlays (`clear`: not while a tour flies from one stop to the next, its labels keyed
    at both), and each between MIN_TEXT_PX and MAX_LABEL_PX tall at 640×360."""
    for frame in range(scene.frame_start, scene.frame_end + 1, step):
        scene.frame_set(frame)
        check_labels_apart(scene, cam)
        if clear:
            check_labels_clear(scene, cam)
        sizes = text_sizes(scene, cam)
        px = {o.name: round(sizes[o.name] * 360, 2) for o in shown_labels(scene)}
        wrong = {n: v for n, v in px.items()
                 if not MIN_TEXT_PX - 0.01 <= v <= MAX_LABEL_PX}
        assert not wrong, f"frame {frame}: labels out of {MIN_TEXT_PX}–{MAX_LABEL_PX} px: {wrong}"


def text_sizes(scene, cam) -> dict:
    """{object name: its text size on screen, in frame heights} of every shown text: FONT
    objects (labels, overlay captions) and the texts geometry nodes draw (the epoch counter's
    Size, the colour legend's 0.7 × Height)."""
    from bpy_extras.object_utils import world_to_camera_view
    from nnvis_addon.scene.nodes import input_ids
    up = cam.matrix_world.to_3x3().col[1].normalized()
    sizes = {}
    for obj in scene.objects:
        if obj.hide_render or not ("nnvis_label" in obj or "nnvis_overlay" in obj):
            continue
        mod = obj.modifiers.get("NNVis")
        ids = input_ids(mod.node_group) if mod is not None and mod.node_group else {}
        if obj.type == "FONT":
            size = obj.data.size
        elif ids.get("Size") and mod.node_group.name.startswith("NNVis Epoch Counter"):
            size = mod[ids["Size"]]
        elif "nnvis_legend_layer" in obj:
            size = 0.7 * mod[ids["Height"]]
        else:
            continue
        size *= obj.matrix_world.to_scale()[1]
        at = obj.matrix_world.translation
        ends = [world_to_camera_view(scene, cam, at + up * size * k) for k in (0, 1)]
        sizes[obj.name] = ends[1].y - ends[0].y
    return sizes


def check_text_size(scene, cam) -> None:
    small = {n: round(s * 360, 2) for n, s in text_sizes(scene, cam).items()
             if s * 360 < MIN_TEXT_PX - 0.01}     # texts are sized at exactly 12 px
    assert not small, f"frame {scene.frame_current}: text under {MIN_TEXT_PX} px at 640×360: {small}"


def check_labels_readable(scene, cam) -> None:
    """Each label stands on its background-coloured card, in front of every layer it crosses on
    screen (a label wider than the gap between layers would sink into the next maps)."""
    import bpy
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector
    from nnvis_addon.framing import box_corners
    from nnvis_addon.scene.camera_moves import evaluated_boxes
    depsgraph = bpy.context.evaluated_depsgraph_get()
    layers = {}
    for name, (lo, hi) in evaluated_boxes([o for o in scene.objects if "nnvis_layer" in o]).items():
        uvz = _project(scene, cam, box_corners(lo, hi))
        layers[name] = (_box(uvz), uvz[:, 2].min())
    for label in (o for o in scene.objects if "nnvis_label" in o):
        ev = label.evaluated_get(depsgraph)
        assert any(m.type == "NODES" and m.node_group.name.startswith("NNVis Label Plate")
                   for m in label.modifiers), f"{label.name} has no card"
        uvz = np.array([tuple(world_to_camera_view(scene, cam, ev.matrix_world @ Vector(c)))
                        for c in ev.bound_box])
        box, depth = _box(uvz), uvz[:, 2].max()
        behind = [n for n, (b, near) in layers.items() if overlap(box, b) and near < depth]
        assert not behind, f"{label.name} sinks behind {behind}"


def network_coverage(scene, tmp) -> float:
    """Share of the middle frame's pixels showing the network, rendered with overlays and labels
    hidden: pixels that differ from the background."""
    import bpy
    from nnvis_addon.scene import compat
    for obj in scene.objects:
        if "nnvis_overlay" in obj or "nnvis_label" in obj:
            obj.hide_render = True
    scene.frame_set((scene.frame_start + scene.frame_end) // 2)
    scene.cycles.samples = 1
    scene.cycles.use_denoising = False
    compat.set_image_output(scene)
    scene.render.filepath = str(tmp / "network.png")
    bpy.ops.render.render(write_still=True)
    from nnvis_addon.tools.bench.maps import coverage
    image = bpy.data.images.load(str(tmp / "network.png"))
    return coverage(np.array(image.pixels[:], np.float32).reshape(-1, 4)[:, :3])


def open_blend(path):
    import bpy
    bpy.ops.wm.open_mainfile(filepath=str(path))
    return bpy.context.scene


def check_scene(blend, tmp, deep=False, static=True) -> None:
    scene = open_blend(blend)
    cam = scene.camera
    assert (scene.frame_end - scene.frame_start + 1) / scene.render.fps >= 8.0
    scene.frame_set(scene.frame_start)
    check_labels_readable(scene, cam)
    for frame in (scene.frame_start, (scene.frame_start + scene.frame_end) // 2, scene.frame_end):
        scene.frame_set(frame)
        check_frame(scene, cam, deep)
        check_labels_apart(scene, cam)
    if not static:
        check_labels_through_the_move(scene, cam)
    if static:          # the default view; a move's middle frame may look from farther away
        coverage = network_coverage(scene, tmp)
        least = MIN_COVERAGE_DEEP if deep else MIN_COVERAGE
        assert coverage >= least, f"the network covers {coverage:.1%} of the pixels"


def test_scene_explains_itself(scene_blend, tmp_path):
    blend, static = scene_blend
    check_scene(blend, tmp_path, static=static)


def test_default_timing_whatever_the_epoch_count():
    from nnvis_addon.scene.animation import timeline
    for epochs in ([0, 1, 2], list(range(1, 201)), [5]):
        frames, end = timeline(epochs, 24)
        assert frames[0] == 1 + 24 and 8 * 24 <= end <= 20 * 24 + 48, epochs
        if len(epochs) > 1:
            assert frames[-1] - frames[0] == pytest.approx(12 * 24)
    frames, end = timeline([1, 2, 3], 24, frames_per_epoch=5)     # explicit spacing wins
    assert list(frames) == [1, 6, 11] and end == 23


@pytest.mark.parametrize("name, parts", [
    ("resnet50", ("input", "stem", "stage 1", "stage 4", "head")),   # 2 rows: stage labels
    # one row of 16 blocks whose labels at 12 px would not fit side by side: stage labels too
    ("densenet121", ("input", "stem", "stage 1", "stage 4", "head"))])
def test_deep_networks_read_at_a_glance(name, parts, tmp_path):
    """keras.applications networks (random weights) at nnvis' defaults: blocks folded, wrapped
    rows where they fill the frame better, labels naming the parts, the same framing and overlay
    checks."""
    pytest.importorskip("keras")
    from nnvis_addon.tools.bench.forward import build_application
    model = build_application(name, 32, classes=10)      # the smallest input: same layers
    model.save(tmp_path / f"{name}.keras")
    blend = nnvis_render(tmp_path / f"{name}.keras", tmp_path)
    check_scene(blend, tmp_path, deep=True)
    import bpy
    named = {o.data.body.split("\n")[0].split(" · ")[0] for o in bpy.context.scene.objects
             if "nnvis_label" in o}
    assert set(parts) <= named, named
