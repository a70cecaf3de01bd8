"""`nnvis` command: build the extension, render a checkpoint headless, run the demo, benchmarks."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import NNVisError
from .packaging import ROOT


def _resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 640x360") from None
    return w, h


def _progress_bar(total: int, desc: str):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="frame", file=sys.stderr)


def cmd_build(args) -> int:
    from .packaging import build_extension
    out = build_extension(ROOT, Path(args.dist))
    print(f"built and validated {out}")
    return 0


def _render(path, out, args, probe=None) -> "RenderResult":  # noqa: F821
    from .headless import render_checkpoint
    from .packaging import build_extension
    zip_path = build_extension(ROOT, Path(args.dist))
    bar = None

    def on_frame(frame):
        nonlocal bar
        if bar is None:
            import bpy
            scene = bpy.context.scene
            bar = _progress_bar(scene.frame_end - scene.frame_start + 1, "render")
        bar.update(1)

    try:
        result = render_checkpoint(path, out, zip_path, Path(args.user_folder), probe=probe,
                                   blend=args.blend, resolution=args.resolution,
                                   frames_per_epoch=args.frames_per_epoch, samples=args.samples,
                                   on_frame=on_frame)
    finally:
        if bar is not None:
            bar.close()
    print(f"import {result.import_seconds:.1f} s, render {result.frames} frames "
          f"{result.render_seconds:.1f} s")
    return result


def cmd_render(args) -> int:
    result = _render(args.path, args.out, args, probe=args.probe)
    print(f"video: {result.video.resolve()}")
    if result.blend:
        print(f"blend: {result.blend.resolve()}")
    return 0


def cmd_demo(args) -> int:
    from .demo import train_digits
    out = Path(args.out)
    checkpoints = out / "checkpoints"
    start = time.perf_counter()
    print(f"training the digits CNN for {args.epochs} epochs → {checkpoints}")
    history = train_digits(checkpoints, epochs=args.epochs, verbose=2)
    print(f"trained in {time.perf_counter() - start:.1f} s, final accuracy "
          f"{history.history['accuracy'][-1]:.3f}")
    args.blend = args.blend or str(out / "digits.blend")
    result = _render(checkpoints, out / "digits.mp4", args)
    print(f"demo done in {time.perf_counter() - start:.1f} s")
    print(f"video: {result.video.resolve()}")
    print(f"blend: {result.blend.resolve()}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nnvis", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def blender_options(sp, out_default=None):
        sp.add_argument("--blend", help="also save the scene as this .blend")
        sp.add_argument("--resolution", type=_resolution, default=(640, 360), help="WxH")
        sp.add_argument("--frames-per-epoch", type=int, default=4)
        sp.add_argument("--samples", type=int, default=8, help="Cycles samples per pixel")
        sp.add_argument("--dist", default=str(ROOT / "dist"), help="where the extension zip goes")
        sp.add_argument("--user-folder", default=str(ROOT / "build" / "blender-user"),
                        help="private Blender user folder the extension is installed into")

    b = sub.add_parser("build", help="build + validate the extension zip")
    b.add_argument("--dist", default=str(ROOT / "dist"))
    b.set_defaults(func=cmd_build)

    r = sub.add_parser("render", help="import a checkpoint (file or folder) and render a video")
    r.add_argument("path")
    r.add_argument("--probe", help="probe image (PNG/JPEG) or .npy")
    r.add_argument("--out", required=True, help="video file (.mp4) or PNG frame pattern")
    blender_options(r)
    r.set_defaults(func=cmd_render)

    d = sub.add_parser("demo", help="train the digits CNN, import it, render an MP4")
    d.add_argument("--out", default=str(ROOT / "out" / "demo"))
    d.add_argument("--epochs", type=int, default=10)
    blender_options(d)
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except NNVisError as exc:
        print(f"nnvis: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
