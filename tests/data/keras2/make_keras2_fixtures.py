"""Write the Keras 2 fixtures (tf.keras 2.15) and the activations TensorFlow computes on them.

Run by hand, never in CI (TF 2.15 does not install beside bpy):

    python3.11 -m venv /tmp/venv-tf215
    /tmp/venv-tf215/bin/pip install tensorflow-cpu==2.15.1
    /tmp/venv-tf215/bin/python tests/data/keras2/make_keras2_fixtures.py

Names as arguments (`... make_keras2_fixtures.py multi`) write only those models; `multi` has its
own seeds, so writing it alone gives the same files as writing all.

Every model is trained for 3 "epochs" (one batch each) and saved after each in the ways users
do; `<model>/expected.npz` holds the probe (`probe`) and every layer's output for it after each
epoch (`e<N>/<layer>`). Files that hold one state hold the last epoch's.
"""
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

assert tf.__version__.startswith("2.15"), tf.__version__
keras = tf.keras
layers = keras.layers
HERE = Path(__file__).resolve().parent
EPOCHS = 3


def functional():
    """BN, Add, GAP, Keras 2 LeakyReLU(alpha) and hard_sigmoid: the silently-wrong cases."""
    x = inputs = keras.Input((8, 8, 3), name="image")
    stem = layers.Conv2D(4, 3, padding="same", name="stem")(x)
    y = layers.BatchNormalization(name="bn")(stem)
    y = layers.LeakyReLU(alpha=0.1, name="leaky")(y)
    y = layers.Conv2D(4, 3, padding="same", activation="hard_sigmoid", name="gate")(y)
    y = layers.Add(name="add")([stem, y])
    y = layers.Activation("hard_sigmoid", name="hard")(y)
    y = layers.GlobalAveragePooling2D(name="gap")(y)
    outputs = layers.Dense(3, activation="softmax", name="out")(y)
    return keras.Model(inputs, outputs, name="func")


def augmented():
    """The Keras image-classification tutorial's head: augmentation, then Rescaling(1/255)."""
    return keras.Sequential([
        keras.Input((8, 8, 3), name="pixels"),
        layers.RandomFlip("horizontal", name="flip"),
        layers.RandomRotation(0.1, name="rotate"),
        layers.Rescaling(1.0 / 255, name="rescale"),
        layers.Conv2D(4, 3, activation="relu", name="conv"),
        layers.MaxPooling2D(name="pool"),
        layers.Flatten(name="flat"),
        layers.Dense(3, name="logits"),
    ], name="seq")


def fully_convolutional():
    """Input((None, None, 3)): the probe decides the sizes."""
    x = inputs = keras.Input((None, None, 3), name="image")
    x = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="conv")(x)
    x = layers.Conv2D(2, 1, name="head")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, x, name="fcn")


def nested():
    """Transfer learning: a Functional backbone inside a Sequential."""
    x = inputs = keras.Input((8, 8, 3), name="backbone_in")
    x = layers.Conv2D(4, 3, padding="same", name="b_conv")(x)
    x = layers.BatchNormalization(name="b_bn")(x)
    x = layers.ReLU(name="b_relu")(x)
    backbone = keras.Model(inputs, x, name="backbone")
    return keras.Sequential([keras.Input((8, 8, 3), name="image"), backbone,
                             layers.GlobalAveragePooling2D(name="gap"),
                             layers.Dense(3, name="out")], name="transfer")


def mixed_precision():
    """mixed_float16: float16 compute, float32 variables (the policy is set around the build)."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        x = inputs = keras.Input((8, 8, 3), name="image")
        x = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
        x = layers.BatchNormalization(name="bn")(x)
        x = layers.GlobalAveragePooling2D(name="gap")(x)
        x = layers.Dense(3, name="logits")(x)
        outputs = layers.Activation("softmax", dtype="float32", name="probs")(x)
        return keras.Model(inputs, outputs, name="mixed")
    finally:
        keras.mixed_precision.set_global_policy("float32")


def multi_input():
    """Two image inputs and an auxiliary vector; a Conv2D shared by both images (its second call
    is `shared@1` in nnvis); RandomCrop, which tf.keras 2.15 smart_resizes at inference."""
    image = keras.Input((10, 12, 3), name="image")
    reference = keras.Input((8, 8, 3), name="reference")
    aux = keras.Input((4,), name="aux")
    shared = layers.Conv2D(4, 3, padding="same", activation="relu", name="shared")
    x = layers.Concatenate(name="cat")([shared(layers.RandomCrop(8, 8, name="crop")(image)),
                                        shared(reference)])
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Concatenate(name="join")([x, layers.Dense(3, name="aux_dense")(aux)])
    outputs = layers.Dense(3, activation="softmax", name="out")(x)
    return keras.Model([image, reference, aux], outputs, name="multi")


def multi_activations(model, probes):
    """Every call's output (call i > 0 of a shared layer as `<name>@<i>`), inputs included."""
    tensors, names = [], []
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        for i in range(len(layer._inbound_nodes)):
            tensors.append(layer.get_output_at(i))
            names.append(layer.name if i == 0 else f"{layer.name}@{i}")
    outs = keras.Model(model.inputs, tensors)([p[None] for p in probes], training=False)
    found = {name: np.asarray(out, np.float32)[0] for name, out in zip(names, outs)}
    found.update((t.name.split(":")[0], p) for t, p in zip(model.inputs, probes))
    return found


def activations(model, probe):
    """Every layer's output at inference (nested models: every inner layer's, by its own name)."""
    if isinstance(probe, list):
        return multi_activations(model, probe)
    found = {}

    def walk(m, x):
        if isinstance(m, keras.Sequential):
            for layer in m.layers:
                x = walk(layer, x) if isinstance(layer, keras.Model) else layer(x, training=False)
                found[layer.name] = np.asarray(x, np.float32)
            return x
        outs = keras.Model(m.inputs, [layer.output for layer in m.layers])(x)
        found.update((layer.name, np.asarray(out, np.float32))
                     for layer, out in zip(m.layers, outs))
        return outs[-1]
    walk(model, tf.constant(probe[None]))
    found[model.inputs[0].name.split(":")[0]] = probe[None]
    return {name: value[0] for name, value in found.items()}


def train_one(model, rng):
    if isinstance(model.input_shape, list):
        x = [rng.uniform(0, 1, (8, *shape[1:])).astype("float32") for shape in model.input_shape]
        model.fit(x, rng.uniform(0, 1, (8, 3)).astype("float32"), epochs=1, batch_size=8,
                  verbose=0)
        return
    shape = [d or 10 for d in model.input_shape[1:]]
    x = rng.uniform(0, 1, (8, *shape)).astype("float32")
    if model.name == "seq":
        x *= 255
    out = model.output_shape[-1]
    y = rng.uniform(0, 1, (8, out)).astype("float32")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)


def write(name, model, probe, formats, rng):
    folder = HERE / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    expected = {f"probe/{t.name.split(':')[0]}": p for t, p in zip(model.inputs, probe)} \
        if isinstance(probe, list) else {"probe": probe}
    manager_ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = tf.train.CheckpointManager(manager_ckpt, folder / "manager", max_to_keep=5)
    bare_ckpt = tf.train.Checkpoint(model=model)
    for epoch in range(1, EPOCHS + 1):
        train_one(model, rng)
        for key, value in activations(model, probe).items():
            expected[f"e{epoch}/{key}"] = value
        if "epochs" in formats:
            (folder / "epochs_h5").mkdir(exist_ok=True)
            model.save(folder / "epochs_h5" / f"ep{epoch:02d}.h5")       # ModelCheckpoint .h5
            manager.save(checkpoint_number=epoch)
            model.save_weights(folder / "tutorial" / f"cp-{epoch:04d}.ckpt")   # TF tutorial
            bare_ckpt.save(folder / "no_manager" / "ckpt")
            (folder / "keras_pattern").mkdir(exist_ok=True)
            model.save_weights(folder / "keras_pattern" /
                               f"weights.{epoch:02d}-{0.5 / epoch:.2f}.weights.h5")
    np.savez_compressed(folder / "expected.npz", **expected)
    arch = model.to_json()
    model.save(folder / "full.h5")                                      # legacy full model
    if "epochs" in formats:
        for sub in ("manager", "tutorial", "no_manager", "keras_pattern"):
            (folder / sub / "model.json").write_text(arch)
        (folder / "keras_pattern" / "history.json").write_text(json.dumps({"loss": [0.5]}))
    if "weights" in formats:
        (folder / "weights_h5").mkdir()
        model.save_weights(folder / "weights_h5" / "w.h5")              # legacy weights-only
        (folder / "weights_h5" / "model.json").write_text(arch)
        (folder / "json_weights").mkdir()
        model.save_weights(folder / "json_weights" / "model.weights.h5")
        (folder / "json_weights" / "model.json").write_text(arch)
        model.save(folder / f"{name}.keras")                            # Keras 2.15 .keras
        model.save_weights(folder / "tf_weights" / "w")                 # TF-format weights
        (folder / "tf_weights" / "model.json").write_text(arch)
    if "savedmodel" in formats:
        model.save(folder / "savedmodel", include_optimizer=False)      # TF 2.x default format
        for big in (folder / "savedmodel").glob("fingerprint.pb"):
            big.unlink()


def main(only):
    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    probe = rng.uniform(0, 1, (8, 8, 3)).astype("float32")
    if not only:
        write("func", functional(), probe, {"epochs", "weights", "savedmodel"}, rng)
        write("seq", augmented(), (probe * 255).round(), {"weights"}, rng)
        write("fcn", fully_convolutional(), rng.uniform(0, 1, (10, 12, 3)).astype("float32"),
              {"weights"}, rng)
        write("nested", nested(), probe, {"weights"}, rng)
        write("mixed", mixed_precision(), probe, set(), rng)
    if not only or "multi" in only:
        tf.keras.utils.set_random_seed(5)
        rng = np.random.default_rng(5)
        probes = [rng.uniform(0, 1, shape).astype("float32")
                  for shape in ((10, 12, 3), (8, 8, 3), (4,))]
        write("multi", multi_input(), probes, {"weights", "savedmodel"}, rng)
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"fixtures: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main(set(sys.argv[1:]))
