"""TF2 checkpoints read in pure numpy, checked against TensorFlow itself.

TensorFlow/Keras train small CNNs on scikit-learn's digits and save with CheckpointManager;
the reader must give back exactly what `tf.train.load_checkpoint` and `layer.get_weights()`
give, and turn every damaged file into an NNVisError naming it.
"""
import os
import re
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from tensorflow.core.protobuf import trackable_object_graph_pb2  # noqa: E402

from nnvis_addon.errors import NNVisError  # noqa: E402
from nnvis_addon.io.object_graph import parse_object_graph  # noqa: E402
from nnvis_addon.io.tensorbundle import TensorBundle, crc32c  # noqa: E402
from nnvis_addon.io.tf_checkpoint import list_checkpoints, read_tf_checkpoint  # noqa: E402
from nnvis_addon.model.network import Layer, Network  # noqa: E402

TIER = "oracle"

L = keras.layers


def _sequential():
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        L.Conv2D(6, 3, padding="same", activation="relu", name="conv_a"),
        L.MaxPooling2D(),
        L.Conv2D(8, 3, padding="same", activation="relu"),
        L.MaxPooling2D(),
        L.Flatten(),
        L.Dense(16, activation="relu"),
        L.Dense(10, activation="softmax"),
    ])


def _batchnorm():
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        L.Conv2D(6, 3, padding="same"),
        L.BatchNormalization(name="bn_a"),
        L.Activation("relu"),
        L.MaxPooling2D(),
        L.Conv2D(8, 3, padding="same", use_bias=False),
        L.BatchNormalization(),
        L.MaxPooling2D(),
        L.Flatten(),
        L.Dropout(0.2),
        L.Dense(10, activation="softmax"),
    ])


def _functional():
    inp = keras.Input((8, 8, 1), name="digits")
    a = L.Conv2D(6, 3, padding="same", name="left")(inp)      # two layers with equal shapes:
    b = L.Conv2D(6, 3, padding="same", name="right")(inp)     # only the order tells them apart
    x = L.BatchNormalization()(L.Add()([a, b]))
    inner = keras.Sequential([keras.Input((8, 8, 6)), L.Conv2D(8, 3, padding="same"),
                              L.MaxPooling2D()], name="block")
    inner.compile("sgd", "mse")       # a nested model's own optimizer holds no layer weights
    x = L.Flatten()(inner(x))
    return keras.Model(inp, L.Dense(10, activation="softmax")(x), name="branchy")


MODELS = {"sequential": _sequential, "batchnorm": _batchnorm, "functional": _functional}


def network_of(model) -> Network:
    """The Network the config parser would build (InputLayer first), straight from Keras."""
    layers = [Layer(name=l.name, kind=type(l).__name__, config=l.get_config(), inbound=[],
                    output_shape=tuple(l.output.shape[1:]),
                    weight_shapes=[tuple(w.shape) for w in l.weights]) for l in model.layers]
    if layers[0].kind != "InputLayer":
        layers.insert(0, Layer(name="input", kind="InputLayer", config={}, inbound=[],
                               output_shape=tuple(model.input_shape[1:])))
    return Network(name=model.name, layers=layers)


class Run:
    def __init__(self, folder, model, saved):
        self.folder = folder
        self.model = model
        self.network = network_of(model)
        self.saved = saved          # [(prefix, {layer name: get_weights()})] per save


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """name -> Run, each model trained and checkpointed once per test session."""
    runs = {}

    def train(name):
        if name not in runs:
            runs[name] = _train(name, tmp_path_factory.mktemp(name))
        return runs[name]
    return train


def _train(name, folder):
    keras.utils.set_random_seed(0)
    digits = load_digits()
    x = (digits.images[:256, :, :, None] / 16.0).astype("float32")
    y = digits.target[:256]
    model = MODELS[name]()
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = tf.train.CheckpointManager(checkpoint, str(folder), max_to_keep=5)
    saved = []
    for _ in range(3):
        model.fit(x, y, epochs=1, batch_size=64, verbose=0)
        weights = {l.name: l.get_weights() for l in model.layers if l.weights}
        saved.append((manager.save(), weights))
    return Run(folder, model, saved)


@pytest.fixture(params=list(MODELS))
def run(request, trained):
    return trained(request.param)


@pytest.fixture
def seq_run(trained):
    return trained("sequential")


def assert_same_tensor(bundle, reader, key, tf_dtype):
    ours, theirs = bundle.read(key), reader.get_tensor(key)
    assert ours.shape == np.shape(theirs) == bundle.shape(key)
    assert ours.dtype == bundle.dtype(key)
    if tf_dtype == tf.string:
        assert ours.dtype == object
        assert ours.tolist() == (theirs.tolist() if isinstance(theirs, np.ndarray) else theirs)
    elif tf_dtype == tf.bfloat16:
        assert ours.dtype == np.float32
        np.testing.assert_array_equal(ours, np.asarray(theirs).astype(np.float32))
    else:
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)


def assert_bundle_equals_tensorflow(prefix):
    bundle, reader = TensorBundle(prefix), tf.train.load_checkpoint(prefix)
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    assert sorted(bundle.keys()) == bundle.keys() == sorted(shapes)
    for key in bundle.keys():
        assert bundle.shape(key) == tuple(shapes[key])
        assert_same_tensor(bundle, reader, key, dtypes[key])
    return bundle


# --- TensorBundle and the object graph against TensorFlow --------------------------------

def test_bundle_equals_tensorflow(run):
    for n, (prefix, _) in enumerate(run.saved, start=1):
        bundle = assert_bundle_equals_tensorflow(prefix)
        assert bundle.read("save_counter/.ATTRIBUTES/VARIABLE_VALUE")[()] == n
        assert "_CHECKPOINTABLE_OBJECT_GRAPH" in bundle.keys()


def test_object_graph_equals_tensorflow_proto(run):
    prefix = run.saved[0][0]
    raw = TensorBundle(prefix).read("_CHECKPOINTABLE_OBJECT_GRAPH")[()]
    assert_object_graph_equal(raw)


def assert_object_graph_equal(raw):
    proto = trackable_object_graph_pb2.TrackableObjectGraph.FromString(raw)
    ours = parse_object_graph(raw, "test")
    assert len(ours) == len(proto.nodes)
    for node, ref in zip(ours, proto.nodes):
        assert [(c.node_id, c.local_name) for c in node.children] == \
            [(c.node_id, c.local_name) for c in ref.children]
        assert [(a.name, a.full_name, a.checkpoint_key) for a in node.attributes] == \
            [(a.name, a.full_name, a.checkpoint_key) for a in ref.attributes]
        assert [(s.original_variable_node_id, s.slot_name, s.slot_variable_node_id)
                for s in node.slot_variables] == \
            [(s.original_variable_node_id, s.slot_name, s.slot_variable_node_id)
             for s in ref.slot_variables]
    return ours


def test_dtypes_strings_and_slot_variables(tmp_path):
    rng = np.random.default_rng(1)
    values = {
        "f16": rng.normal(size=100_001).astype(np.float16),   # odd byte count: CRC tail path
        "f32": rng.normal(size=(300, 1000)).astype(np.float32),  # 1.2 MB: CRC numpy lanes
        "f64": rng.normal(size=(3, 2)),
        "i8": np.array([-128, 0, 127], np.int8), "i16": np.array([-3, 30000], np.int16),
        "i32": np.arange(-5, 5, dtype=np.int32).reshape(2, 5),
        "i64": np.array([-(2 ** 62), 2 ** 62]), "u8": np.arange(256, dtype=np.uint8),
        "flag": np.array([True, False, True]), "c64": np.array([1 + 2j, -3j], np.complex64),
        "empty": np.zeros((0, 3), np.float32), "scalar": np.float32(2.5),
        "text": np.array([[b"", b"abc"], [b"x" * 300, bytes(range(256))]], dtype=object),
    }
    variables = {k: tf.Variable(v) for k, v in values.items()}
    variables["bf16"] = tf.Variable(tf.constant([1.5, -2.25, 2.0 ** 100, 0.0], tf.bfloat16))
    w = tf.Variable([1.0, 2.0])
    momentum = tf.compat.v1.train.MomentumOptimizer(0.1, 0.9)   # keeps classic slot variables
    momentum.minimize(lambda: tf.reduce_sum(w * w), var_list=[w])
    prefix = tf.train.Checkpoint(w=w, opt=momentum, **variables).write(str(tmp_path / "mixed"))

    bundle = assert_bundle_equals_tensorflow(prefix)
    np.testing.assert_array_equal(bundle.read("bf16/.ATTRIBUTES/VARIABLE_VALUE"),
                                  np.array([1.5, -2.25, 2.0 ** 100, 0.0], np.float32))
    nodes = assert_object_graph_equal(bundle.read("_CHECKPOINTABLE_OBJECT_GRAPH")[()])
    assert [s.slot_name for n in nodes for s in n.slot_variables] == ["momentum"]


def test_crc32c_known_value_and_numpy_lanes():
    assert crc32c(b"123456789") == 0xE3069283          # the standard CRC-32C check value
    assert crc32c(b"") == 0
    data = np.random.default_rng(2).integers(0, 256, 65_536 + 13, dtype=np.uint8).tobytes()
    reference = 0xFFFFFFFF                               # bit-at-a-time, straight from the spec
    for byte in data:
        reference ^= byte
        for _ in range(8):
            reference = (reference >> 1) ^ (0x82F63B78 if reference & 1 else 0)
    assert crc32c(data) == reference ^ 0xFFFFFFFF       # numpy lanes plus a 13-byte tail


# --- layers -----------------------------------------------------------------------------

def test_read_tf_checkpoint_equals_get_weights(run):
    previous = None
    for prefix, expected in run.saved:
        got = read_tf_checkpoint(prefix, run.network)
        assert list(got) == list(expected)
        for name, arrays in expected.items():
            assert len(got[name]) == len(arrays), name
            for ours, theirs in zip(got[name], arrays):
                assert ours.dtype == theirs.dtype
                np.testing.assert_array_equal(ours, theirs)
        if previous is not None:                         # training moved every trainable layer
            first = next(iter(got))
            assert not np.array_equal(got[first][0], previous[first][0])
        previous = got


def test_read_accepts_index_path_and_data_path(run):
    prefix, expected = run.saved[-1]
    for path in (prefix + ".index", prefix + ".data-00000-of-00001"):
        got = read_tf_checkpoint(path, run.network)
        for name, arrays in expected.items():
            np.testing.assert_array_equal(got[name][-1], arrays[-1])


def test_network_in_another_order_is_matched_by_unique_shapes(run):
    prefix, expected = run.saved[0]
    reordered = Network(run.network.name, list(reversed(run.network.layers)))
    if run.model.name == "branchy":       # equal branch shapes: order was the only clue
        with pytest.raises(NNVisError, match="expects weights of shapes"):
            read_tf_checkpoint(prefix, reordered)
        return
    got = read_tf_checkpoint(prefix, reordered)
    for name, arrays in expected.items():
        for ours, theirs in zip(got[name], arrays):
            np.testing.assert_array_equal(ours, theirs)


def test_wrong_network_names_layer_and_shapes(run):
    prefix = run.saved[0][0]
    layers = list(run.network.layers)
    last = layers[-1]
    layers[-1] = Layer(last.name, last.kind, last.config, [], (7,),
                       [(last.weight_shapes[0][0], 7), (7,)])
    with pytest.raises(NNVisError) as err:
        read_tf_checkpoint(prefix, Network("wrong", layers))
    message = str(err.value)
    assert prefix + ".index" in message and repr(last.name) in message
    assert f"{(last.weight_shapes[0][0], 7)}" in message and f"{last.weight_shapes[0]}" in message

    weighted = [l for l in run.network.layers if l.weight_shapes]
    missing = Network("short", [l for l in run.network.layers if l is not weighted[1]])
    with pytest.raises(NNVisError, match=f"{len(weighted) - 1} layers with weights"):
        read_tf_checkpoint(prefix, missing)


def test_model_found_under_other_names(seq_run, tmp_path):
    model, expected = seq_run.model, seq_run.saved[-1][1]
    other = _batchnorm()
    for n, kwargs in enumerate([dict(net=model), dict(root=model),
                                dict(teacher=other, model=model)]):
        prefix = tf.train.Checkpoint(**kwargs).write(str(tmp_path / f"ck{n}"))
        got = read_tf_checkpoint(prefix, seq_run.network)
        for name, arrays in expected.items():
            for ours, theirs in zip(got[name], arrays):
                np.testing.assert_array_equal(ours, theirs)
    prefix = tf.train.Checkpoint(student=model, teacher=other).write(str(tmp_path / "two"))
    with pytest.raises(NNVisError, match="several Keras models.*student"):
        read_tf_checkpoint(prefix, seq_run.network)


# --- which checkpoints a folder holds -------------------------------------------------------

def test_list_checkpoints_in_save_order(run):
    assert list_checkpoints(run.folder) == [(n, str(run.folder / f"ckpt-{n}")) for n in (1, 2, 3)]
    assert [prefix for _, prefix in list_checkpoints(run.folder)] == [p for p, _ in run.saved]


@pytest.fixture
def copied(seq_run, tmp_path):
    """A copy of the Sequential run's checkpoint folder that a test may change."""
    folder = tmp_path / "copy"
    shutil.copytree(seq_run.folder, folder)
    return folder


def test_state_file_adds_to_the_prefixes_on_disk(copied):
    sub = copied / "rü"                                  # stored as octal escapes by TensorFlow
    sub.mkdir()
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(copied / f"ckpt-1{suffix}", sub / f"ckpt-7{suffix}")
    escaped = "r" + "".join(f"\\{b:03o}" for b in "ü".encode())    # r\303\274
    (copied / "checkpoint").write_text(
        'model_checkpoint_path: "/another/machine/run/ckpt-3"\n'
        'all_model_checkpoint_paths: "C:\\\\Users\\\\me\\\\run\\\\ckpt-2"\n'
        f'all_model_checkpoint_paths: "{escaped}/ckpt-7"\n'
        'all_model_checkpoint_paths: "ckpt-3"\n'
        'all_model_checkpoint_timestamps: 1795812522.9\n')
    # every prefix on disk counts (Checkpoint.save without a manager lists only the last one);
    # the state file adds the one it names in a subfolder
    assert list_checkpoints(copied) == [(1, str(copied / "ckpt-1")), (2, str(copied / "ckpt-2")),
                                        (3, str(copied / "ckpt-3")), (7, str(sub / "ckpt-7"))]
    (copied / "checkpoint").unlink()
    assert [n for n, _ in list_checkpoints(copied)] == [1, 2, 3]


def test_several_checkpoint_names_without_state_file_are_refused(copied):
    (copied / "checkpoint").unlink()
    shutil.copy(copied / "ckpt-1.index", copied / "other-5.index")
    with pytest.raises(NNVisError, match="other.*ckpt|ckpt.*other"):
        list_checkpoints(copied)


# --- damaged input ----------------------------------------------------------------------

def _damage(folder, how):
    index, data = folder / "ckpt-1.index", folder / "ckpt-1.data-00000-of-00001"
    if how == "missing data shard":
        data.unlink()
        return data
    target = index if "index" in how else data
    content = target.read_bytes()
    if how.startswith("truncated"):
        target.write_bytes(content[:len(content) // 2])
    elif how == "random bytes index":
        target.write_bytes(np.random.default_rng(3).bytes(len(content)))
    elif how == "text file as index":
        target.write_text("not a checkpoint\n" * 20)
    elif how == "flipped byte in index":
        flipped = bytearray(content)
        flipped[len(content) // 3] ^= 0x40
        target.write_bytes(bytes(flipped))
    elif how == "flipped bytes in data":           # every tensor, not only optimizer state
        target.write_bytes(bytes(b ^ 0x40 if i % 97 == 0 else b for i, b in enumerate(content)))
    return target


@pytest.mark.parametrize("how", ["missing data shard", "truncated index", "truncated data",
                                 "random bytes index", "text file as index",
                                 "flipped byte in index", "flipped bytes in data"])
def test_damaged_checkpoint_raises_naming_the_file(copied, seq_run, how):
    damaged = _damage(copied, how)
    with pytest.raises(NNVisError) as err:
        read_tf_checkpoint(copied / "ckpt-1", seq_run.network)
    assert str(damaged) in str(err.value)


def test_missing_index_and_non_object_checkpoint(tmp_path, seq_run):
    with pytest.raises(NNVisError, match=re.escape(str(tmp_path / "nothing.index"))):
        read_tf_checkpoint(tmp_path / "nothing", seq_run.network)
    prefix = str(tmp_path / "raw")        # a TensorBundle written by SaveV2: no object graph
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=["a"], shape_and_slices=[""],
                      tensors=[tf.constant([1.0, 2.0])])
    np.testing.assert_array_equal(TensorBundle(prefix).read("a"), [1.0, 2.0])
    with pytest.raises(NNVisError, match="no object graph"):
        read_tf_checkpoint(prefix, seq_run.network)


def _read_everything(prefix, network):
    bundle = TensorBundle(prefix)
    for key in bundle.keys():
        bundle.read(key)
    read_tf_checkpoint(prefix, network)


def test_every_truncation_and_byte_flip_gives_nnvis_error(copied, seq_run):
    """Never another exception: damage the index at many places and the data anywhere."""
    prefix = copied / "ckpt-1"
    index = copied / "ckpt-1.index"
    data = copied / "ckpt-1.data-00000-of-00001"
    original_index, original_data = index.read_bytes(), data.read_bytes()
    rng = np.random.default_rng(4)
    for n in sorted(set(rng.integers(0, len(original_index), 150).tolist()) | {0, 47, 48}):
        index.write_bytes(original_index[:n])
        with pytest.raises(NNVisError, match=re.escape(str(index))):
            _read_everything(prefix, seq_run.network)
    for pos in rng.integers(0, len(original_index), 300).tolist():
        flipped = bytearray(original_index)
        flipped[pos] ^= 1 << int(rng.integers(8))
        index.write_bytes(bytes(flipped))
        try:
            _read_everything(prefix, seq_run.network)
        except NNVisError as e:
            assert str(index) in str(e)
        else:                                  # only the footer's zero padding goes unread
            assert original_index[pos] == 0
            assert len(original_index) - 48 < pos < len(original_index) - 8
    index.write_bytes(original_index)
    for pos in rng.integers(0, len(original_data), 80).tolist():
        flipped = bytearray(original_data)
        flipped[pos] ^= 0x10
        data.write_bytes(bytes(flipped))
        with pytest.raises(NNVisError, match=re.escape(str(data)) + ".*checksum mismatch"):
            _read_everything(prefix, seq_run.network)
