"""The extension zip: built, validated, installed by Blender's own installer, wired into the UI."""
from __future__ import annotations

import importlib
import zipfile
from pathlib import Path

from import_graph import graph, reached

TIER = "blender"

ROOT = Path(__file__).resolve().parent.parent


def test_zip_holds_the_extension_and_its_wheel_only(extension_zip):
    names = zipfile.ZipFile(extension_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "wheels/pyfive-0.9.0-py3-none-any.whl" in names
    assert "nnvis_addon/run.py" in names and "operators/import_checkpoint.py" in names
    assert not [n for n in names if n.startswith(("tests/", "docs/", ".venv/", "dist/"))]
    assert not [n for n in names if "__pycache__" in n]


def test_staged_files_are_what_blenders_builder_ships(extension_zip):
    """packaging stages and hashes the files the manifest's exclusions leave: exactly the zip's
    (less the bundled wheel), so a cached zip is rebuilt when, and only when, a shipped file
    changes."""
    from nnvis_addon.tools.packaging import source_files
    names = {n for n in zipfile.ZipFile(extension_zip).namelist() if not n.startswith("wheels/")}
    assert {p.relative_to(ROOT).as_posix() for p in source_files()} == names


def test_the_zip_holds_the_modules_the_addon_imports(extension_zip):
    """Follow the imports (also those inside functions) from the extension's __init__.py through
    the checkout: every module reached is in the zip, so leaving the tools out broke nothing, and
    every module in the zip is reached, so no tool ships."""
    names = set(zipfile.ZipFile(extension_zip).namelist())
    seen = reached(graph(), "__init__.py", packages=True)
    assert "nnvis_addon/scene/build.py" in seen and "operators/render_video.py" in seen
    assert not seen - names, f"the add-on imports {sorted(seen - names)}, which the zip leaves out"
    shipped = {n for n in names if n.endswith(".py")}
    assert not shipped - seen, f"the zip holds {sorted(shipped - seen)}, which the add-on never imports"


def test_every_shipped_module_imports_in_the_installed_addon(addon, extension_zip):
    names = [n for n in zipfile.ZipFile(extension_zip).namelist() if n.endswith(".py")]
    for name in names:
        module = name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        importlib.import_module(addon if module == "__init__" else f"{addon}.{module}")
    assert len(names) > 40


def test_file_import_menu_has_the_importer(addon):
    import bpy
    draw_funcs = [f.__name__ for f in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()]
    assert "menu_import" in draw_funcs
