"""Recording a PyTorch training loop for nnvis, in the project's recording format (docs/
recording-format.md), so `load_run` reads it in Blender without torch.

The graph comes from ``torch.fx`` (every leaf module call and every tensor function such as the
residual ``+`` or ``torch.cat`` is a layer); a model fx cannot trace is recorded from the order its
leaf modules run in (forward hooks), as a chain, with a warning. Each layer is described as the
nearest Keras kind with its weights in Keras order (``Conv2d`` → ``Conv2D`` with explicit pads,
``Linear`` → ``Dense`` with the transposed matrix, ``Flatten`` of a feature map keeping PyTorch's
(C, H, W) element order), and the architecture is written as a Keras Functional config, so layout,
edges, bundling and the scene treat it like a Keras model. Activations are recorded in eval mode
under no_grad, channels-last ((N, C, H, W) → (N, H, W, C)); probes are stored channels-last too.
Only this module imports torch; ``nnvis_addon.record.torch`` is imported explicitly.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import operator
import os
import warnings

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import NNVisError
from ..io.recording import RecordingWriter
from ..model.kernels import ceil_mode_extra
from .architecture import RecordedLayer, functional_config, unique

_PROBE_BATCH = 32
_ACTIVATION_MODULES = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Hardswish: "hard_swish",
                       nn.Hardsigmoid: "hard_sigmoid", nn.SiLU: "silu", nn.GELU: "gelu",
                       nn.ELU: "elu", nn.SELU: "selu", nn.Softplus: "softplus", nn.Mish: "mish",
                       nn.Softsign: "softsign"}
_ACTIVATION_FUNCTIONS = {torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", "sigmoid": "sigmoid",
                         torch.tanh: "tanh", F.tanh: "tanh", "tanh": "tanh",
                         F.hardswish: "hard_swish", F.hardsigmoid: "hard_sigmoid",
                         F.silu: "silu", F.gelu: "gelu", F.elu: "elu", F.softplus: "softplus",
                         F.mish: "mish"}
_RELUS = {torch.relu, F.relu, "relu", torch.relu_, "relu_"}
_MERGES = {operator.add: "Add", operator.iadd: "Add", torch.add: "Add", "add": "Add",
           "add_": "Add", operator.mul: "Multiply", torch.mul: "Multiply", "mul": "Multiply",
           operator.sub: "Subtract", torch.sub: "Subtract", "sub": "Subtract",
           operator.truediv: "Divide", torch.div: "Divide", "div": "Divide"}
_FLATTENS = {torch.flatten, "flatten", "view", "reshape", torch.reshape}


class _Unknown(Exception):
    """No Keras kind for this call: recorded (activations, shape) but not computable by nnvis."""


def _pair(v) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(x) for x in v]


def _conv(m: nn.Conv2d):
    if m.padding_mode != "zeros":
        raise _Unknown(f"padding_mode {m.padding_mode!r}")
    if isinstance(m.padding, str):
        padding = m.padding
    else:
        p = _pair(m.padding)
        padding = [[p[0], p[0]], [p[1], p[1]]]
    w = m.weight.detach().cpu().numpy()
    b = None if m.bias is None else m.bias.detach().cpu().numpy()
    f, cg, kh, kw = w.shape
    config = {"kernel_size": [kh, kw], "strides": _pair(m.stride),
              "dilation_rate": _pair(m.dilation), "padding": padding, "use_bias": b is not None,
              "activation": "linear"}
    bias = [] if b is None else [b]
    if m.groups > 1 and m.groups == m.in_channels and cg == 1:
        kernel = w.reshape(m.in_channels, f // m.in_channels, kh, kw).transpose(2, 3, 0, 1)
        return "DepthwiseConv2D", {**config, "depth_multiplier": f // m.in_channels}, \
            [kernel] + bias
    return "Conv2D", {**config, "filters": f, "groups": m.groups}, [w.transpose(2, 3, 1, 0)] + bias


def _pool(kind, kernel, stride, padding, ceil_mode, in_hw):
    k, s, p = _pair(kernel), _pair(stride or kernel), _pair(padding)
    pads = [[p[0], p[0]], [p[1], p[1]]]
    if ceil_mode:
        for axis in range(2):
            pads[axis][1] += ceil_mode_extra(in_hw[axis], k[axis], s[axis], 1, *pads[axis])
    return kind, {"pool_size": k, "strides": s, "padding": pads}, []


def _module_layer(m: nn.Module, in_shapes, out_shape):
    """(kind, config, weights) of a leaf module; in/out shapes are nnvis' (no batch)."""
    spatial = len(in_shapes[0]) == 3 if in_shapes else False
    if isinstance(m, nn.Conv2d):
        return _conv(m)
    if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
        if not m.track_running_stats:
            raise _Unknown("batch norm without running statistics")
        stats = [m.running_mean, m.running_var]
        if m.affine:
            stats = [m.weight, m.bias] + stats
        return "BatchNormalization", {"axis": -1, "epsilon": float(m.eps), "center": m.affine,
                                      "scale": m.affine}, [s.detach().cpu().numpy() for s in stats]
    if isinstance(m, nn.Linear):
        w = m.weight.detach().cpu().numpy().T
        return "Dense", {"units": int(w.shape[1]), "use_bias": m.bias is not None,
                         "activation": "linear"}, \
            [w] + ([] if m.bias is None else [m.bias.detach().cpu().numpy()])
    if isinstance(m, nn.ReLU6):
        return "ReLU", {"max_value": 6.0}, []
    if isinstance(m, nn.ReLU):
        return "ReLU", {}, []
    if isinstance(m, nn.LeakyReLU):
        return "LeakyReLU", {"negative_slope": float(m.negative_slope)}, []
    if type(m) in _ACTIVATION_MODULES:
        return "Activation", {"activation": _ACTIVATION_MODULES[type(m)]}, []
    if isinstance(m, nn.Softmax):
        return "Softmax", {"axis": _axis(m.dim, len(in_shapes[0]) + 1)}, []
    if isinstance(m, nn.MaxPool2d) and _pair(m.dilation) == [1, 1] and not m.return_indices:
        return _pool("MaxPooling2D", m.kernel_size, m.stride, m.padding, m.ceil_mode,
                     in_shapes[0][:2])
    if isinstance(m, nn.AvgPool2d) and m.divisor_override is None and not (
            m.count_include_pad and any(_pair(m.padding))):
        return _pool("AveragePooling2D", m.kernel_size, m.stride, m.padding, m.ceil_mode,
                     in_shapes[0][:2])
    if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and spatial and \
            tuple(out_shape[:2]) == (1, 1):
        kind = "GlobalAveragePooling2D" if isinstance(m, nn.AdaptiveAvgPool2d) else \
            "GlobalMaxPooling2D"
        return kind, {"keepdims": True}, []
    if isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1:
        return "Flatten", {"order": "chw"} if spatial else {}, []
    if isinstance(m, (nn.Dropout, nn.Dropout2d, nn.AlphaDropout)):
        return "Dropout", {"rate": float(m.p)}, []
    if isinstance(m, nn.Identity):
        return "Identity", {}, []
    if isinstance(m, nn.ZeroPad2d):
        left, right, top, bottom = m.padding
        return "ZeroPadding2D", {"padding": [[top, bottom], [left, right]]}, []
    raise _Unknown(type(m).__name__)


def _axis(dim: int, rank: int) -> int:
    """A PyTorch dim of a rank-`rank` tensor as a Keras axis of nnvis' channels-last layout."""
    dim = dim % rank
    if dim == 0:
        raise _Unknown("works along the batch")
    return {1: 3, 2: 1, 3: 2}[dim] if rank == 4 else dim


def _function_layer(target, args, kwargs, in_shapes, out_shape, tensor_args):
    """(kind, config, weights) of a call_function/call_method node."""
    rank = len(in_shapes[0]) + 1 if in_shapes else 0
    if target in _RELUS:
        return "ReLU", {}, []
    if target is F.relu6:
        return "ReLU", {"max_value": 6.0}, []
    if target in _ACTIVATION_FUNCTIONS:
        return "Activation", {"activation": _ACTIVATION_FUNCTIONS[target]}, []
    if target in _MERGES:
        kind = _MERGES[target]
        if tensor_args == 2 and kind != "Divide":
            return kind, {}, []
        scalar = next((a for a in args if isinstance(a, (int, float))), None)
        if tensor_args != 1 or scalar is None:
            raise _Unknown(f"{kind} of {tensor_args} tensors")
        first_is_tensor = not isinstance(args[0], (int, float))
        c = float(scalar)
        scale, offset = {"Add": (1.0, c), "Multiply": (c, 0.0),
                         "Subtract": (1.0, -c) if first_is_tensor else (-1.0, c),
                         "Divide": (1.0 / c, 0.0) if first_is_tensor and c else (None, None)}[kind]
        if scale is None:
            raise _Unknown("division by a tensor")
        return "Rescaling", {"scale": scale, "offset": offset}, []
    if target in (torch.cat, torch.concat, torch.concatenate):
        dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
        if tensor_args == 1:
            return "Identity", {}, []
        return "Concatenate", {"axis": _axis(int(dim), rank)}, []
    if target in _FLATTENS and len(out_shape) == 1 and math.prod(in_shapes[0]) == out_shape[0]:
        return "Flatten", {"order": "chw"} if len(in_shapes[0]) == 3 else {}, []
    if target in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d) and len(in_shapes[0]) == 3 \
            and tuple(out_shape[:2]) == (1, 1):
        kind = "GlobalAveragePooling2D" if target is F.adaptive_avg_pool2d else \
            "GlobalMaxPooling2D"
        return kind, {"keepdims": True}, []
    if target in (F.dropout, F.dropout2d):
        return "Dropout", {}, []
    if target in (F.softmax, torch.softmax, "softmax"):
        dim = kwargs.get("dim", args[1] if len(args) > 1 else -1)
        return "Softmax", {"axis": _axis(int(dim), rank)}, []
    raise _Unknown(getattr(target, "__name__", str(target)))


def _kept(value):
    """A call's output as it leaves the call: a detached copy on the CPU, so that an in-place op
    after it (``nn.ReLU(inplace=True)``, ``out += identity``) cannot change what was recorded."""
    if not isinstance(value, torch.Tensor):
        return value
    return value.detach().to("cpu", copy=True)


def _channels_last(t: torch.Tensor) -> np.ndarray:
    a = t.detach().float().cpu().numpy()
    return a.transpose(0, 2, 3, 1) if a.ndim == 4 else a


def _shape(t: torch.Tensor) -> tuple:
    s = tuple(int(d) for d in t.shape[1:])
    return (s[1], s[2], s[0]) if len(s) == 3 else s


@dataclasses.dataclass
class _Layer(RecordedLayer):
    """A recorded layer and the module its weights come from (if any)."""
    module: nn.Module | None = None
    in_shapes: list = dataclasses.field(default_factory=list)

    def weights(self) -> list[np.ndarray]:
        if self.module is None:
            return []
        try:
            return [np.ascontiguousarray(w, np.float32) for w in
                    _module_layer(self.module, self.in_shapes, self.shape)[2]]
        except _Unknown:
            return []


class _Graph:
    """The recorded layers and how to get every layer's output for a batch of probes."""

    def __init__(self, model: nn.Module, probe: torch.Tensor):
        self.model = model
        self.warnings: list[str] = []
        try:
            model(probe)
        except Exception as exc:              # noqa: BLE001 (whatever the model raises)
            raise NNVisError(f"Recorder: model {type(model).__name__} fails on probes of shape "
                             f"{tuple(probe.shape[1:])} (one probe: (C, H, W) or (features,)): "
                             f"{type(exc).__name__}: {exc}") from None
        try:
            self._init_fx(probe)
        except Exception as exc:              # noqa: BLE001 (any tracing failure: fall back)
            self.warnings.append(f"torch.fx cannot trace {type(model).__name__} ({exc}); the graph "
                                 "is the order the leaf modules ran in (a chain)")
            self._init_hooks(probe)

    # ----------------------------------------------------------------------------------- fx
    def _init_fx(self, probe):
        import torch.fx
        self.gm = torch.fx.symbolic_trace(self.model)
        outputs = self._run_fx(probe)
        modules = dict(self.model.named_modules())
        self.layers, self.node_layer = [], {}
        taken, shapes = set(), {}
        through = {}        # a call returning several tensors (chunk, split): the layers it reads
        for node in self.gm.graph.nodes:
            value = outputs.get(node.name)
            if node.op == "output":
                self.output_node = node.args[0]
                continue
            if node.op == "placeholder":
                name = unique(node.name, taken)
                self.layers.append(_Layer(name, "InputLayer", {}, [], _shape(value)))
                self.node_layer[node.name] = name
                shapes[name] = _shape(value)
                continue
            sources = [a for a in _arg_nodes(node) if a.name in self.node_layer
                       or a.name in through]
            inbound = [n for a in sources
                       for n in through.get(a.name) or [self.node_layer[a.name]]]
            if sources and isinstance(value, (tuple, list)) and value and \
                    all(isinstance(v, torch.Tensor) for v in value):
                through[node.name] = inbound  # its items (getitem nodes) are the layers
                continue
            if not isinstance(value, torch.Tensor) or not sources:
                continue                      # constants, shapes, parameters: not layers
            in_shapes = [shapes[n] for n in inbound]
            shape = _shape(value)
            module = modules.get(node.target) if node.op == "call_module" else None
            name = unique(str(node.target) if module is not None else node.name, taken)
            try:
                if module is not None:
                    kind, config, _ = _module_layer(module, in_shapes, shape)
                else:
                    kind, config, _ = _function_layer(node.target, node.args, node.kwargs,
                                                      in_shapes, shape, len(sources))
                warning = None
            except _Unknown as exc:
                kind, config = f"torch.{exc}", {}
                warning = f"layer {name!r}: no Keras kind for {exc}; recorded, drawn as a block"
            self.layers.append(_Layer(name, kind, config, inbound, shape, warning,
                                      module=module, in_shapes=in_shapes))
            self.node_layer[node.name] = name
            shapes[name] = shape
        self.mode = "fx"

    def _run_fx(self, probe) -> dict:
        import torch.fx
        outputs = {}

        class Capture(torch.fx.Interpreter):
            def run_node(self, n):
                result = super().run_node(n)
                outputs[n.name] = _kept(result) if n.op.startswith("call_") else result
                return result

        outputs["__output__"] = Capture(self.gm).run(probe.clone())
        return outputs

    # -------------------------------------------------------------------------------- hooks
    def _init_hooks(self, probe):
        self.mode = "hooks"
        calls = self._run_hooks(probe)
        self.layers = [_Layer("input", "InputLayer", {}, [], _shape(probe))]
        previous, in_shape = "input", _shape(probe)
        for name, module, out in calls[:-1]:           # the last is the model's output
            shape = _shape(out)
            try:
                kind, config, _ = _module_layer(module, [in_shape], shape)
                warning = None
            except _Unknown as exc:
                kind, config = f"torch.{exc}", {}
                warning = f"layer {name!r}: no Keras kind for {exc}; recorded, drawn as a block"
            self.layers.append(_Layer(name, kind, config, [previous], shape, warning,
                                      module=module, in_shapes=[in_shape]))
            previous, in_shape = name, shape

    def _run_hooks(self, probe) -> list:
        calls, handles = [], []
        for name, module in self.model.named_modules():
            if name and not list(module.children()):
                def hook(m, args, out, name=name):
                    if isinstance(out, torch.Tensor) and name not in {c[0] for c in calls}:
                        calls.append((name, m, _kept(out)))
                handles.append(module.register_forward_hook(hook))
        try:
            calls.append(("__output__", None, self.model(probe.clone())))
        finally:
            for h in handles:
                h.remove()
        return calls

    # ----------------------------------------------------------------------------- running
    def outputs(self, probe) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Every layer's output and the model's output for a batch, as the model runs now."""
        if self.mode == "fx":
            raw = self._run_fx(probe)
            by_layer = {self.node_layer[n]: v for n, v in raw.items() if n in self.node_layer}
            by_layer[self.layers[0].name] = probe
            return by_layer, raw["__output__"]
        calls = self._run_hooks(probe)
        by_layer = {name: out for name, _, out in calls}
        by_layer["input"] = probe
        return by_layer, by_layer.pop("__output__")


def _arg_nodes(node):
    import torch.fx
    found = []
    torch.fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(n))
    return found


class Recorder:
    """Records a PyTorch model's training for nnvis: call ``epoch_end(epoch, **metrics)`` after
    each epoch and ``close()`` at the end (or use ``with Recorder(...) as rec:``).

    ``probes``: (P, C, H, W) (or (P, features)) inputs; ``labels``: (P,) class indices;
    ``class_names``: one per output score. A snapshot (weights, every layer's activations and the
    predictions, in eval mode under no_grad; the modules' train/eval modes are restored) is
    written every ``every`` epochs and at ``close()`` for the last epoch; metrics every epoch.
    """

    def __init__(self, model: nn.Module, path, probes, labels=None, class_names=None,
                 every: int = 1):
        self.model, self.path = model, os.fspath(path)
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise NNVisError(f"Recorder: every must be a positive integer, got {every!r}")
        self.every = every
        probes = torch.as_tensor(np.asarray(probes, np.float32))
        if probes.ndim < 2 or len(probes) == 0:
            raise NNVisError(f"Recorder: probes must be (P, C, H, W) or (P, features) with "
                             f"P >= 1, got shape {tuple(probes.shape)}")
        param = next(model.parameters(), None)
        self._probes = probes.to(param.device) if param is not None else probes
        with self._eval():
            self.graph = _Graph(model, self._probes[:1])
        for w in self.graph.warnings + [l.warning for l in self.graph.layers if l.warning]:
            warnings.warn(f"nnvis Recorder: {w}", stacklevel=2)
        order = "chw" if len(self.graph.layers[0].shape) == 3 else "hwc"
        self._writer = RecordingWriter(
            self.path, functional_config(type(model).__name__, self.graph.layers, order),
            [l.name for l in self.graph.layers], _channels_last(probes), labels, class_names,
            type(model).__name__)
        self._last, self._written = None, set()

    @contextlib.contextmanager
    def _eval(self):
        """Eval mode under no_grad; every module's own train/eval mode restored after."""
        modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            for m, training in modes:
                m.training = training

    def epoch_end(self, epoch: int, **metrics) -> None:
        """The model after training epoch `epoch` (1, 2, ...); metrics: any numbers by name."""
        values = {}
        for key, value in metrics.items():
            value = value.item() if isinstance(value, torch.Tensor) else value
            values[str(key)] = float(value)
        epoch = int(epoch)
        self._last = (epoch, values)
        if epoch % self.every == 0:
            self._snapshot(epoch, values)
        else:
            self._writer.write_metrics(epoch, values)

    def _snapshot(self, epoch, metrics):
        with self._eval():
            chunks = [self.graph.outputs(self._probes[i:i + _PROBE_BATCH])
                      for i in range(0, len(self._probes), _PROBE_BATCH)]
        activations = {l.name: np.concatenate([_channels_last(c[0][l.name]) for c in chunks])
                       for l in self.graph.layers}
        predictions = np.concatenate([_channels_last(c[1]) for c in chunks])
        weights = {l.name: l.weights() for l in self.graph.layers}
        self._writer.write_epoch(epoch, weights, activations, predictions, metrics)
        self._written.add(epoch)

    def close(self) -> None:
        """Snapshot the last epoch if `every` skipped it."""
        if self._last is not None and self._last[0] not in self._written:
            self._snapshot(*self._last)
        self._last = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
