"""Watching a training live: a run imported while its recording (or checkpoint folder) is still
growing takes in the new epochs on Refresh Run, keeps what the user changed, and never reads or
breaks on an epoch that is half written, still settling or damaged.

The trainings run in a subprocess (tests/live_training.py) paced by the test over stdin, so the
recording grows while the training is alive, without timing assumptions.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_overlays import evaluated_vertices, overlay
from test_scene import epoch_fcurve, import_run

TIER = "blender"

HERE = Path(__file__).resolve().parent
pytest.importorskip("keras")


class Training:
    """tests/live_training.py in a subprocess: `until(n)` lets it train until epoch n is
    recorded (or it ends), `finish()` lets it run to its end."""

    def __init__(self, folder, epochs: int, die_at: int = 0):
        env = {**os.environ, "PYTHONPATH": str(HERE.parent), "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.proc = subprocess.Popen([sys.executable, str(HERE / "live_training.py"), str(folder),
                                      str(epochs), str(die_at)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     env=env)
        self.seen = 0
        assert self._line() == "fit"

    def _line(self) -> str:
        return self.proc.stdout.readline().strip()

    def until(self, epoch: int) -> None:
        while self.seen < epoch:
            if self.seen:                       # paused after epoch `seen`: train on
                self.proc.stdin.write("go\n")
                self.proc.stdin.flush()
            line = self._line()
            if not line.startswith("epoch "):
                return                          # it ended (or died)
            self.seen = int(line.split()[1])

    def finish(self) -> int:
        try:
            self.until(1 << 30)
            self.proc.stdin.close()
        except BrokenPipeError:                 # it died already
            pass
        return self.proc.wait(timeout=300)


def animated(collection):
    return [o for o in collection.all_objects if "NNVis" in o.modifiers]


def keyed_epochs(obj) -> list[float]:
    points = epoch_fcurve(obj).keyframe_points
    return [p.co[1] for p in points]


def counter_lines(collection) -> list[str]:
    group = overlay(collection, "counter").modifiers["NNVis"].node_group
    switch = next(n for n in group.nodes if n.bl_idname == "GeometryNodeIndexSwitch")
    return [s.default_value for s in switch.inputs[1:] if s.bl_idname != "NodeSocketVirtual"]


def pixels(image) -> np.ndarray:
    px = np.empty(image.size[0] * image.size[1] * 4, np.float32)
    image.pixels.foreach_get(px)
    return px.reshape(image.size[1], image.size[0], 4)


def layer_image(collection, layer):
    from nnvis_addon.scene.legend import material_of as _material
    obj = collection.objects[f"{collection.name}:{layer}"]
    return _material(obj).node_tree.nodes["nnvis_tex_a"].image


def edge_values_by_pair(obj) -> dict:
    """(source cell, target cell) → (epochs, colour modes) values of an edges object's atlas."""
    from nnvis_addon.model.edges import EDGE_VALUE_MODES
    from nnvis_addon.scene.legend import material_of as _material
    from nnvis_addon.scene.layers import atlas_values
    ends = []
    for name in ("nnvis_src", "nnvis_dst"):
        data = obj.data.attributes[name].data
        values = np.empty(len(data), np.int32)
        data.foreach_get("value", values)
        ends.append(values)
    n, modes = len(ends[0]), len(EDGE_VALUE_MODES)
    values = atlas_values(_material(obj))[:, :modes * n, 0, 0].reshape(-1, modes, n)
    return {(int(s), int(d)): values[:, :, k] for k, (s, d) in enumerate(zip(*ends))}


def test_a_live_keras_training_fills_in_on_refresh_and_renders_without_the_addon(
        empty_scene, tmp_path):
    import bpy
    from nnvis_addon import load_run
    from nnvis_addon.atlas import as_cells, pack
    from nnvis_addon.scene.camera_moves import epoch_frames
    from nnvis_addon.scene import compat
    from nnvis_addon.scene.refresh import newest_frame
    folder = tmp_path / "recording"
    training = Training(folder, epochs=5)
    training.until(2)                           # epochs 0, 1, 2 recorded; the training waits
    spread = import_run(folder)                 # the default timing: 12 s for the whole training
    fixed = import_run(folder, frames_per_epoch=6)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 96, 54
    range_before, spread_end = (scene.frame_start, scene.frame_end), spread["nnvis_frame_end"]
    spread_last = epoch_frames(spread)[-1]
    assert list(fixed["nnvis_epochs"]) == [0, 1, 2]
    # what the user changes stays theirs: a look, a hidden overlay, a keyed control, the camera
    assert bpy.ops.nnvis.apply_look(look="paper") == {"FINISHED"}   # the active run: `fixed`
    assert bpy.ops.nnvis.show_overlay(kind="probe", show=False) == {"FINISHED"}
    conv = fixed.objects[f"{fixed.name}:conv"]
    from test_scene import modifier_input
    mod, morph = modifier_input(conv, "Morph")
    mod[morph] = 0.25
    conv.keyframe_insert(f'modifiers["NNVis"]["{morph}"]', frame=7)
    scene.camera.location.z += 0.5
    camera_at = tuple(scene.camera.location)
    assert bpy.ops.nnvis.refresh_run() == {"CANCELLED"}      # nothing new yet: a no-op

    training.until(3)                           # still training: epoch 3 arrives
    assert bpy.ops.nnvis.refresh_run(collection=fixed.name) == {"FINISHED"}
    assert list(fixed["nnvis_epochs"]) == [0, 1, 2, 3]
    assert training.finish() == 0               # epochs 4 and 5, and the training ends
    assert bpy.ops.nnvis.refresh_run() == {"FINISHED"}

    run = load_run(folder)
    assert run.epochs == [0, 1, 2, 3, 4, 5]
    for collection in (spread, fixed):
        assert list(collection["nnvis_epochs"]) == run.epochs
        for obj in animated(collection):                   # every epoch keyed on every layer
            assert keyed_epochs(obj) == list(range(6)), obj.name
        for layer in run.layers:                           # and in every atlas, exactly
            atlas = pack(as_cells(np.stack([run.activations(layer.name, e) for e in run.epochs]),
                                  layer.is_spatial))
            np.testing.assert_array_equal(pixels(layer_image(collection, layer.name))[..., :3],
                                          atlas.rgb)
        lines = counter_lines(collection)
        assert len(lines) == 6 and lines[-1].startswith("Epoch 5 / 5   loss ")
        assert f"loss {run.metrics[5]['loss']:.3f}" in lines[-1]
    # timing: the default re-spreads the epochs over the same 12 s; a fixed spacing grows the range
    assert spread["nnvis_frame_end"] == spread_end
    np.testing.assert_allclose(np.diff(epoch_frames(fixed)), 6)
    assert scene.frame_end == fixed["nnvis_frame_end"] > range_before[1]
    assert epoch_frames(spread)[-1] == pytest.approx(spread_last)
    # the user's changes survived
    assert tuple(scene.camera.location) == pytest.approx(camera_at)
    assert overlay(fixed, "probe").hide_render
    assert fixed.get("nnvis_look") == "paper"
    keys = [f for f in compat.fcurves_of(conv) if morph in f.data_path]
    assert len(keys) == 1 and keys[0].keyframe_points[0].co[1] == pytest.approx(0.25)
    # the overlays show the last epoch at the newest frame: counter, marker at the curves' end
    last = newest_frame(fixed)
    scene.frame_set(last)
    curves = overlay(fixed, "curves")
    (marker,) = [o for o in fixed.objects if o.get("nnvis_overlay") == "marker"]
    width = max(v.co.x for v in curves.data.vertices)
    assert marker.location.x - curves.location.x == pytest.approx(width, abs=1e-4)
    assert len(evaluated_vertices(overlay(fixed, "counter"))) > 0
    # the saved file plays the whole training and renders on a machine without nnvis
    blend = tmp_path / "live.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True)
    done = subprocess.run([sys.executable, str(HERE / "blend_without_addon.py"), str(blend),
                           str(last), str(tmp_path / "last.png")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.split("REPORT", 1)[1])
    assert not any("nnvis" in a for a in report["addons"])
    layer_keys = {report["keyframes"][o.name] for o in animated(spread) if "nnvis_layer" in o}
    assert layer_keys == {6}
    assert (tmp_path / "last.png").stat().st_size > 0


def test_a_half_written_epoch_is_named_and_the_complete_ones_stay(empty_scene, tmp_path):
    import bpy
    folder = tmp_path / "recording"
    training = Training(folder, epochs=5, die_at=3)
    training.until(1)
    collection = import_run(folder)
    assert training.finish() == -9             # SIGKILLed while writing epoch 3
    assert (folder / "epochs" / ".tmp-epoch_000003").is_dir()
    from nnvis_addon.scene.refresh import refresh_run
    report = refresh_run(collection)
    assert report.added == [2]
    assert list(collection["nnvis_epochs"]) == [0, 1, 2]
    (note,) = report.notes
    assert "epoch 3 is half written" in note and ".tmp-epoch_000003" in note
    assert all(keyed_epochs(o) == [0, 1, 2] for o in animated(collection))
    # the operator says so too, and a second refresh changes nothing
    assert bpy.ops.nnvis.refresh_run() == {"CANCELLED"}
    assert refresh_run(collection).added == []


def test_a_checkpoint_folder_takes_a_new_file_once_it_settles(digits_run, empty_scene, tmp_path):
    import bpy
    from nnvis_addon.scene.animation import retime
    from nnvis_addon.scene.camera_moves import epoch_frames
    from nnvis_addon.scene.refresh import follow_step, newest_frame, refresh_run
    source, _ = digits_run
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for name in ("model.keras", "probe.npy", "epoch_00.weights.h5", "epoch_01.weights.h5"):
        shutil.copy(source / name, folder / name)
    collection = import_run(folder, frames_per_epoch=4)
    assert list(collection["nnvis_epochs"]) == [0, 1]
    before = pixels(layer_image(collection, "conv1")).copy()
    scene = bpy.context.scene               # re-timed (as Render Video does): the refresh keeps it
    scene.frame_start, scene.frame_end = retime(collection, 3, hold_first=2, hold_last=5)

    shutil.copy(source / "epoch_02.weights.h5", folder / "epoch_02.weights.h5")
    first = refresh_run(collection)                  # new: not read before its size holds
    assert first.added == [] and "epoch_02.weights.h5" in first.notes[0]
    scene.frame_set(1)
    (second,) = follow_step(scene)                   # Follow Training's tick: refresh, playhead
    assert second.added == [2] and second.notes == []
    assert scene.frame_current == newest_frame(collection) == int(epoch_frames(collection)[-1])
    assert list(epoch_frames(collection)) == [3, 6, 9] and scene.frame_end == 9 + 5
    assert list(collection["nnvis_epochs"]) == [0, 1, 2]
    after = pixels(layer_image(collection, "conv1"))
    assert after.shape[0] == before.shape[0] * 3 // 2
    np.testing.assert_array_equal(after[:before.shape[0]], before)   # epochs 0, 1 as they were
    assert all(keyed_epochs(o) == [0, 1, 2] for o in animated(collection))
    # nothing new: a no-op that touches nothing
    state = collection["nnvis_source_state"]
    assert refresh_run(collection).added == [] and collection["nnvis_source_state"] == state
    assert bpy.ops.nnvis.refresh_run() == {"CANCELLED"}

    # a damaged new checkpoint is named and left out, the scene keeps its epochs
    (folder / "epoch_03.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 500)
    notes = refresh_run(collection).notes + refresh_run(collection).notes
    assert any("epoch_03.weights.h5" in n for n in notes[1:]), notes
    assert list(collection["nnvis_epochs"]) == [0, 1, 2]
    # the folder gone: reported, nothing changes
    shutil.rmtree(folder)
    (gone,) = refresh_run(collection).notes
    assert "gone" in gone and list(collection["nnvis_epochs"]) == [0, 1, 2]


def test_follow_training_stops_when_another_file_is_loaded(addon, empty_scene):
    import bpy
    live = sys.modules[f"{addon}.nnvis_addon.scene.follow"]
    assert bpy.ops.nnvis.follow_training() == {"FINISHED"}
    assert live.following() and live._tick() == live.INTERVAL      # a tick with no runs
    bpy.ops.wm.read_homefile(use_empty=True)
    assert not live.following()
    assert bpy.ops.nnvis.follow_training() == {"FINISHED"} and live.following()
    assert bpy.ops.nnvis.follow_training() == {"FINISHED"} and not live.following()
    # disabling the add-on stops it too, and leaves no handler behind
    assert bpy.ops.nnvis.follow_training() == {"FINISHED"} and live.following()
    bpy.ops.preferences.addon_disable(module=addon)
    try:
        assert not live.following()
        assert live.stop not in bpy.app.handlers.load_pre
    finally:
        bpy.ops.preferences.addon_enable(module=addon)
    assert hasattr(bpy.ops.nnvis, "refresh_run") and bpy.ops.nnvis.refresh_run.poll()


def test_a_pytorch_recording_fills_in_on_refresh(empty_scene, tmp_path):
    """The PyTorch Recorder writes the same format: a run imported after 2 epochs takes in the
    next 2 (the training here runs in this process, between the refreshes)."""
    torch = pytest.importorskip("torch")
    from sklearn.datasets import load_digits
    from torch import nn
    from nnvis_addon import load_run
    from nnvis_addon.atlas import as_cells, pack
    from nnvis_addon.record.torch import Recorder
    from nnvis_addon.scene.refresh import refresh_run
    torch.manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.images[:256, None] / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target[:256])
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 3 * 3, 10))
    optimizer = torch.optim.Adam(model.parameters(), 0.02)
    recorder = Recorder(model, tmp_path / "recording", x[:4], labels=y[:4].numpy())

    def train(epoch):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        recorder.epoch_end(epoch, loss=loss)

    for epoch in (1, 2):
        train(epoch)
    collection = import_run(tmp_path / "recording")
    assert list(collection["nnvis_epochs"]) == [1, 2]
    for epoch in (3, 4):
        train(epoch)
    recorder.close()
    assert refresh_run(collection).added == [3, 4]
    run = load_run(tmp_path / "recording")
    assert list(collection["nnvis_epochs"]) == run.epochs == [1, 2, 3, 4]
    assert all(keyed_epochs(o) == [0, 1, 2, 3] for o in animated(collection))
    for layer in run.layers:
        atlas = pack(as_cells(np.stack([run.activations(layer.name, e) for e in run.epochs]),
                              layer.is_spatial))
        np.testing.assert_array_equal(pixels(layer_image(collection, layer.name))[..., :3],
                                      atlas.rgb)
    assert counter_lines(collection)[-1].startswith("Epoch 4 / 4   loss ")


def test_a_damaged_recorded_epoch_is_named_and_left_out(digits_run, empty_scene, tmp_path):
    from nnvis_addon.scene.refresh import refresh_run
    source, _ = digits_run
    folder = tmp_path / "recording"
    shutil.copytree(source / "recording", folder)
    manifest = folder / "manifest.json"
    whole = manifest.read_text()
    early = json.loads(whole)
    early["epochs"] = [0, 1]
    manifest.write_text(json.dumps(early))
    collection = import_run(folder)
    manifest.write_text(whole)                       # epochs 2 and 3 listed; 3 is damaged
    damaged = folder / "epochs" / "epoch_000003" / "predictions.npy"
    damaged.write_bytes(damaged.read_bytes()[:-8])
    report = refresh_run(collection)
    assert report.added == [2] and list(collection["nnvis_epochs"]) == [0, 1, 2]
    (note,) = report.notes
    assert "epoch 3 left out" in note and "predictions.npy" in note


def test_a_run_with_folded_blocks_refreshes_like_a_new_import(empty_scene, tmp_path):
    """Blocks folded at the import (a residual block drawn as one unit, its edges composed)
    refresh through the same folding: every atlas equals a fresh import's."""
    import bpy
    import keras
    from nnvis_addon.record import Recorder
    from nnvis_addon.scene.legend import material_of as _material
    from nnvis_addon.scene.refresh import refresh_run
    from sklearn.datasets import load_digits
    keras.utils.set_random_seed(0)
    digits = load_digits()
    x, y = (digits.images[:200, ..., None] / 16.0).astype("float32"), digits.target[:200]
    layers = keras.layers
    inp = keras.Input((8, 8, 1), name="pixels")
    stem = layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inp)
    inner = layers.Conv2D(4, 3, padding="same", activation="relu", name="res_a")(stem)
    inner = layers.Conv2D(4, 3, padding="same", name="res_b")(inner)
    merged = layers.Add(name="res_add")([stem, inner])
    out = layers.Dense(10, activation="softmax", name="out")(
        layers.GlobalAveragePooling2D(name="gap")(merged))
    model = keras.Model(inp, out, name="residual")
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
    recorder = Recorder(tmp_path / "recording", x[:2], labels=y[:2])
    model.fit(x, y, epochs=1, batch_size=100, verbose=0, callbacks=[recorder])
    collection = import_run(tmp_path / "recording", blocks="folded")
    assert any(o.get("nnvis_kind") == "Block" for o in collection.objects)
    model.fit(x, y, epochs=2, batch_size=100, verbose=0, callbacks=[recorder])  # epochs 2, 3
    report = refresh_run(collection)
    assert report.added == [2, 3], str(report)
    fresh = import_run(tmp_path / "recording", blocks="folded")
    compared = 0
    for obj in collection.objects:
        if "NNVis" not in obj.modifiers or not ("nnvis_layer" in obj or "nnvis_edges" in obj):
            continue
        twin = fresh.objects[f"{fresh.name}:{obj.name.split(':', 1)[1]}"]
        if "nnvis_layer" in obj:
            np.testing.assert_array_equal(
                *(pixels(_material(o).node_tree.nodes["nnvis_tex_a"].image) for o in (obj, twin)),
                err_msg=obj.name)
            continue
        if _material(obj).name.endswith(":weightless links"):   # the run's shared grey one
            assert _material(twin).name.endswith(":weightless links"), obj.name
            continue
        # edges keep the import's set (a block draws each output's strongest inputs, which
        # the new epochs may change): the edges both draw carry the same values
        ours, theirs = edge_values_by_pair(obj), edge_values_by_pair(twin)
        for pair in set(ours) & set(theirs):
            np.testing.assert_array_equal(ours[pair], theirs[pair], err_msg=f"{obj.name} {pair}")
            compared += 1
    assert compared > 20
    assert bpy.ops.nnvis.refresh_run(collection=collection.name) == {"CANCELLED"}
