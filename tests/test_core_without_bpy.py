"""The numpy core imports where bpy, TensorFlow and PyTorch cannot: plain Python, a render-farm
node, a CI box without Blender. Only `scene/` needs bpy, only the Recorders need Keras or torch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TIER = "oracle"

ROOT = Path(__file__).resolve().parent.parent
BLOCKED = ("bpy", "bmesh", "mathutils", "gpu", "tensorflow", "keras", "torch", "onnx",
           "onnxruntime")
NEEDS_BPY = ("nnvis_addon.scene",)
NEEDS_TRAINING = ("nnvis_addon.record.recorder", "nnvis_addon.record.from_checkpoints",
                  "nnvis_addon.record.subclassed", "nnvis_addon.record.torch")

BLOCK = """
import importlib, json, sys
blocked, given = json.loads(sys.argv[1])

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is blocked in this process")

sys.meta_path.insert(0, Block())
try:
    import bpy
except ImportError:
    pass
else:
    raise SystemExit("bpy imported despite the block")
"""
CHILD = BLOCK + """
modules = given
failed = {}
for name in modules:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        failed[name] = str(exc)
print(json.dumps({"failed": failed, "loaded": sorted(m for m in sys.modules
                                                      if m.split(".")[0] in blocked)}))
"""


def core_modules() -> list[str]:
    """Every module of the library except the bpy side and the Recorders."""
    names = []
    for path in sorted((ROOT / "nnvis_addon").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not name.startswith(NEEDS_BPY + NEEDS_TRAINING):
            names.append(name)
    return names


def test_core_packages_import_without_bpy_tensorflow_or_torch():
    modules = core_modules()
    for core in ("io", "model", "layout", "bundling", "record", "stages", "framing", "options",
                 "run", "probe", "design_stack", "colormaps", "atlas", "plan"):
        assert f"nnvis_addon.{core}" in modules
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps([BLOCKED, modules])],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"failed": {}, "loaded": []}


PLAN = BLOCK + """
from nnvis_addon import load_run
from nnvis_addon.options import SceneOptions
from nnvis_addon.plan import plan_scene
plan = plan_scene(load_run(given), SceneOptions(max_edges=300))
print(json.dumps({"layers": [p.layer.name for p in plan.layers if p.atlas is not None],
                  "connections": [[c.src, c.dst, len(c.edges)] for c in plan.connections],
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in blocked)}))
"""


def test_a_scene_is_planned_without_bpy_tensorflow_or_torch(digits_run):
    """`plan_scene` reads a checkpoint folder and computes every layer's atlas and every
    connection's edges in a process where bpy and TensorFlow cannot load."""
    folder, _ = digits_run
    done = subprocess.run([sys.executable, "-c", PLAN, json.dumps([BLOCKED, str(folder)])],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    layers = ["digit", "conv1", "pool1", "conv2", "pool2", "flatten", "dense", "classes"]
    assert result["layers"] == layers and result["loaded"] == []
    assert [c[:2] for c in result["connections"]] == list(map(list, zip(layers, layers[1:])))
    assert all(0 < c[2] <= 300 for c in result["connections"])
