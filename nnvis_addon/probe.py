"""The probe: the one input image whose activations the scene shows.

Accepted: a numpy array, a `.npy` file (loaded without pickle) or an image file (PNG/JPEG; read by
Blender's own image loader inside Blender, Pillow outside). One rule for all three: the probe is
resized (bilinear) to the model's input height/width and converted to its channel count, and its
values are never guessed at — an array or `.npy` is fed as it is (a 0–255 array stays 0–255), an
image file is read as [0, 1] pixel values, or as 0–255 when the model rescales its input itself
(`pixels=255`: a Rescaling layer first, as in Keras' image tutorials; see `pixel_scale`).
Nor is an array's layout guessed: it is read as the model takes it — H×W×C for a Keras model,
C×H×W for a PyTorch recording or an ONNX file — and one that only fits the other is refused.
A model with a variable input size (None) takes the probe's own height/width. Defaults: a
`probe.npy`/`probe.png` next to the checkpoints, else a mid-grey image (0.5, or 128 with
`pixels=255`) of the model's size, or DEFAULT_SIZE² when the model fixes none.

A multi-input model takes one probe per input (`load_probes`): a list/tuple in the model's input
order, a dict by input name, or — where only a string fits (the importer's file field, the CLI) —
paths joined by ";". Each is read by the rule above for its own input; defaults are
`probe_<input name>.npy/png` next to the checkpoints, else mid-grey. A single probe for such a
model is an error naming the inputs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import NNVisError
from .model.kernels import resize_bilinear
from .model.kinds import is_

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".exr")


DEFAULT_SIZE = 224          # height and width of the default probe for a variable-size model


def find_default(folder: Path) -> Path | None:
    for name in ("probe.npy", "probe.png", "probe.jpg"):
        if (folder / name).is_file():
            return folder / name
    return None


def load_probe(probe, input_shape: tuple, folder: Path | None = None,
               pixels: float = 1.0, order: str = "hwc") -> np.ndarray:
    """A float32 array fitting `input_shape` (None sizes take the probe's own) from a path, an
    array, or the defaults; image files and the grey default are scaled to [0, `pixels`].

    `order` "chw" (a PyTorch/ONNX model, see Network.input_order): an array is read in the
    model's own (C, H, W) layout and transposed to the (H, W, C) `input_shape` (`in_layout`).
    """
    if probe is None and folder is not None:
        probe = find_default(folder)
    if probe is None:
        shape = [DEFAULT_SIZE if d is None else d for d in input_shape]
        return np.full(shape, 0.5 * pixels, np.float32)
    if isinstance(probe, (str, Path)):
        path = Path(probe)
        if not path.is_file():
            raise NNVisError(f"{path}: probe image not found")
        if path.suffix.lower() == ".npy":
            try:
                array = np.load(path, allow_pickle=False)
            except (ValueError, OSError) as exc:
                raise NNVisError(f"{path}: not a readable .npy array ({exc})") from None
            if array.dtype.kind not in "fiub":
                raise NNVisError(f"{path}: a .npy of {array.dtype}, not numbers")
            array = in_layout(array, input_shape, order, str(path))
            if _fits(array.shape, input_shape):
                return array.astype(np.float32)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            array = read_image(path) * np.float32(pixels)
        else:
            raise NNVisError(f"{path}: probe must be an image ({', '.join(IMAGE_SUFFIXES)}) or .npy")
        return fit(array, input_shape, str(path))
    array = in_layout(np.asarray(probe, np.float32), input_shape, order, "probe array")
    if _fits(array.shape, input_shape):
        return np.ascontiguousarray(array)
    return fit(array, input_shape, "probe array")


def load_probes(probe, network, folder: Path | None = None):
    """The run's probes with a batch dimension: (1, *input_shape) for a one-input model, else
    {input name: (1, *shape)} in ``network.inputs`` order (see the module docstring)."""
    names = network.inputs
    if len(names) == 1:
        return load_probe(probe, network.input_shape, folder, pixel_scale(network),
                          network.input_order)[None]
    listing = ", ".join(map(repr, names))
    if isinstance(probe, str) and ";" in probe:
        probe = [p.strip() for p in probe.split(";")]
    if probe is None:
        probe = {n: _default_for(n, folder) for n in names}
    elif isinstance(probe, (list, tuple)):
        if len(probe) != len(names):
            raise NNVisError(f"{len(probe)} probes given; the model {network.name!r} has "
                             f"{len(names)} inputs ({listing}): one probe per input, in that order")
        probe = dict(zip(names, probe))
    elif isinstance(probe, dict):
        if set(probe) != set(names):
            raise NNVisError(f"probes given for {sorted(map(str, probe))}; the model "
                             f"{network.name!r} takes inputs {listing}")
    else:
        raise NNVisError(f"one probe given; the model {network.name!r} has {len(names)} inputs "
                         f"({listing}): give one probe per input, a list in that order, a dict by "
                         "input name, or paths joined by ';'")
    return {n: load_probe(probe[n], network.layer(n).output_shape, None, pixel_scale(network, n),
                          network.input_order)[None] for n in names}


def _default_for(input_name: str, folder: Path | None):
    for suffix in (".npy", ".png", ".jpg"):
        path = folder / f"probe_{input_name}{suffix}" if folder is not None else None
        if path is not None and path.is_file():
            return path
    return None


def pixel_scale(network, input_name: str | None = None) -> float:
    """255 when the model rescales raw pixels itself (the first computing layer after the input
    — the first one's by default — is a Rescaling by 1/255 or 1/127.5, as in Keras' image
    tutorials, possibly after augmentation layers, which are the identity at inference, or crops
    and resizes), else 1."""
    feeding = {input_name or network.inputs[0]}
    for layer in network.layers:
        if not feeding & set(layer.inbound):
            continue
        if is_(layer.kind, "identity") or is_(layer.kind, "geometric"):
            feeding.add(layer.name)
            continue
        scale = layer.config.get("scale") if layer.kind == "Rescaling" else None
        return 255.0 if isinstance(scale, (int, float)) and 0 < scale <= 1 / 127 else 1.0
    return 1.0


def _fits(shape: tuple, input_shape: tuple) -> bool:
    return len(shape) == len(input_shape) and all(d is None or s == d
                                                  for s, d in zip(shape, input_shape))


LAYOUTS = {"hwc": "H×W×C (Keras)", "chw": "C×H×W (PyTorch, ONNX)"}
IMAGE_CHANNELS = (1, 3, 4)      # channel counts `fit` converts between (grey, RGB, RGBA)


def in_layout(array: np.ndarray, input_shape: tuple, order: str, what: str) -> np.ndarray:
    """A probe array (optionally with a batch of 1) as (H, W, C), read in the model's own layout
    `order` ("hwc", or "chw" for a PyTorch/ONNX model: Network.input_order). Never guessed: an
    array that fits only the other layout — exactly, or by its channel count — is refused with
    a message naming both, as is one whose channels are no image's and not the model's."""
    if array.ndim == len(input_shape) + 1 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or len(input_shape) != 3:
        return array
    own = array if order == "hwc" else array.transpose(1, 2, 0)
    other = array.transpose(1, 2, 0) if order == "hwc" else array
    c = input_shape[2]
    if _fits(own.shape, input_shape):
        return own
    if not _fits(other.shape, input_shape) and (c is None or own.shape[2] == c or (
            own.shape[2] in IMAGE_CHANNELS and other.shape[2] != c)):
        return own
    h, w = ("H" if d is None else d for d in input_shape[:2])
    want = (h, w, c or "C") if order == "hwc" else (c or "C", h, w)
    swap = "transpose(1, 2, 0)" if order == "hwc" else "transpose(2, 0, 1)"
    theirs = "chw" if order == "hwc" else "hwc"
    raise NNVisError(f"{what}: shape {tuple(array.shape)} is not in this model's input layout, "
                     f"{LAYOUTS[order]} {want}; nnvis does not guess the layout — an array in "
                     f"{LAYOUTS[theirs]} order needs array.{swap} first")


def read_image(path: Path) -> np.ndarray:
    """(H, W, C) float32 in [0, 1], top row first."""
    try:
        import bpy
    except ImportError:
        bpy = None
    if bpy is not None and hasattr(bpy, "data"):
        try:
            image = bpy.data.images.load(str(path), check_existing=False)
        except RuntimeError as exc:
            raise NNVisError(f"{path}: not a readable image ({exc})") from None
        try:
            w, h = image.size
            channels = 3 if image.channels >= 3 else 1
            if w == 0 or h == 0:
                raise NNVisError(f"{path}: Blender could not read this image")
            pixels = np.empty(w * h * 4, np.float32)
            image.pixels.foreach_get(pixels)
        finally:
            bpy.data.images.remove(image)
        return pixels.reshape(h, w, 4)[::-1, :, :channels]
    try:
        from PIL import Image
    except ImportError:
        raise NNVisError(f"{path}: reading images outside Blender needs Pillow; "
                         "or pass a .npy array") from None
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), np.float32) / 255.0
    except OSError as exc:
        raise NNVisError(f"{path}: not a readable image ({exc})") from None


def fit(array: np.ndarray, input_shape: tuple, what: str) -> np.ndarray:
    """Resize/convert an (H, W[, C]) image to the model's (H, W, C) input, or resize an (L, C)
    signal along its length to a Conv1D model's (L', C) (linear, half-pixel centres, as images);
    values unchanged."""
    if len(input_shape) == 2 and array.ndim == 2 and input_shape[1] in (None, array.shape[1]):
        length = input_shape[0] or array.shape[0]
        return resize_bilinear(array.astype(np.float32)[:, None], length, 1)[:, 0]
    shown = array.shape
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or len(input_shape) != 3:
        raise NNVisError(f"{what}: shape {shown} can't be fitted to the model's input "
                         f"{tuple(input_shape)}")
    h, w, c = input_shape
    array = resize_bilinear(array.astype(np.float32), h or array.shape[0], w or array.shape[1])
    if c is not None and array.shape[2] != c:
        grey = array[..., :3].mean(axis=2, keepdims=True)
        array = grey if c == 1 else np.repeat(grey, c, axis=2)
    return np.ascontiguousarray(array, np.float32)
