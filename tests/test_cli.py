"""The `nnvis` command's library paths: record from checkpoints, errors as one clear line."""
from __future__ import annotations

import numpy as np
import pytest

from nnvis_addon import load_run
from nnvis_addon.tools.cli import main

TIER = "blender"


def test_record_builds_a_recording_from_a_checkpoint_folder(digits_run, tmp_path, capsys):
    folder, _ = digits_run
    probes = load_run(folder / "recording").probes[:3]
    np.save(tmp_path / "probes.npy", probes)
    np.save(tmp_path / "labels.npy", np.arange(3))
    assert main(["record", str(folder), "--probes", str(tmp_path / "probes.npy"),
                 "--labels", str(tmp_path / "labels.npy"), "--out", str(tmp_path / "rec")]) == 0
    run = load_run(tmp_path / "rec", probe_index=2)
    assert run.epochs == [0, 1, 2, 3]
    reference = load_run(folder / "recording", probe_index=2)
    for layer in run.layers:
        np.testing.assert_allclose(run.activations(layer.name, 3),
                                   reference.activations(layer.name, 3), rtol=1e-5, atol=1e-6)
    assert "recorded epochs [0, 1, 2, 3]" in capsys.readouterr().out


def test_bad_path_is_one_line_naming_it(tmp_path, capsys):
    assert main(["record", str(tmp_path / "nothing"), "--probes", "p.npy", "--out",
                 str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nnvis: error: ") and "nothing" in err and err.count("\n") == 1


RENDER = ["render", "run", "--out", "run.mp4"]
SET = ["--look", "paper", "--colormap", "magma", "--no-show-legend", "--no-show-curves",
       "--expansion", "1.5", "--morph", "0.5", "--bundler", "density", "--bundle-strength", "0.3",
       "--edge-colour", "importance", "--max-edges", "0", "--max-total-edges", "5000",
       "--frames-per-epoch", "3", "--camera", "fly-through", "--labels", "stages",
       "--orthographic",
       "--samples", "4", "--no-all-epochs", "--probe-index", "1"]


def props_all():
    import bpy
    return bpy.ops.import_scene.nnvis_checkpoint.get_rna_type().properties


def dialog_properties():
    """The dialog's options (not the Auto / All / Number choice beside a number)."""
    return {p.identifier: p for p in props_all()
            if p.identifier not in ("rna_type", "filepath", "filter_glob")
            and not p.identifier.endswith("_choice")}


def test_render_help_lists_every_import_option_with_the_dialogs_default(addon, capsys):
    from nnvis_addon.tools.cli import parser
    with pytest.raises(SystemExit):
        parser().parse_args(["render", "-h"])
    text = capsys.readouterr().out
    props = dialog_properties()
    assert len(props) >= 20
    from nnvis_addon.tools.cli import DEMO
    args = parser().parse_args(["demo"])          # render keeps the scene's samples: None
    from nnvis_addon.options import OPTIONS
    for name, prop in props.items():
        flag = OPTIONS[name].flag
        assert flag in text, flag
        assert prop.description and prop.description.split()[0] in text, name
        if prop.type == "ENUM":
            keys = ",".join(i.identifier for i in prop.enum_items)
            assert f"{flag} {{{keys}}}" in text, name
        default = prop.default
        if OPTIONS[name].special:                     # the choice picks the default: Auto
            choice = props_all()[f"{name}_choice"].default
            default = next(v for v, key, *_ in OPTIONS[name].special if key == choice)
        if name not in DEMO:                          # the demo's own: small, 12 fps
            assert getattr(args, name) == pytest.approx(default), name


def test_the_cli_and_the_dialog_make_the_same_scene(addon, digits_run, empty_scene, monkeypatch):
    """The flags above, given to `nnvis render`, become the import dialog's values; the dialog
    with those values builds with exactly the SceneOptions the command line's values give."""
    import dataclasses
    import importlib

    import bpy
    from nnvis_addon.tools.cli import import_options, parser
    from nnvis_addon.options import split
    from nnvis_addon.scene import SceneOptions
    values = import_options(parser().parse_args(RENDER + SET))
    expected = dataclasses.asdict(SceneOptions(**split(values)[1]))
    assert expected["look"] == "paper" and expected["overlays"] == ("title", "counter", "probe",
                                                                   "predictions")
    assert (expected["camera_move"], expected["labels"], expected["orthographic"]) == \
        ("fly_through", "stages", True)
    assert expected["controls"] == {"Expansion": 1.5, "Morph": 0.5, "Colour Mode": 3}
    assert expected["max_edges"] is None and expected["max_total_edges"] == 5000
    operator = importlib.import_module(f"{addon}.operators.import_checkpoint")
    seen = []

    def build(run, options, *args, **kwargs):   # the dialog's floats are float32
        seen.append((run.probe_index, {k: round(v, 6) if isinstance(v, float) else v
                                       for k, v in dataclasses.asdict(options).items()}))
        return real(run, options, *args, **kwargs)

    real = operator.build_scene
    monkeypatch.setattr(operator, "build_scene", build)
    folder, _ = digits_run
    assert bpy.ops.import_scene.nnvis_checkpoint(filepath=str(folder / "recording"),
                                                 **values) == {"FINISHED"}
    assert seen == [(1, expected)]
    collection = bpy.context.view_layer.objects.active.users_collection[0]
    assert collection.get("nnvis_look") == "paper"
    for obj in collection.objects:
        mod = obj.modifiers.get("NNVis")
        ids = {i.name: i.identifier for i in mod.node_group.interface.items_tree
               if i.item_type == "SOCKET" and i.in_out == "INPUT"} if mod else {}
        for name, value in expected["controls"].items():
            if name in ids:
                assert mod[ids[name]] == value, (obj.name, name)


def test_the_dialog_shows_every_option_once_in_its_panel(addon, digits_run):
    """The dialog's draw, on a stand-in layout: panels in GROUPS order, Input open, each option
    once under its group (a number with special values: its choice, then the number when
    Number is picked)."""
    import bpy
    from nnvis_addon.options import GROUPS, IMPORT_OPTIONS

    class Layout:
        def __init__(self, log, group=None):
            self.log, self.group = log, group

        def panel(self, idname, default_closed=False):
            group = idname.rpartition("_")[2]
            self.log.append(("panel", group, default_closed))
            return Layout(self.log, group), Layout(self.log, group)

        def label(self, text="", **_):
            self.log.append(("label", self.group, text))

        def prop(self, data, name):
            self.log.append(("prop", self.group, name))

    log = []
    op_class = bpy.types.Operator.bl_rna_get_subclass_py("IMPORT_SCENE_OT_nnvis_checkpoint")
    choices = {f"{o.name}_choice": "number" for o in IMPORT_OPTIONS if o.special}
    op_class.draw(type("Op", (), {"layout": Layout(log), **choices})(), bpy.context)
    assert [(g, closed) for kind, g, closed in log if kind == "panel"] == \
        [(g, g != "Input") for g in GROUPS]
    assert [(g, name) for kind, g, name in log if kind == "prop"] == \
        [(o.group, name) for g in GROUPS for o in IMPORT_OPTIONS if o.group == g
         for name in ([f"{o.name}_choice"] if o.special else []) + [o.name]]
    assert not [e for e in log if e[0] == "label" and "recording" in e[2]]   # none picked
    log.clear()           # "Auto" picked: no number field beside it
    op_class.draw(type("Op", (), {"layout": Layout(log), **dict.fromkeys(choices, "auto")})(),
                  bpy.context)
    assert ("prop", "Edges", "inputs_per_cell") not in log
    assert ("prop", "Edges", "inputs_per_cell_choice") in log
    log.clear()           # a recording picked: Recorded Probe says how many it holds
    recording = digits_run[0] / "recording"
    op_class.draw(type("Op", (), {"layout": Layout(log), "probe_index": 9, **choices,
                                  "filepath": str(recording / "manifest.json")})(), bpy.context)
    assert ("label", "Input", "This recording holds probes 0–7") in log
    from nnvis_addon.io.recording import probe_count
    assert probe_count(recording) == 8 and probe_count(digits_run[0]) is None


def test_the_tables_keys_are_the_scenes(addon):
    """options.py lists the scene modules' keys (the CLI reads it before Blender starts)."""
    from nnvis_addon import options
    from nnvis_addon.scene import camera_moves, labels, looks, overlays
    assert options.LOOK_KEYS == tuple(looks.LOOKS)
    assert options.LABEL_MODES == tuple(labels.MODES)
    assert options.CAMERA_MOVES == tuple(camera_moves.MOVES)
    assert {o.name.removeprefix("show_") for o in options.IMPORT_OPTIONS
            if o.to == "overlay"} == set(overlays.KINDS)
