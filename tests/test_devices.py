"""Device choice: AUTO renders with Cycles on the best GPU backend Cycles lists, else the CPU.

CI has no GPU, so Cycles' preferences are faked with what Cycles reports on a GPU machine (the
same NVIDIA H200 under CUDA and OptiX, as on the machine of docs/benchmarks.md); one test runs the
real preferences, which list no GPU here."""
from __future__ import annotations

import pytest

from nnvis_addon.errors import NNVisError
from nnvis_addon.scene import devices

TIER = "blender"

OFFERED = ("NONE", "CUDA", "OPTIX", "HIP", "ONEAPI")      # Linux: no Metal


class FakeDevice:
    def __init__(self, name, kind):
        self.name, self.type, self.use = name, kind, True


class FakePreferences:
    """Cycles' add-on preferences as far as nnvis uses them: the backend enum (a value this
    platform does not offer raises TypeError, as the real one does) and the devices per type,
    GPUs first and the CPU after them, as `get_devices_for_type` returns them."""

    def __init__(self, listed: dict[str, list[str]], offered=OFFERED):
        self.cpu = FakeDevice("AMD EPYC", "CPU")
        self.listed = {b: [FakeDevice(n, b) for n in names] for b, names in listed.items()}
        self.offered, self._type = offered, "NONE"

    @property
    def compute_device_type(self):
        return self._type

    @compute_device_type.setter
    def compute_device_type(self, value):
        if value not in self.offered:
            raise TypeError(f"enum {value!r} not found")
        self._type = value

    def get_devices_for_type(self, backend):
        found = self.listed.get(backend, [])
        return found + [self.cpu] if found else [self.cpu]

    @property
    def devices(self):
        return [d for found in self.listed.values() for d in found] + [self.cpu]


H200 = {"CUDA": ["NVIDIA H200"], "OPTIX": ["NVIDIA H200"]}
RTX = {"CUDA": ["NVIDIA RTX 6000 Ada Generation"], "OPTIX": ["NVIDIA RTX 6000 Ada Generation"]}


def test_auto_takes_the_best_backend_and_only_its_gpus():
    prefs = FakePreferences(RTX)
    device = devices.choose("AUTO", prefs)
    assert (device.kind, device.backend, device.names) == ("GPU", "OPTIX", tuple(RTX["OPTIX"]))
    assert str(device) == "GPU (OptiX: NVIDIA RTX 6000 Ada Generation)"
    assert prefs.compute_device_type == "OPTIX"
    assert [d.use for d in prefs.get_devices_for_type("OPTIX")] == [True, False]   # not the CPU
    assert devices.choose("gpu", FakePreferences({"HIP": ["AMD Radeon PRO W7900"]})) == \
        devices.Device("GPU", "HIP", ("AMD Radeon PRO W7900",))
    mac = FakePreferences({"METAL": ["Apple M3 Max"]}, offered=("NONE", "METAL"))
    assert devices.choose("AUTO", mac).backend == "METAL"      # CUDA & co. not offered: skipped


def test_a_gpu_without_ray_tracing_cores_renders_through_cuda():
    """On the H200 the demo rendered in 50.5 s through CUDA and 64.7 s through OptiX (which
    traces in software there): AUTO and GPU take CUDA on such GPUs, OptiX when asked by name."""
    for choice in ("AUTO", "GPU"):
        prefs = FakePreferences(H200)
        device = devices.choose(choice, prefs)
        assert device == devices.Device("GPU", "CUDA", ("NVIDIA H200",))
        assert prefs.compute_device_type == "CUDA"
        assert [d.use for d in prefs.get_devices_for_type("CUDA")] == [True, False]
    assert devices.choose("optix", FakePreferences(H200)).backend == "OPTIX"
    assert devices.choose("AUTO", FakePreferences({"OPTIX": ["NVIDIA H100 80GB HBM3"]})
                          ).backend == "OPTIX"           # no CUDA listed: OptiX still renders
    mixed = {b: ["NVIDIA H100 PCIe", "NVIDIA GeForce RTX 4090"] for b in ("CUDA", "OPTIX")}
    assert devices.choose("AUTO", FakePreferences(mixed)).backend == "OPTIX"


def test_a_backend_by_name_takes_that_backend_alone():
    """`--device cuda` renders through CUDA though OptiX ranks first (to compare them on a GPU
    without RT cores), and a render worker asked with `choice(device)` gets the same device."""
    from nnvis_addon.tools import cli
    prefs = FakePreferences(H200)
    device = devices.choose("cuda", prefs)
    assert device == devices.Device("GPU", "CUDA", ("NVIDIA H200",))
    assert prefs.compute_device_type == "CUDA"
    assert [d.use for d in prefs.get_devices_for_type("CUDA")] == [True, False]
    assert devices.choice(device) == "CUDA" and devices.choice(devices.CPU) == "CPU"
    assert devices.choose(devices.choice(devices.choose("AUTO", prefs)), prefs).backend == "CUDA"
    with pytest.raises(NNVisError, match=r"device hip: Cycles lists no GPU here \(it looked for "
                                         r"HIP\)"):
        devices.choose("hip", prefs)
    assert tuple(c.lower() for c in devices.CHOICES) == cli.DEVICES


def test_cpu_when_asked_or_when_no_gpu_is_listed():
    prefs = FakePreferences(H200)
    assert devices.choose("CPU", prefs) == devices.CPU and prefs.compute_device_type == "NONE"
    none = FakePreferences({})
    assert devices.choose("AUTO", none) == devices.CPU and none.compute_device_type == "NONE"
    with pytest.raises(NNVisError, match="device gpu: Cycles lists no GPU"):
        devices.choose("GPU", none)
    with pytest.raises(NNVisError, match="device 'eevee'"):
        devices.choose("eevee", prefs)


def test_this_machine_renders_on_the_cpu(addon):
    """The real preferences: this machine has no GPU, and asking for one says so."""
    assert devices.choose("AUTO") == devices.CPU
    with pytest.raises(NNVisError, match="lists no GPU"):
        devices.choose("GPU")
    assert devices.cycles_preferences().compute_device_type == "NONE"


def test_presets_follow_the_device(empty_scene, monkeypatch):
    """A render on a GPU takes the GPU presets (final: 32 spp adaptive, light tree off, OIDN on the GPU) and the report
    names the backend; AUTO never picks EEVEE."""
    from nnvis_addon.scene import render, stage
    prefs = FakePreferences(H200)
    monkeypatch.setattr(devices, "cycles_preferences", lambda: prefs)
    assert render.pick_engine("AUTO") == "CYCLES"
    chosen = render.set_engine(empty_scene, "CYCLES", 0, "final")
    cycles = empty_scene.cycles
    assert chosen.backend == "CUDA" and cycles.device == "GPU" and cycles.denoising_use_gpu
    final = stage.GPU_QUALITY["final"]
    assert (cycles.samples, cycles.use_adaptive_sampling, cycles.use_light_tree,
            cycles.use_denoising, cycles.denoising_quality) == \
        (final.samples, True, False, True, "HIGH") == (32, True, False, True, "HIGH")
    assert empty_scene.render.use_persistent_data
    assert str(devices.used(empty_scene)) == "GPU (CUDA: NVIDIA H200)"
    chosen = render.set_engine(empty_scene, "CYCLES", 0, "final", "CPU")
    assert chosen == devices.CPU and cycles.device == "CPU" and not cycles.denoising_use_gpu
    assert cycles.samples == stage.QUALITY["final"].samples
    assert str(devices.used(empty_scene)) == "CPU"
