"""The numpy core imports where bpy, TensorFlow and PyTorch cannot: plain Python, a render-farm
node, a CI box without Blender. Only `scene/` needs bpy, only the Recorders need Keras or torch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCKED = ("bpy", "bmesh", "mathutils", "gpu", "tensorflow", "keras", "torch", "onnx",
           "onnxruntime")
NEEDS_BPY = ("nnvis_addon.scene",)
NEEDS_TRAINING = ("nnvis_addon.record.recorder", "nnvis_addon.record.from_checkpoints",
                  "nnvis_addon.record.torch")

CHILD = """
import importlib, json, sys
blocked, modules = json.loads(sys.argv[1])

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
                 "run", "probe", "design", "colormaps", "atlas"):
        assert f"nnvis_addon.{core}" in modules
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps([BLOCKED, modules])],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"failed": {}, "loaded": []}
