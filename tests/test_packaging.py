"""The extension zip: built, validated, installed by Blender's own installer, wired into the UI."""
from __future__ import annotations

import zipfile


def test_zip_holds_the_extension_and_its_wheel_only(extension_zip):
    names = zipfile.ZipFile(extension_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "wheels/pyfive-0.9.0-py3-none-any.whl" in names
    assert "nnvis_addon/run.py" in names and "operators/import_checkpoint.py" in names
    assert not [n for n in names if n.startswith(("tests/", "docs/", ".venv/", "dist/"))]
    assert not [n for n in names if "__pycache__" in n]


def test_installed_through_blenders_installer(addon):
    import bpy
    assert addon == "bl_ext.user_default.nnvis"
    assert addon in bpy.context.preferences.addons
    # the operator and the sidebar come from the installed copy, not from this checkout
    op_class = bpy.types.Operator.bl_rna_get_subclass_py("IMPORT_SCENE_OT_nnvis_checkpoint")
    assert op_class.__module__.startswith(addon)
    panel = bpy.types.Panel.bl_rna_get_subclass_py("NNVIS_PT_run")
    assert panel.bl_category == "NNVis"
    # Blender unpacked the bundled wheel into its extensions' own site-packages
    from conftest import USER_FOLDER
    assert list(USER_FOLDER.glob("extensions/.local/lib/python3.*/site-packages/pyfive/__init__.py"))


def test_file_import_menu_has_the_importer(addon):
    import bpy
    draw_funcs = [f.__name__ for f in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()]
    assert "menu_import" in draw_funcs
