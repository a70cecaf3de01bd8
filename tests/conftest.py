"""Shared fixtures: an isolated Blender with the extension installed from its zip, and a real
digits training run (TensorFlow) whose checkpoints the import tests read."""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# Blender's user folder must be private and set before anything imports bpy: tests never touch
# ~/.config/blender, and the extension is installed the way a user's Blender installs it.
USER_FOLDER = Path(tempfile.mkdtemp(prefix="nnvis-test-blender-user-"))
os.environ["BLENDER_USER_RESOURCES"] = str(USER_FOLDER)
atexit.register(shutil.rmtree, USER_FOLDER, ignore_errors=True)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# torch imports triton (GPU kernels) when it is installed; triton's LLVM crashes a process that
# already holds Blender's (measured: segfault in triton/knobs.py). The tests run torch on the CPU
# only, so torch is told triton is absent.
sys.modules.setdefault("triton", None)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory):
    from nnvis_addon.tools.packaging import build_extension
    return build_extension(ROOT, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def addon(extension_zip):
    """The extension installed and enabled through Blender's own installer; returns its module."""
    import bpy
    from nnvis_addon.tools.packaging import install_extension
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return install_extension(extension_zip)


@pytest.fixture
def empty_scene(addon):
    """A fresh empty file with the extension still enabled."""
    import bpy
    bpy.ops.wm.read_homefile(use_empty=True)
    return bpy.context.scene


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """A 3-epoch digits training (ModelCheckpoint .weights.h5 per epoch + model.keras + probe)."""
    from nnvis_addon.tools.demo import train_digits
    out = tmp_path_factory.mktemp("digits")
    history = train_digits(out, epochs=3, samples=400, seed=1)
    return out, history


# Tiers: every test file says what it needs with a module constant TIER (a test may say otherwise
# with its own mark), so `pytest -m fast` runs the bpy-free core in well under a minute and CI's
# --durations shows where the rest goes. A file without a tier is an error, not a silent default.
TIERS = {
    "fast": "bpy-free, no model trained: numpy core, readers on written files (seconds)",
    "oracle": "bpy-free, trains or exports a model so TensorFlow/PyTorch/onnxruntime check the values",
    "blender": "builds scenes in bpy (the installed extension), renders nothing",
    "render": "renders frames or videos",
    "slow": "benchmarks as tests: timings, peak memory, per-frame cost",
}


def pytest_configure(config):
    for name, doc in TIERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(item.get_closest_marker(name) for name in TIERS):
            continue
        tier = getattr(item.module, "TIER", None)
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: its file sets no TIER (one of {', '.join(TIERS)})")
        item.add_marker(tier)
