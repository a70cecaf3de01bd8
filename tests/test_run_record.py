"""A run's record (`scene/run_record.py`) reads what earlier imports stored: a .blend saved by the
code of 2026-12-04 (commit a56dc7e, before the record was one typed view; built in a subprocess
from that commit's own files) opens, its record reads back the values that import chose, and the
run refreshes and rebuilds from them."""
from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess

import numpy as np
import pytest
from test_frame_cost import ROOT, SHIPPED, build_blend

TIER = "blender"

BASELINE = "a56dc7e"          # the code of 2026-12-04, before issue 26's run record


@pytest.fixture(scope="module")
def old_blend(digits_run, tmp_path_factory):
    """(.blend saved by the baseline's import of the first two epochs, the recording, the
    manifest of all its epochs)."""
    tmp = tmp_path_factory.mktemp("old-record")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BASELINE, *SHIPPED],
                             capture_output=True)
    if archive.returncode:
        pytest.skip(f"commit {BASELINE} is not in this checkout's history")
    (tmp / "old").mkdir()
    subprocess.run(["tar", "-x", "-C", str(tmp / "old")], input=archive.stdout, check=True)
    recording = tmp / "recording"
    shutil.copytree(digits_run[0] / "recording", recording)
    manifest = recording / "manifest.json"
    whole = manifest.read_text()
    early = json.loads(whole)
    early["epochs"] = early["epochs"][:2]
    manifest.write_text(json.dumps(early))
    blend = build_blend(tmp / "old", recording, tmp / "old.blend")
    return blend, recording, whole


def test_a_blend_saved_before_the_record_reads_refreshes_and_rebuilds(addon, old_blend):
    import bpy
    from nnvis_addon import framing, load_run
    from nnvis_addon.atlas import as_cells, pack
    from nnvis_addon.scene.rebuild import rebuild_run
    from nnvis_addon.scene.refresh import refresh_run
    from nnvis_addon.scene.run_record import RunRecord, Timing
    from nnvis_addon.scene.runs import runs_in
    from test_live import layer_image, pixels
    blend, recording, whole = old_blend
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    scene = bpy.context.scene
    (collection,) = runs_in(scene)
    record = RunRecord(collection)
    all_epochs = json.loads(whole)["epochs"]
    assert record.source == str(recording) and record.epochs == all_epochs[:2]
    assert record.probe is None and record.probe_index == 0
    assert record.timing == Timing(0.0, scene.render.fps, 1.0)
    assert record.aspect == pytest.approx(64 / 36) and record.frame_end == scene.frame_end
    assert record.blocks == ("auto", "") and record.view == tuple(framing.VIEW_DIRECTION)
    assert [stop[0] for stop in record.stops] and all(stop[1] for stop in record.stops)
    assert record.options.controls == {"Expansion": 2.0, "Morph": 1.0, "Colour Mode": 0}
    assert record.camera_move == record.options.camera_move
    assert record.look == record.options.look and record.orthographic is False
    assert 0 < record.edges_drawn <= record.edges_total and record.design is None
    assert set(record.source_state) and record.source_settling is False

    (recording / "manifest.json").write_text(whole)       # the training went on
    report = refresh_run(collection, scene)
    assert report.added == all_epochs[2:], str(report)
    assert record.epochs == all_epochs
    run = load_run(recording)
    for layer in run.layers:
        atlas = pack(as_cells(np.stack([run.activations(layer.name, e) for e in run.epochs]),
                              layer.is_spatial))
        np.testing.assert_array_equal(pixels(layer_image(collection, layer.name))[..., :3],
                                      atlas.rgb, err_msg=layer.name)

    options = record.options
    fresh = RunRecord(rebuild_run(collection, scene))
    assert fresh.epochs == all_epochs and fresh.source == str(recording)
    assert fresh.options == dataclasses.replace(options, setup_render=False)
    bpy.ops.wm.read_homefile(use_empty=True)
