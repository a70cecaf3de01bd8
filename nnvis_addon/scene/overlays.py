"""Training overlays beside the network, animated by the same per-epoch `Epoch` keyframes:

- an epoch counter (with the epoch's loss/accuracy) — geometry nodes pick the line for the shown epoch;
- the training curves (loss, accuracy, val_*), growing epoch by epoch;
- the probe image the activations belong to;
- the predicted class scores as one bar per class, the true label's bar marked.

Every overlay is one object with an `NNVis` modifier, like layers, so a .blend plays without the
add-on. They are flat, laid out in their local X-Y plane; hud.py hangs them from the camera's screen.
"""
from __future__ import annotations

import math

import bpy
import numpy as np
from mathutils import Matrix

from . import nodes
from .layers import MODIFIER, mesh_of_points, set_inputs
from .animation import linear_keys
from .font import text_width
from .nodes import add, arrange, epoch_pair, math_node, named, sample, section, socket
from .. import names
from ..options import OVERLAYS

KINDS = OVERLAYS     # title, counter, curves, probe, predictions, legend: hud.py places them
METRIC_COLOURS = {  # linear RGB; validation curves in a hue of their own (dark twins read as one)
    "loss": (1.0, 0.35, 0.08), "val_loss": (0.75, 0.2, 1.0),
    "accuracy": (0.1, 0.75, 0.3), "val_accuracy": (0.1, 0.55, 1.0),
}
TRUE_COLOUR, OTHER_COLOUR = (0.1, 0.8, 0.25), (0.25, 0.45, 1.0)
TOP = "Top class"          # the line under the score bars naming the shown epoch's top class
MAX_BARS, TOP_K = 20, 10   # a bar per class up to MAX_BARS classes; beyond, the TOP_K highest
# The smallest text anywhere in the frame, in frame heights: 12 pixels in a 640×360 video (the
# demo's), so every label and overlay reads at any resolution from there up.
MIN_TEXT = 12 / 360


def _overlay_object(name: str, mesh, kind: str, group, inputs: dict, collection):
    obj = bpy.data.objects.new(name, mesh)
    obj[names.OVERLAY] = kind
    mod = obj.modifiers.new(MODIFIER, "NODES")
    mod.node_group = group
    set_inputs(mod, inputs)
    collection.objects.link(obj)
    return obj


def colour_material(name: str = "NNVis Overlay") -> bpy.types.Material:
    """Emissive material coloured by the `nnvis_point_colour` attribute (point/face/instance)."""
    mat = bpy.data.materials.get(name)
    if mat is not None:
        return mat
    mat = nodes.empty_material(name)
    tree = mat.node_tree
    colour = add(tree, "ShaderNodeAttribute", attribute_type="GEOMETRY",
                 attribute_name=names.POINT_COLOUR)
    emit = add(tree, "ShaderNodeEmission", {"Color": colour.outputs["Color"], "Strength": 1.0})
    out = add(tree, "ShaderNodeOutputMaterial")
    tree.links.new(emit.outputs[0], out.inputs["Surface"])
    arrange(tree)
    return mat


def _epoch_io(group, extra=()):
    """The group's Geometry and Epoch (`nodes.geometry_io`) and its `extra` (name, type, default,
    description) inputs; returns the group input's outputs and the group output node."""
    gin, gout = nodes.geometry_io(group)
    for name, kind, default, description in extra:
        socket(group, name, "INPUT", kind, default, description=description)
    return gin.outputs, gout


def _finish(group, geometry, out, material_socket):
    geometry = add(group, "GeometryNodeSetMaterial", {"Geometry": geometry,
                                                      "Material": material_socket}).outputs[0]
    group.links.new(geometry, out.inputs["Geometry"])
    arrange(group)


def counter_group(name: str, lines: list[str]):
    """Text of line round(Epoch): an Index Switch over one string per recorded epoch."""
    group = bpy.data.node_groups.new(name, "GeometryNodeTree")
    i, out = _epoch_io(group, [("Size", "NodeSocketFloat", 1.0, "Text height"),
                               ("Material", "NodeSocketMaterial", None, "")])
    with section(group, "Line of the shown epoch"):
        switch = add(group, "GeometryNodeIndexSwitch", data_type="STRING")
        set_counter_lines(group, lines)
        group.links.new(math_node(group, "ROUND", i["Epoch"]), switch.inputs["Index"])
    with section(group, "Text to mesh"):
        text = add(group, "GeometryNodeStringToCurves", {"String": switch.outputs[0],
                                                         "Size": i["Size"]})
        real = add(group, "GeometryNodeRealizeInstances",
                   {"Geometry": text.outputs["Curve Instances"]})
        fill = add(group, "GeometryNodeFillCurve", {"Curve": real.outputs[0]})
    _finish(group, fill.outputs["Mesh"], out, i["Material"])
    return group


def set_counter_lines(group, lines: list[str]) -> None:
    """The counter's line per epoch (a refresh adds the epochs that arrived)."""
    switch = next(n for n in group.nodes if n.bl_idname == "GeometryNodeIndexSwitch")
    while len(switch.index_switch_items) < len(lines):
        switch.index_switch_items.new()
    for k, line in enumerate(lines):
        switch.inputs[k + 1].default_value = line


def growing_lines_group():
    """Polylines revealed up to the shown epoch: a point whose `nnvis_point_epoch` (epoch index)
    lies ahead of Epoch moves onto the line's point at Epoch — interpolated between the last
    point reached and the next by their epoch indices, so the tip stands on the epoch marker
    (a line's first point may be a later epoch than the run's first: metrics start at epoch 1)
    and the line grows smoothly."""
    name = names.GROUP_GROWING_LINES
    group = nodes.current(name)
    if group is not None:
        return group
    group = nodes.new_group(name)
    i, out = _epoch_io(group, [("Radius", "NodeSocketFloat", 0.03, "Line radius"),
                               ("Material", "NodeSocketMaterial", None, "")])
    geometry, epoch = i["Geometry"], i["Epoch"]
    with section(group, "Tip at the shown epoch"):
        t, start, last = named(group, names.POINT_EPOCH), named(group, names.START), \
            named(group, names.LAST)
        reached = add(group, "GeometryNodeAccumulateField", {
            "Value": math_node(group, "LESS_THAN", t, math_node(group, "ADD", epoch, 1e-4)),
            "Group ID": start}).outputs["Total"]                  # points of its line reached
        e0 = math_node(group, "MAXIMUM", math_node(group, "SUBTRACT", reached, 1.0), 0.0)
        e1 = math_node(group, "MINIMUM", reached, last)
        j0, j1 = (math_node(group, "ADD", start, e) for e in (e0, e1))
        t0, t1 = (sample(group, geometry, t, "FLOAT", j) for j in (j0, j1))
        factor = math_node(group, "DIVIDE", math_node(group, "SUBTRACT", epoch, t0),
                           math_node(group, "MAXIMUM", math_node(group, "SUBTRACT", t1, t0), 1e-6),
                           clamp=True)
        a, b = (sample(group, geometry, nodes.position(group), "FLOAT_VECTOR", j)
                for j in (j0, j1))
        tip = nodes.mix(group, factor, a, b, "VECTOR")
    with section(group, "Points ahead move onto the tip"):
        ahead = math_node(group, "GREATER_THAN", t, epoch)
        moved = add(group, "GeometryNodeSetPosition", {"Geometry": i["Geometry"],
                                                       "Selection": ahead, "Position": tip})
    with section(group, "Tubes"):
        curve = add(group, "GeometryNodeMeshToCurve", {"Mesh": moved.outputs[0]})
        profile = add(group, "GeometryNodeCurvePrimitiveCircle", {"Resolution": 6,
                                                                   "Radius": i["Radius"]})
        tube = add(group, "GeometryNodeCurveToMesh", {"Curve": curve.outputs[0],
                                                      "Profile Curve": profile.outputs["Curve"]})
    _finish(group, tube.outputs["Mesh"], out, i["Material"])
    return group


def bars_group():
    """One bar per class: points 0..C-1 are the bars, the scores of epoch e sit on points e·C + c
    (`nnvis_score`); each bar's height blends the scores of the two nearest epochs."""
    name = names.GROUP_SCORE_BARS
    group = nodes.current(name)
    if group is not None:
        return group
    group = nodes.new_group(name)
    i, out = _epoch_io(group, [("Classes", "NodeSocketFloat", 10.0, "Number of classes"),
                               ("Height", "NodeSocketFloat", 2.0, "Length of a score of 1"),
                               ("Width", "NodeSocketFloat", 0.2, "Bar thickness"),
                               ("Material", "NodeSocketMaterial", None, "")])
    with section(group, "Score of each class at the shown epoch"):
        score, last = named(group, names.SCORE), named(group, names.LAST)
        index = add(group, "GeometryNodeInputIndex").outputs[0]
        cls = math_node(group, "FLOORED_MODULO", index, i["Classes"])
        _, e0, e1, factor = epoch_pair(group, i["Epoch"], last)
        a, b = (sample(group, i["Geometry"], score, "FLOAT",
                       math_node(group, "MULTIPLY_ADD", e, i["Classes"], cls)) for e in (e0, e1))
        height = nodes.mix(group, factor, a, b)
        height = math_node(group, "MAXIMUM", math_node(group, "MULTIPLY", height, i["Height"]),
                           1e-3)
    with section(group, "Bars"):
        bars = add(group, "GeometryNodeDeleteGeometry",
                   {"Geometry": i["Geometry"],
                    "Selection": math_node(group, "GREATER_THAN", index,
                                           math_node(group, "SUBTRACT", i["Classes"], 0.5))},
                   domain="POINT")
        cube = add(group, "GeometryNodeMeshCube", {"Size": (1.0, 1.0, 1.0)})
        base = add(group, "GeometryNodeTransform", {"Geometry": cube.outputs["Mesh"],
                                                    "Translation": (0.0, 0.5, 0.0)})
        scale = nodes.xyz(group, i["Width"], height, i["Width"])
        inst = add(group, "GeometryNodeInstanceOnPoints", {"Points": bars.outputs[0],
                                                           "Instance": base.outputs[0],
                                                           "Scale": scale})
        real = add(group, "GeometryNodeRealizeInstances", {"Geometry": inst.outputs[0]})
    _finish(group, real.outputs[0], out, i["Material"])
    return group


def _text(name: str, body: str, size: float, collection, place: Matrix, align="LEFT",
          kind: str = "label"):
    """A static text (FONT object) in the overlay plane, its baseline at `place`."""
    curve = bpy.data.curves.new(name, "FONT")
    curve.body = body
    curve.size = size
    curve.align_x = align
    curve.materials.append(label_material())
    obj = bpy.data.objects.new(name, curve)
    obj.matrix_world = place
    obj[names.OVERLAY] = kind
    collection.objects.link(obj)
    return obj


def _rect(name: str, x0: float, y0: float, x1: float, y1: float, material, collection,
          kind: str = "label"):
    """A flat rectangle (axis lines, ticks, swatches) in the overlay plane."""
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(x0, y0, 0), (x1, y0, 0), (x1, y1, 0), (x0, y1, 0)], [], [(0, 1, 2, 3)])
    mesh.materials.append(material)
    obj = bpy.data.objects.new(name, mesh)
    obj[names.OVERLAY] = kind
    collection.objects.link(obj)
    return obj


def label_material(name: str = names.MATERIAL_TEXT) -> bpy.types.Material:
    """The text of every overlay and label (looks.py recolours its emission)."""
    return nodes.emission_material(name, (0.85, 0.85, 0.85))


def card_material(name: str = names.MATERIAL_CARD) -> bpy.types.Material:
    """The card behind each layer label: the background's colour (looks.py sets it with the
    world's), so the text stands out of whatever maps lie behind it."""
    return nodes.emission_material(name, (0.035, 0.037, 0.045))


def counter_lines(run) -> list[str]:
    """One line per recorded epoch: "Epoch 7 / 10   loss 0.079   accuracy 97.2%"."""
    lines = []
    for epoch in run.epochs:
        parts = [f"Epoch {epoch} / {run.epochs[-1]}" if len(run.epochs) > 1 else f"Epoch {epoch}"]
        for key, label in (("loss", "loss {:.3f}"), ("accuracy", "accuracy {:.1%}")):
            if key in run.metrics.get(epoch, {}):
                parts.append(label.format(run.metrics[epoch][key]))
        lines.append("   ".join(parts))
    return lines


def build_counter(run, collection, place: Matrix, size: float):
    group = counter_group(f"{names.GROUP_COUNTER} {run.name}", counter_lines(run))
    obj = _overlay_object("Epoch counter", bpy.data.meshes.new("Epoch counter"), "counter", group,
                          {"Size": size, "Material": label_material()}, collection)
    obj.matrix_world = place
    return [obj]


def curve_points(run, width: float, height: float):
    """(points, attributes, metric keys, loss scale) of the training-curve polylines in a
    width × height box: accuracies as they are (0–1), losses divided by their largest value."""
    keys = [k for k in METRIC_COLOURS if any(k in m for m in run.metrics.values())]
    numbers = sorted(e for e in run.metrics if all(k in run.metrics[e] for k in keys))
    if not keys or len(numbers) < 2:
        return None
    index_of = np.interp(numbers, run.epochs, np.arange(len(run.epochs)))
    x = (np.asarray(numbers) - numbers[0]) / (numbers[-1] - numbers[0]) * width
    losses = [run.metrics[e][k] for e in numbers for k in keys if "loss" in k]
    loss_scale = max(max(losses), 1e-12) if losses else 1.0
    pts, attrs = [], {names.POINT_EPOCH: [], names.START: [], names.LAST: [],
                      names.POINT_COLOUR: []}
    for key in keys:
        values = np.array([run.metrics[e][key] for e in numbers], float)
        if "loss" in key:
            values = values / loss_scale
        start = len(pts)
        for xi, yi, ti in zip(x, np.clip(values, 0, 1) * height, index_of):
            pts.append((xi, yi, 0.0))
            attrs[names.POINT_EPOCH].append(ti)
            attrs[names.START].append(start)
            attrs[names.LAST].append(len(numbers) - 1)
            attrs[names.POINT_COLOUR].append(METRIC_COLOURS[key])
    return np.array(pts, np.float32), attrs, keys, loss_scale, numbers


def build_curves(run, collection, place: Matrix, width: float, height: float, frames,
                 text: float = MIN_TEXT):
    """The training curves with axes, ticks, a legend and a marker on the shown epoch (keyed at
    the epochs' `frames`), `text` high. `place` (a translation) puts the axes' corner."""
    made = curve_points(run, width, height)
    if made is None:
        return []
    pts, attrs, keys, loss_scale, numbers = made
    colours = np.array(attrs.pop(names.POINT_COLOUR), np.float32)
    mesh = mesh_of_points("Training curves", pts, {k: np.array(v, np.float32)
                                                   for k, v in attrs.items()})
    starts = sorted(set(attrs[names.START]))
    n = len(pts) // len(starts)
    mesh.edges.add(len(starts) * (n - 1))
    edges = np.array([(s + k, s + k + 1) for s in starts for k in range(n - 1)], np.int32)
    mesh.edges.foreach_set("vertices", edges.ravel())
    colour = mesh.attributes.new(names.POINT_COLOUR, "FLOAT_COLOR", "POINT")
    colour.data.foreach_set("color", np.c_[colours, np.ones(len(colours))].astype(np.float32).ravel())
    mesh.update()
    obj = _overlay_object("Training curves", mesh, "curves", growing_lines_group(),
                          {"Radius": height * 0.018, "Material": colour_material()}, collection)
    obj.matrix_world = place
    obj[names.METRICS] = keys
    line = text * 0.12
    parts = [obj,
             _rect("Curves x axis", 0.0, -line, width, 0.0, label_material(), collection),
             _rect("Curves y axis", -line, 0.0, 0.0, height, label_material(), collection)]
    for value in (0.0, 0.5, 1.0):
        y = value * height
        parts.append(_rect(f"Curves tick {value}", -3 * line, y - line / 2, 0.0, y + line / 2,
                           label_material(), collection))
        parts.append(_text(f"Curves tick label {value}", f"{value:g}", text, collection,
                           Matrix.Translation((-4 * line, y - text * 0.35, 0.0)), "RIGHT"))
    ticks = sorted({numbers[0], numbers[len(numbers) // 2], numbers[-1]})
    for number in ticks:
        x = (number - numbers[0]) / (numbers[-1] - numbers[0]) * width
        parts.append(_rect(f"Curves epoch tick {number}", x - line / 2, -3 * line, x + line / 2,
                           0.0, label_material(), collection))
        parts.append(_text(f"Curves epoch label {number}", str(number), text, collection,
                           Matrix.Translation((x, -3 * line - text, 0.0)), "CENTER"))
    parts.append(_text("Curves x title", "epoch", text, collection,   # clear of the marker
                       Matrix.Translation((width + 0.6 * text, -text * 0.35, 0.0))))
    # the legend right of the "epoch" axis title: training metrics in a column, validation in the
    # next, a row per metric (loss, accuracy)
    entries = {key: f"{key} (÷ {loss_scale:.3g})" if key == "loss" and loss_scale != 1 else key
               for key in keys}
    column = max(text_width(n) for n in entries.values() if not n.startswith("val_")) \
        if any(not k.startswith("val_") for k in keys) else 0.0
    for key, name in entries.items():
        x = width + 5 * text + ((column + 2.4) * text if key.startswith("val_") else 0.0)
        y = height - (0 if "loss" in key else 1) * text * 1.3 - text
        swatch = nodes.emission_material(f"NNVis Metric {key}", METRIC_COLOURS[key])
        parts.append(_rect(f"Curves legend {key}", x, y + text * 0.2, x + text, y + text * 0.5,
                           swatch, collection))
        parts.append(_text(f"Curves legend text {key}", name, text, collection,
                           Matrix.Translation((x + text * 1.4, y, 0.0))))
    marker = _rect("Curves epoch marker", -line / 2, 0.0, line / 2, height,
                   nodes.emission_material("NNVis Marker", (1.0, 1.0, 1.0)), collection, "marker")
    xs = np.interp(np.asarray(run.epochs, float), numbers,
                   (np.asarray(numbers, float) - numbers[0]) / (numbers[-1] - numbers[0]) * width)
    parts.append(marker)
    for part in parts[1:]:
        part.matrix_world = place @ part.matrix_world
    linear_keys(marker, "location", np.asarray(frames, np.float32),
                (xs + place.translation.x).astype(np.float32), 0)
    return parts


def prediction_scores(run) -> np.ndarray | None:
    """(epochs, classes) scores of the shown probe, None without predictions."""
    if run.predictions(run.epochs[0]) is None:
        return None
    return np.stack([np.asarray(run.predictions(e))[run.probe_index] for e in run.epochs])


def bar_scores(scores: np.ndarray, softmax: bool | None = None) -> tuple[np.ndarray, bool]:
    """(what the bars show, whether that is a softmax): scores in [0, 1] (a softmax or sigmoid
    output) as they are; logits (any score outside [0, 1]: every PyTorch/ONNX classifier here)
    through a softmax per epoch, so the bars compare — clipped, logits 1.0, 1.8 and 4.5 all
    showed full bars. `softmax` decides instead (a refresh keeps the import's choice)."""
    scores = np.asarray(scores, np.float64)
    if softmax is None:
        softmax = not (scores.min() >= 0.0 and scores.max() <= 1.0)
    if not softmax:
        return scores.astype(np.float32), False
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32), True


def true_class(run) -> int | None:
    """The shown probe's label as a class index, None without labels."""
    return None if run.label is None else int(np.asarray(run.label).ravel()[0])


def shown_classes(scores: np.ndarray, label: int | None) -> list[int]:
    """The classes that get a bar, top to bottom: every class up to `MAX_BARS`; beyond (an
    ImageNet classifier's 1000), the `TOP_K` that reach the highest score in any epoch, highest
    first, and the true class after them — a readable ranking whose bars keep their class
    through the animation."""
    classes = scores.shape[1]
    if classes <= MAX_BARS:
        return list(range(classes))
    chosen = [int(c) for c in np.argsort(-scores.max(axis=0), kind="stable")[:TOP_K]]
    if label is not None and 0 <= label < classes and label not in chosen:
        chosen.append(label)
    return chosen


def class_names_of(run, classes: int) -> list[str]:
    """The run's class names, else the class indices."""
    return run.class_names or [str(c) for c in range(classes)]


def _short(name: str, room: float) -> str:
    """`name` cut to `room` text sizes wide (`text_width`), an ellipsis telling it was cut."""
    cut = name
    while text_width(cut) > room and len(cut) > 1:
        cut = cut[:-2] + "…" if cut.endswith("…") else cut[:-1] + "…"
    return cut


def percent(score: float) -> str:
    """A score as a percentage: "87%", and "0.1%" under 1 % (1000 classes start near 0.1 % each)."""
    return f"{score:.0%}" if score >= 0.01 else f"{score:.1%}"


def top_lines(scores: np.ndarray, class_names: list[str], room: float | None = None) -> list[str]:
    """Per epoch: "top 6 · 87%", the class ranked first of all classes and its share; where a
    line is wider than `room` (text sizes) the share goes on a second line and the name is cut
    to the room."""
    best = [(class_names[int(np.argmax(row))], percent(float(np.max(row)))) for row in scores]
    lines = [f"top {name} · {share}" for name, share in best]
    if room is None or max(text_width(line) for line in lines) <= room:
        return lines
    return [f"top {_short(name, room - text_width('top '))}\n{share}" for name, share in best]


def counter_lines_in(group) -> list[str]:
    """The lines a counter group (`counter_group`) holds, one per epoch."""
    switch = next(n for n in group.nodes if n.bl_idname == "GeometryNodeIndexSwitch")
    return [s.default_value for s in switch.inputs[1:] if s.bl_idname != "NodeSocketVirtual"]


def score_mesh(run, scores: np.ndarray, row: float, classes: list[int]):
    """The bars' points: bar i (class `classes[i]`, its scores column i of `scores`) at
    ((i + ½)·row, 0, 0), epoch e's scores on points e·len(classes) + i."""
    epochs, bars = scores.shape
    base = np.zeros((epochs * bars, 3), np.float32)
    base[:, 0] = np.tile((np.arange(bars) + 0.5) * row, epochs)
    label = true_class(run)
    colour = np.array([TRUE_COLOUR if c == label else OTHER_COLOUR for c in classes], np.float32)
    mesh = mesh_of_points("Predictions", base, {
        names.SCORE: np.clip(scores, 0, 1).ravel(),     # bar_scores' values: clipping is a guard
        names.LAST: np.full(len(base), epochs - 1)})
    attr = mesh.attributes.new(names.POINT_COLOUR, "FLOAT_COLOR", "POINT")
    attr.data.foreach_set("color", np.c_[np.tile(colour, (epochs, 1)),
                                         np.ones(len(base))].astype(np.float32).ravel())
    return mesh


def build_predictions(run, collection, place: Matrix, width: float, height: float):
    """Horizontal score bars for the shown probe in a width × height box hanging down from
    `place` (its top-left): one row per class (`shown_classes`: beyond 20 classes the 10 that
    score highest, titled "top 10 of 1000" or, where that is too wide, "10 of 1000"), class names
    at the left (cut to 60 % of the width), the true class's bar green; a score of 1 fills the
    width (logits: their softmax, `bar_scores`, titled so). Under the box, the top class of all
    classes at the shown epoch and its share, and the true label. A line may run ¾ of a text
    height past the box's right side, into the frame's margin (0.9 of one at the smallest text)."""
    scores = prediction_scores(run)
    if scores is None or scores.ndim != 2 or scores.shape[1] < 2:
        return []
    scores, softmax = bar_scores(scores)
    label = true_class(run)
    classes = shown_classes(scores, label)
    all_names = class_names_of(run, scores.shape[1])
    text = max(min(height / len(classes) * 0.75, height * 0.06), MIN_TEXT)
    room = width / text + 0.75                                   # a line's width, in text sizes
    tops = top_lines(scores, all_names, room)
    subset = None
    if len(classes) < scores.shape[1]:
        subset = next((t for t in (f"top {TOP_K} of {scores.shape[1]}",
                                   f"{TOP_K} of {scores.shape[1]}") if text_width(t) <= room),
                      f"top {TOP_K}")
    top = 0.0 if subset is None else text * 1.4                  # the bars start under it
    second = text * 1.4 if "\n" in tops[0] else 0.0               # the top class's 2nd line
    height -= top + second
    row = height / len(classes)
    class_names = [_short(all_names[c], (width * 0.6 - text * 0.4) / text) for c in classes]
    name_width = max(len(n) for n in class_names) * text * 0.6 + text * 0.4
    obj = _overlay_object("Predictions", score_mesh(run, scores[:, classes], row, classes),
                          "predictions", bars_group(),
                          {"Classes": float(len(classes)), "Height": max(width - name_width, row),
                           "Width": row * 0.7, "Material": colour_material()}, collection)
    obj[names.ROW] = row
    obj[names.SOFTMAX] = softmax
    obj[names.CLASSES] = classes
    # the bars group stands bars along local +Y, classes along +X: turn it so classes run down
    # and bars grow to the right
    place = place @ Matrix.Translation((0.0, -top, 0.0))
    obj.matrix_world = place @ Matrix.Translation((name_width, 0.0, 0.0)) @ \
        Matrix.Rotation(-math.pi / 2, 4, "Z")
    parts = [obj]
    for i, name in enumerate(class_names):
        y = -(i + 0.5) * row - text * 0.35
        parts.append(_text(f"Class {name}", name, text, collection,
                           place @ Matrix.Translation((name_width - text * 0.4, y, 0.0)), "RIGHT"))
    parts.append(_text("Predictions title", "softmax" if softmax else "prediction",
                       text, collection, place @ Matrix.Translation((0.0, top + text * 0.6, 0.0))))
    if subset is not None:
        parts.append(_text("Predictions subset", subset, text, collection,
                           place @ Matrix.Translation((0.0, text * 0.4, 0.0))))
    line = _overlay_object(TOP, bpy.data.meshes.new(TOP), "label",
                           counter_group(f"{names.GROUP_COUNTER} {run.name} top", tops),
                           {"Size": text, "Material": label_material()}, collection)
    line[names.ROOM] = room
    line.matrix_world = place @ Matrix.Translation((0.0, -height - text * 1.2, 0.0))
    parts.append(line)
    if label is not None and 0 <= label < len(all_names):
        name = _short(all_names[label], room - text_width("true: "))
        parts.append(_text("True label", f"true: {name}", text, collection,
                           place @ Matrix.Translation((0.0, -height - second - text * 2.6, 0.0))))
    return parts


def build_probe(run, collection, place: Matrix, size: float):
    """The probe image on a plane (static: the same input every epoch), captioned "input"."""
    probe = np.asarray(run.probe, np.float32)
    if probe.ndim != 3:
        return []
    h, w, c = probe.shape
    rgb = probe[..., :3] if c >= 3 else np.repeat(probe[..., :1], 3, axis=2)
    lo, hi = float(rgb.min()), float(rgb.max())
    rgb = (rgb - lo) / (hi - lo) if hi > lo else np.full_like(rgb, 0.5)
    image = bpy.data.images.new(f"{run.name}:probe", w, h, alpha=False, float_buffer=True)
    rgba = np.ones((h, w, 4), np.float32)
    rgba[..., :3] = rgb[::-1]
    image.pixels.foreach_set(rgba.ravel())
    image.pack()
    sx, sy = size * w / max(h, w), size * h / max(h, w)
    mesh = bpy.data.meshes.new("Probe")
    mesh.from_pydata([(0, 0, 0), (sx, 0, 0), (sx, sy, 0), (0, sy, 0)], [], [(0, 1, 2, 3)])
    uv = mesh.uv_layers.new(name="UVMap")
    uv.data.foreach_set("uv", [0, 0, 1, 0, 1, 1, 0, 1])
    mat = nodes.empty_material(f"{run.name}:probe")
    tree = mat.node_tree
    tex = add(tree, "ShaderNodeTexImage", image=image, interpolation="Closest")
    emit = add(tree, "ShaderNodeEmission", {"Color": tex.outputs["Color"]})
    out = add(tree, "ShaderNodeOutputMaterial")
    tree.links.new(emit.outputs[0], out.inputs["Surface"])
    arrange(tree)
    mesh.materials.append(mat)
    obj = bpy.data.objects.new("Probe", mesh)
    obj[names.OVERLAY] = "probe"
    obj.matrix_world = place
    collection.objects.link(obj)
    caption = _text("Probe title", "input", max(size * 0.16, MIN_TEXT), collection,
                    place @ Matrix.Translation((0.0, sy + size * 0.06, 0.0)))
    return [obj, caption]
