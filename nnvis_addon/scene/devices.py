"""Which device Cycles renders on: the best GPU backend Cycles lists, else the CPU.

AUTO takes the first backend of `BACKENDS` under which Cycles lists a device (OptiX before CUDA:
an NVIDIA GPU with ray-tracing cores traces faster through OptiX), enables only that backend's
GPUs and denoises on the GPU; with none it renders on the CPU. NVIDIA's compute GPUs have no
ray-tracing cores (`NO_RT_CORES`: A100, H100, H200, ...), where OptiX traces in software: AUTO
takes CUDA there. A backend's name (CUDA, say) asks for that backend alone. Measured on an
NVIDIA H200 (bpy 5.0.1, docs/benchmarks.md), the demo's 175 frames at 1080p in the final preset
(32 spp adaptive + OIDN on the GPU, two workers): CUDA 50.5 s, OptiX 64.7 s. EEVEE was no faster
there and looks different, so it is never picked automatically.

Everything here goes through Cycles' add-on preferences (`compute_device_type`,
`get_devices_for_type`, the `use` flag of each device), which a test fakes: CI has no GPU.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import NNVisError

BACKENDS = ("OPTIX", "CUDA", "HIP", "METAL", "ONEAPI")     # best first
# NVIDIA GPUs without ray-tracing cores (datacenter compute parts), by Cycles' device name
NO_RT_CORES = re.compile(r"\b(P100|V100|A100|A800|A30|H100|H800|H200|H20|GH200|B100|B200|GB200)\b")
CHOICES = ("AUTO", "CPU", "GPU", *BACKENDS)
BACKEND_NAMES = {"OPTIX": "OptiX", "CUDA": "CUDA", "HIP": "HIP", "METAL": "Metal",
                 "ONEAPI": "oneAPI"}


@dataclass(frozen=True)
class Device:
    """Where Cycles renders: kind CPU or GPU, the GPU backend and the devices it enabled."""
    kind: str = "CPU"
    backend: str = "NONE"
    names: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.kind == "CPU":
            return "CPU"
        return f"GPU ({BACKEND_NAMES.get(self.backend, self.backend)}: {', '.join(self.names)})"


CPU = Device()


def cycles_preferences():
    """Cycles' add-on preferences (None where Cycles is not enabled)."""
    import bpy
    addon = bpy.context.preferences.addons.get("cycles")
    return addon.preferences if addon is not None else None


def gpus(prefs, backend: str) -> list:
    """The devices Cycles lists under `backend` (CPU entries left out); none where this build
    of Blender does not offer the backend on this platform."""
    try:
        prefs.compute_device_type = backend
    except TypeError:                    # not an item of this platform's enum (Metal on Linux)
        return []
    return [d for d in prefs.get_devices_for_type(backend) if d.type == backend]


def choose(choice: str = "AUTO", prefs=None) -> Device:
    """The device for `choice` (AUTO, CPU, GPU or one backend of `BACKENDS`), GPUs enabled in
    `prefs` (default: Cycles' own); GPU or a backend where Cycles lists none raises NNVisError,
    AUTO falls back to the CPU."""
    choice = choice.upper()
    if choice not in CHOICES:
        raise NNVisError(f"device {choice.lower()!r}: expected one of "
                         f"{[c.lower() for c in CHOICES]}")
    if choice == "CPU":
        return CPU
    prefs = prefs if prefs is not None else cycles_preferences()
    wanted = (choice,) if choice in BACKENDS else BACKENDS
    for backend in wanted if prefs is not None else ():
        found = gpus(prefs, backend)
        if found and backend == "OPTIX" and choice != "OPTIX" and \
                all(NO_RT_CORES.search(d.name) for d in found) and gpus(prefs, "CUDA"):
            continue       # OptiX without ray-tracing cores: CUDA is faster (H200, above)
        if found:
            for device in prefs.get_devices_for_type(backend):
                device.use = device.type == backend      # the GPUs only, not the CPU beside them
            return Device("GPU", backend, tuple(d.name for d in found))
    if prefs is not None:
        prefs.compute_device_type = "NONE"
    if choice != "AUTO":
        raise NNVisError(f"device {choice.lower()}: Cycles lists no GPU here (it looked for "
                         f"{', '.join(BACKEND_NAMES[b] for b in wanted)}); use --device cpu "
                         "or auto")
    return CPU


def use(scene, device: Device) -> None:
    """Render `scene` with Cycles on `device`, denoising there too."""
    cycles = scene.cycles
    cycles.device = device.kind
    cycles.denoising_use_gpu = device.kind == "GPU"


def choice(device: Device) -> str:
    """The `choose` argument that gives `device` again (in another process: a render worker)."""
    return device.backend if device.kind == "GPU" else "CPU"


def used(scene, prefs=None) -> Device:
    """The device `scene` renders on as the preferences stand (for the render report)."""
    if scene.render.engine != "CYCLES" or scene.cycles.device != "GPU":
        return CPU
    prefs = prefs if prefs is not None else cycles_preferences()
    backend = prefs.compute_device_type if prefs is not None else "NONE"
    if backend == "NONE":
        return CPU
    return Device("GPU", backend, tuple(d.name for d in prefs.devices
                                        if d.use and d.type == backend))
