"""Seed files for the reader fuzzer, written by TensorFlow/Keras itself (imported here only).

One small CNN (Conv2D, BatchNormalization, pooling, Dense: every kind of variable the readers map)
trained for two epochs on scikit-learn's digits, saved every way nnvis reads:

    keras/model.keras               model.save
    h5/model.weights.h5, model.json model.save_weights + model.to_json (the network it is read for)
    tf2/ckpt-1.index, .data-*, model.json   tf.train.CheckpointManager with the optimizer
    recording/...                   the Recorder callback (three epochs, two probes)
    legacy/model.h5                 model.save("model.h5"): the legacy HDF5 full model
    keras2/w.index, .data-*, model.json     the Keras 2 `save_weights("w")` object graph (root =
                                    the model, `layer_with_weights-N` children), rebuilt with
                                    tf.Module since Keras 3 no longer writes it
    savedmodel/keras_metadata.pb    a Keras 2 SavedModel's metadata (SavedMetadata proto, root
                                    node's JSON with the model config), encoded here
    multi/model.json, model.weights.h5   a Functional model with two image inputs, a vector, a
                                    1D signal and a 3D volume, Keras ops (x + 3.0, relu6),
                                    a Conv2D shared by both images, RandomCrop, two outputs
    onnx/model.onnx                 a small ONNX CNN encoded here (no onnx package needed): raw
                                    and float_data tensors, int/ints/float attributes, a
                                    channel shuffle and an NHWC LayerNorm + MatMul between
                                    transposes (the layouts model.onnx_layout follows)

Small on purpose: every fuzz input is a variant of these, and ten thousand are read per format.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _model():
    import keras
    layers = keras.layers
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1), name="digit"),
        layers.Conv2D(4, 3, activation="relu", name="conv"),
        layers.BatchNormalization(name="bn"),
        layers.MaxPooling2D(2, name="pool"),
        layers.Flatten(name="flat"),
        layers.Dense(10, activation="softmax", name="classes"),
    ], name="fuzz_cnn")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _multi_model():
    """Several inputs and outputs, a shared layer, RandomCrop, Keras ops with constants (a hard
    sigmoid written out), LayerNormalization, a 1D signal branch and a 3D volume branch."""
    import keras
    layers, ops = keras.layers, keras.ops
    keras.utils.set_random_seed(1)
    image, other = keras.Input((8, 8, 1), name="image"), keras.Input((8, 8, 1), name="other")
    aux = keras.Input((3,), name="aux")
    signal, volume = keras.Input((12, 2), name="signal"), keras.Input((4, 4, 4, 1), name="volume")
    shared = layers.Conv2D(2, 3, padding="same", activation="relu", name="shared")
    x = layers.Concatenate(name="cat")([shared(layers.RandomCrop(8, 8, name="crop")(image)),
                                       shared(other)])
    x = layers.LayerNormalization(name="norm")(x * (ops.relu6(x + 3.0) / 6.0))
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    s = layers.Conv1D(2, 3, padding="causal", name="conv1d")(signal)
    s = layers.GlobalAveragePooling1D(name="gap1d")(layers.MaxPooling1D(name="pool1d")(s))
    v = layers.Conv3D(2, 2, name="conv3d")(layers.ZeroPadding3D(1, name="pad3d")(volume))
    v = layers.GlobalMaxPooling3D(name="gmp3d")(layers.AveragePooling3D(2, name="pool3d")(v))
    x = layers.Concatenate(name="join")([x, layers.Dense(2, name="aux_dense")(aux), s, v])
    return keras.Model([image, other, aux, signal, volume],
                       [layers.Dense(3, name="classes")(x), layers.Dense(1, name="score")(x)],
                       name="fuzz_multi")


def _onnx_seed(rng) -> bytes:
    """An ONNX ModelProto (opset 17): Conv (pads) → BatchNormalization → Relu → MaxPool → a
    channel shuffle (Reshape to 5-D, Transpose, Reshape back) → Transpose to NHWC →
    LayerNormalization → MatMul → Add → Transpose back → Flatten → Gemm (transB, weights as
    float_data) → Softmax, for a (1, 1, 8, 8) input "x"."""
    from .mutate import encode_fields

    def msg(*fields):
        return encode_fields(list(fields))

    def s(n, text):
        return [n, 2, text.encode()]

    def i(n, v):
        return [n, 0, v & ((1 << 64) - 1)]

    def m(n, body):
        return [n, 2, body]

    def tensor(name, array, packed=False):
        data = [4, 2, array.astype("<f4").tobytes()] if packed else \
            [9, 2, array.astype("<f4").tobytes()]
        return msg(*[i(1, d) for d in array.shape], i(2, 1), s(8, name), data)

    def ints(name, values):
        return msg(s(1, name), i(20, 7), *[i(8, v) for v in values])

    def shape(name, values):
        return msg(i(1, len(values)), i(2, 7), s(8, name),
                   [9, 2, np.asarray(values, "<i8").tobytes()])

    def node(name, op, inputs, *attrs):
        return msg(*[s(1, v) for v in inputs], s(2, name + ":0"), s(3, name), s(4, op),
                   *[m(5, a) for a in attrs])

    def value_info(name, dims):
        shape = msg(*[m(1, msg(i(1, d))) for d in dims])
        return msg(s(1, name), m(2, msg(m(1, msg(i(1, 1), m(2, shape))))))

    weights = {"conv.w": rng.standard_normal((4, 1, 3, 3)), "conv.b": rng.standard_normal(4),
               "bn.scale": rng.uniform(0.5, 1.5, 4), "bn.bias": rng.standard_normal(4),
               "bn.mean": rng.standard_normal(4), "bn.var": rng.uniform(0.5, 1.5, 4),
               "ln.scale": rng.uniform(0.5, 1.5, 4), "ln.bias": rng.standard_normal(4),
               "mlp.w": rng.standard_normal((4, 4)) * 0.5, "mlp.b": rng.standard_normal(4),
               "dense.w": rng.standard_normal((10, 64)) * 0.1, "dense.b": rng.standard_normal(10)}
    epsilon = msg(s(1, "epsilon"), i(20, 1), [2, 5, int.from_bytes(
        np.float32(1e-3).tobytes(), "little")])
    nodes = [
        node("conv", "Conv", ["x", "conv.w", "conv.b"], ints("kernel_shape", [3, 3]),
             ints("pads", [1, 1, 1, 1]), ints("strides", [1, 1])),
        node("bn", "BatchNormalization", ["conv:0", "bn.scale", "bn.bias", "bn.mean", "bn.var"],
             epsilon),
        node("relu", "Relu", ["bn:0"]),
        node("pool", "MaxPool", ["relu:0"], ints("kernel_shape", [2, 2]), ints("strides", [2, 2])),
        node("groups", "Reshape", ["pool:0", "shape5"]),
        node("shuffle", "Transpose", ["groups:0"], ints("perm", [0, 2, 1, 3, 4])),
        node("merge", "Reshape", ["shuffle:0", "shape4"]),
        node("nhwc", "Transpose", ["merge:0"], ints("perm", [0, 2, 3, 1])),
        node("norm", "LayerNormalization", ["nhwc:0", "ln.scale", "ln.bias"],
             msg(s(1, "axis"), i(20, 2), i(3, -1)), epsilon),
        node("mlp", "MatMul", ["norm:0", "mlp.w"]),
        node("mlp_bias", "Add", ["mlp:0", "mlp.b"]),
        node("nchw", "Transpose", ["mlp_bias:0"], ints("perm", [0, 3, 1, 2])),
        node("flat", "Flatten", ["nchw:0"], msg(s(1, "axis"), i(20, 2), i(3, 1))),
        node("dense", "Gemm", ["flat:0", "dense.w", "dense.b"],
             msg(s(1, "transB"), i(20, 2), i(3, 1))),
        node("probs", "Softmax", ["dense:0"], msg(s(1, "axis"), i(20, 2), i(3, 1))),
    ]
    graph = msg(*[m(1, n) for n in nodes], s(2, "fuzz_cnn"),
                *[m(5, tensor(k, v, packed=k == "dense.w")) for k, v in weights.items()],
                m(5, shape("shape5", [1, 2, 2, 4, 4])), m(5, shape("shape4", [1, 4, 4, 4])),
                m(11, value_info("x", [1, 1, 8, 8])), m(12, value_info("probs:0", [1, 10])))
    return msg(i(1, 8), m(8, msg(s(1, ""), i(2, 17))), m(7, graph))


def make_seeds(folder) -> Path:
    """Write the seed files into `folder` (created); returns it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from sklearn.datasets import load_digits

    from ...record import Recorder

    folder = Path(folder)
    for sub in ("keras", "h5", "tf2"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    x = (digits.images[:128, :, :, None] / 16.0).astype(np.float32)
    y = digits.target[:128].astype(np.int64)
    model = _model()
    recorder = Recorder(folder / "recording", x[:2], labels=y[:2],
                        class_names=[str(d) for d in range(10)])
    model.fit(x, y, epochs=2, batch_size=64, verbose=0, callbacks=[recorder])
    model.save(folder / "keras" / "model.keras")
    model.save_weights(folder / "h5" / "model.weights.h5")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    tf.train.CheckpointManager(checkpoint, str(folder / "tf2"), max_to_keep=1).save()
    for sub in ("legacy", "keras2", "savedmodel"):
        (folder / sub).mkdir(exist_ok=True)
    model.save(folder / "legacy" / "model.h5")
    _keras2_weights(tf, model, folder / "keras2" / "w")
    _keras2_metadata(model, folder / "savedmodel" / "keras_metadata.pb")
    for sub in ("h5", "tf2", "keras2"):
        (folder / sub / "model.json").write_text(model.to_json())
    (folder / "multi").mkdir(exist_ok=True)
    multi = _multi_model()
    multi.save_weights(folder / "multi" / "model.weights.h5")
    (folder / "multi" / "model.json").write_text(multi.to_json())
    (folder / "onnx").mkdir(exist_ok=True)
    (folder / "onnx" / "model.onnx").write_bytes(_onnx_seed(np.random.default_rng(0)))
    return folder


def _keras2_weights(tf, model, prefix: Path) -> None:
    """What Keras 2's `model.save_weights(prefix)` writes: the model at the root, its layers with
    weights as `layer_with_weights-N` holding their variables by attribute name."""
    children = {}
    for n, layer in enumerate(l for l in model.layers if l.weights):
        module = tf.Module()
        for variable in layer.weights:
            setattr(module, variable.path.split("/")[-1], tf.Variable(variable.numpy()))
        children[f"layer_with_weights-{n}"] = module
    tf.train.Checkpoint(**children).write(str(prefix))


def _keras2_metadata(model, path: Path) -> None:
    """keras_metadata.pb: SavedMetadata{nodes=1: SavedObject{node_path=3, identifier=4,
    metadata=5}}, the root's metadata holding the model config, as Keras 2 writes it."""
    import json

    from .mutate import varint

    def field(number: int, payload: bytes) -> bytes:
        return varint(number << 3 | 2) + varint(len(payload)) + payload
    config = json.loads(model.to_json())
    metadata = json.dumps({"class_name": config["class_name"], "keras_version": "2.15.0",
                           "model_config": {"class_name": config["class_name"],
                                            "config": config["config"]}}).encode()
    node = field(3, b"root") + field(4, b"_tf_keras_sequential") + field(5, metadata)
    path.write_bytes(field(1, node))


if __name__ == "__main__":      # python -m nnvis_addon.tools.bench.fuzz_seeds FOLDER (the bench's child)
    import sys
    make_seeds(sys.argv[1])
