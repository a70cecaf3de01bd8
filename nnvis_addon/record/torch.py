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
A ``permute`` in the graph changes which axes later tensors hold (ConvNeXt's blocks run their
LayerNorm and MLP on (N, H, W, C)): each layer carries an ``onnx_layout.Layout`` of its tensor, as
the ONNX reader does, so a permute that only relabels axes is an ``Identity`` and a ``Linear`` or
``LayerNorm`` over the channels of such a tensor a per-pixel ``Dense`` / ``LayerNormalization``.
Only this module imports torch; ``nnvis_addon.record.torch`` is imported explicitly.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
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
from ..model.kinds import INPUT
from ..model.onnx_layout import Layout, LayoutError, transpose
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
_PERMUTES = {torch.permute, "permute"}
_LAYER_NORMS = {F.layer_norm, torch.layer_norm}
# kinds whose output holds the same axes as their inputs (per element, per pixel, or merging)
_SAME_LAYOUT = {"ReLU", "LeakyReLU", "Activation", "Softmax", "Dropout", "Identity", "Rescaling",
                "LayerScale", "LayerNormalization", "Dense", "Add", "Multiply", "Subtract",
                "Divide", "Concatenate"}


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


def _module_layer(m: nn.Module, layouts: list[Layout], out_shape):
    """(kind, config, weights) of a leaf module; layouts: its inputs', out_shape nnvis' (no
    batch)."""
    in_shapes = [l.nnvis_shape for l in layouts]
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
        _last_axis(layouts[0], "Linear")
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
    if isinstance(m, nn.LayerNorm):
        return _layer_norm(layouts[0], len(m.normalized_shape), m.eps,
                           m.weight if m.elementwise_affine else None,
                           m.bias if m.elementwise_affine else None)
    if isinstance(m, nn.GELU) and m.approximate != "none":
        raise _Unknown(f"GELU(approximate={m.approximate!r})")
    if type(m) in _ACTIVATION_MODULES:
        return "Activation", {"activation": _ACTIVATION_MODULES[type(m)]}, []
    if isinstance(m, nn.Softmax):
        return "Softmax", {"axis": _axis(m.dim, layouts[0])}, []
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
        return "Flatten", _flatten_order(layouts[0]), []
    if isinstance(m, (nn.Dropout, nn.Dropout2d, nn.AlphaDropout)):
        return "Dropout", {"rate": float(m.p)}, []
    if isinstance(m, nn.Identity):
        return "Identity", {}, []
    if isinstance(m, nn.ZeroPad2d):
        left, right, top, bottom = m.padding
        return "ZeroPadding2D", {"padding": [[top, bottom], [left, right]]}, []
    raise _Unknown(type(m).__name__)


def _axis(dim: int, layout: Layout) -> int:
    """A PyTorch dim of a tensor laid out as `layout` as a Keras axis of nnvis' array of it."""
    axis = layout.nnvis_axis(int(dim))
    if axis is None:
        raise _Unknown(f"works along dim {dim} (the batch)")
    return axis + 1


def _last_axis(layout: Layout, what: str) -> None:
    """A per-pixel op over PyTorch's last axis is a Keras op over nnvis' last axis: they must be
    the same axis (true of (N, H, W, C) after ConvNeXt's permute, and of (N, features))."""
    if layout.nnvis_axis(-1) != len(layout.groups) - 1:
        raise _Unknown(f"{what} over an axis nnvis does not hold last")


def _flatten_order(layout: Layout) -> dict:
    """Flatten's config: PyTorch flattens its tensor row-major, i.e. (C, H, W) order for feature
    maps as PyTorch holds them, nnvis' own (H, W, C) order for a permuted (H, W, C) tensor."""
    if len(layout.shape) != 3:
        return {}
    if layout.is_default:
        return {"order": "chw"}
    if layout.groups == ((0,), (1,), (2,)):
        return {}
    raise _Unknown("flatten of a tensor in another axis order")


def _layer_norm(layout: Layout, k: int, eps, weight, bias):
    """LayerNorm over PyTorch's last `k` axes as Keras LayerNormalization over the nnvis axes that
    hold them; its weights broadcast into nnvis' order of those axes."""
    rank = len(layout.shape) + 1
    axes = layout.nnvis_axes(range(rank - k, rank))
    if not axes or k >= rank:
        raise _Unknown(f"LayerNorm over {k} axes nnvis holds merged")
    stat = [layout.nnvis_shape[i] for i in axes]
    keep = [layout.nnvis_shape[i] if i in axes else 1 for i in range(len(layout.groups))]
    weights = [np.broadcast_to(layout.as_nnvis(w.detach().cpu().numpy()), keep).reshape(stat)
               for w in (weight, bias) if w is not None]
    if weight is None and bias is not None:
        raise _Unknown("LayerNorm with a bias but no weight")
    return "LayerNormalization", {"axis": [i + 1 for i in axes], "epsilon": float(eps),
                                  "center": bias is not None, "scale": weight is not None}, weights


def _out_layout(kind: str, layouts: list[Layout], shape) -> Layout:
    """The Layout of a layer's output (PyTorch shape `shape`, no batch): per-element, per-pixel
    and merging kinds keep their inputs' axes; the others read and make feature maps as PyTorch
    holds them, (C, H, W)."""
    if kind in _SAME_LAYOUT and layouts and all(len(l.shape) == len(shape) for l in layouts):
        if any(l.groups != layouts[0].groups for l in layouts):
            raise _Unknown(f"{kind} of tensors in different axis orders")
        return Layout(tuple(shape), layouts[0].groups)
    if kind != "Flatten" and any(not l.is_default for l in layouts):
        raise _Unknown(f"{kind} of a permuted tensor")
    return Layout.default(shape)


def _function_layer(target, args, kwargs, layouts, out_shape, tensor_args, fetch):
    """(kind, config, weights) of a call_function/call_method node; fetch(node) is the tensor a
    ``get_attr`` node names (a parameter such as ConvNeXt's layer scale), else None."""
    in_shapes = [l.nnvis_shape for l in layouts]
    if target in _PERMUTES:
        return "Identity", {}, []
    if target in _LAYER_NORMS:
        named = dict(zip(("input", "normalized_shape", "weight", "bias", "eps"), args)) | kwargs
        k = len(named["normalized_shape"])
        return _layer_norm(layouts[0], k, named.get("eps", 1e-5), fetch(named.get("weight")),
                           fetch(named.get("bias")))
    if getattr(target, "__name__", None) == "stochastic_depth":   # torchvision.ops, traced in eval
        named = dict(zip(("input", "p", "mode", "training"), args)) | kwargs
        if named.get("training", True):
            raise _Unknown("stochastic_depth in training mode")
        return "Dropout", {"rate": float(named["p"])}, []
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
        param = next((fetch(a) for a in args if fetch(a) is not None), None)
        if kind == "Multiply" and tensor_args == 1 and param is not None:
            return _layer_scale(param, layouts[0])
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
        return "Concatenate", {"axis": _axis(int(dim), layouts[0])}, []
    if target in _FLATTENS and len(out_shape) == 1 and math.prod(in_shapes[0]) == out_shape[0]:
        return "Flatten", _flatten_order(layouts[0]), []
    if target in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d) and len(in_shapes[0]) == 3 \
            and tuple(out_shape[:2]) == (1, 1):
        kind = "GlobalAveragePooling2D" if target is F.adaptive_avg_pool2d else \
            "GlobalMaxPooling2D"
        return kind, {"keepdims": True}, []
    if target in (F.dropout, F.dropout2d):
        return "Dropout", {}, []
    if target in (F.softmax, torch.softmax, "softmax"):
        dim = kwargs.get("dim", args[1] if len(args) > 1 else -1)
        return "Softmax", {"axis": _axis(int(dim), layouts[0])}, []
    raise _Unknown(getattr(target, "__name__", str(target)))


def _layer_scale(param: torch.Tensor, layout: Layout):
    """A tensor times a learned per-channel parameter (ConvNeXt's layer scale, (C, 1, 1)) as
    Keras' LayerScale: one scale per channel of nnvis' array."""
    scale = layout.as_nnvis(param.detach().cpu().numpy())
    if scale.shape[:-1] != (1,) * (scale.ndim - 1) or scale.shape[-1] != layout.nnvis_shape[-1]:
        raise _Unknown(f"Multiply by a parameter of shape {tuple(param.shape)}")
    return "LayerScale", {"projection_dim": int(scale.shape[-1])}, [scale.reshape(-1)]


def _kept(value):
    """A call's output as it leaves the call: a detached copy on the CPU, so that an in-place op
    after it (``nn.ReLU(inplace=True)``, ``out += identity``) cannot change what was recorded."""
    if not isinstance(value, torch.Tensor):
        return value
    return value.detach().to("cpu", copy=True)


def _as_nnvis(t: torch.Tensor, layout: Layout | None = None) -> np.ndarray:
    """A batch of tensors laid out as `layout` (default: as PyTorch holds feature maps) as nnvis'
    arrays of them: feature maps channels-last."""
    a = t.detach().float().cpu().numpy()
    layout = layout or Layout.default(a.shape[1:])
    order = [0] + [axis + 1 for g in layout.groups for axis in g]
    return a.transpose(order).reshape(len(a), *layout.nnvis_shape)


@dataclasses.dataclass
class _Layer(RecordedLayer):
    """A recorded layer, the Layout of its tensor, and how to read its weights as they are now
    (Keras order; None: it has none)."""
    layout: Layout | None = None
    read_weights: object = None

    def weights(self) -> list[np.ndarray]:
        if self.read_weights is None:
            return []
        return [np.ascontiguousarray(w, np.float32) for w in self.read_weights()]


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
        taken, layouts = set(), {}
        through = {}        # a call returning several tensors (chunk, split): the layers it reads

        def fetch(arg):
            """The parameter or buffer a get_attr node names (live: training updates it)."""
            if not isinstance(arg, torch.fx.Node) or arg.op != "get_attr":
                return None
            value = self.gm
            for part in arg.target.split("."):
                value = getattr(value, part)
            return value
        for node in self.gm.graph.nodes:
            value = outputs.get(node.name)
            if node.op == "output":
                self.output_node = node.args[0]
                continue
            if node.op == "placeholder":
                name = unique(node.name, taken)
                layouts[name] = Layout.default(value.shape[1:])
                self.layers.append(_Layer(name, INPUT, {}, [], layouts[name].nnvis_shape,
                                          layout=layouts[name]))
                self.node_layer[node.name] = name
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
            ins = [layouts[n] for n in inbound]
            module = modules.get(node.target) if node.op == "call_module" else None
            name = unique(str(node.target) if module is not None else node.name, taken)
            torch_shape = tuple(value.shape[1:])
            maps_shape = Layout.default(torch_shape).nnvis_shape     # as feature maps
            if module is not None:
                describe = functools.partial(_module_layer, module, ins, maps_shape)
            else:
                describe = functools.partial(_function_layer, node.target, node.args,
                                             node.kwargs, ins, maps_shape, len(sources), fetch)
            try:
                kind, config, _ = describe()
                if node.op != "call_module" and node.target in _PERMUTES:
                    layout = _permuted(ins[0], node)
                else:
                    layout = _out_layout(kind, ins, torch_shape)
                warning, read = None, lambda describe=describe: describe()[2]
            except _Unknown as exc:
                kind, config, layout, read = f"torch.{exc}", {}, Layout.default(torch_shape), None
                warning = f"layer {name!r}: no Keras kind for {exc}; recorded, drawn as a block"
            self.layers.append(_Layer(name, kind, config, inbound, layout.nnvis_shape, warning,
                                      layout=layout, read_weights=read))
            self.node_layer[node.name] = name
            layouts[name] = layout
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
        """Without the graph no permute is seen: every tensor is taken as PyTorch's (C, H, W)."""
        self.mode = "hooks"
        calls = self._run_hooks(probe)
        layout = Layout.default(probe.shape[1:])
        self.layers = [_Layer("input", INPUT, {}, [], layout.nnvis_shape, layout=layout)]
        previous = "input"
        for name, module, out in calls[:-1]:           # the last is the model's output
            ins, layout = [layout], Layout.default(out.shape[1:])
            describe = functools.partial(_module_layer, module, ins, layout.nnvis_shape)
            try:
                kind, config, _ = describe()
                warning, read = None, lambda describe=describe: describe()[2]
            except _Unknown as exc:
                kind, config, read = f"torch.{exc}", {}, None
                warning = f"layer {name!r}: no Keras kind for {exc}; recorded, drawn as a block"
            self.layers.append(_Layer(name, kind, config, [previous], layout.nnvis_shape,
                                      warning, layout=layout, read_weights=read))
            previous = name

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


def _permuted(layout: Layout, node) -> Layout:
    """The Layout after a permute node: the same nnvis array when it only relabels axes (NCHW ↔
    NHWC), so the permute is an Identity to the picture."""
    dims = node.args[1:] or [node.kwargs.get("dims")]
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = dims[0]
    try:
        after, moved = transpose(layout, [int(d) % (len(layout.shape) + 1) for d in dims])
    except LayoutError as exc:
        raise _Unknown(f"permute {list(dims)} ({exc})") from None
    if moved is not None:
        raise _Unknown(f"permute {list(dims)} that reorders values within an axis")
    return after


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
            [l.name for l in self.graph.layers], _as_nnvis(probes), labels, class_names,
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
        activations = {l.name: np.concatenate([_as_nnvis(c[0][l.name], l.layout)
                                               for c in chunks]) for l in self.graph.layers}
        predictions = np.concatenate([_as_nnvis(c[1]) for c in chunks])
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
