"""Blender 4.2 LTS: the spine's packaging, import, render and bad-input tests and the render-farm
tests, run by bpy 4.2 in its own virtualenv (`make test` creates .venv-blender42) on checkpoints
this (5.0, TensorFlow) process trained. Tests that need TensorFlow are skipped there."""
from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

TIER = "render"

ROOT = Path(__file__).resolve().parent.parent
PYTHON42 = ROOT / ".venv-blender42" / "bin" / "python"
SUITE = ["test_packaging.py", "test_scene.py", "test_render.py", "test_bad_input.py",
         "test_render_farm.py", "test_scene_edges.py", "test_scene_runs.py"]
NO_TF = "needs TensorFlow, which the Blender 4.2 venv does not have"   # the plugin's skip reason
MUST_PASS = {  # the checks: installs, imports, renders, farm-ready, chunks, MP4
    "test_packaging.test_every_shipped_module_imports_in_the_installed_addon",
    "test_scene.test_epoch_keyframes_one_per_epoch_linear",
    "test_scene.test_atlas_pixels_hold_the_true_activations",
    "test_render.test_first_and_last_epoch_frames_differ",
    "test_render.test_video_has_every_frame",
    "test_render.test_saved_blend_plays_and_renders_without_the_addon",
    "test_bad_input.test_truncated_weights",
    "test_render_farm.test_operator_renders_a_sequence_with_hold_frames",
    "test_render_farm.test_two_processes_render_one_range_into_one_folder",
    "test_render_farm.test_encode_keeps_order_and_colours_and_refuses_gaps",
    "test_scene_edges.test_edges_follow_the_cells_also_without_the_addon",
    "test_scene_runs.test_two_runs_stand_apart_share_the_stage_and_remove_cleanly",
}


def test_suite_passes_on_blender_42(digits_run, tmp_path):
    if not PYTHON42.exists():
        pytest.fail(f"{PYTHON42} is missing: `make test` (or `make venv42`) creates it")
    junit = tmp_path / "junit.xml"
    done = subprocess.run(
        [str(PYTHON42), "-m", "pytest", "--noconftest", "-p", "tests.blender42_plugin",
         "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'basetemp'}", f"--junitxml={junit}",
         *(f"tests/{name}" for name in SUITE)],
        cwd=ROOT, env={**os.environ, "NNVIS_DIGITS_RUN": str(digits_run[0])},
        capture_output=True, text=True, timeout=1200)
    report = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    assert "blender 4.2." in done.stdout, report
    outcomes = {}
    for case in ET.parse(junit).iter("testcase"):
        name = f"{case.get('classname').rpartition('.')[2]}.{case.get('name')}"
        skipped = case.find("skipped")
        outcomes[name] = "passed" if skipped is None else skipped.get("message", "")
    assert MUST_PASS <= {name for name, outcome in outcomes.items() if outcome == "passed"}, report
    assert all(o == "passed" or NO_TF in o for o in outcomes.values()), outcomes
