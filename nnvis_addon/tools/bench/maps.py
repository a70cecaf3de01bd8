"""`nnvis bench maps`: how much of each layer's feature maps a viewer sees past the edges.

Measured on a built scene through its own camera at the middle frame, labels and overlays hidden,
with cheap Cycles renders at 320×180, no denoising:
- an ID render (1 sample), edges hidden, every object's material overridden by an emission of its
  pass index: a layer's pixels are the ones it shows where no other layer stands in front of it;
- the scene's own colours, shaded flat (at few samples light sampling is noise, and a transparent
  edge in front shifts it), 8 samples a pixel (anti-aliased: a haze of edges thinner than a pixel
  counts as it looks), with the edges hidden, and with them shown; 640×360 gives the same
  shares within 2 points;
- the scene as it renders at 1 sample: the network's share of the frame (test_picture's rule);
- the ID render again with the labels drawn (index 0): each row's share of its maps' pixels that
  still show past the labels (`Measure.rows`; a row is the layers hung on one height).
A layer's pixel is *buried* when showing the edges changes its colour by more than `BURIED` of
full scale (any channel, display values). `--networks` picks what to build (keras.applications
networks with weights=None at 96×96, torchvision's resnet18, mobilenet_v3_small,
efficientnet_b0 and squeezenet1_0 through ONNX, the digits CNN, a Keras Conv1D classifier); the
table lists per network the median drawn layer's share of visible map pixels, the worst layer,
the network's share of the frame and each row's pixels past the labels.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BURIED = 0.12                       # of full scale: the edges changed the pixel's colour
RESOLUTION = (320, 180)
SAMPLES = 8                         # anti-aliased: a haze of thin edges counts as it looks
NETWORKS = ("resnet50", "mobilenetv2", "densenet121", "efficientnetb0", "resnet18-onnx",
            "mobilenet_v3_small-onnx", "digits", "mobilenetv3small", "inceptionv3",
            "efficientnetv2s", "nasnetmobile", "efficientnet_b0-onnx", "conv1d",
            "squeezenet1_0-onnx")
SIZE = 96                           # input side of the applications (the 96×96)


@dataclass
class Measure:
    layers: list["LayerPixels"]     # every drawn layer's pixels
    coverage: float                 # share of the frame the network covers (edges included)

    def rows(self) -> list[float]:
        """Each row's share (top row first) of its maps' visible pixels that still show with
        the labels drawn: a row the labels cover reads as a thin strip."""
        heights = sorted({f.row for f in self.layers}, reverse=True)
        return [sum(f.labelled for f in self.layers if f.row == z) /
                max(sum(f.visible for f in self.layers if f.row == z), 1) for z in heights]


@dataclass
class LayerPixels:
    name: str
    visible: int                    # pixels showing this layer's maps (no layer in front)
    clear: int                      # of them, not buried under edges
    labelled: int = 0               # of them, not covered by a label
    row: float = 0.0                # its row's height (the layer object's z): layers of a row
                                    # hang centred on one line

    @property
    def share(self) -> float:
        return self.clear / self.visible if self.visible else 1.0


def _render(scene, path: Path) -> np.ndarray:
    """The current frame rendered to `path` (format as set); (H·W, 4) floats as saved."""
    import bpy
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True, scene=scene.name)
    image = bpy.data.images.load(str(path), check_existing=False)
    pixels = np.empty(len(image.pixels), np.float32)
    image.pixels.foreach_get(pixels)
    bpy.data.images.remove(image)
    return pixels.reshape(-1, 4)


def _id_material():
    """Emission of (pass index, 0, 0): the object an ID render's pixel shows, read from an EXR."""
    from ...scene.nodes import add, empty_material
    tree = (mat := empty_material("nnvis measure ids")).node_tree
    info = add(tree, "ShaderNodeObjectInfo")
    colour = add(tree, "ShaderNodeCombineXYZ", {"X": info.outputs["Object Index"]})
    emit = add(tree, "ShaderNodeEmission", {"Color": colour.outputs[0], "Strength": 1.0})
    tree.links.new(emit.outputs[0], add(tree, "ShaderNodeOutputMaterial").inputs["Surface"])
    return mat


@contextlib.contextmanager
def _flat():
    """Every nnvis material shaded flat (pure emission, the Paper look's shading) for a while:
    at a few samples a pixel, light sampling is noise, and a transparent edge in front shifts
    it — it would count as burial where the edge is invisible."""
    import bpy
    from ... import names
    flats = [m.node_tree.nodes[names.FLAT].outputs[0] for m in bpy.data.materials
             if m.node_tree and names.FLAT in m.node_tree.nodes]
    kept = [socket.default_value for socket in flats]
    for socket in flats:
        socket.default_value = 1.0
    try:
        yield
    finally:
        for socket, value in zip(flats, kept):
            socket.default_value = value


def coverage(pixels: np.ndarray) -> float:
    """Share of the (n, 3) `pixels` that differ from the background (their median colour): what
    the network covers in a render with overlays and labels hidden."""
    background = np.median(pixels, axis=0)
    return float((np.abs(pixels - background).max(axis=1) > 0.03).mean())


def visible_maps(scene, tmp: Path, resolution=RESOLUTION, frame: int | None = None,
                 samples: int = SAMPLES) -> Measure:
    """Each drawn layer's visible and unburied map pixels in `scene` (changed: overlays and
    labels hidden, render settings) at `frame` (default: the middle one), and the network's
    coverage; renders go to `tmp`."""
    from ... import names
    from ...scene import compat
    scene.frame_set((scene.frame_start + scene.frame_end) // 2 if frame is None else frame)
    for obj in scene.objects:
        if names.OVERLAY in obj or names.LABEL in obj or names.BLOCK_LABEL in obj:
            obj.hide_render = True
    labels = [o for o in scene.objects if names.LABEL in o]
    layers = [o for o in scene.objects if names.LAYER in o and not o.hide_render]
    edges = [o for o in scene.objects if names.EDGES in o and not o.hide_render]
    render = scene.render
    render.resolution_x, render.resolution_y = resolution
    render.resolution_percentage = 100
    scene.cycles.use_denoising = False
    scene.cycles.use_adaptive_sampling = False
    view_layer = scene.view_layers[0]
    compat.set_image_output(scene, "PNG")
    scene.cycles.samples = 1                # test_picture's coverage: the scene as it renders
    covered = coverage(_render(scene, tmp / "coverage.png")[:, :3])
    scene.cycles.samples = samples
    with _flat():
        for obj in edges:
            obj.hide_render = True
        bare = _render(scene, tmp / "without-edges.png")[:, :3]
        for obj in edges:
            obj.hide_render = False
        full = _render(scene, tmp / "with-edges.png")[:, :3]
    buried = np.abs(full - bare).max(axis=1) > BURIED
    # the ID render: emission only, no world, exact float values
    for obj in edges:
        obj.hide_render = True
    kept = {o.name: o.pass_index for o in layers}
    for k, obj in enumerate(layers, start=1):
        obj.pass_index = k
    film, world = render.film_transparent, scene.world
    render.film_transparent, scene.world = True, None
    view_layer.material_override = _id_material()
    scene.cycles.samples = 1                # one object a pixel
    compat.set_image_output(scene, "OPEN_EXR")
    render.image_settings.color_depth = "32"
    try:
        ids = _render(scene, tmp / "ids.exr")
        for obj in labels:              # index 0: they hide what stands behind them
            obj.hide_render = False
        labelled = _render(scene, tmp / "ids-labelled.exr")
    finally:
        for obj in labels:
            obj.hide_render = True
        import bpy
        bpy.data.materials.remove(view_layer.material_override)
        view_layer.material_override = None
        render.film_transparent, scene.world = film, world
        compat.set_image_output(scene, "PNG")
        for obj in layers:
            obj.pass_index = kept[obj.name]
        for obj in edges:
            obj.hide_render = False
    index = np.where(ids[:, 3] > 0.5, np.rint(ids[:, 0]), 0).astype(int)
    visible = np.bincount(index, minlength=len(layers) + 1)
    clear = np.bincount(index[~buried], minlength=len(layers) + 1)
    past = np.where(labelled[:, 3] > 0.5, np.rint(labelled[:, 0]), 0).astype(int)
    shown = np.bincount(past[past == index], minlength=len(layers) + 1)
    return Measure([LayerPixels(obj[names.LAYER], int(visible[k]), int(clear[k]), int(shown[k]),
                                round(obj.location.z, 3))
                    for k, obj in enumerate(layers, start=1)], covered)


def summary(found: list[LayerPixels]) -> tuple[float, LayerPixels]:
    """(the median layer's share of visible map pixels, the worst layer), over layers seen."""
    seen = [f for f in found if f.visible]
    return statistics.median(f.share for f in seen), min(seen, key=lambda f: f.share)


def source(name: str, folder: Path) -> Path:
    """What to import for network `name` (NETWORKS), built into `folder/name` on first use (a
    folder of its own: several .keras files side by side would read as one run's epochs)."""
    folder = folder / name
    folder.mkdir(parents=True, exist_ok=True)
    if name == "digits":
        if not (folder / "recording").is_dir():
            from ..demo import train_digits
            train_digits(folder, epochs=2, samples=400, seed=1)
        return folder / "recording"
    if name == "conv1d":
        if not any(folder.glob("*.keras")):
            _train_conv1d(folder)
        return folder
    if name.endswith("-onnx"):
        path = folder / f"{name}.onnx"
        if not path.is_file():
            import torch
            import torchvision
            torch.manual_seed(0)
            model = getattr(torchvision.models, name.removesuffix("-onnx"))(weights=None).eval()
            torch.onnx.export(model, (torch.zeros(1, 3, SIZE, SIZE),), str(path), dynamo=False,
                              input_names=["input"], output_names=["output"])
        return path
    path = folder / f"{name}.keras"
    if not path.is_file():
        from .forward import build_application
        build_application(name, SIZE, classes=10).save(path)
    return path


def sources(names, folder: Path) -> dict[str, Path]:
    """`source` of each of `names`, the ONNX exports first: torch's exporter crashes a process
    in which TensorFlow has trained (the digits CNN, the Conv1D classifier)."""
    built = {name: source(name, folder) for name in sorted(
        names, key=lambda name: not name.endswith("-onnx"))}
    return {name: built[name] for name in names}


def _train_conv1d(folder: Path) -> None:
    """A Keras Conv1D classifier of 187-sample signals (an ECG beat's length), 3 epochs on random
    data, one `.keras` an epoch from ModelCheckpoint: a network of thin 1D strips."""
    import keras
    from keras import layers as L
    keras.utils.set_random_seed(0)
    inp = keras.Input((187, 1), name="signal")
    x = L.Conv1D(32, 5, activation="relu")(inp)
    x = L.MaxPooling1D()(x)
    x = L.Conv1D(64, 5, activation="relu")(x)
    x = L.MaxPooling1D()(x)
    x = L.Conv1D(128, 3, activation="relu")(x)
    x = L.GlobalAveragePooling1D()(x)
    x = L.Dense(64, activation="relu")(x)
    model = keras.Model(inp, L.Dense(5, activation="softmax")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(256, 187, 1)), rng.integers(0, 5, 256), epochs=3, verbose=0,
              callbacks=[keras.callbacks.ModelCheckpoint(str(folder / "epoch{epoch:02d}.keras"))])


def measure(path: Path, resolution=RESOLUTION, keep: Path | None = None,
            samples: int = SAMPLES, **options) -> Measure:
    """`path` imported at 1280×720's aspect with the dialog's `options` into an empty file of
    the running Blender (the extension installed), measured (the renders kept in `keep`)."""
    import bpy
    from ..headless import import_with_operator
    bpy.ops.wm.read_homefile(use_empty=True)
    render = bpy.context.scene.render
    render.resolution_x, render.resolution_y = 1280, 720
    import_with_operator(path, **options)
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        return visible_maps(bpy.context.scene, keep, resolution, samples=samples)
    with tempfile.TemporaryDirectory() as tmp:
        return visible_maps(bpy.context.scene, Path(tmp), resolution, samples=samples)


def table(rows: dict[str, Measure]) -> str:
    lines = ["| network | layers seen | median layer: share of its map pixels visible | "
             "worst layer | network's share of the frame | each row's map pixels past the "
             "labels |", "|---|---|---|---|---|---|"]
    for name, found in rows.items():
        median, worst = summary(found.layers)
        seen = sum(1 for f in found.layers if f.visible)
        past = " / ".join(f"{share:.0%}" for share in found.rows())
        lines.append(f"| {name} | {seen} | {median:.0%} | {worst.share:.0%} ({worst.name}) | "
                     f"{found.coverage:.1%} | {past} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="nnvis bench maps", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    p.add_argument("--resolution", default="320x180", help="WxH of the measuring renders")
    p.add_argument("--layers", action="store_true", help="also every layer's numbers")
    p.add_argument("--samples", type=int, default=SAMPLES, help="of the colour renders")
    p.add_argument("--keep", type=Path, help="keep the renders in this folder")
    args = p.parse_args(argv)
    from ..packaging import build_extension, cache_dir, install_extension, start_blender
    # built before Blender starts: torch's triton crashes a process that holds Blender
    paths = sources(args.networks, cache_dir() / "bench-maps")
    start_blender(None)
    import bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)
    install_extension(build_extension())
    resolution = tuple(int(v) for v in args.resolution.split("x"))
    rows = {}
    for name, path in paths.items():
        rows[name] = measure(path, resolution, args.keep and args.keep / name,
                             args.samples)
        if args.layers:
            for f in rows[name].layers:
                print(f"{name:14s} {f.name:28s} {f.visible:7d} px {f.share:6.1%}", file=sys.stderr)
    print(table(rows))
    return 0
