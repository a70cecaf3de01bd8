"""Bad input: one clear error naming the file, CANCELLED, and the user's scene exactly as before."""
from __future__ import annotations

import shutil

import pytest

from nnvis_addon import NNVisError, load_run

TIER = "blender"


def digest():
    """Every datablock by name plus the scene settings an import may touch."""
    import bpy
    from nnvis_addon.scene.transaction import KINDS, SCENE_SETTINGS
    blocks = {kind: sorted(b.name for b in getattr(bpy.data, kind)) for kind in KINDS}
    scene = bpy.context.scene
    settings = {name: repr(getattr(scene, name)) for name in SCENE_SETTINGS}
    return blocks, settings, scene.render.engine


@pytest.fixture
def user_scene(empty_scene):
    """A scene with the user's own things in it."""
    import bpy
    mesh = bpy.data.meshes.new("user mesh")
    obj = bpy.data.objects.new("user object", mesh)
    empty_scene.collection.objects.link(obj)
    empty_scene.frame_end = 77
    return empty_scene


def expect_cancelled(path, match):
    import bpy
    before = digest()
    with pytest.raises(RuntimeError, match=match):
        bpy.ops.import_scene.nnvis_checkpoint(filepath=str(path), all_epochs=False)
    assert digest() == before


def test_missing_file(user_scene, tmp_path):
    expect_cancelled(tmp_path / "nowhere.keras", "nowhere.keras")


def test_truncated_keras(user_scene, digits_run, tmp_path):
    folder, _ = digits_run
    data = (folder / "model.keras").read_bytes()
    (tmp_path / "half.keras").write_bytes(data[: len(data) // 3])
    expect_cancelled(tmp_path / "half.keras", "half.keras")


def test_truncated_weights(user_scene, digits_run, tmp_path):
    folder, _ = digits_run
    shutil.copy(folder / "model.keras", tmp_path / "model.keras")
    data = (folder / "epoch_01.weights.h5").read_bytes()
    (tmp_path / "epoch_01.weights.h5").write_bytes(data[: len(data) // 2])
    expect_cancelled(tmp_path / "epoch_01.weights.h5", "epoch_01.weights.h5")


def test_not_a_checkpoint(user_scene, tmp_path):
    (tmp_path / "notes.h5").write_bytes(b"just some text, not HDF5" * 10)
    expect_cancelled(tmp_path / "notes.h5", "notes.h5")


def test_weights_that_do_not_fit_the_architecture(user_scene, digits_run, tmp_path):
    import keras
    folder, _ = digits_run
    shutil.copy(folder / "model.keras", tmp_path / "model.keras")
    other = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Conv2D(4, 5, name="conv1"),
                              keras.layers.Flatten(), keras.layers.Dense(10)])
    other.save_weights(tmp_path / "epoch_01.weights.h5")
    expect_cancelled(tmp_path / "epoch_01.weights.h5", "epoch_01.weights.h5")


def test_epochs_whose_shapes_differ(user_scene, digits_run, tmp_path):
    import keras
    folder, _ = digits_run
    shutil.copy(folder / "model.keras", tmp_path / "model_01.keras")
    from nnvis_addon.tools.demo import build_model
    wider = build_model()
    config = wider.get_config()
    for layer in config["layers"]:
        layer.pop("build_config", None)
    config["layers"][-2]["config"]["units"] = 48
    keras.Sequential.from_config(config).save(tmp_path / "model_02.keras")
    with pytest.raises(NNVisError, match="model_02.keras"):
        load_run(tmp_path)
    import bpy
    before = digest()
    with pytest.raises(RuntimeError, match="model_02.keras"):
        bpy.ops.import_scene.nnvis_checkpoint(filepath=str(tmp_path))
    assert digest() == before


def test_failure_while_building_removes_everything(user_scene, digits_run, monkeypatch):
    """A build that fails halfway (after layers, at the edges) leaves no datablock behind."""
    from nnvis_addon.scene import build as build_mod, build_scene
    folder, _ = digits_run
    run = load_run(folder)
    before = digest()

    def boom(*args, **kwargs):
        raise NNVisError("injected failure")

    monkeypatch.setattr(build_mod.edges_mod, "edge_object", boom)
    with pytest.raises(NNVisError, match="injected"):
        build_scene(run)
    assert digest() == before


def test_a_run_too_big_for_memory_is_refused_up_front(digits_run):
    from nnvis_addon import budget
    from nnvis_addon.io.keras_files import read_network
    folder, _ = digits_run
    need = budget.estimate(read_network(folder / "model.keras"), 4, 1)["total"]
    with pytest.raises(NNVisError, match=r"needs about .* MB .* fewer epochs"):
        load_run(folder, memory_limit=need // 2)
    assert load_run(folder, memory_limit=need * 2).epochs == [0, 1, 2, 3]


@pytest.mark.parametrize("stage", ["layers.layer_object", "edges_mod.edge_object",
                                   "hud.build_overlays", "labels_mod.add_labels",
                                   "animation.key_epoch", "camera_moves.apply_move",
                                   "stage.render_settings"])
def test_failure_at_any_stage_leaves_the_file_unchanged(user_scene, digits_run, monkeypatch,
                                                        stage):
    from nnvis_addon.scene import build as build_mod, build_scene
    folder, _ = digits_run
    run = load_run(folder / "recording")
    before = digest()
    module, name = stage.split(".")

    def boom(*args, **kwargs):
        raise NNVisError(f"injected failure in {stage}")

    monkeypatch.setattr(getattr(build_mod, module), name, boom)
    with pytest.raises(NNVisError, match="injected"):
        build_scene(run)
    assert digest() == before


def test_import_without_scene_setup_touches_nothing_else(user_scene, digits_run):
    import bpy
    folder, _ = digits_run
    before_blocks, before_settings, engine = digest()
    assert bpy.ops.import_scene.nnvis_checkpoint(filepath=str(folder / "recording"),
                                                 setup_render=False) == {"FINISHED"}
    after_blocks, after_settings, after_engine = digest()
    assert (after_settings, after_engine) == (before_settings, engine)
    for kind, names in before_blocks.items():
        assert set(names) <= set(after_blocks[kind]), kind
    assert bpy.data.objects["user object"].users_collection[0] == user_scene.collection


def test_same_run_twice_gives_independent_collections(user_scene, digits_run):
    import bpy
    folder, _ = digits_run
    for _ in range(2):
        assert bpy.ops.import_scene.nnvis_checkpoint(filepath=str(folder / "recording")) == \
            {"FINISHED"}
    runs = [c for c in bpy.data.collections if "nnvis_run" in c]
    assert len(runs) == 2 and runs[0].name != runs[1].name
    a, b = ({o for o in c.objects if "nnvis_shared" not in o} for c in runs)  # not camera, lights
    assert not a & b
    conv_a, conv_b = (next(o for o in c.objects if o.get("nnvis_layer") == "conv1") for c in runs)
    assert conv_a.data != conv_b.data
    assert conv_a.modifiers["NNVis"].node_group == conv_b.modifiers["NNVis"].node_group  # shared
    from nnvis_addon.scene.nodes import input_ids
    scale = input_ids(conv_a.modifiers["NNVis"].node_group)["Scale"]
    conv_a.modifiers["NNVis"][scale] = 3.0
    assert conv_b.modifiers["NNVis"][scale] == 1.0
    assert conv_a.animation_data.action != conv_b.animation_data.action
