"""The formats `nnvis bench fuzz` feeds its readers: seeds, how to vary them, how to read them.

Each format loads its seed files (fuzz_seeds.py), makes variants with `variant(rng)` — a dict of
relative path -> bytes, the files of one input — and lists the reading `steps(folder)` the add-on
takes for such input. `rng` is any `random.Random`-like object (hypothesis' included).
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from ... import budget
from ...io import discover, keras_files, onnx, recording, saved_model, tensorbundle, tf_checkpoint
from ...model.forward import forward_batch_partial
from ...model.keras_config import network_from_config
from ...model.onnx_graph import network_from_onnx
from ...probe import load_probes
from . import mutate as mu


def _network(json_path: Path):
    return network_from_config(json.loads(json_path.read_text()), str(json_path))


def _touch(array) -> None:
    np.asarray(array).tobytes()      # read every byte, as the scene builder will


# --- the formats -------------------------------------------------------------------------------


def _network_then_weights(path: Path, fallback) -> list:
    """The two reads of a file holding architecture and weights: its network, then its weights
    for that network (the seed's when the first read failed)."""
    found = {}

    def network():
        found["network"] = keras_files.read_network(path)
    return [network, lambda: keras_files.read_weights(path, found.get("network", fallback))]

class TF2:
    """A TF2 checkpoint (`ckpt-1.index` + `.data-00000-of-00001` + `checkpoint` state file)."""
    name = "tf2"
    FOLDER, PREFIX = "tf2", "ckpt-1"
    INDEX, DATA, STATE = "ckpt-1.index", "ckpt-1.data-00000-of-00001", "checkpoint"

    def __init__(self, seeds: Path):
        folder = seeds / self.FOLDER
        self.index = (folder / self.INDEX).read_bytes()
        self.data = (folder / self.DATA).read_bytes()
        state = folder / self.STATE
        self.state = state.read_bytes() if state.is_file() else b""
        self.network = _network(folder / "model.json")
        table = tensorbundle._read_table(str(folder / self.INDEX))
        self.entries = [(key, bytes(value)) for key, value in table]
        bundle = tensorbundle.TensorBundle(folder / self.PREFIX)
        self.graph = bundle.read(tf_checkpoint.OBJECT_GRAPH_KEY)[()]

    def seed_files(self) -> dict[str, bytes]:
        return {self.INDEX: self.index, self.DATA: self.data, self.STATE: self.state}

    def variant(self, rng) -> dict[str, bytes]:
        index, data, state = self.index, self.data, self.state
        r = rng.random()
        if r < 0.25:
            index = mu.mutate_bytes(rng, index, (data,))
        elif r < 0.35:
            data = mu.mutate_bytes(rng, data, (index,))
        elif r < 0.6:
            index = mu.table(self._edit_entries(rng))
        elif r < 0.7:
            index = mu.table(self.entries, edit=lambda block: mu.mutate_bytes(rng, block))
        elif r < 0.9:
            index, data = self._edit_graph(rng)
        elif r < 0.95:
            state = mu.mutate_bytes(rng, state)
        else:
            files = {self.INDEX: index, self.STATE: state}
            return files if rng.random() < 0.3 else {**files, self.DATA: mu.truncate(rng, data)}
        return {self.INDEX: index, self.DATA: data, self.STATE: state}

    def _edit_entries(self, rng) -> list:
        """The index's entries with one edited: a field of a BundleEntryProto (dtype, shape,
        shard, offset, size, crc) or of the header, or a key dropped, repeated or renamed."""
        entries = list(self.entries)
        i = rng.randrange(len(entries))
        key, value = entries[i]
        r = rng.random()
        if r < 0.7:
            for _ in range(rng.choice((1, 1, 2, 3))):      # one field, or several at once
                value = mu.mutate_proto(rng, value)
            entries[i] = (key, value)
        elif r < 0.8:
            del entries[i]
        elif r < 0.9:
            entries.insert(i, entries[i])
        else:
            entries[i] = (mu.mutate_bytes(rng, key), value)
            if rng.random() < 0.7:
                entries.sort()
        return entries

    def _edit_graph(self, rng) -> tuple[bytes, bytes]:
        """The object graph edited, stored with valid checksums at the end of the data file."""
        graph = self.graph
        for _ in range(rng.choice((1, 1, 2, 3))):
            graph = mu.mutate_proto(rng, graph)
        tensor, crc = mu.string_tensor(graph)
        key = tf_checkpoint.OBJECT_GRAPH_KEY.encode()
        entries = []
        for k, value in self.entries:
            if k == key:
                fields = [f for f in mu.decode_fields(value) if f[0] not in (4, 5, 6)]
                value = mu.encode_fields(fields + [[4, 0, len(self.data)], [5, 0, len(tensor)],
                                                   [6, 5, crc]])
            entries.append((k, value))
        return mu.table(entries), self.data + tensor

    def steps(self, folder: Path):
        prefix = folder / self.PREFIX

        def every_tensor():
            bundle = tensorbundle.TensorBundle(prefix)
            for key in bundle.keys():
                bundle.read(key)
        return [every_tensor, lambda: tf_checkpoint.read_tf_checkpoint(prefix, self.network),
                lambda: tf_checkpoint.list_checkpoints(folder)]


class Keras2Checkpoint(TF2):
    """A Keras 2 `save_weights("w")` checkpoint (`layer_with_weights-N` object graph)."""
    name = "keras2-tf"
    FOLDER, PREFIX = "keras2", "w"
    INDEX, DATA = "w.index", "w.data-00000-of-00001"


class LegacyH5:
    """A legacy full-model `.h5` (`model_config` attribute + `model_weights` group)."""
    name = "legacy-h5"
    FILE = "model.h5"

    def __init__(self, seeds: Path):
        self.data = (seeds / "legacy" / self.FILE).read_bytes()
        self.network = keras_files.read_network(seeds / "legacy" / self.FILE)

    def seed_files(self) -> dict[str, bytes]:
        return {self.FILE: self.data}

    def variant(self, rng) -> dict[str, bytes]:
        if rng.random() < 0.3:
            return {self.FILE: mu.mutate_header(rng, self.data, 2048)}
        return {self.FILE: mu.mutate_bytes(rng, self.data)}

    def steps(self, folder: Path):
        return _network_then_weights(folder / self.FILE, self.network)


class SavedModelMetadata:
    """A SavedModel's `keras_metadata.pb` (protobuf holding the model config as JSON)."""
    name = "savedmodel"
    FILE = "keras_metadata.pb"

    def __init__(self, seeds: Path):
        self.data = (seeds / "savedmodel" / self.FILE).read_bytes()

    def seed_files(self) -> dict[str, bytes]:
        return {self.FILE: self.data, "saved_model.pb": b""}

    def variant(self, rng) -> dict[str, bytes]:
        r = rng.random()
        if r < 0.4:
            data = mu.mutate_proto(rng, self.data)
        elif r < 0.7:           # the JSON inside: rebuild the proto around an edited config
            data = self._edit_json(rng)
        else:
            data = mu.mutate_bytes(rng, self.data)
        return {self.FILE: data, "saved_model.pb": b""}

    def _edit_json(self, rng) -> bytes:
        node = mu.decode_fields(mu.decode_fields(self.data)[0][2])
        for field in node:
            if field[0] == 5:
                field[2] = mu.mutate_json(rng, field[2])
        return mu.encode_fields([[1, 2, mu.encode_fields(node)]])

    def steps(self, folder: Path):
        return [lambda: network_from_config(saved_model.read_architecture(folder), str(folder))]


class Keras:
    """A `.keras` zip (config.json, metadata.json, model.weights.h5), with its weights also
    beside it as an epoch's `.weights.h5`, so the folder's discovery reads the config too."""
    name = "keras"
    FILE, BESIDE = "model.keras", "e01.weights.h5"

    def __init__(self, seeds: Path):
        self.zip = (seeds / "keras" / self.FILE).read_bytes()
        with zipfile.ZipFile(io.BytesIO(self.zip)) as z:
            self.members = {name: z.read(name) for name in z.namelist()}
        self.network = network_from_config(json.loads(self.members["config.json"]), "seed")

    def seed_files(self) -> dict[str, bytes]:
        return {self.FILE: self.zip, self.BESIDE: self.members["model.weights.h5"]}

    def variant(self, rng) -> dict[str, bytes]:
        return {**self._variant(rng), self.BESIDE: self.members["model.weights.h5"]}

    def _variant(self, rng) -> dict[str, bytes]:
        members = [mu.zip_member(name, data) for name, data in self.members.items()]
        r = rng.random()
        if r < 0.25:
            return {self.FILE: mu.mutate_bytes(rng, self.zip, (self.members["model.weights.h5"],))}
        if r < 0.5:
            self._replace(rng, members, "config.json", mu.mutate_json)
        elif r < 0.75:
            self._replace(rng, members, "model.weights.h5", mu.mutate_bytes)
        elif r < 0.95:
            self._edit_archive(rng, members)
        else:
            self._bomb(rng, members)
        return {self.FILE: mu.zip_bytes(members)}

    @staticmethod
    def _bomb(rng, members) -> None:
        """A member of zeros deflated ~1000:1, claiming its true size, 4 GiB or the seed's."""
        name = rng.choice(("model.weights.h5", "config.json"))
        size = rng.choice((1, 16, 64)) << 20
        raw = mu.zeros_deflated(size)
        bomb = mu.zip_member(name, b"", 8, raw=raw, compress_size=len(raw), file_size=size)
        bomb.update(rng.choice(({}, {"file_size": 0xFFFFFFFF}, {"file_size": 30908})))
        i = next(i for i, m in enumerate(members) if m["name"] == name.encode())
        members[i] = bomb

    def _replace(self, rng, members, name, edit) -> None:
        i = next(i for i, m in enumerate(members) if m["name"] == name.encode())
        members[i] = mu.zip_member(name, edit(rng, self.members[name]),
                                   rng.choice((0, 0, 8)))

    def _edit_archive(self, rng, members) -> None:
        """Zip-level lies: a header field, the compression method, the member list."""
        i = rng.randrange(len(members))
        r = rng.random()
        if r < 0.4:
            key = rng.choice(("crc", "compress_size", "file_size", "flags"))
            members[i][key] = mu.interesting_int(rng, members[i][key]) & 0xFFFFFFFF
            if key == "flags":
                members[i][key] &= 0xFFFF
        elif r < 0.55:
            name = members[i]["name"].decode()
            method = rng.choice((8, 12, 14, 99))
            members[i] = mu.zip_member(name, self.members[name], method if method == 8 else 0)
            members[i]["method"] = method
        elif r < 0.65:
            del members[i]
        elif r < 0.75:
            members.insert(i, dict(members[rng.randrange(len(members))]))
        elif r < 0.85:
            members[i]["name_in_header"] = mu.mutate_bytes(rng, members[i]["name"])
        else:
            name = rng.choice(("../escape.py", "/abs/model.weights.h5", "config.json/",
                               "x" * 4000, "model.weights.h5\0", "\u00e9.json"))
            members.insert(i, mu.zip_member(name, rng.randbytes(rng.randint(0, 64))))

    def steps(self, folder: Path):
        return [lambda: discover.discover(folder)] + \
            _network_then_weights(folder / self.FILE, self.network)


class H5:
    """A Keras 3 `.weights.h5` (HDF5 read by pyfive), read for the seed's own architecture."""
    name = "h5"
    FILE = "model.weights.h5"

    def __init__(self, seeds: Path):
        self.data = (seeds / "h5" / self.FILE).read_bytes()
        self.network = _network(seeds / "h5" / "model.json")

    def seed_files(self) -> dict[str, bytes]:
        return {self.FILE: self.data}

    def variant(self, rng) -> dict[str, bytes]:
        r = rng.random()
        if r < 0.3:      # the superblock, root group and first object headers
            return {self.FILE: mu.mutate_header(rng, self.data, 2048)}
        return {self.FILE: mu.mutate_bytes(rng, self.data)}

    def steps(self, folder: Path):
        return [lambda: keras_files.read_weights(folder / self.FILE, self.network)]


class Recording:
    """A Recorder folder: manifest.json, architecture.json, probes/labels and per-epoch .npy."""
    name = "recording"
    JSON = (recording.MANIFEST, recording.ARCHITECTURE)

    def __init__(self, seeds: Path):
        root = seeds / "recording"
        self.files = {p.relative_to(root).as_posix(): p.read_bytes()
                      for p in sorted(root.rglob("*")) if p.is_file()}
        self.arrays = sorted(name for name in self.files if name.endswith(".npy"))

    def seed_files(self) -> dict[str, bytes]:
        return dict(self.files)

    def variant(self, rng) -> dict[str, bytes]:
        files = dict(self.files)
        r = rng.random()
        if r < 0.35:
            files[recording.MANIFEST] = mu.mutate_json(rng, files[recording.MANIFEST])
        elif r < 0.5:
            files[recording.ARCHITECTURE] = mu.mutate_json(rng, files[recording.ARCHITECTURE])
        elif r < 0.85:
            name = rng.choice(self.arrays)
            files[name] = self._edit_npy(rng, files[name])
        elif r < 0.95:
            name = rng.choice(sorted(files))
            if rng.random() < 0.5:
                del files[name]
            else:
                files[name] = mu.truncate(rng, files[name])
        else:
            epoch = rng.choice([n.split("/")[1] for n in self.arrays if n.startswith("epochs/")])
            files = {n: d for n, d in files.items() if f"/{epoch}/" not in n}
        return files

    @staticmethod
    def _edit_npy(rng, data: bytes) -> bytes:
        r = rng.random()
        if r < 0.5:
            return mu.mutate_header(rng, data, 128)
        if r < 0.75:
            return mu.mutate_bytes(rng, data)
        descr = rng.choice(("'<f4'", "'|O'", "'<U4'", "'V4'", "'>f4'", "'<f2'", "'<i8'",
                            "[('a', '<f4')]", "'<f4", "None", "'b1'"))
        shape = rng.choice(("()", "(2,)", f"({1 << 40},)", "(-1, 4)", "(2, 4611686018427387904)",
                            "(" + "1, " * 40 + ")", "(2,", "(1e3,)", "[2, 2]"))
        order = rng.choice(("False", "True", "0"))
        header = f"{{'descr': {descr}, 'fortran_order': {order}, 'shape': {shape}, }}"
        header = header.ljust(118) + "\n"
        header_len = int.from_bytes(data[8:10], "little")
        return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + \
            header.encode() + data[10 + header_len:]

    def steps(self, folder: Path):
        def read():
            rec = recording.read_recording(folder)
            network_from_config(rec.architecture, str(folder / recording.ARCHITECTURE))
            for array in (rec.probes, rec.labels):
                _touch(array)
            for epoch in rec.epochs:
                for arrays in rec.weights(epoch).values():
                    for array in arrays:
                        _touch(array)
                for array in rec.activations(epoch).values():
                    _touch(array)
                _touch(rec.predictions(epoch))
        return [read]


class ONNX:
    """An ONNX model file (ModelProto, decoded by nnvis' own protobuf reader), read into a Network
    and its weights, as `load_run` does before any computing."""
    name = "onnx"
    FILE = "model.onnx"

    def __init__(self, seeds: Path):
        self.data = (seeds / "onnx" / self.FILE).read_bytes()

    def seed_files(self) -> dict[str, bytes]:
        return {self.FILE: self.data}

    def variant(self, rng) -> dict[str, bytes]:
        r = rng.random()
        if r < 0.6:
            data = self.data
            for _ in range(rng.choice((1, 1, 2, 3))):
                data = mu.mutate_proto(rng, data)
            return {self.FILE: data}
        if r < 0.9:
            return {self.FILE: mu.mutate_bytes(rng, self.data)}
        return {self.FILE: mu.truncate(rng, self.data)}

    def steps(self, folder: Path):
        def read():
            network, weights = network_from_onnx(onnx.read_onnx(folder / self.FILE))
            for arrays in weights.values():
                for array in arrays:
                    _touch(array)
        return [read]


class MultiInput:
    """A multi-input, multi-output Functional architecture (a shared layer, RandomCrop) with its
    `.weights.h5`: the config (inputs, outputs, calls) or the weights varied, then the folder's
    discovery (which compares the architectures beside weights), the network, its weights, and —
    for networks the memory budget admits, as `load_run` checks — the default probes (one per
    input) through the forward pass."""
    name = "multi-input"
    JSON, WEIGHTS = "model.json", "model.weights.h5"
    BUDGET = 64 << 20

    def __init__(self, seeds: Path):
        self.json = (seeds / "multi" / self.JSON).read_bytes()
        self.data = (seeds / "multi" / self.WEIGHTS).read_bytes()
        self.network = _network(seeds / "multi" / self.JSON)

    def seed_files(self) -> dict[str, bytes]:
        return {self.JSON: self.json, self.WEIGHTS: self.data}

    def variant(self, rng) -> dict[str, bytes]:
        if rng.random() < 0.6:
            return {self.JSON: mu.mutate_json(rng, self.json), self.WEIGHTS: self.data}
        return {self.JSON: self.json, self.WEIGHTS: mu.mutate_bytes(rng, self.data)}

    def steps(self, folder: Path):
        found = {}

        def network():
            found["network"] = keras_files.read_network(folder / self.JSON)

        def weights():
            found["weights"] = keras_files.read_weights(folder / self.WEIGHTS,
                                                        found.get("network", self.network))

        def forward():
            net = found.get("network")
            if net is None or "weights" not in found or \
                    budget.estimate(net, 1, 1)["total"] > self.BUDGET:
                return
            forward_batch_partial(net, found["weights"], load_probes(None, net))
        return [lambda: discover.discover(folder), network, weights, forward]


FORMATS = {f.name: f for f in (TF2, Keras, H5, Recording, Keras2Checkpoint, LegacyH5,
                                SavedModelMetadata, ONNX, MultiInput)}
