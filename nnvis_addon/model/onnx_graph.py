"""An ONNX graph as a Network: each node that computes on the input becomes a layer of the nearest
Keras kind, with its weights in Keras order and channels-last, so the numpy forward pass, edges,
layout and scene treat it exactly like a Keras model.

ONNX tensors are NCHW; nnvis' are NHWC. A 4-D ONNX value (N, C, H, W) is the layer output
(H, W, C); any other rank keeps its order without the batch — unless a Transpose or Reshape moved
the axes: each layer's `onnx_layout.Layout` says which ONNX axes its array holds (recorded in its
config when not the default), so ConvNeXt's NCHW ↔ NHWC transposes are identities and a channel
shuffle a `Rearrange` of the maps. Hence: kernels are transposed to Keras' (kh, kw, in, out), ONNX
axes are renumbered through the layout, per-channel constants are laid out like the value they
meet, and a Flatten of a feature map keeps ONNX's (C, H, W) element order (config
``order: "chw"``) so a following Gemm reads its inputs where ONNX does. Explicit pads become
``padding: ((top, bottom), (left, right))``; ``ceil_mode`` adds the extra rows at the end.
Layers are named by the node names; the input layer by the graph input's name. A node nnvis has no
rule for imports as an unsupported layer (a labelled block), as do the nodes fed by it. Nodes on
constants only (shape arithmetic, Constant) are folded, not drawn. Pure numpy.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..errors import NNVisError
from . import ops
from . import onnx_layout
from .kernels import ceil_mode_extra
from .keras_config import UNSUPPORTED_KEY
from .kinds import INPUT
from .network import Layer, Network
from .onnx_layout import Layout, LayoutError
from .onnx_model import OnnxModel, OnnxNode

_ACTIVATIONS = {"Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hard_swish", "Elu": "elu",
                "Selu": "selu", "Softplus": "softplus", "Softsign": "softsign", "Exp": "exponential",
                "Gelu": "gelu", "Mish": "mish"}
_PASS = {"Identity": "Identity", "Dropout": "Dropout"}
_VALUE_WISE = {"Relu", "LeakyRelu", "Clip", "HardSigmoid", "Sqrt", "Erf", "Pow", "Add", "Sub",
               "Mul", "Div", *_ACTIVATIONS, *_PASS}    # ops that never read an axis


class _Skip(Exception):
    """A node nnvis cannot map (the message says why): it becomes an unsupported layer."""


def network_from_onnx(model: OnnxModel) -> tuple[Network, dict[str, list[np.ndarray]]]:
    """(the Network, its weights: layer name -> arrays in Keras get_weights() order)."""
    if len(model.inputs) != 1:
        raise NNVisError(f"{model.source}: nnvis needs a model with exactly one input, this one "
                         f"has {len(model.inputs)} ({', '.join(i.name for i in model.inputs)})")
    first = model.inputs[0]
    if len(first.shape) not in (2, 4) or None in first.shape[1:]:
        raise NNVisError(f"{model.source}: input {first.name!r} has shape {first.shape}; nnvis "
                         "needs a fixed (N, C, H, W) image or (N, features) input")
    layout = Layout.default(first.shape[1:])
    shape = layout.nnvis_shape
    layers = [Layer(first.name, INPUT, {"batch_shape": [None, *shape]}, [], shape)]
    weights: dict[str, list[np.ndarray]] = {}
    producer = {first.name: first.name}            # value name -> layer whose output it is
    layouts = {first.name: layout}                 # layer name -> its Layout (None: unknown)
    consts = dict(model.initializers)
    learned = set(model.initializers)              # constants that may differ between epochs
    unknown = set()                                # values of nodes that could not be folded
    for node in _one_output_each(model.nodes, producer):
        dynamic = [v for v in node.inputs if v in producer]
        if node.op_type == "Shape" and dynamic and layouts[producer[dynamic[0]]] is not None:
            consts[node.outputs[0]] = np.array([1, *layouts[producer[dynamic[0]]].shape])
            continue
        if not dynamic:
            if not _fold(node, consts):
                unknown.update(node.outputs)
            elif learned.intersection(node.inputs):
                learned.update(node.outputs)
            continue
        missing = [v for v in node.inputs if v and v not in producer and v not in consts
                   and v not in unknown]
        if missing:
            raise NNVisError(f"{model.source}: node {node.name!r} reads {missing[0]!r}, which no "
                             "earlier node or initializer gives (not in topological order?)")
        inbound = [producer[v] for v in dynamic]
        layer, w, layouts[node.name] = _layer(node, inbound, [layouts[n] for n in inbound],
                                              consts, learned, model.opset)
        layers.append(layer)
        if w:
            weights[layer.name] = w
        if node.outputs:
            producer[node.outputs[0]] = layer.name
    name = model.name or "onnx_model"
    return Network(name=name, layers=layers, input_order="chw" if len(shape) == 3 else "hwc"), \
        weights


_OUTPUT_KEY = "_nnvis_output"       # in a split node's attributes: (which output, of how many)


def _one_output_each(nodes, producer):
    """The nodes, a Split of a computed value as one node per output (each a layer: output k > 0
    is named `node:k`), so every value a later node reads has its own layer."""
    for node in nodes:
        if node.op_type != "Split" or len(node.outputs) < 2 or node.inputs[0] not in producer:
            yield node
            continue
        for k, out in enumerate(node.outputs):
            yield OnnxNode(node.name if k == 0 else f"{node.name}:{k}", node.op_type, node.domain,
                           node.inputs, [out], {**node.attributes,
                                                _OUTPUT_KEY: (k, len(node.outputs))})


def _from_nnvis(shape) -> Layout:
    """The default Layout whose nnvis shape is `shape`."""
    shape = tuple(int(d) for d in shape)
    return Layout.default((shape[2], shape[0], shape[1]) if len(shape) == 3 else shape)


def _layer(node, inbound, layouts, consts, learned, opset):
    """The Layer for one node (unsupported when nnvis has no rule), its weights and its output's
    Layout (None when unknown)."""
    where = f"node {node.name!r} ({node.op_type})"
    try:
        if None in layouts:
            raise _Skip("the shape of its input is unknown")
        if node.domain not in ("", "ai.onnx"):
            raise _Skip(f"operator domain {node.domain!r} is not the standard one")
        kind, config, w, layout = _map(node, layouts, consts, learned, opset)
        in_shapes = [l.nnvis_shape for l in layouts]
        out = ops.output_shape(kind, config, in_shapes, layer_name=node.name)
        expected = ops.weight_shapes(kind, config, in_shapes, layer_name=node.name)
        if layout is None:                 # the input's axes, or the default for its new shape
            if out == layouts[0].nnvis_shape:
                layout = layouts[0]
            elif all(l.is_default for l in layouts):
                layout = _from_nnvis(out)
            else:
                raise _Skip("its input's axes were moved by a Transpose or Reshape")
        if layout.nnvis_shape != out:
            raise _Skip(f"its output {out} does not lay out ONNX's {layout.shape}")
    except _Skip as exc:
        return Layer(node.name, node.op_type, {UNSUPPORTED_KEY: f"{where}: {exc}"}, inbound,
                     ()), [], None
    except ops.Unsupported as exc:
        return Layer(node.name, node.op_type, {UNSUPPORTED_KEY: str(exc)}, inbound, ()), [], None
    except (KeyError, TypeError, ValueError, IndexError, ArithmeticError) as exc:
        raise NNVisError(f"{where}: bad attributes or inputs ({type(exc).__name__}: {exc})") \
            from None
    w = [np.ascontiguousarray(a, np.float32) for a in w]
    if [a.shape for a in w] != [tuple(s) for s in expected]:
        raise NNVisError(f"{where}: weights of shapes {[a.shape for a in w]} do not fit its input "
                         f"{in_shapes} (expected {expected})")
    config.setdefault("_nnvis_onnx_op", node.op_type)
    config.update(layout.config())
    return Layer(node.name, kind, config, inbound, out, [a.shape for a in w]), w, layout


def _const(node, consts, k, what):
    name = node.inputs[k] if k < len(node.inputs) else ""
    if not name:
        return None
    if name not in consts:
        raise _Skip(f"its {what} is computed, not a constant")
    return np.asarray(consts[name])


def _pairs(attrs, key, default):
    value = attrs.get(key, default)
    if len(value) != 2:
        raise _Skip(f"{key} {value} is not 2-D")
    return [int(v) for v in value]


def _window(node, kernel, in_hw):
    """Keras kernel/stride/dilation/padding config from ONNX Conv/Pool attributes."""
    a = node.attributes
    strides, dilations = _pairs(a, "strides", [1, 1]), _pairs(a, "dilations", [1, 1])
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "VALID"):
        padding = "same" if auto == "SAME_UPPER" else "valid"
    elif auto != "NOTSET":
        raise _Skip(f"auto_pad {auto}")
    else:
        p = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
        if len(p) != 4:
            raise _Skip(f"pads {p} are not 2-D")
        padding = [[p[0], p[2]], [p[1], p[3]]]
        if a.get("ceil_mode"):
            for axis in range(2):
                padding[axis][1] += ceil_mode_extra(in_hw[axis], kernel[axis], strides[axis],
                                                    dilations[axis], *padding[axis])
    return {"kernel_size": list(kernel), "strides": strides, "dilation_rate": dilations,
            "padding": padding}


def _laid_out(layout: Layout, c) -> np.ndarray:
    """A constant that broadcasts against the ONNX value of `layout`, made to broadcast against
    nnvis' array of it (batch dropped; (C, 1, 1) → (1, 1, C) for feature maps)."""
    try:
        return layout.as_nnvis(np.asarray(c, np.float32))
    except LayoutError as exc:
        raise _Skip(str(exc)) from None


def _axis(layout: Layout, axis: int) -> int:
    """An ONNX axis of `layout`'s value as a Keras axis (counting the batch) of nnvis' array."""
    if axis % (len(layout.shape) + 1) == 0:
        raise _Skip("works along the batch axis")
    found = layout.nnvis_axis(axis)
    if found is None:
        raise _Skip(f"works along axis {axis}, which a Reshape merged with others")
    return found + 1


def _maps(layout: Layout) -> None:
    """Feature-map ops (convolution, pooling, padding) need an (N, C, H, W) value as it came."""
    if len(layout.shape) != 3 or not layout.is_default:
        raise _Skip(f"needs an (N, C, H, W) input; its input is {layout.shape} laid out as "
                    f"{[list(g) for g in layout.groups]}")


def _map(node: OnnxNode, layouts, consts, learned, opset):
    """(Keras kind, config, weights, output Layout or None for `_layer`'s rule) for one node,
    or _Skip. `learned`: the constants that come from initializers (weights, not config)."""
    op, a = node.op_type, node.attributes
    lay = layouts[0]
    rank = len(lay.shape) + 1
    if op == "Conv":
        _maps(lay)
        w, b = _const(node, consts, 1, "kernel"), _const(node, consts, 2, "bias")
        if w is None or w.ndim != 4:
            raise _Skip("only 2-D convolutions are supported")
        f, cg, kh, kw = w.shape
        group, channels = int(a.get("group", 1)), lay.nnvis_shape[-1]
        config = {**_window(node, [kh, kw], lay.nnvis_shape[:2]), "use_bias": b is not None,
                  "activation": "linear"}
        if group > 1 and group == channels and cg == 1:
            kernel = w.reshape(channels, f // channels, kh, kw).transpose(2, 3, 0, 1)
            return "DepthwiseConv2D", {**config, "depth_multiplier": f // channels}, \
                [kernel] + ([b] if b is not None else []), None
        return "Conv2D", {**config, "filters": f, "groups": group}, \
            [w.transpose(2, 3, 1, 0)] + ([b] if b is not None else []), None
    if op == "BatchNormalization":
        if a.get("training_mode"):
            raise _Skip("training_mode")
        stats = [_const(node, consts, k, "statistics") for k in range(1, 5)]
        if any(s is None for s in stats):
            raise _Skip("missing statistics")
        return "BatchNormalization", {"axis": _axis(lay, 1), "epsilon": float(a.get(
            "epsilon", 1e-5)), "center": True, "scale": True}, stats, None
    if op in ("MaxPool", "AveragePool"):
        _maps(lay)
        if len(node.outputs) > 1 and node.outputs[1]:
            raise _Skip("only pooling without indices is supported")
        if _pairs(a, "dilations", [1, 1]) != [1, 1]:
            raise _Skip("dilated pooling")
        k = _pairs(a, "kernel_shape", None)
        config = _window(node, k, lay.nnvis_shape[:2])
        if op == "AveragePool" and a.get("count_include_pad") and not isinstance(
                config["padding"], str) and any(map(any, config["padding"])):
            raise _Skip("count_include_pad with padding")
        return ("MaxPooling2D" if op == "MaxPool" else "AveragePooling2D"), \
            {"pool_size": k, "strides": config["strides"], "padding": config["padding"]}, [], None
    if op in ("GlobalAveragePool", "GlobalMaxPool") or op == "ReduceMean" and _mean_hw(
            node, lay, consts):
        _maps(lay)
        kind = "GlobalMaxPooling2D" if op == "GlobalMaxPool" else "GlobalAveragePooling2D"
        return kind, {"keepdims": bool(a.get("keepdims", 1))}, [], None
    if op == "Relu":
        return "ReLU", {}, [], None
    if op == "LeakyRelu":
        return "LeakyReLU", {"negative_slope": float(a.get("alpha", 0.01))}, [], None
    if op == "Clip":
        low, high = ((_const(node, consts, 1, "minimum"), _const(node, consts, 2, "maximum"))
                     if opset >= 11 else (a.get("min"), a.get("max")))
        if low is None or float(low) != 0:
            raise _Skip(f"Clip from {low} (only a ReLU from 0 is supported)")
        return "ReLU", {} if high is None else {"max_value": float(high)}, [], None
    if op == "HardSigmoid":
        if not (math.isclose(a.get("alpha", 0.2), 1 / 6, rel_tol=1e-6)
                and math.isclose(a.get("beta", 0.5), 0.5)):
            raise _Skip("HardSigmoid other than relu6(x + 3) / 6")
        return "Activation", {"activation": "hard_sigmoid"}, [], None
    if op in _ACTIVATIONS:
        if op in ("Elu", "Selu", "Gelu") and set(a) - {"approximate"} or a.get(
                "approximate", "none") != "none":
            raise _Skip(f"{op} with attributes {a}")
        return "Activation", {"activation": _ACTIVATIONS[op]}, [], None
    if op == "Softmax":
        axis = int(a.get("axis", -1 if opset >= 13 else 1))
        if opset < 13 and axis % rank != rank - 1:
            raise _Skip("opset < 13 Softmax over several axes")
        return "Softmax", {"axis": _axis(lay, axis)}, [], None
    if op in _PASS:
        return _PASS[op], {}, [], None
    if op in ("Add", "Sub", "Mul", "Div"):
        return _binary(node, layouts, consts, learned)
    if op == "Concat":
        if len(layouts) != len(node.inputs):
            raise _Skip("concatenates constants")
        if len(layouts) == 1:
            return "Identity", {}, [], None                  # torch.cat([x]) (DenseNet)
        if len({l.groups for l in layouts}) > 1:
            raise _Skip("its inputs are laid out differently")
        axis = int(a["axis"]) % rank - 1
        shape = list(lay.shape)
        shape[axis] = sum(l.shape[axis] for l in layouts)
        return "Concatenate", {"axis": _axis(lay, axis + 1)}, [], Layout(tuple(shape),
                                                                          lay.groups)
    if op == "Flatten" and lay.is_default and rank == 4:
        if int(a.get("axis", 1)) % rank != 1:
            raise _Skip(f"Flatten at axis {a.get('axis')}")
        return "Flatten", {"order": "chw"}, [], None
    if op == "Reshape" and _merges_batch(node, lay, consts):
        kind, config, w, out = _reshape(node, lay, (math.prod(lay.shape),))
        return kind, config, w, dataclasses.replace(out, batchless=True)
    if op == "Gather":
        return _gather(node, lay, consts)
    if any(l.batchless for l in layouts) and op not in _VALUE_WISE:
        raise _Skip("its input was flattened with its batch")
    if op in ("Flatten", "Reshape", "Squeeze", "Unsqueeze"):
        return _reshape(node, lay, _new_shape(node, lay, consts, opset))
    if op == "Transpose":
        perm = a.get("perm", list(range(rank))[::-1])
        return _moved(*_follow(onnx_layout.transpose, lay, perm))
    if op == "Slice":
        return _slice(node, lay, consts, opset)
    if op == "Split":
        return _split(node, lay, consts, opset)
    if op == "LayerNormalization":
        return _layer_norm(node, lay, consts)
    if op == "ReduceMean":
        return _mean(node, lay, consts)
    if op in ("Sqrt", "Erf"):
        return op, {}, [], None
    if op == "Pow":
        exponent = _const(node, consts, 1, "exponent")
        if exponent is None or exponent.size != 1 or float(exponent) not in (0.5, 1, 2):
            raise _Skip(f"Pow to {exponent} (only a square or a square root)")
        return {0.5: "Sqrt", 1: "Identity", 2: "Square"}[float(exponent)], {}, [], None
    if op in ("Gemm", "MatMul"):
        b = _const(node, consts, 1, "weight matrix")
        c = _const(node, consts, 2, "bias") if op == "Gemm" else None
        if b is None or b.ndim != 2 or a.get("transA"):
            raise _Skip("needs a constant 2-D weight matrix and an untransposed input")
        if op == "Gemm" and rank != 2:
            raise _Skip("only on (N, features) inputs")
        if lay.nnvis_axis(-1) != len(lay.groups) - 1:
            raise _Skip(f"multiplies along an axis nnvis holds elsewhere ({lay.groups})")
        kernel = (b.T if a.get("transB") else b) * np.float32(a.get("alpha", 1.0))
        units = kernel.shape[1]
        out = Layout((*lay.shape[:-1], units), lay.groups)
        config = {"units": units, "use_bias": c is not None, "activation": "linear"}
        if c is None:
            return "Dense", config, [kernel], out
        return "Dense", config, [kernel, np.broadcast_to(
            np.asarray(c, np.float32).reshape(-1) * np.float32(a.get("beta", 1.0)), (units,))], out
    if op == "Pad":
        pads = _const(node, consts, 1, "pads") if opset >= 11 else a.get("pads")
        value = _const(node, consts, 2, "value") if opset >= 11 else a.get("value", 0.0)
        pads = [int(v) for v in pads] if pads is not None else None
        _maps(lay)
        if a.get("mode", "constant") != "constant" or value is not None and float(
                value) != 0 or pads is None or len(pads) != 8 or any(
                pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
            raise _Skip("only zero padding of the feature maps is supported")
        return "ZeroPadding2D", {"padding": [[pads[2], pads[6]], [pads[3], pads[7]]]}, [], None
    raise _Skip(f"unsupported ONNX operator {op!r}")


def _follow(step, layout, arg):
    try:
        return step(layout, arg)
    except LayoutError as exc:
        raise _Skip(str(exc)) from None


def _moved(layout: Layout, rearrange: dict | None):
    """A Transpose or Reshape: the identity to nnvis' array when it only relabels axes (the same
    maps), else a Rearrange of it; a Rearrange that keeps the element order is a Keras Reshape."""
    if rearrange is None:
        return "Identity", {}, [], layout
    if rearrange["perm"] == sorted(rearrange["perm"]):
        return "Reshape", {"target_shape": rearrange["target_shape"]}, [], layout
    return "Rearrange", rearrange, [], layout


def _reshape(node, layout: Layout, shape):
    return _moved(*_follow(onnx_layout.reshape, layout, shape))


def _new_shape(node, layout: Layout, consts, opset) -> tuple[int, ...]:
    """The ONNX shape (without the batch) a Flatten, Reshape, Squeeze or Unsqueeze gives."""
    op, a, shape = node.op_type, node.attributes, list(layout.shape)
    size = math.prod(shape)
    if op == "Flatten":
        if int(a.get("axis", 1)) % (len(shape) + 1) != 1:
            raise _Skip(f"Flatten at axis {a.get('axis')}")
        return (size,)
    if op in ("Squeeze", "Unsqueeze"):
        axes = a.get("axes") if opset < 13 else _const(node, consts, 1, "axes")
        if axes is None:
            if op == "Unsqueeze":
                raise _Skip("Unsqueeze without axes")
            return tuple(d for d in shape if d != 1)
        full = [1, *shape]
        if op == "Squeeze":
            drop = {int(v) % len(full) for v in axes}
            if 0 in drop or any(full[i] != 1 for i in drop):
                raise _Skip(f"squeezes axes {list(axes)} of {full}")
            return tuple(d for i, d in enumerate(full) if i not in drop)[1:]
        rank = len(full) + len(axes)
        add = {int(v) % rank for v in axes}
        if 0 in add:
            raise _Skip("adds an axis before the batch")
        it = iter(full)
        return tuple(1 if i in add else next(it) for i in range(rank))[1:]
    target = _const(node, consts, 1, "shape")
    target = [int(v) for v in target] if target is not None else None
    if target is None or len(target) < 2 or target[0] not in (0, 1, -1):
        raise _Skip(f"reshape to {target} (only keeping the batch)")
    rest = [shape[i - 1] if d == 0 and not a.get("allowzero") else d
            for i, d in enumerate(target[1:], 1)]
    if -1 in rest:
        known = math.prod(d for d in rest if d != -1)
        rest = [size // known if d == -1 else d for d in rest]
    if math.prod(rest) != size or min(rest) < 1:
        raise _Skip(f"reshape of {size} values to {target}")
    return tuple(rest)


def _merges_batch(node, layout: Layout, consts) -> bool:
    """A Reshape to [-1] (or [size]): the batch of 1 merged into one flat value."""
    target = _const(node, consts, 1, "shape")
    return target is not None and target.size == 1 and int(target.ravel()[0]) in (
        -1, math.prod(layout.shape)) and not layout.batchless


_GATHER_MAX = 1 << 16           # elements a Gather may pick (its config lists them)


def _gather(node, layout: Layout, consts):
    """Constant elements of a value flattened with its batch, into a new (1, ...) value: the
    dynamo exporter's as_strided (ConvNeXt's head), as nnvis' Gather."""
    idx = _const(node, consts, 1, "indices")
    if not layout.batchless or len(layout.groups) != 1 or int(node.attributes.get(
            "axis", 0)) != 0 or idx is None or idx.ndim < 1 or idx.shape[0] != 1:
        raise _Skip("only picking elements of a value flattened with its batch is supported")
    if idx.size > _GATHER_MAX:
        raise _Skip(f"picks {idx.size} elements (at most {_GATHER_MAX})")
    n = layout.shape[0]
    out = Layout.default(idx.shape[1:])
    picked = out.as_nnvis(np.where(idx < 0, idx + n, idx)).ravel()
    if picked.size and (picked.min() < 0 or picked.max() >= n):
        raise _Skip("indices out of range")
    return "Gather", {"indices": [int(i) for i in picked],
                      "target_shape": list(out.nnvis_shape)}, [], out


def _slice(node, layout: Layout, consts, opset):
    """Slice along one axis (ShuffleNet's channel split) as nnvis' Slice of that axis."""
    if opset < 10:
        starts, ends, axes = (node.attributes.get(k) for k in ("starts", "ends", "axes"))
        steps = None
    else:
        starts, ends, axes, steps = (_const(node, consts, k, "slice bound") for k in range(1, 5))
    rank = len(layout.shape) + 1
    axes = list(range(len(starts))) if axes is None else [int(v) % rank for v in axes]
    steps = [1] * len(axes) if steps is None else [int(v) for v in steps]
    cut = []
    for axis, start, end, step in zip(axes, starts, ends, steps):
        if axis == 0:
            raise _Skip("slices the batch")
        picked = range(*slice(int(start), int(end), step).indices(layout.shape[axis - 1]))
        if len(picked) != layout.shape[axis - 1] or step != 1:
            cut.append((axis, picked))
    if len(cut) > 1:
        raise _Skip("slices several axes at once")
    return _cut(layout, *cut[0]) if cut else ("Identity", {}, [], None)


def _split(node, layout: Layout, consts, opset):
    """One output of a Split (torch.chunk as the dynamo exporter writes it) as a Slice."""
    a, (k, parts) = node.attributes, node.attributes[_OUTPUT_KEY]
    rank = len(layout.shape) + 1
    axis = int(a.get("axis", 0)) % rank
    if axis == 0:
        raise _Skip("splits the batch")
    n = layout.shape[axis - 1]
    sizes = a.get("split") if opset < 13 else _const(node, consts, 1, "split sizes")
    if sizes is None:
        count = int(a.get("num_outputs", 0)) or parts
        step = -(-n // count)
        sizes = [min(step, n - i * step) for i in range(count)]
    sizes = [int(v) for v in sizes]
    if k >= len(sizes) or sum(sizes) != n:
        raise _Skip(f"split sizes {sizes} of an axis of {n}")
    start = sum(sizes[:k])
    return _cut(layout, axis, range(start, start + sizes[k]))


def _cut(layout: Layout, axis: int, picked: range):
    """nnvis' Slice of ONNX axis `axis` (counting the batch) to the elements `picked`."""
    shape = list(layout.shape)
    shape[axis - 1] = len(picked)
    return "Slice", {"axis": _axis(layout, axis), "start": picked.start, "stop": picked.stop,
                     "step": picked.step}, [], Layout(tuple(shape), layout.groups)


def _layer_norm(node, layout: Layout, consts):
    """ONNX LayerNormalization (normalising the axes from `axis` on) as Keras'."""
    a = node.attributes
    rank = len(layout.shape) + 1
    axes = layout.nnvis_axes(range(int(a.get("axis", -1)) % rank, rank))
    if axes is None or not axes or 0 in range(int(a.get("axis", -1)) % rank, rank):
        raise _Skip(f"normalises from axis {a.get('axis', -1)}, which nnvis holds merged")
    if len(node.outputs) > 1 and any(node.outputs[1:]):
        raise _Skip("its mean and deviation outputs are used")
    scale, bias = _const(node, consts, 1, "scale"), _const(node, consts, 2, "bias")
    stat = [layout.nnvis_shape[i] for i in axes]
    keep = [layout.nnvis_shape[i] if i in axes else 1 for i in range(len(layout.groups))]
    weights = [np.broadcast_to(_laid_out(layout, w), keep).reshape(stat)
               for w in (scale, bias) if w is not None]
    return "LayerNormalization", {"axis": [i + 1 for i in axes], "epsilon": float(
        a.get("epsilon", 1e-5)), "center": bias is not None, "scale": True}, weights, None


def _reduced_axes(node, consts):
    """A reduction's axes (an attribute before opset 18, an input after), or None for all."""
    axes = node.attributes.get("axes")
    if axes is None and len(node.inputs) > 1:
        axes = _const(node, consts, 1, "axes")
    return None if axes is None else [int(v) for v in np.ravel(axes)]


def _mean_hw(node, layout: Layout, consts) -> bool:
    """A ReduceMean over H and W of a feature map: a global average pooling."""
    axes = _reduced_axes(node, consts)
    return len(layout.shape) == 3 and layout.is_default and axes is not None and sorted(
        v % 4 for v in axes) == [2, 3]


def _mean(node, layout: Layout, consts):
    """ReduceMean over other axes (LayerNorm's statistics over the channels, decomposed)."""
    rank = len(layout.shape) + 1
    axes = _reduced_axes(node, consts)
    axes = list(range(1, rank)) if axes is None else [v % rank for v in axes]
    if not axes and node.attributes.get("noop_with_empty_axes"):
        return "Identity", {}, [], None
    found = layout.nnvis_axes(axes)
    if 0 in axes or found is None:
        raise _Skip(f"averages over axes {axes}, which nnvis holds merged with others")
    keep = bool(node.attributes.get("keepdims", 1))
    shape = tuple(1 if i + 1 in axes else d for i, d in enumerate(layout.shape))
    groups = layout.groups
    if not keep:
        gone = [a - 1 for a in axes]
        shape = tuple(d for i, d in enumerate(layout.shape) if i not in gone)
        groups = tuple(tuple(a - sum(g < a for g in gone) for a in group)
                       for k, group in enumerate(groups) if k not in found)
    return "Mean", {"axis": [i + 1 for i in found], "keepdims": keep}, [], Layout(shape, groups)


def _binary(node, layouts, consts, learned):
    """Add/Sub/Mul/Div: of two layers a merge layer, of a layer and a constant a Rescaling, of a
    layer and an initializer an Affine (its weights: each epoch's file has its own)."""
    op = node.op_type
    if len(layouts) == 2:
        if len({l.groups for l in layouts}) > 1:
            raise _Skip("its inputs are laid out differently")
        shape = tuple(np.broadcast_shapes(*(l.shape for l in layouts)))
        return {"Add": "Add", "Sub": "Subtract", "Mul": "Multiply", "Div": "Divide"}[op], {}, [], \
            Layout(shape, layouts[0].groups)
    if len(node.inputs) != 2:
        raise _Skip("unexpected inputs")
    k = 0 if node.inputs[0] in consts else 1
    c = _laid_out(layouts[0], consts[node.inputs[k]])
    if op == "Add":
        scale, offset = np.float32(1), c
    elif op == "Mul":
        scale, offset = c, np.float32(0)
    elif op == "Sub":
        scale, offset = (np.float32(-1), c) if k == 0 else (np.float32(1), -c)
    else:
        if k == 0:
            raise _Skip("a constant divided by a computed value")
        scale, offset = 1 / c, np.float32(0)
    if node.inputs[k] in learned:
        shape = np.broadcast_shapes(np.shape(scale), np.shape(offset))
        return "Affine", {"shape": list(shape)}, [np.broadcast_to(scale, shape),
                                                  np.broadcast_to(offset, shape)], None
    return "Rescaling", {"scale": np.asarray(scale).tolist(),
                         "offset": np.asarray(offset).tolist()}, [], None


_FOLD_MAX = 1024                        # elements of an input to a folded node, unless it
_SAME_SIZE = {"Identity", "Transpose", "Reshape", "Squeeze", "Unsqueeze"}   # only moves them
_FOLD = {
    "Identity": lambda a, x: x,
    "Transpose": lambda a, x: np.transpose(x, a.get("perm")),    # a Linear's weight, unfolded
    "Reshape": lambda a, x, shape: x.reshape([x.shape[i] if d == 0 and not a.get("allowzero")
                                              else int(d) for i, d in enumerate(shape)]),
    "Cast": lambda a, x: x.astype({1: np.float32, 6: np.int32, 7: np.int64, 9: bool,
                                   11: np.float64}.get(a.get("to"), x.dtype)),
    "Unsqueeze": lambda a, x, axes=None: np.expand_dims(x, tuple(
        int(v) for v in (axes if axes is not None else a["axes"]))),
    "Squeeze": lambda a, x, axes=None: np.squeeze(x, tuple(
        int(v) for v in (axes if axes is not None else a["axes"]))),
    "Gather": lambda a, x, i: np.take(x, i, axis=int(a.get("axis", 0))),
    "Concat": lambda a, *xs: np.concatenate(xs, axis=int(a["axis"])),
    "Add": lambda a, x, y: x + y,               # torch.chunk's split points (ShuffleNet)
    "Sub": lambda a, x, y: x - y,
    "Mul": lambda a, x, y: x * y,
    "Div": lambda a, x, y: _divide(x, y),
}


def _divide(x, y):
    """ONNX Div: integers truncate (C), a zero divisor is no constant."""
    if np.any(y == 0):
        raise ValueError("division by zero")
    return np.trunc(x / y).astype(np.result_type(x, y)) if np.result_type(x, y).kind in "iu" \
        else x / y


def _fold(node, consts) -> bool:
    """Evaluate a node on constants (Constant, shape arithmetic) into `consts`; False for a node
    it cannot evaluate (its outputs are unknown: a layer reading them becomes unsupported)."""
    a = node.attributes
    inputs = [consts.get(v) for v in node.inputs if v]
    if node.op_type not in _SAME_SIZE and any(x is not None and x.size > _FOLD_MAX
                                              for x in inputs):
        return False                    # shape arithmetic is small; this would only amplify
    try:
        if node.op_type == "Constant":
            value = a.get("value")
            if value is None:
                value = next((np.asarray(a[k]) for k in ("value_float", "value_floats",
                                                         "value_int", "value_ints") if k in a))
        else:
            value = _FOLD[node.op_type](a, *[consts[v] for v in node.inputs if v])
    except (KeyError, StopIteration, TypeError, ValueError, IndexError, ArithmeticError,
            np.AxisError):
        return False
    if node.outputs:
        consts[node.outputs[0]] = np.asarray(value)
    return True
