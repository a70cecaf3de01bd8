"""`nnvis` command: build the extension, render a checkpoint headless, run the demo, benchmarks."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import NNVisError
from ..options import IMPORT_OPTIONS
from .packaging import ROOT

QUALITY = ("draft", "final")     # stage.QUALITY's keys (stage needs bpy; a test keeps them equal)
DEVICES = ("auto", "cpu", "gpu", "optix", "cuda", "hip", "metal", "oneapi")   # devices.CHOICES


def _resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 640x360") from None
    return w, h


def _path(text: str | None) -> Path | None:
    return Path(text) if text else None


def _progress_bar(total: int, desc: str):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="frame", file=sys.stderr)


def cmd_build(args) -> int:
    from .packaging import build_extension
    out = build_extension(ROOT, Path(args.dist))
    print(f"built and validated {out}")
    return 0


def _render(path, out, args, **options) -> "RenderResult":  # noqa: F821
    """Import (or open a .blend) and render with a progress bar; `options` go to
    `render_checkpoint` (frames, chunk, sequence, fps)."""
    from .headless import render_checkpoint
    from .packaging import build_extension
    is_blend = Path(path).suffix.lower() == ".blend"   # a saved scene needs no extension
    zip_path = None if is_blend else build_extension(ROOT, _path(args.dist))
    bar = None

    def on_frame(frame):
        nonlocal bar
        if bar is None:
            import bpy
            scene = bpy.context.scene
            bar = _progress_bar(scene.frame_end - scene.frame_start + 1, "render")
        bar.update(1)

    try:
        result = render_checkpoint(path, out, zip_path, _path(args.user_folder),
                                   blend=args.blend, resolution=args.resolution,
                                   samples=args.samples, quality=args.quality,
                                   on_frame=on_frame, device=args.device,
                                   workers=args.workers,
                                   import_options=import_options(args), **options)
    finally:
        if bar is not None:
            bar.close()
    print(f"import {result.import_seconds:.1f} s, render {result.frames} frames "
          f"{result.render_seconds:.1f} s on {result.device}, {result.workers} "
          f"worker{'s' if result.workers > 1 else ''}")
    if result.rendered:
        print(f"rendered frames: {' '.join(map(str, result.rendered))}")
    if result.skipped:
        print(f"skipped {result.skipped} frames already rendered or claimed by another process")
    return result


def import_options(args) -> dict:
    """The import dialog's options as the command line set them (None: the dialog's default)."""
    return {o.name: getattr(args, o.name) for o in IMPORT_OPTIONS
            if getattr(args, o.name, None) is not None}


def add_import_options(sp) -> None:
    """One flag per import dialog option (`options.IMPORT_OPTIONS`): same names, defaults and
    tooltips."""
    group = sp.add_argument_group("import options", "as in File > Import > CNN Checkpoint")
    for option in IMPORT_OPTIONS:
        specials = "; ".join(f"{key}: {text}" for _, key, _, text in option.special)
        default = next((key for value, key, _, _ in option.special if value == option.default),
                       repr(option.default))
        help_text = f"{option.description}{'; ' + specials if specials else ''} " \
                    f"(default: {default})".replace("%", "%%")
        if isinstance(option.default, bool):      # --flag / --no-flag
            group.add_argument(option.flag, dest=option.name, default=option.default,
                               action=argparse.BooleanOptionalAction, help=help_text)
        else:                                     # choices also spelled with dashes: fly-through
            kind = _key if option.choices else option.parse
            group.add_argument(option.flag, dest=option.name, type=kind, default=option.default,
                               choices=option.choices or None, help=help_text,
                               metavar="PATH" if option.path else None)


def _key(text: str) -> str:
    return text.replace("-", "_")


def _encode(args) -> int:
    """--encode: join the finished frame sequence in PATH into the MP4 --out."""
    from .chunks import parse_frames
    from .packaging import start_blender
    bpy = start_blender(_path(args.user_folder))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    from ..scene.render import encode_sequence
    frames = parse_frames(args.frames) if args.frames else None
    video = encode_sequence(args.path, args.out, fps=args.fps or 24, frames=frames)
    print(f"video: {video.resolve()}")
    return 0


def cmd_render(args) -> int:
    from .chunks import parse_chunk, parse_frames
    if args.encode:
        return _encode(args)
    if args.chunk and not args.sequence:
        raise NNVisError("--chunk renders part of an image sequence: add --sequence, then join the "
                         "finished folder with --encode")
    if not args.sequence and Path(args.out).suffix.lower() != ".mp4":
        raise NNVisError(f"--out {args.out}: expected a .mp4 file, or add --sequence for a folder "
                         "of frames")
    result = _render(args.path, args.out, args,
                     frames=parse_frames(args.frames) if args.frames else None,
                     chunk=parse_chunk(args.chunk) if args.chunk else None,
                     sequence=args.sequence, fps=args.fps)
    print(f"{'frames' if args.sequence else 'video'}: {result.video.resolve()}")
    if result.blend:
        print(f"blend: {result.blend.resolve()}")
    return 0


DEMO = {"resolution": (640, 360), "fps": 12}     # the demo's own defaults


def cmd_demo(args) -> int:
    import shutil
    from .demo import train_digits
    out = Path(args.out)
    training = out / "training"
    shutil.rmtree(training, ignore_errors=True)   # the Recorder writes only into a new folder
    start = time.perf_counter()
    print(f"training the digits CNN for {args.epochs} epochs → {training}")
    history = train_digits(training, epochs=args.epochs, verbose=2)
    print(f"trained in {time.perf_counter() - start:.1f} s, final accuracy "
          f"{history.history['accuracy'][-1]:.3f}")
    args.blend = args.blend or str(out / "digits.blend")
    result = _render(training / "recording", out / "digits.mp4", args)
    print(f"demo done in {time.perf_counter() - start:.1f} s")
    print(f"video: {result.video.resolve()}")
    print(f"blend: {result.blend.resolve()}")
    return 0


def cmd_record(args) -> int:
    """A recording from existing per-epoch checkpoints (TensorFlow computes the activations)."""
    import numpy as np
    from ..io.discover import discover
    from ..record import record_checkpoints
    found = discover(args.path)
    probes = np.load(args.probes, allow_pickle=False)
    labels = np.load(args.labels, allow_pickle=False) if args.labels else None
    rec = record_checkpoints(found.architecture, [(s.epoch, str(s.path)) for s in found.epochs],
                             probes, args.out, labels=labels)
    print(f"recorded epochs {rec.epochs} of {len(probes)} probes → {Path(args.out).resolve()}")
    return 0


BENCHES = {"bundling": "bundling", "import": "imports", "fuzz": "fuzz", "render": "render",
           "maps": "maps"}


def cmd_bench(args) -> int:
    import importlib
    module = importlib.import_module(f"{__package__}.bench.{BENCHES[args.which]}")
    return module.main(args.options)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nnvis", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def blender_options(sp, out_default=None):
        sp.add_argument("--blend", help="also save the scene as this .blend")
        sp.add_argument("--resolution", type=_resolution, default=(640, 360), help="WxH")
        sp.add_argument("--quality", choices=list(QUALITY),
                        help="render preset: draft (fast, the default for an import) or final "
                             "(more samples, high-quality denoising); a .blend keeps its own "
                             "settings unless given. Cost: docs/benchmarks.md")
        sp.add_argument("--device", choices=DEVICES, default="auto",
                        help="Cycles device: auto (the best GPU backend Cycles lists — OptiX, "
                             "CUDA, HIP, Metal, oneAPI — else the CPU), cpu, gpu, or one "
                             "backend by name (cuda, say); the preset "
                             "follows the device (on a GPU the final preset is 32 spp adaptive + OIDN). "
                             "bpy 5.0.1 has no compiled kernel for Hopper GPUs (H100/H200): "
                             "the first GPU render there compiles one (over 7 minutes, once)")
        sp.add_argument("--workers", default="auto", metavar="auto|N",
                        help="render processes at once: auto is 2 on a GPU (each one's CPU "
                             "side — scene update, denoiser prefilter, writing the frame — "
                             "overlaps the others' GPU work) and 1 on the CPU")
        sp.add_argument("--dist", help="where the extension zip goes (default: built once per "
                                       "source into the user cache, ~/.cache/nnvis)")
        sp.add_argument("--user-folder", help="Blender user folder the extension is installed "
                                              "into (default: a private one per process)")
        add_import_options(sp)

    b = sub.add_parser("build", help="build + validate the extension zip")
    b.add_argument("--dist", default=str(ROOT / "dist"))
    b.set_defaults(func=cmd_build)

    r = sub.add_parser(
        "render", help="import a checkpoint (file or folder) or open a .blend, render a video or "
                       "frames; or join finished frames into a video (--encode)",
        description="Render PATH (checkpoint file/folder, or a saved .blend) to --out. Several "
                    "processes or machines may render into one --sequence folder at once: a claim "
                    "file gives each frame to one of them, and a killed render started again "
                    "resumes at the missing frames (docs/render-farm.md). --resolution, --samples "
                    "and --fps default to the scene's.")
    r.add_argument("path", help="checkpoint file or folder, a .blend, or with --encode a folder of "
                                "frames")
    r.add_argument("--out", required=True,
                   help="video file (.mp4); with --sequence the folder of frames")
    r.add_argument("--frames", metavar="START-END", help="render only these frames")
    r.add_argument("--chunk", metavar="K/N",
                   help="render the K-th of N equal parts of the frame range (needs --sequence)")
    r.add_argument("--sequence", nargs="?", const="PNG", choices=["PNG", "EXR"],
                   help="write frame_####.png (or .exr) into the --out folder instead of a video")
    r.add_argument("--encode", action="store_true",
                   help="join the finished frame sequence in PATH into the MP4 --out (FFmpeg via "
                        "Blender's sequencer); --frames picks the range, --fps the rate")
    blender_options(r)      # its --fps: the import's frame rate; a .blend's own, 24 for --encode
    r.set_defaults(func=cmd_render, resolution=None, samples=None, fps=None)

    rec = sub.add_parser("record", help="build a recording from per-epoch checkpoints (needs TF)")
    rec.add_argument("path", help="a folder of per-epoch .keras / .weights.h5 checkpoints")
    rec.add_argument("--probes", required=True, help=".npy array (P, ...input shape)")
    rec.add_argument("--labels", help=".npy array (P,) of class indices")
    rec.add_argument("--out", required=True, help="the new recording folder")
    rec.set_defaults(func=cmd_record)

    d = sub.add_parser("demo", help="train the digits CNN, import it, render an MP4")
    d.add_argument("--out", default=str(ROOT / "out" / "demo"))
    d.add_argument("--epochs", type=int, default=10)
    blender_options(d)
    # the default video lasts ~14.5 s: 360p at 12 fps and the draft quality keep the demo
    # under 5 minutes (174 frames)
    d.set_defaults(func=cmd_demo, **DEMO)

    bench = sub.add_parser("bench",
                           help="benchmarks: bundling, import, fuzz, render, maps (each takes -h)")
    bench.add_argument("which", choices=sorted(BENCHES))
    bench.add_argument("options", nargs=argparse.REMAINDER, help="passed to the benchmark")
    bench.set_defaults(func=cmd_bench)
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
