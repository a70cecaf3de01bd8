"""The probe: the one input image whose activations the scene shows.

Accepted: a numpy `.npy` array (loaded without pickle) or an image file (PNG/JPEG; read by Blender's
own image loader inside Blender, Pillow outside). It is resized (bilinear) to the model's input
height/width, converted to its channel count and scaled to [0, 1] — the range the demo trains on;
a `.npy` is taken as it is when its shape already fits. Defaults: a `probe.npy`/`probe.png` next to
the checkpoints, else a mid-grey image.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import NNVisError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".exr")


def find_default(folder: Path) -> Path | None:
    for name in ("probe.npy", "probe.png", "probe.jpg"):
        if (folder / name).is_file():
            return folder / name
    return None


def load_probe(probe, input_shape: tuple, folder: Path | None = None,
               order: str = "hwc") -> np.ndarray:
    """An array of exactly `input_shape` (float32) from a path, an array, or the defaults.

    `order` "chw" (a PyTorch/ONNX model, see Network.input_order): an array in the model's own
    (C, H, W) layout is transposed to the (H, W, C) `input_shape`.
    """
    if probe is None and folder is not None:
        probe = find_default(folder)
    if probe is None:
        return np.full(input_shape, 0.5, np.float32)
    if isinstance(probe, (str, Path)):
        path = Path(probe)
        if not path.is_file():
            raise NNVisError(f"{path}: probe image not found")
        if path.suffix.lower() == ".npy":
            try:
                array = np.load(path, allow_pickle=False)
            except (ValueError, OSError) as exc:
                raise NNVisError(f"{path}: not a readable .npy array ({exc})") from None
            array = _from_chw(array, input_shape) if order == "chw" else array
            if array.shape == tuple(input_shape):
                return array.astype(np.float32)
            if array.shape[:1] == (1,) and array.shape[1:] == tuple(input_shape):
                return array[0].astype(np.float32)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            array = read_image(path)
        else:
            raise NNVisError(f"{path}: probe must be an image ({', '.join(IMAGE_SUFFIXES)}) or .npy")
        return fit(array, input_shape, str(path))
    array = np.asarray(probe, np.float32)
    array = _from_chw(array, input_shape) if order == "chw" else array
    if array.shape == tuple(input_shape):
        return np.ascontiguousarray(array)
    return fit(array, input_shape, "probe array")


def _from_chw(array: np.ndarray, input_shape: tuple) -> np.ndarray:
    """(C, H, W) or (1, C, H, W) → (H, W, C) when that is the model's input; else as it is."""
    h, w, c = input_shape
    if array.shape in ((c, h, w), (1, c, h, w)) and array.shape[-3:] != tuple(input_shape):
        return array.reshape(c, h, w).transpose(1, 2, 0)
    return array


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
    """Resize/convert an (H, W[, C]) image to the model's (H, W, C) input."""
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or len(input_shape) != 3:
        raise NNVisError(f"{what}: shape {array.shape} can't be fitted to the model's input "
                         f"{tuple(input_shape)}")
    h, w, c = input_shape
    array = resize_bilinear(array.astype(np.float32), h, w)
    if array.shape[2] != c:
        grey = array[..., :3].mean(axis=2, keepdims=True)
        array = grey if c == 1 else np.repeat(grey, c, axis=2)
    if array.max() > 1.0:
        array = array / 255.0
    return np.ascontiguousarray(array, np.float32)


def resize_bilinear(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize with half-pixel centres (as TF's resize with antialias off)."""
    H, W = image.shape[:2]
    if (H, W) == (h, w):
        return image
    ys = np.clip((np.arange(h) + 0.5) * H / h - 0.5, 0, H - 1)
    xs = np.clip((np.arange(w) + 0.5) * W / w - 0.5, 0, W - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, H - 1), np.minimum(x0 + 1, W - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = image[y0][:, x0] * (1 - fx) + image[y0][:, x1] * fx
    bottom = image[y1][:, x0] * (1 - fx) + image[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy
