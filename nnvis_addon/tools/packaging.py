"""Build the extension zip and install it into an isolated Blender, the way a user's Blender does.

`build_extension` copies the shipped files and the bundled wheel (pyfive, rebuilt from the installed
copy: no network) into a private staging folder, runs the extension builder and validator that ship
inside the bpy wheel there, and renames the zip into the per-user cache. `start_blender` points
Blender's user folder at a private directory (`BLENDER_USER_RESOURCES`, set before bpy is
imported) so nothing touches ~/.config/blender, and
`install_extension` goes through Blender's own installer (`extensions.package_install_files`).
"""
from __future__ import annotations

import atexit
import base64
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import NNVisError

ROOT = Path(__file__).resolve().parents[2]   # the source checkout (extension root)
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


def source_files(root: Path = ROOT) -> list[Path]:
    """The checkout's files the zip is built from: what the manifest's `paths_exclude_pattern` (the
    one statement of what ships) leaves, read as Blender's builder reads it, less the root's
    wheels/ (`bundled_wheel` stages the manifest's wheels)."""
    patterns = manifest(root).get("build", {}).get("paths_exclude_pattern", [])
    found = []
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not _excluded(rel / d, True, patterns)
                         and (rel / d).as_posix() != "wheels")
        found += [Path(folder, f) for f in sorted(files) if not _excluded(rel / f, False, patterns)]
    return found


def _excluded(path: Path, is_dir: bool, patterns: list[str]) -> bool:
    """gitignore matching as the builder does it: `/a/b` is anchored at the root, a pattern without
    a slash matches a name at any depth, a trailing slash matches folders only."""
    for pattern in patterns:
        if pattern.endswith("/") and not is_dir:
            continue
        pattern = pattern.rstrip("/")
        if "/" in pattern:          # anchored: the whole path must match
            if PurePosixPath("/", path).match("/" + pattern.lstrip("/")):
                return True
        elif PurePosixPath(path).match(pattern):      # the last name matches
            return True
    return False


def bundled_wheel(wheel: str, into: Path, root: Path = ROOT) -> Path:
    """The manifest's `wheel` in `into`: copied from the checkout's wheels/ if there, else rebuilt
    from the installed distribution's files (a pure-Python wheel is its files plus dist-info), so
    building never needs the network."""
    from importlib import metadata
    name, version = Path(wheel).name.split("-")[:2]
    target = into / Path(wheel).name
    target.parent.mkdir(parents=True, exist_ok=True)
    if (root / wheel).is_file():
        shutil.copyfile(root / wheel, target)
        return target
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        dist = None
    if dist is None or dist.version != version:
        raise NNVisError(f"{wheel}: not in {root / 'wheels'} and {name}=={version} is not "
                         f"installed (pip install {name}=={version})")
    info = f"{name}-{version}.dist-info/"
    records = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for file in dist.files:
            arc = file.as_posix()
            if arc.startswith("..") or "__pycache__" in arc or arc in (info + "RECORD",
                                                                        info + "INSTALLER"):
                continue
            data = file.locate().read_bytes()
            z.writestr(arc, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{arc},sha256={digest},{len(data)}")
        z.writestr(info + "RECORD", "\n".join(records + [info + "RECORD,,"]) + "\n")
    return target


def source_hash(root: Path = ROOT) -> str:
    """Hash of the shipped files' names and bytes: a cached zip is reused only for this source."""
    h = hashlib.sha256()
    for path in source_files(root):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """The per-user cache ($XDG_CACHE_HOME/nnvis, else ~/.cache/nnvis)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nnvis"


def build_extension(root: Path = ROOT, dist: Path | None = None) -> Path:
    """Build and validate `nnvis-<version>.zip` into `dist` (default: the per-user cache, reusing
    a zip built from the same source); returns its path. The build runs in a private staging copy
    and the zip is renamed into place, so nothing is written next to the package and concurrent
    builds never see each other's half-written files."""
    version = manifest(root)["version"]
    if dist is None:
        dist, name = cache_dir(), f"{EXTENSION_ID}-{version}-{source_hash(root)}.zip"
        if (dist / name).is_file():
            return dist / name
    else:
        name = f"{EXTENSION_ID}-{version}.zip"
    dist = Path(dist)
    dist.mkdir(parents=True, exist_ok=True)
    script = str(blender_ext_script())
    with tempfile.TemporaryDirectory(prefix=".nnvis-build-", dir=dist) as tmp:
        stage = Path(tmp) / "source"
        for path in source_files(root):
            (stage / path.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, stage / path.relative_to(root))
        for wheel in manifest(root).get("wheels", []):
            bundled_wheel(wheel, (stage / wheel).parent, root)
        built = Path(tmp) / name
        for args in (["build", "--source-dir", str(stage), "--output-filepath", str(built)],
                     ["validate", str(built)]):
            done = subprocess.run([sys.executable, script, *args], capture_output=True, text=True)
            if done.returncode != 0:
                raise NNVisError(f"extension {args[0]} failed:\n{done.stdout}{done.stderr}")
        os.replace(built, dist / name)
    return dist / name


def start_blender(user_folder: Path | None = None):
    """Import bpy with its user folder at `user_folder` (must run before bpy is first imported);
    None: a private folder for this process, deleted when it exits, so concurrent renders never
    share Blender's extension repository or its lock."""
    if user_folder is None:
        if "bpy" in sys.modules:      # already up (in its own folder): nothing left to choose
            return sys.modules["bpy"]
        user_folder = tempfile.mkdtemp(prefix="nnvis-blender-user-")
        atexit.register(shutil.rmtree, user_folder, ignore_errors=True)
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
