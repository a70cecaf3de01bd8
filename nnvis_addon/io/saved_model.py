"""Keras 2 SavedModel directories (`model.save("dir")`, TF 2.x's default) read without TensorFlow.

    dir/saved_model.pb            the graph (never read: nothing in it is executed)
    dir/keras_metadata.pb         SavedMetadata proto: per tracked object a JSON `metadata`;
                                  the root's (node_path "root") holds `model_config` and
                                  `keras_version`
    dir/variables/variables.*     a TF2 object checkpoint of the model (Keras 2 layout, read by
                                  tf_checkpoint)

keras_metadata.pb (tensorflow/python/keras/protobuf/saved_metadata.proto):
`SavedMetadata { repeated SavedObject nodes = 1; }`, `SavedObject { int32 node_id = 2;
string node_path = 3; string identifier = 4; string metadata = 5; }`, decoded with the same
hand-written wire decoder as the checkpoint's object graph. A SavedModel without it (Keras 3's
`model.export`, `tf.saved_model.save`) has no Keras architecture, which the error says.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import RECORD_SUBCLASSED, NNVisError
from .object_graph import LEN, VARINT, parse_message, text

METADATA = "keras_metadata.pb"
GRAPH = "saved_model.pb"
MAX_METADATA_BYTES = 64 << 20


def saved_model_dir(path) -> Path | None:
    """The SavedModel directory `path` is, or is a file of (saved_model.pb, keras_metadata.pb,
    variables/variables.index or .data-*), or None."""
    path = Path(path)
    candidates = [path] if path.is_dir() else []
    if path.name in (GRAPH, METADATA):
        candidates.append(path.parent)
    if path.parent.name == "variables" and path.name.startswith("variables."):
        candidates.append(path.parent.parent)
    for folder in candidates:
        if (folder / GRAPH).is_file() or (folder / METADATA).is_file():
            return folder
    return None


def weights_prefix(folder: Path) -> Path:
    prefix = folder / "variables" / "variables"
    if not Path(f"{prefix}.index").is_file():
        raise NNVisError(f"{folder}: a SavedModel without variables/variables.index")
    return prefix


def read_architecture(folder) -> dict:
    """The Keras model config of a SavedModel directory, with its `keras_version`."""
    folder = Path(folder)
    path = folder / METADATA
    if not path.is_file():
        raise NNVisError(f"{folder}: a SavedModel without {METADATA}, so without a Keras "
                         "architecture (written by tf.saved_model.save or Keras 3's "
                         "model.export?); save the model with model.save('m.keras') or "
                         "model.save('m.h5') instead")
    try:
        size = path.stat().st_size
        if size > MAX_METADATA_BYTES:
            raise NNVisError(f"{path}: {size} bytes, more than the {MAX_METADATA_BYTES} "
                             "expected of Keras metadata")
        buf = path.read_bytes()
    except OSError as e:
        raise NNVisError(f"{path}: cannot read: {e.strerror or e}") from None
    for raw in parse_message(buf, {1: LEN}, str(path)).get(1, []):
        node = parse_message(raw, {2: VARINT, 3: LEN, 4: LEN, 5: LEN}, str(path))
        if [text(p, str(path)) for p in node.get(3, [])] != ["root"]:
            continue
        try:
            metadata = json.loads(text((node.get(5) or [b""])[-1], str(path)))
        except (ValueError, RecursionError) as e:
            raise NNVisError(f"{path}: the root's metadata is not JSON ({e})") from None
        config = metadata.get("model_config") if isinstance(metadata, dict) else None
        if not isinstance(config, dict):
            raise NNVisError(f"{path}: the saved root object is not a Sequential or "
                             f"Functional model: {RECORD_SUBCLASSED}")
        version = metadata.get("keras_version")
        return {**config, "keras_version": version} if isinstance(version, str) else config
    raise NNVisError(f"{path}: no root object in the Keras metadata")
