"""The `nnvis` command's library paths: record from checkpoints, errors as one clear line."""
from __future__ import annotations

import numpy as np

from nnvis_addon import load_run
from nnvis_addon.cli import main


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
