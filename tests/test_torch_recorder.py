"""The PyTorch Recorder: a small CNN trained 3 epochs; the recording loads in a process without
torch, and every recorded layer equals the module outputs seen by forward hooks (eval, no_grad)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from nnvis_addon import load_run  # noqa: E402

TIER = "oracle"

ROOT = Path(__file__).resolve().parent.parent
RTOL = 1e-4


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                      nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True))
        self.skip = nn.Conv2d(4, 4, 3, stride=1, padding=1, groups=4)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(4 * 5 * 5, 3))

    def forward(self, x):
        x = self.features(x)
        x = torch.relu(x + self.skip(x))
        return self.head(x)


def hook_outputs(model, x) -> dict[str, np.ndarray]:
    """Every leaf module's output for `x` in eval mode under no_grad, channels-last."""
    found, handles = {}, []

    def keep(name):
        def hook(module, args, out):
            found.setdefault(name, out.detach().numpy().copy())
        return hook

    for name, module in model.named_modules():
        if name and not list(module.children()):
            handles.append(module.register_forward_hook(keep(name)))
    was = model.training
    model.eval()
    with torch.no_grad():
        model(x)
    model.train(was)
    for h in handles:
        h.remove()
    return {k: v.transpose(0, 2, 3, 1) if v.ndim == 4 else v for k, v in found.items()}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    from nnvis_addon.record.torch import Recorder
    out = tmp_path_factory.mktemp("torch_run")
    torch.manual_seed(0)
    model = TinyCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.5)
    x, y = torch.randn(96, 1, 8, 8), torch.randint(0, 3, (96,))
    probes, labels = x[:5], y[:5]
    oracle, losses = {}, {}
    with Recorder(model, out / "run", probes=probes, labels=labels.numpy(),
                  class_names=["a", "b", "c"]) as rec:
        for epoch in range(1, 4):
            model.train()
            total = 0.0
            for k in range(0, 96, 16):
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(x[k:k + 16]), y[k:k + 16])
                loss.backward()
                opt.step()
                total += loss.item() / 6
            rec.epoch_end(epoch, loss=total, accuracy=torch.tensor(0.5))
            assert model.training                       # the recorder restored the mode
            oracle[epoch] = hook_outputs(model, probes)
            losses[epoch] = total
    np.savez(out / "oracle.npz", **{f"{e}|{k}": v for e, d in oracle.items() for k, v in d.items()})
    return out, oracle, losses, probes.numpy()


def load_without_torch(folder: Path) -> dict:
    """Every layer's activations per epoch, loaded by a Python in which torch cannot import."""
    script = textwrap.dedent(f"""
        import sys, json, numpy as np
        sys.modules["torch"] = None                     # any import of torch fails
        from nnvis_addon import load_run
        run = load_run({str(folder)!r})
        def every_probe(name, epoch):
            out = []
            for p in range(len(run.probes)):
                run.probe_index = p
                out.append(run.activations(name, epoch))
            return np.stack(out)
        np.savez({str(folder / "loaded.npz")!r}, **{{f"{{e}}|{{l.name}}": every_probe(l.name, e)
                 for e in run.epochs for l in run.layers}})
        print(json.dumps({{"epochs": run.epochs, "metrics": {{str(k): v for k, v in
                          run.metrics.items()}}, "kinds": {{l.name: l.kind for l in run.layers}},
                          "inbound": {{l.name: l.inbound for l in run.layers}},
                          "warnings": run.warnings}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    info = json.loads(done.stdout.strip().splitlines()[-1])
    with np.load(folder / "loaded.npz") as npz:
        info["activations"] = {k: npz[k] for k in npz.files}
    return info


def test_recording_loads_without_torch_and_equals_the_hooks(recorded):
    out, oracle, losses, _ = recorded
    info = load_without_torch(out / "run")
    assert info["epochs"] == [1, 2, 3]
    assert info["kinds"] == {"x": "InputLayer", "features.0": "Conv2D",
                             "features.1": "BatchNormalization", "features.2": "ReLU",
                             "features.3": "MaxPooling2D", "skip": "DepthwiseConv2D",
                             "add": "Add", "relu": "ReLU", "head.0": "Flatten",
                             "head.1": "Dropout", "head.2": "Dense"}
    assert info["inbound"]["add"] == ["features.3", "skip"]
    assert not info["warnings"]
    acts = info["activations"]
    for epoch in (1, 2, 3):
        assert info["metrics"][str(epoch)] == {"loss": pytest.approx(losses[epoch]),
                                               "accuracy": 0.5}
        for module, want in oracle[epoch].items():
            np.testing.assert_allclose(acts[f"{epoch}|{module}"], want, rtol=RTOL, atol=1e-6,
                                       err_msg=f"{module} epoch {epoch}")
        np.testing.assert_allclose(acts[f"{epoch}|add"], oracle[epoch]["features.3"] +
                                   oracle[epoch]["skip"], rtol=RTOL, atol=1e-6)
    assert not np.allclose(acts["1|head.2"], acts["3|head.2"])


def test_numpy_forward_from_recorded_weights_equals_the_recording(recorded):
    """The Keras kinds and weights the recorder wrote compute what torch computed, from a probe
    given in the (C, H, W) layout the model takes; the same probe as H×W×C is refused, not read
    as a 1-channel image of another size (issue 25)."""
    from nnvis_addon.errors import NNVisError
    out, oracle, _, probes = recorded
    run = load_run(out / "run")
    fresh = load_run(out / "run", probe=probes[2])
    with pytest.raises(NNVisError, match=r"C×H×W.*\(1, 8, 8\).*H×W×C"):
        load_run(out / "run", probe=probes[2].transpose(1, 2, 0))
    for epoch in run.epochs:
        run.probe_index = 2
        for layer in run.layers:
            np.testing.assert_allclose(fresh.activations(layer.name, epoch),
                                       run.activations(layer.name, epoch), rtol=RTOL, atol=1e-5,
                                       err_msg=layer.name)
    assert run.class_names == ["a", "b", "c"] and list(run.labels) == list(recorded_labels(out))


def recorded_labels(out):
    return np.load(out / "run" / "labels.npy")


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(2 * 6 * 6, 2)

    def forward(self, x):
        x = self.conv(x)
        if x.sum() > 1e9:
            x = x * 2
        return self.fc(torch.flatten(torch.relu(x), 1))


def test_untraceable_model_falls_back_to_hook_order(tmp_path):
    from nnvis_addon.record.torch import Recorder
    torch.manual_seed(0)
    model = Branchy()
    with pytest.warns(UserWarning, match="torch.fx cannot trace Branchy"):
        rec = Recorder(model, tmp_path / "run", probes=torch.randn(2, 1, 8, 8))
    rec.epoch_end(1, loss=1.0)
    rec.close()
    run = load_run(tmp_path / "run")
    assert [l.name for l in run.layers] == ["input", "conv", "fc"]
    assert run.layers[2].inbound == ["conv"]
    x = torch.as_tensor(run.probes[:1].transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        np.testing.assert_allclose(run.activations("fc", 1), model(x)[0].numpy(), rtol=RTOL)


class BranchyInPlace(Branchy):
    """Untraceable, and an in-place ReLU module overwriting the conv's output."""

    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.relu(self.conv(x))
        if x.sum() > 1e9:
            x = x * 2
        return self.fc(torch.flatten(x, 1))


def test_hook_order_recording_keeps_outputs_before_in_place_ops(tmp_path):
    from nnvis_addon.record.torch import Recorder
    torch.manual_seed(0)
    model, probes = BranchyInPlace(), torch.randn(2, 1, 8, 8)
    with pytest.warns(UserWarning, match="torch.fx cannot trace"):
        with Recorder(model, tmp_path / "run", probes=probes) as rec:
            rec.epoch_end(1, loss=1.0)
    run = load_run(tmp_path / "run")
    assert [l.name for l in run.layers] == ["input", "conv", "relu", "fc"]
    with torch.no_grad():
        conv = model.conv(probes)[0].numpy().transpose(1, 2, 0)
    assert conv.min() < 0
    np.testing.assert_allclose(run.activations("conv", 1), conv, rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(run.activations("relu", 1), np.maximum(conv, 0), rtol=RTOL,
                               atol=1e-6)


class Chunky(nn.Module):
    """shufflenet's split: `x.chunk(2, dim=1)` returns a tuple, its halves are `getitem` nodes."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.branch = nn.Conv2d(2, 2, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        a, b = self.stem(x).chunk(2, dim=1)
        x = torch.relu(torch.cat([a, self.branch(b)], dim=1))
        return self.head(torch.flatten(x, 1))


def test_a_split_into_several_tensors_keeps_the_layers_after_it(tmp_path):
    """The layers after a chunk were left out (the tuple was no layer, so nothing after it had a
    recorded input): the recording stopped at shufflenet's first split."""
    from nnvis_addon.record.torch import Recorder
    torch.manual_seed(0)
    model, probes = Chunky(), torch.randn(2, 1, 8, 8)
    with pytest.warns(UserWarning, match="no Keras kind for getitem"):
        with Recorder(model, tmp_path / "run", probes=probes) as rec:
            rec.epoch_end(1, loss=1.0)
    run = load_run(tmp_path / "run")
    layers = {l.name: l for l in run.layers}
    assert {"branch", "cat", "relu", "head"} <= set(layers)
    assert layers["getitem"].inbound == ["stem"] and layers["branch"].inbound == ["getitem_1"]
    assert layers["cat"].inbound == ["getitem", "branch"]
    want = hook_outputs(model, probes)
    for name in ("stem", "branch", "head"):
        np.testing.assert_allclose(run.activations(name, 1), want[name][0], rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(run.activations("getitem_1", 1), want["stem"][0][..., 2:],
                               rtol=RTOL, atol=1e-6)


def test_module_without_a_keras_kind_is_recorded_as_a_block(tmp_path):
    """nn.Upsample has no rule: it is recorded (activations, shape) under kind torch.Upsample,
    with a warning; nnvis shows it from the recording."""
    from nnvis_addon.record.torch import Recorder
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Upsample(scale_factor=2), nn.ReLU())
    probes = torch.randn(2, 1, 4, 4)
    with pytest.warns(UserWarning, match="no Keras kind for Upsample"):
        with Recorder(model, tmp_path / "run", probes=probes) as rec:
            rec.epoch_end(1, loss=0.5)
    run = load_run(tmp_path / "run")
    up = run.network.layer("1")
    assert up.kind == "torch.Upsample" and up.output_shape == (8, 8, 2)
    want = hook_outputs(model, probes)
    for name in ("0", "1", "2"):
        np.testing.assert_allclose(run.activations(name, 1), want[name][0], rtol=RTOL)


def test_probes_that_do_not_fit_are_refused_before_writing(tmp_path):
    from nnvis_addon.errors import NNVisError
    from nnvis_addon.record.torch import Recorder
    with pytest.raises(NNVisError, match=r"fails on probes of shape \(3, 8, 8\)"):
        Recorder(TinyCNN(), tmp_path / "run", probes=torch.randn(2, 3, 8, 8))
    assert not (tmp_path / "run").exists()


def test_every_other_epoch_and_the_last_at_close(tmp_path):
    from nnvis_addon.record.torch import Recorder
    model = TinyCNN()
    with Recorder(model, tmp_path / "run", probes=torch.randn(2, 1, 8, 8), every=2) as rec:
        for epoch in range(1, 6):
            rec.epoch_end(epoch, loss=1.0 / epoch)
    run = load_run(tmp_path / "run")
    assert run.epochs == [2, 4, 5]
    assert sorted(run.metrics) == [1, 2, 3, 4, 5] and run.metrics[3]["loss"] == pytest.approx(1 / 3)


def cloned_calls(model, x) -> dict[str, np.ndarray]:
    """Every leaf module's output for `x` (eval, no_grad), cloned as it leaves the module, call by
    call under the Recorder's names (a module run twice: `name`, `name:1`), channels-last; and
    each torchvision BasicBlock's residual sum `out += identity`, the input of the block's second
    ReLU call, under torch.fx's names for it (`add`, `add_1`, ...)."""
    from torchvision.models.resnet import BasicBlock
    found, handles = {}, []

    def keep(key, t):
        found[key] = t.detach().clone().numpy()

    def out_hook(name):
        def hook(module, args, out):
            calls = sum(1 for k in found if k.split(":")[0] == name)
            keep(name if not calls else f"{name}:{calls}", out)
        return hook

    for name, module in model.named_modules():
        if name and not list(module.children()):
            handles.append(module.register_forward_hook(out_hook(name)))
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    for i, block in enumerate(blocks):
        seen = []

        def residual(module, args, i=i, seen=seen):
            seen.append(1)
            if len(seen) % 2 == 0:                  # the second ReLU call: after `out += identity`
                keep("add" if i == 0 else f"add_{i}", args[0])
        handles.append(block.relu.register_forward_pre_hook(residual))
    model.eval()
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return {k: v.transpose(0, 2, 3, 1) if v.ndim == 4 else v for k, v in found.items()}


def test_resnet18_in_place_relus_record_each_output_as_it_left_its_module(tmp_path):
    """torchvision's ReLU(inplace=True) overwrites the tensor a batch norm or a residual `+=`
    returned; the Recorder keeps each output as it left its call (issue 25: they were stored
    after the ReLU)."""
    torchvision = pytest.importorskip("torchvision")
    from nnvis_addon.record.torch import Recorder
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 4, (8,))
    probes, oracle = x[:2], {}
    with Recorder(model, tmp_path / "run", probes=probes) as rec:
        for epoch in (1, 2):
            model.train()
            for k in (0, 4):
                opt.zero_grad()
                nn.functional.cross_entropy(model(x[k:k + 4]), y[k:k + 4]).backward()
                opt.step()
            rec.epoch_end(epoch, loss=1.0)
            oracle[epoch] = cloned_calls(model, probes)
    run = load_run(tmp_path / "run")
    names = {l.name for l in run.layers}
    assert {"bn1", "layer1.0.bn1", "add", "add_7", "layer4.1.relu:1"} <= names
    assert set(oracle[1]) <= names and len(names - set(oracle[1])) == 2   # the input, flatten
    for epoch in run.epochs:
        for name, want in oracle[epoch].items():
            got = np.stack([run.activations(name, epoch) for run.probe_index in range(2)])
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-6,
                                       err_msg=f"{name} epoch {epoch}")


def convnext_layers(model, x) -> dict[str, np.ndarray]:
    """Every layer the Recorder records of the two-stage ConvNeXt below, for `x` (eval, no_grad),
    from forward hooks, channels-last along the right axes: PyTorch's (N, C, H, W) transposed,
    the blocks' LayerNorm/Linear/GELU outputs, (N, H, W, C) after their permute, as they are.
    A permute, LayerNorm2d's F.layer_norm and the stochastic depth hold the same maps as the
    module output before or after them; the layer scale's product is computed here."""
    out, handles = {}, []
    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(
                lambda m, args, o, name=name: out.setdefault(name, o.detach().clone())))
    model.eval()
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    nchw = lambda t: t.permute(0, 2, 3, 1).numpy() if t.ndim == 4 else t.numpy()  # noqa: E731
    ref = {"x": nchw(x), "features.0.0": nchw(out["features.0.0"]),
           "features.2.1": nchw(out["features.2.1"]), "avgpool": nchw(out["avgpool"]),
           "classifier.1": nchw(out["classifier.1"]), "classifier.2": nchw(out["classifier.2"])}
    for (into, norm, back), before, norm2d in (
            (("permute", "layer_norm", "permute_1"), "features.0.0", "features.0.1"),
            (("permute_4", "layer_norm_1", "permute_5"), "features.1", "features.2.0"),
            (("permute_8", "layer_norm_2", "permute_9"), "avgpool", "classifier.0")):
        ref |= {into: nchw(out[before]), norm: nchw(out[norm2d]), back: nchw(out[norm2d])}
    for block, k, suffix in (("features.1.0", 2, ""), ("features.3.0", 6, "_1")):
        ref[f"{block}.block.0"] = nchw(out[f"{block}.block.0"])
        ref[f"permute_{k}"] = out[f"{block}.block.1"].numpy()                 # (N, H, W, C)
        ref |= {f"{block}.block.{j}": out[f"{block}.block.{j}"].numpy() for j in (2, 3, 4, 5)}
        ref[f"permute_{k + 1}"] = nchw(out[f"{block}.block.6"])
        with torch.no_grad():
            scaled = nchw(model.get_submodule(block).layer_scale * out[f"{block}.block.6"])
        ref[f"mul{suffix}"] = ref[f"stochastic_depth{suffix}"] = scaled
        ref[f"add{suffix}"] = nchw(out[block])
    return ref


def test_convnext_channels_last_blocks_are_stored_along_their_own_axes(tmp_path):
    """ConvNeXt permutes to (N, H, W, C) for its LayerNorm and MLP: the Recorder follows the
    permute (issue 25: they were stored as if (N, C, H, W), W taken as channels), draws it as an
    Identity, and a fresh C×H×W probe recomputes every layer as the model does."""
    pytest.importorskip("torchvision")
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt
    from nnvis_addon.record.torch import Recorder
    torch.manual_seed(0)
    model = ConvNeXt([CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)], layer_scale=0.5,
                     num_classes=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(6, 3, 16, 24), torch.randint(0, 3, (6,))
    probes, fresh = x[:2], torch.randn(1, 3, 16, 24)
    oracle, fresh_oracle = {}, {}
    with Recorder(model, tmp_path / "run", probes=probes) as rec:
        for epoch in (1, 2):
            model.train()
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            rec.epoch_end(epoch, loss=1.0)
            oracle[epoch] = convnext_layers(model, probes)
            fresh_oracle[epoch] = convnext_layers(model, fresh)
    run = load_run(tmp_path / "run")
    assert not run.warnings
    kinds = {l.name: l.kind for l in run.layers}
    shapes = {l.name: tuple(l.output_shape) for l in run.layers}
    assert set(kinds) == set(oracle[1])
    assert kinds["permute_2"] == "Identity" and kinds["features.1.0.block.2"] == \
        "LayerNormalization" and kinds["features.1.0.block.3"] == "Dense"
    assert shapes["features.1.0.block.3"] == (4, 6, 32)                       # (H, W, C)
    recomputed = load_run(tmp_path / "run", probe=fresh[0].numpy())
    for epoch in run.epochs:
        for name, want in oracle[epoch].items():
            got = np.stack([run.activations(name, epoch) for run.probe_index in range(2)])
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-6,
                                       err_msg=f"{name} epoch {epoch}")
            np.testing.assert_allclose(recomputed.activations(name, epoch),
                                       fresh_oracle[epoch][name][0], rtol=RTOL, atol=1e-5,
                                       err_msg=f"{name} epoch {epoch}, a fresh probe")
