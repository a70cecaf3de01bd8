"""A layer kind is one file: a toy kind ("Negate", y = -x) registered by a module of its own is
offered by the designer, parsed by the importer, computed by the forward pass and linked by the
planner, with nothing else changed.

The toy runs in a child process, so its registration never leaks into other tests: the child
imports the toy's file, exports a design using it as a Keras model.json, writes two epochs of
`.weights.h5` with h5py (no TensorFlow), imports the folder with `load_run` and plans the scene.
"""
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

TIER = "fast"

ROOT = Path(__file__).resolve().parent.parent

TOY_KIND = '''
"""A toy layer kind, everything about it in this file: y = -x, linked cell to cell with the
derivative, -1, as the edge weight."""
import numpy as np

from nnvis_addon.model.kinds import Design, Kind, register
from nnvis_addon.model.kinds.config import COMMON


def _edges(layer, source, weights_by_epoch, sources, k):
    cells = np.arange(layer.cell_count)
    return cells, cells, np.full((len(weights_by_epoch), cells.size), -1.0, np.float32)


register(Kind("Negate", lambda config, weights, x: -x, config_keys=set(), edges=_edges,
              mapwise=True, design=Design(10, "negate", dict(COMMON))))
'''

CHILD = '''
import json, sys
from pathlib import Path

import h5py
import numpy as np

import negate_kind                       # the toy kind's one file
from nnvis_addon import design_stack as design, load_run
from nnvis_addon.options import SceneOptions
from nnvis_addon.plan import plan_scene

folder = Path(sys.argv[1])
layers = [{"type": "Input", "shape": [4, 4, 2]}, {"type": "Negate"}, {"type": "Flatten"},
          {"type": "Dense", "units": 3}]
design.export_keras_json(layers, folder / "model.json", name="toy")
rng = np.random.default_rng(0)
for epoch in range(2):
    with h5py.File(folder / f"epoch_{epoch:02d}.weights.h5", "w") as f:
        f["layers/dense/vars/0"] = rng.standard_normal((32, 3)).astype(np.float32)
        f["layers/dense/vars/1"] = rng.standard_normal(3).astype(np.float32)
np.save(folder / "probe.npy", rng.uniform(-1, 1, (4, 4, 2)).astype(np.float32))

run = load_run(folder)
plan = plan_scene(run, SceneOptions())
edges = {(c.src, c.dst): c.edges for c in plan.connections}
negate = edges[("input_layer", "negate")]
print(json.dumps({
    "kinds": [l.kind for l in run.network.layers],
    "epochs": list(run.epochs),
    "negate": [run.activations("negate", e).tolist() for e in run.epochs],
    "dense": [run.activations("dense", e).tolist() for e in run.epochs],
    "edges": [negate.src.tolist(), negate.dst.tolist(), negate.weight.tolist()],
    "unsupported": [p.layer.name for p in plan.layers if p.unsupported],
    "rows": design.layers_from_config(design.keras_config(layers))}))
'''


def test_a_kind_defined_in_one_file_imports_end_to_end(tmp_path):
    (tmp_path / "negate_kind.py").write_text(TOY_KIND)
    (tmp_path / "child.py").write_text(CHILD)
    folder = tmp_path / "run"
    folder.mkdir()
    done = subprocess.run([sys.executable, str(tmp_path / "child.py"), str(folder)],
                          capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": f"{ROOT}:{tmp_path}", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])

    assert out["kinds"] == ["InputLayer", "Negate", "Flatten", "Dense"]
    assert out["epochs"] == [0, 1] and out["unsupported"] == []
    probe = np.load(folder / "probe.npy")
    for epoch in (0, 1):                # the numpy oracle: -x, then the Dense on it
        negated = np.asarray(out["negate"][epoch])
        np.testing.assert_array_equal(negated, -probe)
        with h5py.File(folder / f"epoch_{epoch:02d}.weights.h5") as f:
            kernel, bias = f["layers/dense/vars/0"][()], f["layers/dense/vars/1"][()]
        np.testing.assert_allclose(out["dense"][epoch], negated.reshape(-1) @ kernel + bias,
                                   rtol=1e-5, atol=1e-6)
    assert not np.allclose(out["dense"][0], out["dense"][1])     # frames differ between epochs
    src, dst, weight = out["edges"]    # the kind's own rule: map c → map c, weight -1, each epoch
    assert src == dst == [0, 1]
    assert np.asarray(weight).tolist() == [[-1.0, -1.0]] * 2
    assert [row["type"] for row in out["rows"]] == ["Input", "Negate", "Flatten", "Dense"]
