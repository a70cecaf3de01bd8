"""Camera, lights, world and render settings: a scene that renders well headless by default.

Cycles renders on the device `devices.choose` picks (the best GPU backend Cycles lists, else the
CPU) at that device's quality preset (`QUALITY` on the CPU, `GPU_QUALITY` on a GPU); EEVEE is only
used when asked for. The camera lives in camera_moves.py.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import bpy
import numpy as np
from mathutils import Vector

from . import compat, devices

def add_lights(collection, lo, hi, name: str = "NNVis"):
    size = float(np.linalg.norm(np.asarray(hi) - np.asarray(lo)))
    sun = bpy.data.objects.new(f"{name} Sun", bpy.data.lights.new(f"{name} Sun", "SUN"))
    sun.data.energy = 2.5
    sun.rotation_euler = (0.9, -0.3, -0.6)
    key = bpy.data.objects.new(f"{name} Key", bpy.data.lights.new(f"{name} Key", "AREA"))
    key.data.energy = 60.0 * size * size
    key.data.size = size / 2
    key.location = Vector(((lo[0] + hi[0]) / 2 - size * 0.4, lo[1] - size * 0.6, hi[2] + size * 0.5))
    key.rotation_euler = Vector((0.4, 0.6, -0.5)).to_track_quat("Z", "Y").to_euler()
    for light in (sun, key):
        collection.objects.link(light)
    return [sun, key]


def neutral_world(scene, strength: float = 1.0, colour=(0.035, 0.037, 0.045)):
    world = bpy.data.worlds.get("NNVis World") or bpy.data.worlds.new("NNVis World")
    compat.use_nodes(world)
    background = world.node_tree.nodes.get("Background")
    background.inputs["Color"].default_value = (*colour, 1.0)
    background.inputs["Strength"].default_value = strength
    scene.world = world
    return world


@dataclass(frozen=True)
class CyclesSettings:
    """The Cycles levers that set a frame's cost and quality (`nnvis bench render` weighs them)."""
    samples: int
    adaptive: bool = False
    adaptive_threshold: float = 0.01  # noise level adaptive sampling stops a pixel at (default)
    denoise: str | None = None        # OpenImageDenoise quality FAST/BALANCED/HIGH, None: off
    prefilter: str = "FAST"           # denoiser's albedo/normal prefilter: NONE/FAST/ACCURATE
    guides: str = "RGB_ALBEDO_NORMAL"   # the denoiser's guide passes: RGB, RGB_ALBEDO too
    bounces: int = 0                  # 0: direct light only (the picture is emission + lights)
    transparent_bounces: int = 32     # faint edges seen through each other (beyond: black dots)
    filter_width: float = 1.5         # pixel filter width in pixels (Blender's default)
    pixel_filter: str = "BLACKMAN_HARRIS"   # or GAUSSIAN / BOX: measured no better here
    light_tree: bool = True           # Blender's default. Off in the CPU presets: Cycles builds
                                      # it again every frame the epoch changes (0.3 s of a 64×36
                                      # frame of the demo), and two lights plus the emissive cells
                                      # sample as well without it (28.0 vs 28.15 dB at 1 spp)
    persistent: bool = False          # keep Cycles' scene between frames: measured no faster
                                      # on the CPU (every frame's geometry changes)
    filter_glossy: float = 1.0        # blur of glossy paths after a diffuse bounce (default)
    caustics: bool = True             # reflective/refractive caustics (Blender's default)


# One table per device for `nnvis render --quality` and the Render Training Video dialog. Draft is
# the shipped default; measured cost and PSNR against a reference are in docs/benchmarks.md.
QUALITY = {
    "draft": CyclesSettings(samples=1, denoise="FAST", light_tree=False),
    "final": CyclesSettings(samples=16, adaptive=True, denoise="HIGH", prefilter="ACCURATE",
                            bounces=3, light_tree=False),
}
# On a GPU (OIDN denoises there too; persistent data: 0.52 vs 0.95 s a draft frame). H200, the
# demo at 1080p against 1024 spp (`nnvis bench render --device gpu`, docs/benchmarks.md), edges
# flat since 2026-12-05: samples cost little (8 spp 1.13 s a frame alone, 64 spp 1.43 s), the
# cheapest row ≥ 46 dB is final's — 32 spp adaptive, light tree off (46.9 dB; 24 spp 45.0 dB);
# the whole 175-frame demo in 2 workers through CUDA 50.5 s, frames 1/88/175 at 47.8/47.0/46.9 dB.
GPU_QUALITY = {
    "draft": CyclesSettings(samples=1, denoise="FAST", persistent=True),
    "final": CyclesSettings(samples=32, adaptive=True, denoise="HIGH", prefilter="ACCURATE",
                            bounces=3, light_tree=False, persistent=True),
}
DEFAULT_QUALITY = "draft"
EEVEE_SAMPLES = {"draft": 16, "final": 64}    # EEVEE, when asked for: not measured here


def preset(quality: str, kind: str = "CPU") -> CyclesSettings:
    """The `quality` preset for a device of `kind` (CPU or GPU)."""
    return (GPU_QUALITY if kind == "GPU" else QUALITY)[quality]


def apply_cycles(scene, settings: CyclesSettings) -> None:
    """Cycles with `settings` (the device is `devices.use`'s)."""
    scene.render.engine = "CYCLES"
    cycles = scene.cycles
    cycles.samples = settings.samples
    cycles.use_adaptive_sampling = settings.adaptive
    cycles.adaptive_threshold = settings.adaptive_threshold
    cycles.use_denoising = settings.denoise is not None
    if settings.denoise:
        cycles.denoiser = "OPENIMAGEDENOISE"
        cycles.denoising_quality = settings.denoise
        cycles.denoising_prefilter = settings.prefilter
        cycles.denoising_input_passes = settings.guides
    cycles.max_bounces = settings.bounces
    cycles.diffuse_bounces = cycles.glossy_bounces = min(settings.bounces, 1)
    cycles.transmission_bounces = cycles.volume_bounces = 0
    cycles.transparent_max_bounces = settings.transparent_bounces
    cycles.filter_width = settings.filter_width
    cycles.pixel_filter_type = settings.pixel_filter
    cycles.use_light_tree = settings.light_tree
    cycles.blur_glossy = settings.filter_glossy
    cycles.caustics_reflective = cycles.caustics_refractive = settings.caustics
    scene.render.use_persistent_data = settings.persistent


def render_settings(scene, resolution=(640, 360), samples: int | None = None, fps: int = 24,
                    quality: str = DEFAULT_QUALITY, device: str = "AUTO"):
    """Cycles on `device` (AUTO: the best GPU, else the CPU) at its `quality` preset (`samples`
    overrides its samples); MP4 (H.264) output. Standard view transform, so colour maps show
    their true colours. Returns the device."""
    chosen = devices.choose(device)
    settings = preset(quality, chosen.kind)
    apply_cycles(scene, replace(settings, samples=samples) if samples else settings)
    devices.use(scene, chosen)
    scene.render.resolution_x, scene.render.resolution_y = resolution
    scene.render.resolution_percentage = 100
    scene.render.fps = fps
    scene.render.film_transparent = False
    scene.view_settings.view_transform = "Standard"
    compat.set_video_output(scene)
    return chosen
