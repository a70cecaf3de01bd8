"""Build the extension zip and install it into an isolated Blender, the way a user's Blender does.

`build_extension` fetches the bundled wheel (pyfive), then runs the extension builder and validator
that ship inside the bpy wheel. `start_blender` points Blender's user folder at a private directory
(`BLENDER_USER_RESOURCES`, set before bpy is imported) so nothing touches ~/.config/blender, and
`install_extension` goes through Blender's own installer (`extensions.package_install_files`).
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from .errors import NNVisError

ROOT = Path(__file__).resolve().parent.parent   # the source checkout (extension root)
EXTENSION_ID = "nnvis"


def manifest(root: Path = ROOT) -> dict:
    with open(root / "blender_manifest.toml", "rb") as f:
        return tomllib.load(f)


def blender_ext_script() -> Path:
    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        raise NNVisError("bpy is not installed: pip install bpy==5.0.1 (or run `make demo`)")
    base = Path(spec.origin).parent
    found = sorted(base.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise NNVisError(f"{base}: the bpy wheel has no extension builder (blender_ext.py)")
    return found[-1]


def fetch_wheels(root: Path = ROOT) -> None:
    """Download the manifest's wheels that are not in wheels/ yet (pure-Python, from PyPI)."""
    for wheel in manifest(root).get("wheels", []):
        target = root / wheel
        if target.exists():
            continue
        name, version = target.name.split("-")[:2]
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", f"{name}=={version}", "-d", str(target.parent)],
                       check=True)


def build_extension(root: Path = ROOT, dist: Path | None = None) -> Path:
    """Build and validate `dist/nnvis-<version>.zip`; returns its path."""
    dist = Path(dist or root / "dist")
    dist.mkdir(parents=True, exist_ok=True)
    fetch_wheels(root)
    out = dist / f"{EXTENSION_ID}-{manifest(root)['version']}.zip"
    script = str(blender_ext_script())
    for args in (["build", "--source-dir", str(root), "--output-filepath", str(out)],
                 ["validate", str(out)]):
        done = subprocess.run([sys.executable, script, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise NNVisError(f"extension {args[0]} failed:\n{done.stdout}{done.stderr}")
    return out


def start_blender(user_folder: Path):
    """Import bpy with its user folder at `user_folder` (must run before bpy is first imported)."""
    if "bpy" not in sys.modules:
        os.environ["BLENDER_USER_RESOURCES"] = str(Path(user_folder).resolve())
    elif os.environ.get("BLENDER_USER_RESOURCES") != str(Path(user_folder).resolve()):
        raise NNVisError("bpy was imported before its user folder was set")
    import bpy
    return bpy


def install_extension(zip_path: Path) -> str:
    """Install and enable the zip through Blender's own installer; returns the add-on module name."""
    import bpy
    module = f"bl_ext.user_default.{EXTENSION_ID}"
    if module in bpy.context.preferences.addons:
        return module
    result = bpy.ops.extensions.package_install_files(
        filepath=str(zip_path), repo="user_default", enable_on_install=True)
    if result != {"FINISHED"} or module not in bpy.context.preferences.addons:
        raise NNVisError(f"{zip_path}: Blender did not install/enable the extension ({result})")
    return module
