"""`nnvis bench render`: seconds per frame and PSNR against a reference for Cycles settings.

The digits demo scene (trained once into the user cache, or `--recording`) or a ResNet50 scene
(`--scene resnet50`: keras.applications ResNet50, weights=None, saved once into the user cache) is
imported through the installed extension at the benchmark resolution; one frame of the last epoch is rendered with each
variant (`stage.CyclesSettings`). Variants are timed side by side in one process, alternating,
`--repeats` times each, and the median is reported, so load from other processes hits them alike.
PSNR is over the 8-bit PNG Blender writes, against the reference rendered once (OIDN high,
3 bounces; 64 spp for the CPU table, 1024 for the GPU table; `--reference-samples`). `--device`
renders on the CPU or the GPU `devices.choose` picks, at that device's presets; `--variants gpu`
(the default off the CPU) weighs the GPU final preset's levers: samples with adaptive sampling,
its threshold, bounces, transparent bounces, denoiser guides and prefilter, light tree, caustics.
The per-frame row is a frame's cost beyond its samples: 1 spp, no denoising, persistent data,
consecutive frames, and the last frame rendered again unchanged.

`--video` measures what a user waits for instead: the whole demo through `nnvis render`'s own path
(import, preset, `--workers`, MP4 encoding), its total seconds and seconds a frame, and the PSNR of
its first, middle and last frame against 1024-spp references.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ...errors import NNVisError

OLD = dict(samples=8, adaptive=True, denoise="FAST", bounces=3, persistent=False)
REFERENCE = dict(samples=64, denoise="HIGH", prefilter="ACCURATE", bounces=3, persistent=False)
VARIANTS = {   # name → CyclesSettings fields; "draft"/"final" are stage.QUALITY's
    "old (8 spp adaptive, OIDN fast, 3 bounces)": OLD,
    "1 spp": dict(samples=1),
    "2 spp": dict(samples=2),
    "4 spp": dict(samples=4),
    "8 spp": dict(samples=8),
    "4 spp adaptive": dict(samples=4, adaptive=True),
    "2 spp, 3 bounces": dict(samples=2, bounces=3),
    "2 spp, filter 1.0": dict(samples=2, filter_width=1.0),
    "2 spp, filter 2.0": dict(samples=2, filter_width=2.0),
    "1 spp, OIDN fast, no prefilter": dict(samples=1, denoise="FAST", prefilter="NONE"),
    "2 spp, OIDN fast": dict(samples=2, denoise="FAST"),
    "2 spp, OIDN balanced": dict(samples=2, denoise="BALANCED"),
    "4 spp, OIDN high": dict(samples=4, denoise="HIGH", prefilter="ACCURATE"),
    "1 spp, OIDN fast": dict(samples=1, denoise="FAST"),
    "2 spp, OIDN fast, no prefilter": dict(samples=2, denoise="FAST", prefilter="NONE"),
    "4 spp, OIDN fast": dict(samples=4, denoise="FAST"),
    "8 spp, OIDN fast": dict(samples=8, denoise="FAST"),
    "2 spp, OIDN high, no prefilter": dict(samples=2, denoise="HIGH", prefilter="NONE"),
    "1 spp, OIDN fast, Gaussian filter": dict(samples=1, denoise="FAST", pixel_filter="GAUSSIAN"),
    "1 spp, OIDN fast, Gaussian filter 2.5": dict(samples=1, denoise="FAST",
                                                  pixel_filter="GAUSSIAN", filter_width=2.5),
    "1 spp, OIDN fast, light tree off": dict(samples=1, denoise="FAST", light_tree=False),
    "12 spp": dict(samples=12),
    "16 spp": dict(samples=16),
    "16 spp, OIDN high, 3 bounces": dict(samples=16, denoise="HIGH", prefilter="ACCURATE",
                                         bounces=3),
    "32 spp, OIDN high, 3 bounces": dict(samples=32, denoise="HIGH", prefilter="ACCURATE",
                                         bounces=3),
}

# The GPU table (`--variants gpu`, the default with --device gpu): which levers buy the final
# preset's ≥ 45 dB (1024-spp reference) with fewer or cheaper samples. Every row denoises with
# OIDN high (albedo + normal guides, accurate prefilter) and keeps persistent data, as the GPU
# presets do; the first row is the GPU final preset of 2026-12-04, the speed-up's base.
HIGH = dict(denoise="HIGH", prefilter="ACCURATE", bounces=3, persistent=True)
GPU_VARIANTS = {
    "64 spp, OIDN high, 3 bounces (GPU final of 2026-12-04)": HIGH | dict(samples=64),
    **{f"{n} spp adaptive, OIDN high, 3 bounces": HIGH | dict(samples=n, adaptive=True)
       for n in (16, 24, 32, 48, 64)},
    "32 spp adaptive 0.03": HIGH | dict(samples=32, adaptive=True, adaptive_threshold=0.03),
    "32 spp adaptive 0.003": HIGH | dict(samples=32, adaptive=True, adaptive_threshold=0.003),
    "32 spp adaptive, 1 bounce": HIGH | dict(samples=32, adaptive=True, bounces=1),
    "32 spp adaptive, 0 bounces": HIGH | dict(samples=32, adaptive=True, bounces=0),
    "32 spp adaptive, 8 transparent bounces": HIGH | dict(samples=32, adaptive=True,
                                                         transparent_bounces=8),
    "32 spp adaptive, light tree off": HIGH | dict(samples=32, adaptive=True, light_tree=False),
    "32 spp adaptive, caustics off": HIGH | dict(samples=32, adaptive=True, caustics=False),
    "32 spp adaptive, guides albedo only": HIGH | dict(samples=32, adaptive=True,
                                                      guides="RGB_ALBEDO"),
    "32 spp adaptive, prefilter fast": HIGH | dict(samples=32, adaptive=True, prefilter="FAST"),
    "32 spp, no guides": HIGH | dict(samples=32, guides="RGB", prefilter="NONE"),
    "24 spp adaptive, 1 bounce, 8 transparent, caustics off":
        HIGH | dict(samples=24, adaptive=True, bounces=1, transparent_bounces=8, caustics=False),
    "48 spp adaptive, 1 bounce, 8 transparent, caustics off":
        HIGH | dict(samples=48, adaptive=True, bounces=1, transparent_bounces=8, caustics=False),
    # the light tree off, the one lever that bought time on the H200 (docs/benchmarks.md); the
    # 40-spp row is the GPU final preset since. Edges shine without light samples or shadows
    # since (issue 27, fifth pass): on the CPU a sample costs less and is less noisy, so fewer
    # may reach 45 dB — 16 to 32 spp, and 8 transparent bounces with them
    "64 spp, light tree off": HIGH | dict(samples=64, light_tree=False),
    **{f"{n} spp adaptive, light tree off": HIGH | dict(samples=n, adaptive=True, light_tree=False)
       for n in (8, 12, 16, 24, 32, 40, 48)},
    **{f"{n} spp adaptive, 8 transparent, light tree off": HIGH | dict(
        samples=n, adaptive=True, transparent_bounces=8, light_tree=False) for n in (24, 32, 40)},
    "32 spp adaptive, 0 bounces, light tree off": HIGH | dict(samples=32, adaptive=True,
                                                              bounces=0, light_tree=False),
    **{f"{n} spp adaptive 0.03, light tree off": HIGH | dict(
        samples=n, adaptive=True, adaptive_threshold=0.03, light_tree=False) for n in (48, 64)},
    "48 spp adaptive, 8 transparent, light tree off":
        HIGH | dict(samples=48, adaptive=True, transparent_bounces=8, light_tree=False),
    # the denoiser's quality: on the H200 a frame cost barely follows its samples (8 spp 1.13 s,
    # 64 spp 1.43 s), so what else a frame pays for is weighed
    **{f"32 spp adaptive, OIDN {q.lower()}, light tree off": HIGH | dict(
        samples=32, adaptive=True, light_tree=False, denoise=q) for q in ("BALANCED", "FAST")},
}
TABLES = {"cpu": VARIANTS, "gpu": GPU_VARIANTS}
TABLE_REFERENCE_SAMPLES = {"cpu": REFERENCE["samples"], "gpu": 1024}

SCENES = ("demo", "resnet50")


def scene_source(name: str, recording: Path | None) -> Path:
    """What to import for scene `name`: the digits recording (trained on first use, or
    `recording`), or a ResNet50 .keras (built on first use)."""
    from ..packaging import cache_dir
    if name == "resnet50":
        path = recording or cache_dir() / "bench-resnet50.keras"
        if not path.is_file():
            from .forward import build_application
            print(f"building keras.applications ResNet50 (weights=None) → {path}", file=sys.stderr)
            path.parent.mkdir(parents=True, exist_ok=True)
            build_application("resnet50", 224).save(path)
        return path
    if recording is not None:
        return recording
    training = cache_dir() / "bench-digits"
    if not (training / "recording").is_dir():
        from ..demo import train_digits
        print(f"training the digits CNN (3 epochs) → {training}", file=sys.stderr)
        train_digits(training, epochs=3)
    return training / "recording"


def open_bench_scene(source: Path, resolution: tuple[int, int]):
    """`source` imported headless at `resolution`."""
    from ..headless import open_scene
    from ..packaging import build_extension
    return open_scene(source, build_extension(), None, resolution)


def render_once(scene, path: Path, render: bool = True) -> tuple[float, "np.ndarray"]:  # noqa: F821
    """Render the current frame to `path` (PNG; `render` False only reads it); returns
    (seconds, pixels 0..1)."""
    import bpy
    import numpy as np
    scene.render.filepath = str(path)
    start = time.perf_counter()
    if render:
        bpy.ops.render.render(write_still=True, scene=scene.name)
    seconds = time.perf_counter() - start
    image = bpy.data.images.load(str(path), check_existing=False)
    pixels = np.empty(len(image.pixels), np.float32)
    image.pixels.foreach_get(pixels)
    bpy.data.images.remove(image)
    return seconds, pixels.reshape(-1, 4)[:, :3]


def reference_frame(scene, frame: int, recording, tmp: Path, device=None,
                    samples: int = REFERENCE["samples"]):
    """(seconds, pixels) of the reference (REFERENCE at `samples`), cached per source (the
    shipped files), recording, frame, size, device kind and samples (seconds 0.0 when it came from the
    cache: it takes minutes on 2 cores)."""
    import hashlib
    from ..packaging import ROOT, cache_dir, source_hash
    from ...scene import devices
    from ...scene.stage import CyclesSettings, apply_cycles
    device = device or devices.CPU
    key = hashlib.sha256(f"{source_hash(ROOT)} {recording} {frame} "
                         f"{scene.render.resolution_x}x{scene.render.resolution_y} {device.kind} "
                         f"{samples}".encode())
    key = key.hexdigest()[:16]
    cached = cache_dir() / f"bench-render-reference-{key}.png"
    if cached.is_file():
        return 0.0, render_once(scene, cached, render=False)[1]
    apply_cycles(scene, CyclesSettings(**{**REFERENCE, "samples": samples}))
    devices.use(scene, device)
    seconds, pixels = render_once(scene, tmp / "reference.png")
    cached.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp / "reference.png", cached)
    return seconds, pixels


def psnr(a, b) -> float:
    import numpy as np
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def frame_cost(scene, first: int, count: int = 6) -> tuple[float, float]:
    """(median seconds of frames first+1..first+count-1 rendered in a row, seconds of the last
    one rendered again unchanged) at the current settings: what a frame costs beyond samples
    when they are 1 spp without denoising (the first frame of a run syncs everything)."""
    import bpy
    times = []
    for frame in range(first, first + count):
        start = time.perf_counter()
        scene.frame_set(frame)
        bpy.ops.render.render(scene=scene.name)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    scene.frame_set(first + count - 1)
    bpy.ops.render.render(scene=scene.name)
    return statistics.median(times[1:]), time.perf_counter() - start


def run(variants: dict, resolution, repeats: int, recording=None, log=print,
        scene_name: str = "demo", device: str = "cpu",
        reference_samples: int = REFERENCE["samples"]) -> list[dict]:
    from ...scene import compat, devices
    from dataclasses import replace
    from ...scene.stage import CyclesSettings, apply_cycles, preset, QUALITY
    recording = scene_source(scene_name, recording)
    scene = open_bench_scene(recording, resolution)
    chosen = devices.choose(device)
    log(f"rendering on {chosen}")

    def setup(settings):
        apply_cycles(scene, settings)
        devices.use(scene, chosen)

    compat.set_image_output(scene, "PNG")
    frame = max(scene.frame_start + 2, scene.frame_end - 1)
    scene.frame_set(frame)
    settings = {name: CyclesSettings(**fields) for name, fields in variants.items()}
    settings |= {f"{name} preset": preset(name, chosen.kind) for name in QUALITY}
    with tempfile.TemporaryDirectory(prefix="nnvis-bench-render-") as tmp:
        ref_seconds, reference = reference_frame(scene, frame, recording, Path(tmp), chosen,
                                                 reference_samples)
        log(f"reference ({reference_samples} spp, OIDN high): {ref_seconds:.1f} s")
        times = {name: [] for name in settings}
        quality = {}
        for rep in range(repeats):
            for name, s in settings.items():
                setup(s)
                seconds, pixels = render_once(scene, Path(tmp) / "variant.png")
                times[name].append(seconds)
                quality[name] = psnr(pixels, reference)
                log(f"  [{rep + 1}/{repeats}] {name}: {seconds:.2f} s, {quality[name]:.1f} dB")
        animation = {}   # the draft over consecutive frames: does persistent data pay off?
        for rep in range(repeats):
            for persistent in (False, True):
                setup(replace(preset("draft", chosen.kind), persistent=persistent))
                for k in range(3):
                    scene.frame_set(frame - 2 + k)
                    seconds, _ = render_once(scene, Path(tmp) / "frame.png")
                    if k:      # the first frame of a run syncs everything either way
                        animation.setdefault(persistent, []).append(seconds)
                log(f"  [{rep + 1}/{repeats}] draft over frames, persistent={persistent}: "
                    f"{statistics.median(animation[persistent]):.2f} s")
        setup(CyclesSettings(samples=1, persistent=True))
        cost = [frame_cost(scene, max(scene.frame_start, frame - 8)) for _ in range(repeats)]
        log(f"  per-frame cost beyond samples: {statistics.median(c[0] for c in cost):.3f} s, "
            f"unchanged frame {statistics.median(c[1] for c in cost):.3f} s")
    old = statistics.median(times[next(iter(settings))])
    size = f"{resolution[0]}x{resolution[1]}"
    common = dict(scene=scene_name, engine="CYCLES", device=str(chosen), resolution=size)
    rows = [dict(common, variant="reference", samples=reference_samples,
                 seconds_per_frame=round(ref_seconds, 2) or None, psnr_db=None,
                 speedup=round(old / ref_seconds, 2) if ref_seconds else None)]
    for name, s in settings.items():
        median = statistics.median(times[name])
        rows.append(dict(common, variant=name, samples=s.samples,
                         seconds_per_frame=round(median, 2), psnr_db=round(quality[name], 2),
                         speedup=round(old / median, 2)))
    for persistent, seconds in animation.items():
        rows.append(dict(common, variant=f"draft preset, consecutive frames, persistent data "
                                         f"{'on' if persistent else 'off'}",
                         samples=preset("draft", chosen.kind).samples,
                         seconds_per_frame=round(statistics.median(seconds), 2), psnr_db=None,
                         speedup=round(old / statistics.median(seconds), 2)))
    for name, k in (("per-frame cost beyond samples (1 spp, no denoising, persistent data, "
                     "consecutive frames)", 0), ("the same frame rendered again", 1)):
        seconds = statistics.median(c[k] for c in cost)
        rows.append(dict(common, variant=name, samples=1, seconds_per_frame=round(seconds, 3),
                         psnr_db=None, speedup=round(old / seconds, 2)))
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| scene | device | resolution | variant | samples | s/frame | PSNR dB | speed-up vs old |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['scene']} | {r['device']} | {r['resolution']} | {r['variant']} | {r['samples']} | {_cell(r['seconds_per_frame'], '.2f')} | "
              f"{_cell(r['psnr_db'], '.1f', '—')} | {_cell(r['speedup'], '.1f')}× |"
              for r in rows]
    return "\n".join(lines)


def _cell(value, spec: str, missing: str = "cached") -> str:
    return missing if value is None else format(value, spec)


def video(resolution, quality: str, device: str, workers, recording=None, frames=None,
          reference_samples: int = 1024, fps: int = 12, log=print, samples=None,
          variant: str | None = None) -> dict:
    """The whole demo (or `frames` of it) rendered to an MP4 through `nnvis render`'s own path
    (`headless.render_checkpoint`: import at `fps`, preset — its samples `samples` if given, or
    the settings of the table row `variant` —, workers, frames, encoding); returns
    its total seconds, seconds a frame and the PSNR of its first, middle and last frame (copied as they
    are written, before encoding) against references at `reference_samples`."""
    import bpy
    import shutil
    from ..headless import render_checkpoint
    from ..packaging import build_extension
    from ...scene import compat, devices
    from ...scene.frames import SUFFIXES, VIDEO_FRAMES
    from ...scene.render import video_frames_folder
    from ...scene.stage import CyclesSettings, preset
    settings = None
    if variant:
        rows = {**GPU_VARIANTS, **VARIANTS}
        if variant not in rows:
            raise NNVisError(f"--variant {variant!r}: not a row of the tables; they are: "
                             + "; ".join(rows))
        settings = CyclesSettings(**rows[variant])
    recording = scene_source("demo", recording)
    with tempfile.TemporaryDirectory(prefix="nnvis-bench-video-") as tmp:
        tmp, kept, last = Path(tmp), {}, [0.0]
        out = tmp / "demo.mp4"

        def keep(frame):
            last[0] = time.perf_counter()
            scene = bpy.context.scene
            if frame in (scene.frame_start, (scene.frame_start + scene.frame_end) // 2,
                         scene.frame_end):
                name = f"frame_{frame:04d}{SUFFIXES[VIDEO_FRAMES]}"
                kept[frame] = shutil.copyfile(video_frames_folder(out) / name, tmp / name)

        result = render_checkpoint(recording, out, build_extension(), None, resolution=resolution,
                                   quality=quality, samples=samples, device=device,
                                   workers=workers, settings=settings,
                                   frames=frames, on_frame=keep, import_options={"fps": fps})
        encode_seconds = time.perf_counter() - last[0]     # after the last frame: the MP4
        log(f"import {result.import_seconds:.1f} s, {result.frames} frames rendered and encoded "
            f"in {result.render_seconds:.1f} s (encoding {encode_seconds:.1f} s) on "
            f"{result.device}, {result.workers} workers")
        scene = bpy.context.scene
        compat.set_image_output(scene, "PNG")
        chosen = devices.choose(device)
        quality_db = {}
        for frame, path in sorted(kept.items()):
            scene.frame_set(frame)
            seconds, reference = reference_frame(scene, frame, recording, tmp, chosen,
                                                 reference_samples)
            quality_db[frame] = round(psnr(render_once(scene, path, render=False)[1],
                                           reference), 2)
            log(f"  frame {frame}: {quality_db[frame]:.1f} dB (reference {reference_samples} "
                f"spp: {seconds:.1f} s{', cached' if not seconds else ''})")
    return dict(scene="demo", mode="video", device=result.device, workers=result.workers,
                quality=variant or quality,
                samples=samples or (settings or preset(quality, chosen.kind)).samples,
                resolution=f"{resolution[0]}x{resolution[1]}", fps=fps,
                frames=result.frames, import_seconds=round(result.import_seconds, 2),
                total_seconds=round(result.render_seconds, 2),
                encode_seconds=round(encode_seconds, 2),
                seconds_per_frame=round(result.render_seconds / max(1, result.frames), 3),
                reference_samples=reference_samples, psnr_db=quality_db,
                min_psnr_db=min(quality_db.values(), default=None))


def main(argv: list[str]) -> int:
    from ..chunks import parse_frames
    from ..cli import DEMO, DEVICES, QUALITY, _resolution
    parser = argparse.ArgumentParser(prog="nnvis bench render",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    parser.add_argument("--write", type=Path, metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--resolution", type=_resolution, default=(1280, 720), help="WxH")
    parser.add_argument("--repeats", type=int, default=3, help="renders per variant (median)")
    parser.add_argument("--scene", choices=SCENES, default="demo",
                        help="the digits demo, or a ResNet50 (weights=None) checkpoint")
    parser.add_argument("--recording", type=Path,
                        help="a recording folder (or for resnet50 a .keras) instead of the cached one")
    parser.add_argument("--variants", choices=sorted(TABLES),
                        help="the table of variants: cpu (the default on the CPU) or gpu (the "
                             "default with --device gpu/auto: samples, adaptive threshold, "
                             "bounces, denoiser guides, light tree, caustics)")
    parser.add_argument("--only", help="variant names to keep, separated by ';' (the first "
                                       "always runs)")
    parser.add_argument("--device", choices=DEVICES, default="cpu",
                        help="render on the CPU (default: comparable rows), the GPU AUTO picks "
                             "(gpu/auto), or a GPU through one backend (optix, cuda, ...)")
    parser.add_argument("--reference-samples", type=int,
                        help="samples of the reference the PSNR is measured against (default: "
                             "64 for the cpu table, 1024 for the gpu table and --video)")
    parser.add_argument("--video", action="store_true",
                        help="render the whole demo to an MP4 through `nnvis render` (--quality, "
                             "--device, --workers, --frames) and report its total seconds, "
                             "s/frame and the PSNR of its first, middle and last frame")
    parser.add_argument("--quality", choices=list(QUALITY), default="final",
                        help="--video: the preset (default final)")
    parser.add_argument("--samples", type=int,
                        help="--video: the preset's samples replaced (its other settings kept)")
    parser.add_argument("--variant", metavar="NAME",
                        help="--video: the Cycles settings of this table row instead of the "
                             "preset (--samples still replaces its samples)")
    parser.add_argument("--workers", default="auto", help="--video: render processes, auto or N")
    parser.add_argument("--frames", type=parse_frames, metavar="START-END",
                        help="--video: only these frames")
    parser.add_argument("--fps", type=int, default=DEMO["fps"],
                        help="--video: the import's frame rate, which sets the frame count "
                             "(default: the demo's; the 10-epoch demo has 175 frames at 12)")
    args = parser.parse_args(argv)
    table_name = args.variants or ("cpu" if args.device == "cpu" else "gpu")
    reference_samples = args.reference_samples or (
        1024 if args.video else TABLE_REFERENCE_SAMPLES[table_name])
    variants = TABLES[table_name]
    if args.only:
        keep = {n.strip() for n in args.only.split(";")}
        variants = {n: v for i, (n, v) in enumerate(variants.items()) if i == 0 or n in keep}
    log = (lambda line: print(line, file=sys.stderr)) if args.json else print
    stdout = os.dup(1)
    if args.json:          # Blender's own "Saved: ..." lines go to stderr: stdout is the JSON
        os.dup2(2, 1)
    try:
        if args.video:
            rows = [video(args.resolution, args.quality, args.device, args.workers,
                          args.recording, args.frames, reference_samples, args.fps, log,
                          args.samples, args.variant)]
        else:
            rows = run(variants, args.resolution, args.repeats, args.recording, log, args.scene,
                       args.device, reference_samples)
    finally:
        sys.stdout.flush()
        os.dup2(stdout, 1)
    if args.write:
        args.write.write_text(json.dumps(rows, indent=1))
    print(json.dumps(rows, indent=1) if args.json
          else video_line(rows[0]) if args.video else table(rows))
    return 0


def video_line(row: dict) -> str:
    return (f"{row['frames']} frames at {row['resolution']}, {row['quality']} "
            f"({row['samples']} spp) on {row['device']}, "
            f"{row['workers']} workers: {row['total_seconds']:.1f} s, "
            f"{row['seconds_per_frame']:.3f} s/frame; PSNR vs {row['reference_samples']} spp: "
            + ", ".join(f"frame {f} {db:.1f} dB" for f, db in row["psnr_db"].items()))
