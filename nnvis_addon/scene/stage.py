"""Camera, lights, world and render settings: a scene that renders well headless by default.

Headless defaults pick Cycles on the CPU at the draft preset (`QUALITY`; measured fastest here,
EEVEE on software GL is 50-200× slower). The camera lives in camera_moves.py.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import bpy
import numpy as np
from mathutils import Vector

from . import compat

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
    denoise: str | None = None        # OpenImageDenoise quality FAST/BALANCED/HIGH, None: off
    prefilter: str = "FAST"           # denoiser's albedo/normal prefilter: NONE/FAST/ACCURATE
    bounces: int = 0                  # 0: direct light only (the picture is emission + lights)
    transparent_bounces: int = 32     # faint edges seen through each other (beyond: black dots)
    filter_width: float = 1.5         # pixel filter width in pixels (Blender's default)
    pixel_filter: str = "BLACKMAN_HARRIS"   # or GAUSSIAN / BOX: measured no better here
    light_tree: bool = True           # Blender's default; two lights: measured no faster off
    persistent: bool = False          # keep Cycles' scene between frames: measured no faster
                                      # here (every frame's geometry changes)


# One table for `nnvis render --quality` and the Render Training Video dialog. Draft is the shipped
# default; measured cost and PSNR against a 64-spp reference are in docs/benchmarks.md.
QUALITY = {
    "draft": CyclesSettings(samples=1, denoise="FAST"),
    "final": CyclesSettings(samples=16, adaptive=True, denoise="HIGH", prefilter="ACCURATE",
                            bounces=3),
}
DEFAULT_QUALITY = "draft"
EEVEE_SAMPLES = {"draft": 16, "final": 64}    # EEVEE, where a GPU is present: not measured here


def apply_cycles(scene, settings: CyclesSettings) -> None:
    """Cycles on the CPU with `settings`."""
    scene.render.engine = "CYCLES"
    cycles = scene.cycles
    cycles.device = "CPU"
    cycles.samples = settings.samples
    cycles.use_adaptive_sampling = settings.adaptive
    cycles.use_denoising = settings.denoise is not None
    if settings.denoise:
        cycles.denoiser = "OPENIMAGEDENOISE"
        cycles.denoising_quality = settings.denoise
        cycles.denoising_prefilter = settings.prefilter
    cycles.max_bounces = settings.bounces
    cycles.diffuse_bounces = cycles.glossy_bounces = min(settings.bounces, 1)
    cycles.transmission_bounces = cycles.volume_bounces = 0
    cycles.transparent_max_bounces = settings.transparent_bounces
    cycles.filter_width = settings.filter_width
    cycles.pixel_filter_type = settings.pixel_filter
    cycles.use_light_tree = settings.light_tree
    scene.render.use_persistent_data = settings.persistent


def render_settings(scene, resolution=(640, 360), samples: int | None = None, fps: int = 24,
                    quality: str = DEFAULT_QUALITY):
    """Cycles CPU at the `quality` preset (`samples` overrides its samples); MP4 (H.264) output.
    Standard view transform, so colour maps show their true colours."""
    settings = QUALITY[quality]
    apply_cycles(scene, replace(settings, samples=samples) if samples else settings)
    scene.render.resolution_x, scene.render.resolution_y = resolution
    scene.render.resolution_percentage = 100
    scene.render.fps = fps
    scene.render.film_transparent = False
    scene.view_settings.view_transform = "Standard"
    compat.set_video_output(scene)
