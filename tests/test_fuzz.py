"""Hostile files: every reader fuzzed (hypothesis drives the mutators), zip bombs, code safety.

The seeds are real files TensorFlow writes (nnvis_addon/tools/bench/fuzz_seeds.py); `nnvis bench fuzz`
runs the same formats with 10,000 inputs each.
"""
from __future__ import annotations

import json
import re
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnvis_addon.tools.bench import fuzz
from nnvis_addon.tools.bench import fuzz_formats as ff
from nnvis_addon.tools.bench import mutate as mu
from nnvis_addon.errors import NNVisError
from nnvis_addon.io.keras_files import read_network, read_weights

TIER = "oracle"

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {"tf2": 300, "keras": 300, "h5": 300, "recording": 250, "keras2-tf": 300,
            "legacy-h5": 300, "savedmodel": 300, "onnx": 300, "multi-input": 300}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    from nnvis_addon.tools.bench.fuzz_seeds import make_seeds
    return make_seeds(tmp_path_factory.mktemp("fuzz-seeds"))


@pytest.mark.parametrize("name", list(ff.FORMATS))
def test_fuzzed_inputs_fail_cleanly(seeds, name, tmp_path):
    """Mutated, truncated and random variants: an NNVisError or a clean read, quickly, with
    allocations a small multiple of the input's size."""
    fmt = ff.FORMATS[name](seeds)
    fuzzer = fuzz.Fuzzer(tmp_path)
    seen = {"ok": 0, "rejected": 0}

    @settings(max_examples=EXAMPLES[name], database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.randoms(use_true_random=False))
    def check(rng):
        outcome = fuzzer.run(fmt, fmt.variant(rng))
        assert outcome.kind != "crash", outcome.detail
        assert not outcome.slow, f"{outcome.seconds:.2f} s"
        assert outcome.ratio <= fuzz.MAX_ALLOC_RATIO, f"{outcome.peak} bytes allocated " \
                                                      f"for a {outcome.size}-byte input"
        seen[outcome.kind] += 1

    tracemalloc.start()
    try:
        check()
    finally:
        tracemalloc.stop()
    assert seen["rejected"] > EXAMPLES[name] // 4     # the mutations do break files...
    assert seen["ok"] > 0                              # ...and the seed itself reads


def test_seeds_read(seeds):
    """Unmutated, every seed reads: the fuzzing starts from files the readers accept."""
    for name, cls in ff.FORMATS.items():
        fmt = cls(seeds)
        outcome = fuzz.Fuzzer(seeds / "scratch" / name).run(fmt, fmt.seed_files())
        assert outcome.kind == "ok", (name, outcome.detail)


class _Bad:
    """A format whose reader hides a MemoryError in an NNVisError, then loops forever."""
    name = "bad"

    @staticmethod
    def steps(folder):
        def hide_memory_error():
            try:
                np.empty(1 << 62, np.uint8)
            except MemoryError as e:
                raise NNVisError("x: unreadable") from e

        def loop():
            while True:
                pass
        return [loop] if (folder / "loop").exists() else [hide_memory_error]


def test_harness_counts_hidden_memory_errors_and_hangs(tmp_path, monkeypatch):
    monkeypatch.setattr(fuzz, "HANG_SECONDS", 0.2)
    outcome = fuzz.Fuzzer(tmp_path).run(_Bad, {"f": b""})
    assert outcome.kind == "crash" and "MemoryError" in outcome.detail
    outcome = fuzz.Fuzzer(tmp_path).run(_Bad, {"loop": b""})
    assert outcome.kind == "crash" and "hang" in outcome.detail


# --- zip safety ------------------------------------------------------------------------------

def _keras_members(seeds):
    with zipfile.ZipFile(seeds / "keras" / "model.keras") as z:
        return {name: z.read(name) for name in z.namelist()}


BOMB = 1 << 30


@pytest.mark.parametrize("claims", [{}, {"file_size": 0xFFFFFFFF}, {"file_size": 30908}],
                         ids=["honest-1GiB", "claims-4GiB", "claims-30kB"])
@pytest.mark.parametrize("member", ["model.weights.h5", "config.json"])
def test_zip_bomb_refused_quickly(seeds, tmp_path, member, claims):
    """A member inflating to 1 GiB (1 MB in the zip) is refused before or while inflating."""
    members = [mu.zip_member(n, d) for n, d in _keras_members(seeds).items() if n != member]
    bomb = mu.zip_member(member, b"", 8, file_size=BOMB, crc=0)
    bomb["raw"] = mu.zeros_deflated(BOMB)
    bomb["compress_size"] = len(bomb["raw"])
    bomb.update(claims)
    path = tmp_path / "bomb.keras"
    path.write_bytes(mu.zip_bytes(members + [bomb]))
    network = ff.Keras(seeds).network
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(NNVisError, match="bomb.keras"):
            read_network(path) if member == "config.json" else read_weights(path, network)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0
    assert peak < 4 * path.stat().st_size


def test_only_expected_members_read_nothing_extracted(seeds, tmp_path, monkeypatch):
    members = _keras_members(seeds)
    path = tmp_path / "in" / "model.keras"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
        z.writestr("../escape.py", "open('pwned', 'w').write('x')")
        z.writestr("/abs/payload.bin", b"\0" * 100)
        z.writestr("assets/extra.json", "{}")
    opened = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    monkeypatch.chdir(tmp_path / "in")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    weights = read_weights(path, read_network(path))
    assert sorted(opened) == ["config.json", "metadata.json", "model.weights.h5"]  # its version
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert set(weights) == {"conv", "bn", "classes"}


def test_encrypted_and_odd_methods_refused(seeds, tmp_path):
    members = _keras_members(seeds)
    cases = {"encrypted": {"flags": 1}, "bzip2": {"method": 12}, "lzma": {"method": 14}}
    for label, claims in cases.items():
        path = tmp_path / f"{label}.keras"
        path.write_bytes(mu.zip_bytes([mu.zip_member(n, d, **claims) for n, d in members.items()]))
        with pytest.raises(NNVisError, match=f"{label}.keras: config.json"):
            read_network(path)


# --- code safety -----------------------------------------------------------------------------

PACKAGE_SOURCES = sorted([ROOT / "__init__.py", *(ROOT / "nnvis_addon").rglob("*.py"),
                          *(ROOT / "operators").rglob("*.py"), *(ROOT / "panels").rglob("*.py")])
FORBIDDEN = {
    "pickle-like module": re.compile(r"^\s*(import|from)\s+(c?pickle|_pickle|marshal|shelve|dill|"
                                     r"cloudpickle|joblib)\b", re.M),
    "eval/exec/compile": re.compile(r"(?<![\w.])(eval|exec|compile)\("),
    "allow_pickle=True": re.compile(r"allow_pickle\s*=\s*True"),
    "dynamic import": re.compile(r"__import__|import_module\(|exec_module\(|runpy|"
                                 r"spec_from_file_location|imp\.load"),
    "unsafe yaml": re.compile(r"yaml\.(unsafe_)?load\("),
}


# (file, text on the line): uses whose names come from the code, never from a file
ALLOWED = {("nnvis_addon/tools/cli.py", "import_module(f\"{__package__}.bench.{BENCHES[args.which]}\")")}


@pytest.mark.parametrize("rule", list(FORBIDDEN))
def test_package_never_runs_code_from_files(rule):
    hits = []
    for path in PACKAGE_SOURCES:
        name = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if FORBIDDEN[rule].search(line) and not any(
                    name == f and text in line for f, text in ALLOWED):
                hits.append(f"{name}:{number}: {line.strip()}")
    assert not hits, f"{rule} in {hits}"


def test_np_load_never_unpickles():
    calls = [(path, m) for path in PACKAGE_SOURCES
             for m in re.finditer(r"np\.load\(([^()]|\([^()]*\))*\)", path.read_text())]
    assert calls
    for path, m in calls:
        assert "allow_pickle=False" in m.group(0), f"{path.relative_to(ROOT)}: {m.group(0)}"


def test_keras_deserialisation_only_on_the_tensorflow_side():
    """keras.models.load_model (which can build custom objects) is never used by the add-on's
    readers, only by the TensorFlow-side `record` tools a user runs on their own files."""
    users = [p.relative_to(ROOT).as_posix() for p in PACKAGE_SOURCES
             if re.search(r"load_model\(|saved_model\.load\(", p.read_text())]
    assert all(u.startswith("nnvis_addon/record/") for u in users), users


def test_lambda_code_is_never_run(tmp_path):
    """A .keras holding a Lambda that writes a file when called: reading it shows the layer as an
    unsupported block and the file never appears."""
    keras = pytest.importorskip("keras")
    marker = tmp_path / "lambda-ran.txt"

    def payload(x):
        with open(str(marker), "a") as f:
            f.write("ran\n")
        return x * 2.0

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d"),
                              keras.layers.Lambda(payload, name="evil"),
                              keras.layers.Dense(2, name="out")])
    model.save(tmp_path / "lambda.keras")
    marker.unlink()                                   # Keras ran it while building the model
    network = read_network(tmp_path / "lambda.keras")
    weights = read_weights(tmp_path / "lambda.keras", network)
    from nnvis_addon.model.forward import forward_partial
    from nnvis_addon.model.keras_config import unsupported_reason
    outputs, skipped = forward_partial(network, weights, np.ones(4, np.float32))
    assert "evil" in skipped and "Lambda" in unsupported_reason(network.layer("evil"))
    np.testing.assert_allclose(outputs["d"], model.layers[0](np.ones((1, 4)))[0], rtol=1e-6)
    assert not marker.exists()


# --- length fields that once sized an allocation or a recursion --------------------------------

def _checkpoint(seeds, tmp_path, entries, data=None) -> Path:
    tf2 = ff.TF2(seeds)
    (tmp_path / tf2.INDEX).write_bytes(mu.table(entries, restart_interval=1 << 30))
    (tmp_path / tf2.DATA).write_bytes(tf2.data if data is None else data)
    return tmp_path / "ckpt-1"


def _bounded(call, limit: int):
    """Run `call`, expecting an NNVisError within 1 s and `limit` bytes of allocations."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(NNVisError) as info:
            call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0 and peak < limit
    return info.value


def test_shared_key_prefixes_cannot_multiply(seeds, tmp_path):
    """A 60 kB key re-shared by 20,000 three-byte entries would rebuild 1.2 GB of keys."""
    from nnvis_addon.io.tensorbundle import TensorBundle
    header = ff.TF2(seeds).entries[0]
    long_key = b"k" * 60_000
    entries = [header] + [(long_key + i.to_bytes(2, "big"), b"") for i in range(20_000)]
    index = _checkpoint(seeds, tmp_path, entries)
    size = (tmp_path / "ckpt-1.index").stat().st_size
    assert size < 300_000
    error = _bounded(lambda: TensorBundle(index), 20 * size)       # keys may total 16x
    assert "ckpt-1.index" in str(error) and "shared prefixes" in str(error)


def test_empty_string_tensor_with_huge_shape(seeds, tmp_path):
    """Zero bytes claiming 2**40 strings: refused when opened, not by allocating 8 TB of objects."""
    from nnvis_addon.io.tensorbundle import TensorBundle
    tf2 = ff.TF2(seeds)
    key = b"_CHECKPOINTABLE_OBJECT_GRAPH"
    shape = mu.encode_fields([[2, 2, mu.encode_fields([[1, 0, 1 << 40]])]])
    entries = [(k, mu.encode_fields([[1, 0, 7], [2, 2, shape]]) if k == key else v)
               for k, v in tf2.entries]
    error = _bounded(lambda: TensorBundle(_checkpoint(seeds, tmp_path, entries)), 1 << 20)
    assert "cannot hold 1099511627776 strings" in str(error)


def test_deep_object_graph_is_walked_without_recursion(seeds, tmp_path):
    """root -> model -> _operations -> 0 -> a chain 50,000 nodes deep, holding no variables."""
    from nnvis_addon.io.tf_checkpoint import OBJECT_GRAPH_KEY, read_tf_checkpoint
    tf2 = ff.TF2(seeds)
    depth = 50_000

    def node(child: int, name: bytes) -> list:
        ref = mu.encode_fields([[1, 0, child], [2, 2, name]])
        return [1, 2, mu.encode_fields([[1, 2, ref]])]

    nodes = [node(1, b"model"), node(2, b"_operations"), node(3, b"0")]
    nodes += [node(3 + i + 1, b"sub") for i in range(depth)] + [[1, 2, b""]]
    tensor, crc = mu.string_tensor(mu.encode_fields(nodes))
    key = OBJECT_GRAPH_KEY.encode()
    entries = [(k, mu.encode_fields([[1, 0, 7], [4, 0, len(tf2.data)], [5, 0, len(tensor)],
                                     [6, 5, crc]]) if k == key else v) for k, v in tf2.entries]
    prefix = _checkpoint(seeds, tmp_path, entries, tf2.data + tensor)
    with pytest.raises(NNVisError, match="ckpt-1.index: the network has 3 layers with weights"):
        read_tf_checkpoint(prefix, tf2.network)


def test_recording_shape_product_does_not_overflow(seeds, tmp_path):
    """(2**32, 2**32) float32 is 2**66 bytes, which int64 arithmetic wraps to 0: a header-only
    .npy must not pass as that array."""
    import json
    import shutil
    from nnvis_addon.io.recording import read_recording
    root = tmp_path / "rec"
    shutil.copytree(seeds / "recording", root)
    manifest = json.loads((root / "manifest.json").read_text())
    shape = (1 << 32, 1 << 32)
    manifest["predictions"] = {"shape": list(shape), "dtype": "<f4"}
    (root / "manifest.json").write_text(json.dumps(manifest))
    for path in root.glob("epochs/*/predictions.npy"):
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f4", "fortran_order": False, "shape": shape})
    error = _bounded(lambda: read_recording(root), 1 << 20)
    assert "no usable epoch" in str(error) and "predictions" in str(error)


def test_varints_stop_at_64_bits():
    from nnvis_addon.io.protowire import read_varint
    assert read_varint(b"\xff" * 9 + b"\x01", 0, "x") == ((1 << 64) - 1, 10)
    with pytest.raises(NNVisError, match="over 64 bits"):
        read_varint(b"\xff" * 9 + b"\x7f", 0, "x")       # 70 bits: once overflowed to_bytes


def test_state_file_naming_impossible_paths(seeds, tmp_path):
    """Names the OS refuses (too long, NUL) are not checkpoints; the index files still count."""
    from nnvis_addon.io.tf_checkpoint import list_checkpoints
    tf2 = ff.TF2(seeds)
    for name, data in tf2.seed_files().items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "checkpoint").write_text(
        f'model_checkpoint_path: "{"x" * 5000}-1"\nall_model_checkpoint_paths: "a\\000b-2"\n')
    assert list_checkpoints(tmp_path) == [(1, str(tmp_path / "ckpt-1"))]


def test_npy_header_length_checked_before_numpy_reads_it(seeds, tmp_path):
    """Version byte 1 -> 2 turns the 2-byte header length into 4 bytes that read as ~660 MB,
    which numpy would reserve before finding the file shorter; the epoch is left out instead."""
    import shutil
    from nnvis_addon.io.recording import read_recording
    root = tmp_path / "rec"
    shutil.copytree(seeds / "recording", root)
    path = root / "epochs" / "epoch_000001" / "layer_0001_w3.npy"
    data = bytearray(path.read_bytes())
    data[6] = 2
    path.write_bytes(bytes(data))
    tracemalloc.start()
    try:
        recording = read_recording(root)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert 1 not in recording.epochs and recording.epochs == [0, 2]
    assert "epoch 1 left out" in recording.warnings[0] and "past the end" in recording.warnings[0]


@pytest.mark.parametrize("edit", [
    lambda c: c["config"]["layers"][1]["config"].update(strides=0),
    lambda c: c["config"]["layers"][1]["config"].update(groups=0),
    lambda c: c["config"]["layers"][1]["config"].update(filters=float("inf")),
    lambda c: c["config"]["layers"][1]["config"].update(kernel_size=[0, 3]),
    lambda c: c.update(class_name={"not": "a string"}),
])
def test_hostile_configs_found_by_the_fuzzer_are_clear_errors(edit):
    """Regressions from `nnvis bench fuzz`: configs that used to crash shape inference."""
    from nnvis_addon.model.keras_config import network_from_config
    config = {"class_name": "Sequential", "config": {"name": "m", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 8, 8, 1], "name": "in"}},
        {"class_name": "Conv2D", "config": {"name": "c", "filters": 2, "kernel_size": [3, 3],
                                            "strides": [1, 1], "padding": "valid",
                                            "activation": "relu"}}]}}
    network_from_config(json.loads(json.dumps(config)), "ok.json")     # the unedited one reads
    edit(config)
    with pytest.raises(NNVisError, match="hostile.json"):
        network_from_config(config, "hostile.json")


@pytest.mark.parametrize("inner", [7, [1, 2], "conv", None])
def test_layer_entry_whose_config_is_no_object_beside_weights(seeds, tmp_path, inner):
    """Issue 25: a `.keras` beside a weights file, one layer entry's `config` an integer (found by
    fuzzing), raised AttributeError from the folder's discovery; now an NNVisError naming it."""
    from nnvis_addon import load_run
    members = _keras_members(seeds)
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["config"] = inner
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "model.keras", "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    (tmp_path / "e01.weights.h5").write_bytes((seeds / "h5" / "model.weights.h5").read_bytes())
    with pytest.raises(NNVisError, match="model.keras"):
        load_run(tmp_path)
