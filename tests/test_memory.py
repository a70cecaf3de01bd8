"""Peak memory of an import on VGG16-sized layers: one epoch's weights plus a small constant.

VGG16's fc2 (4096 × 4096) and predictions (4096 × 1000) layers, two epochs of Keras 3
`.weights.h5` written with h5py (no TensorFlow: seconds, not minutes). `load_run` and `plan_scene`
run in a child process, whose peak RSS (VmHWM; not ru_maxrss, which a child inherits from the
process that started it) over its peak after the imports is the measure: holding every epoch's
weights, as the importer did, costs their size per epoch.
"""
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

TIER = "slow"

ROOT = Path(__file__).resolve().parent.parent
DENSE = [("fc2", 4096, 4096), ("predictions", 4096, 1000)]      # VGG16's last two layers
EPOCHS = 2
EPOCH_BYTES = sum(4 * (fan_in + 1) * units for _, fan_in, units in DENSE)   # 84 MB
MEASURE = """
import sys
from nnvis_addon import load_run
from nnvis_addon.options import SceneOptions
from nnvis_addon.plan import plan_scene

def peak():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))

before = peak()
run = load_run(sys.argv[1])
plan = plan_scene(run, SceneOptions(max_total_edges=50_000))
print(len(run.epochs), len(plan.connections), peak() - before)
"""


def write_run(folder: Path) -> None:
    """A Sequential model.json (input 4×4×256, Flatten, the Dense layers) and its epochs."""
    layers = [{"module": "keras.layers", "class_name": "InputLayer",
               "config": {"batch_shape": [None, 4, 4, 256], "dtype": "float32",
                          "name": "input_layer"}},
              {"module": "keras.layers", "class_name": "Flatten",
               "config": {"name": "flatten", "dtype": "float32", "data_format": "channels_last"}}]
    layers += [{"module": "keras.layers", "class_name": "Dense",
                "config": {"name": name, "dtype": "float32", "units": units,
                           "activation": "relu", "use_bias": True}}
               for name, _, units in DENSE]
    (folder / "model.json").write_text(json.dumps(
        {"module": "keras", "class_name": "Sequential", "keras_version": "3.12.0",
         "config": {"name": "vgg_head", "layers": layers}}))
    rng = np.random.default_rng(0)
    for epoch in range(EPOCHS):
        with h5py.File(folder / f"epoch_{epoch:02d}.weights.h5", "w") as f:
            for k, (_, fan_in, units) in enumerate(DENSE):     # Keras 3: layers/dense_<k>/vars
                group = f.create_group(f"layers/dense{f'_{k}' if k else ''}/vars")
                group["0"] = rng.standard_normal((fan_in, units), np.float32) * 0.02
                group["1"] = np.zeros(units, np.float32)
    np.save(folder / "probe.npy", rng.uniform(0, 1, (4, 4, 256)).astype(np.float32))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_import_peak_memory_is_one_epoch_of_weights_plus_a_little(tmp_path):
    write_run(tmp_path)
    done = subprocess.run([sys.executable, "-c", MEASURE, str(tmp_path)], capture_output=True,
                          text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT)}, check=True)
    epochs, connections, peak = map(int, done.stdout.split())
    assert (epochs, connections) == (EPOCHS, len(DENSE) + 1)
    assert peak <= EPOCH_BYTES + (64 << 20), \
        f"import peak {peak / 2**20:.0f} MB, budget {(EPOCH_BYTES + (64 << 20)) / 2**20:.0f} MB"


def test_large_arrays_stay_in_the_file_and_a_changed_file_is_refused(tmp_path):
    """A 1.2 MB kernel comes back as a StoredArray: whole and row reads equal what was written;
    once the file is rewritten, reading it is an error naming the file, not other numbers."""
    from nnvis_addon.errors import NNVisError
    from nnvis_addon.io.keras_files import read_network, read_weights
    from nnvis_addon.io.stored import StoredArray
    (tmp_path / "model.json").write_text(json.dumps(
        {"module": "keras", "class_name": "Sequential", "keras_version": "3.12.0",
         "config": {"name": "one", "layers": [
             {"class_name": "InputLayer", "config": {"batch_shape": [None, 600], "name": "in"}},
             {"class_name": "Dense", "config": {"name": "fc", "units": 512, "use_bias": True}}]}}))
    kernel = np.random.default_rng(1).standard_normal((600, 512)).astype(np.float32)
    path = tmp_path / "epoch_00.weights.h5"
    with h5py.File(path, "w") as f:
        f["layers/dense/vars/0"] = kernel
        f["layers/dense/vars/1"] = np.arange(512, dtype=np.float32)
    stored, bias = read_weights(path, read_network(tmp_path / "model.json"))["fc"]
    assert isinstance(stored, StoredArray) and not isinstance(bias, StoredArray)
    np.testing.assert_array_equal(np.asarray(stored), kernel)
    np.testing.assert_array_equal(stored[3:7], kernel[3:7])
    rows = np.array([5, 0, 599, 5])                     # rows picked one by one, one open file
    np.testing.assert_array_equal(stored[rows], kernel[rows])
    np.testing.assert_array_equal(bias, np.arange(512))
    with h5py.File(path, "w") as f:                     # training overwrote the checkpoint
        f["layers/dense/vars/0"] = kernel + 1
        f["layers/dense/vars/1"] = np.zeros(512, np.float32)
    with pytest.raises(NNVisError, match="changed since it was read"):
        np.asarray(stored)


def test_each_epoch_is_read_into_the_last_ones_arrays(tmp_path):
    """The forward pass reads epoch after epoch into the same arrays (fresh memory costs page
    faults, more than the read): the second epoch's kernels are the first's arrays, holding the
    second epoch's values; a view of them (an activation that is one) stops the reuse."""
    from nnvis_addon.io.keras_files import read_network, read_weights
    from nnvis_addon.io.stored import loaded, may_share
    write_run(tmp_path)
    network = read_network(tmp_path / "model.json")
    epochs = [read_weights(tmp_path / f"epoch_{e:02d}.weights.h5", network) for e in range(2)]
    buffers = {}
    first = loaded(epochs[0], buffers)["fc2"][0]
    kept = first.copy()
    second = loaded(epochs[1], buffers)["fc2"][0]
    assert second is first
    with h5py.File(tmp_path / "epoch_01.weights.h5") as f:
        np.testing.assert_array_equal(second, f["layers/dense/vars/0"][()])
        assert not np.array_equal(second, kept)
    assert not may_share({"fc2": second.copy()}, buffers)
    assert may_share({"fc2": second[:3]}, buffers)
