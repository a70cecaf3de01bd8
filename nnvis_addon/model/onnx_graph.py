"""An ONNX graph as a Network: each node that computes on the input becomes a layer of the nearest
Keras kind, with its weights in Keras order and channels-last, so the numpy forward pass, edges,
layout and scene treat it exactly like a Keras model.

ONNX tensors are NCHW; nnvis' are NHWC. A 4-D ONNX value (N, C, H, W) is the layer output
(H, W, C); any other rank keeps its order without the batch. Hence: kernels are transposed to
Keras' (kh, kw, in, out), NCHW axes are renumbered, per-channel constants are reshaped to broadcast
over (H, W, C), and a Flatten of a feature map keeps ONNX's (C, H, W) element order (config
``order: "chw"``) so a following Gemm reads its inputs where ONNX does. Explicit pads become
``padding: ((top, bottom), (left, right))``; ``ceil_mode`` adds the extra rows at the end.
Layers are named by the node names; the input layer by the graph input's name. A node nnvis has no
rule for imports as an unsupported layer (a labelled block), as do the nodes fed by it. Nodes on
constants only (shape arithmetic, Constant) are folded, not drawn. Pure numpy.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import NNVisError
from . import ops
from .kernels import ceil_mode_extra
from .keras_config import INPUT_KIND, UNSUPPORTED_KEY
from .network import Layer, Network
from .onnx_model import OnnxModel, OnnxNode

_ACTIVATIONS = {"Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hard_swish", "Elu": "elu",
                "Selu": "selu", "Softplus": "softplus", "Softsign": "softsign", "Exp": "exponential",
                "Gelu": "gelu", "Mish": "mish"}
_PASS = {"Identity": "Identity", "Dropout": "Dropout"}


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
    shape = _channels_last(first.shape[1:])
    layers = [Layer(first.name, INPUT_KIND, {"batch_shape": [None, *shape]}, [], shape)]
    weights: dict[str, list[np.ndarray]] = {}
    producer = {first.name: first.name}            # value name -> layer whose output it is
    shapes = {first.name: shape}                   # layer name -> output shape (None: unknown)
    consts = dict(model.initializers)
    unknown = set()                                # values of nodes that could not be folded
    for node in model.nodes:
        dynamic = [v for v in node.inputs if v in producer]
        if node.op_type == "Shape" and dynamic and shapes[producer[dynamic[0]]] is not None:
            consts[node.outputs[0]] = np.array([1, *_onnx_order(shapes[producer[dynamic[0]]])])
            continue
        if not dynamic:
            if not _fold(node, consts):
                unknown.update(node.outputs)
            continue
        missing = [v for v in node.inputs if v and v not in producer and v not in consts
                   and v not in unknown]
        if missing:
            raise NNVisError(f"{model.source}: node {node.name!r} reads {missing[0]!r}, which no "
                             "earlier node or initializer gives (not in topological order?)")
        inbound = [producer[v] for v in dynamic]
        in_shapes = [shapes[n] for n in inbound]
        layer, w = _layer(node, inbound, in_shapes, consts, model.opset)
        layers.append(layer)
        shapes[layer.name] = None if UNSUPPORTED_KEY in layer.config else layer.output_shape
        if w:
            weights[layer.name] = w
        if node.outputs:
            producer[node.outputs[0]] = layer.name
    name = model.name or "onnx_model"
    return Network(name=name, layers=layers, input_order="chw" if len(shape) == 3 else "hwc"), \
        weights


def _onnx_order(shape) -> tuple:
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else tuple(shape)


def _channels_last(shape) -> tuple:
    shape = tuple(int(d) for d in shape)
    return (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape


def _layer(node, inbound, in_shapes, consts, opset):
    """The Layer for one node (unsupported when nnvis has no rule) and its weights."""
    where = f"node {node.name!r} ({node.op_type})"
    try:
        if None in in_shapes:
            raise _Skip("the shape of its input is unknown")
        if node.domain not in ("", "ai.onnx"):
            raise _Skip(f"operator domain {node.domain!r} is not the standard one")
        kind, config, w = _map(node, in_shapes, consts, opset)
        out = ops.output_shape(kind, config, in_shapes, layer_name=node.name)
        expected = ops.weight_shapes(kind, config, in_shapes, layer_name=node.name)
    except _Skip as exc:
        return Layer(node.name, node.op_type, {UNSUPPORTED_KEY: f"{where}: {exc}"}, inbound, ()), []
    except ops.Unsupported as exc:
        return Layer(node.name, node.op_type, {UNSUPPORTED_KEY: str(exc)}, inbound, ()), []
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise NNVisError(f"{where}: bad attributes or inputs ({type(exc).__name__}: {exc})") \
            from None
    w = [np.ascontiguousarray(a, np.float32) for a in w]
    if [a.shape for a in w] != [tuple(s) for s in expected]:
        raise NNVisError(f"{where}: weights of shapes {[a.shape for a in w]} do not fit its input "
                         f"{in_shapes} (expected {expected})")
    config.setdefault("_nnvis_onnx_op", node.op_type)
    return Layer(node.name, kind, config, inbound, out, [a.shape for a in w]), w


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


def _to_hwc(c, rank: int) -> np.ndarray:
    """A constant that broadcasts against an ONNX value of `rank`, made to broadcast against
    nnvis' layout of it (batch dropped; (C, H, W) → (H, W, C))."""
    c = np.asarray(c, np.float32)
    if c.ndim > rank:
        raise _Skip(f"a constant of shape {c.shape} against a rank-{rank} input")
    c = c.reshape((1,) * (rank - c.ndim) + c.shape)
    if c.shape[0] != 1:
        raise _Skip(f"a constant of shape {c.shape} varies along the batch")
    if rank == 4:
        c = c.transpose(0, 2, 3, 1)
    return c[0]


def _axis(axis: int, rank: int) -> int:
    """An ONNX axis of a rank-`rank` value as a Keras axis (counting the batch) of nnvis' layout."""
    axis = axis % rank
    if axis == 0:
        raise _Skip("works along the batch axis")
    return {1: 3, 2: 1, 3: 2}[axis] if rank == 4 else axis


def _map(node: OnnxNode, in_shapes, consts, opset):
    """(Keras kind, config, weights) for one node, or _Skip."""
    op, a = node.op_type, node.attributes
    rank = 4 if len(in_shapes[0]) == 3 else len(in_shapes[0]) + 1
    if op == "Conv":
        w, b = _const(node, consts, 1, "kernel"), _const(node, consts, 2, "bias")
        if w is None or w.ndim != 4 or rank != 4:
            raise _Skip("only 2-D convolutions are supported")
        f, cg, kh, kw = w.shape
        group, channels = int(a.get("group", 1)), in_shapes[0][-1]
        config = {**_window(node, [kh, kw], in_shapes[0][:2]), "use_bias": b is not None,
                  "activation": "linear"}
        if group > 1 and group == channels and cg == 1:
            kernel = w.reshape(channels, f // channels, kh, kw).transpose(2, 3, 0, 1)
            return "DepthwiseConv2D", {**config, "depth_multiplier": f // channels}, \
                [kernel] + ([b] if b is not None else [])
        return "Conv2D", {**config, "filters": f, "groups": group}, \
            [w.transpose(2, 3, 1, 0)] + ([b] if b is not None else [])
    if op == "BatchNormalization":
        if a.get("training_mode"):
            raise _Skip("training_mode")
        stats = [_const(node, consts, k, "statistics") for k in range(1, 5)]
        if any(s is None for s in stats):
            raise _Skip("missing statistics")
        return "BatchNormalization", {"axis": -1, "epsilon": float(a.get("epsilon", 1e-5)),
                                      "center": True, "scale": True}, stats
    if op in ("MaxPool", "AveragePool"):
        if rank != 4 or len(node.outputs) > 1 and node.outputs[1]:
            raise _Skip("only 2-D pooling without indices is supported")
        if _pairs(a, "dilations", [1, 1]) != [1, 1]:
            raise _Skip("dilated pooling")
        k = _pairs(a, "kernel_shape", None)
        config = _window(node, k, in_shapes[0][:2])
        if op == "AveragePool" and a.get("count_include_pad") and not isinstance(
                config["padding"], str) and any(map(any, config["padding"])):
            raise _Skip("count_include_pad with padding")
        return ("MaxPooling2D" if op == "MaxPool" else "AveragePooling2D"), \
            {"pool_size": k, "strides": config["strides"], "padding": config["padding"]}, []
    if op in ("GlobalAveragePool", "GlobalMaxPool") or op == "ReduceMean" and _mean_hw(
            node, consts, rank):
        if rank != 4:
            raise _Skip("only 2-D pooling is supported")
        kind = "GlobalMaxPooling2D" if op == "GlobalMaxPool" else "GlobalAveragePooling2D"
        return kind, {"keepdims": bool(a.get("keepdims", 1))}, []
    if op == "Relu":
        return "ReLU", {}, []
    if op == "LeakyRelu":
        return "LeakyReLU", {"negative_slope": float(a.get("alpha", 0.01))}, []
    if op == "Clip":
        low, high = ((_const(node, consts, 1, "minimum"), _const(node, consts, 2, "maximum"))
                     if opset >= 11 else (a.get("min"), a.get("max")))
        if low is None or float(low) != 0:
            raise _Skip(f"Clip from {low} (only a ReLU from 0 is supported)")
        return "ReLU", {} if high is None else {"max_value": float(high)}, []
    if op == "HardSigmoid":
        if not (math.isclose(a.get("alpha", 0.2), 1 / 6, rel_tol=1e-6)
                and math.isclose(a.get("beta", 0.5), 0.5)):
            raise _Skip("HardSigmoid other than relu6(x + 3) / 6")
        return "Activation", {"activation": "hard_sigmoid"}, []
    if op in _ACTIVATIONS:
        if op in ("Elu", "Selu", "Gelu") and set(a) - {"approximate"} or a.get(
                "approximate", "none") != "none":
            raise _Skip(f"{op} with attributes {a}")
        return "Activation", {"activation": _ACTIVATIONS[op]}, []
    if op == "Softmax":
        axis = int(a.get("axis", -1 if opset >= 13 else 1))
        if opset < 13 and axis % rank != rank - 1:
            raise _Skip("opset < 13 Softmax over several axes")
        return "Softmax", {"axis": _axis(axis, rank)}, []
    if op in _PASS:
        return _PASS[op], {}, []
    if op in ("Add", "Sub", "Mul", "Div"):
        return _binary(node, in_shapes, consts, rank)
    if op == "Concat":
        if len(in_shapes) != len(node.inputs):
            raise _Skip("concatenates constants")
        if len(in_shapes) == 1:
            return "Identity", {}, []                  # torch.cat([x]) (DenseNet)
        return "Concatenate", {"axis": _axis(int(a["axis"]), rank)}, []
    if op == "Flatten":
        if int(a.get("axis", 1)) % rank != 1:
            raise _Skip(f"Flatten at axis {a.get('axis')}")
        return "Flatten", ({"order": "chw"} if rank == 4 else {}), []
    if op == "Reshape":
        target = _const(node, consts, 1, "shape")
        target = [int(v) for v in target] if target is not None else None
        if target is None or len(target) < 2 or target[0] not in (0, 1, -1):
            raise _Skip(f"reshape to {target} (only keeping the batch)")
        size = math.prod(in_shapes[0])
        rest = [in_shapes[0][i - 1] if d == 0 else d for i, d in enumerate(target[1:], 1)]
        if -1 in rest:
            known = math.prod(d for d in rest if d != -1)
            rest = [size // known if d == -1 else d for d in rest]
        if math.prod(rest) != size:
            raise _Skip(f"reshape of {size} values to {target}")
        if rank == 4 and len(rest) == 1:
            return "Flatten", {"order": "chw"}, []
        if rank == 4 or len(rest) == 3:
            raise _Skip("reshape to or from feature maps")
        return "Reshape", {"target_shape": rest}, []
    if op in ("Gemm", "MatMul"):
        if rank != 2:
            raise _Skip("only on (N, features) inputs")
        b = _const(node, consts, 1, "weight matrix")
        c = _const(node, consts, 2, "bias") if op == "Gemm" else None
        if b is None or b.ndim != 2 or a.get("transA"):
            raise _Skip("needs a constant 2-D weight matrix and an untransposed input")
        kernel = (b.T if a.get("transB") else b) * np.float32(a.get("alpha", 1.0))
        units = kernel.shape[1]
        config = {"units": units, "use_bias": c is not None, "activation": "linear"}
        if c is None:
            return "Dense", config, [kernel]
        return "Dense", config, [kernel, np.broadcast_to(
            np.asarray(c, np.float32).reshape(-1) * np.float32(a.get("beta", 1.0)), (units,))]
    if op == "Pad":
        pads = _const(node, consts, 1, "pads") if opset >= 11 else a.get("pads")
        value = _const(node, consts, 2, "value") if opset >= 11 else a.get("value", 0.0)
        pads = [int(v) for v in pads] if pads is not None else None
        if rank != 4 or a.get("mode", "constant") != "constant" or value is not None and float(
                value) != 0 or pads is None or len(pads) != 8 or any(
                pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
            raise _Skip("only zero padding of the feature maps is supported")
        return "ZeroPadding2D", {"padding": [[pads[2], pads[6]], [pads[3], pads[7]]]}, []
    raise _Skip(f"unsupported ONNX operator {op!r}")


def _mean_hw(node, consts, rank) -> bool:
    """A ReduceMean over H and W of a feature map (axes an attribute before opset 18, an input
    after)."""
    axes = node.attributes.get("axes")
    if axes is None and len(node.inputs) > 1:
        axes = _const(node, consts, 1, "axes")
    return rank == 4 and axes is not None and sorted(int(v) % 4 for v in axes) == [2, 3]


def _binary(node, in_shapes, consts, rank):
    """Add/Sub/Mul/Div: of two layers a merge layer, of a layer and a constant a Rescaling."""
    op = node.op_type
    if len(in_shapes) == 2:
        if op == "Div":
            raise _Skip("division of two computed values")
        return {"Add": "Add", "Sub": "Subtract", "Mul": "Multiply"}[op], {}, []
    if len(node.inputs) != 2:
        raise _Skip("unexpected inputs")
    k = 0 if node.inputs[0] in consts else 1
    c = _to_hwc(consts[node.inputs[k]], rank)
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
    return "Rescaling", {"scale": np.asarray(scale).tolist(),
                         "offset": np.asarray(offset).tolist()}, []


_FOLD_MAX = 1024                        # elements of an input to a folded node (not Identity)
_FOLD = {
    "Identity": lambda a, x: x,
    "Cast": lambda a, x: x.astype({1: np.float32, 6: np.int32, 7: np.int64, 9: bool,
                                   11: np.float64}.get(a.get("to"), x.dtype)),
    "Unsqueeze": lambda a, x, axes=None: np.expand_dims(x, tuple(
        int(v) for v in (axes if axes is not None else a["axes"]))),
    "Squeeze": lambda a, x, axes=None: np.squeeze(x, tuple(
        int(v) for v in (axes if axes is not None else a["axes"]))),
    "Gather": lambda a, x, i: np.take(x, i, axis=int(a.get("axis", 0))),
    "Concat": lambda a, *xs: np.concatenate(xs, axis=int(a["axis"])),
}


def _fold(node, consts) -> bool:
    """Evaluate a node on constants (Constant, shape arithmetic) into `consts`; False for a node
    it cannot evaluate (its outputs are unknown: a layer reading them becomes unsupported)."""
    a = node.attributes
    inputs = [consts.get(v) for v in node.inputs if v]
    if node.op_type != "Identity" and any(x is not None and x.size > _FOLD_MAX for x in inputs):
        return False                    # shape arithmetic is small; this would only amplify
    try:
        if node.op_type == "Constant":
            value = a.get("value")
            if value is None:
                value = next((np.asarray(a[k]) for k in ("value_float", "value_floats",
                                                         "value_int", "value_ints") if k in a))
        else:
            value = _FOLD[node.op_type](a, *[consts[v] for v in node.inputs if v])
    except (KeyError, StopIteration, TypeError, ValueError, IndexError, np.AxisError):
        return False
    if node.outputs:
        consts[node.outputs[0]] = np.asarray(value)
    return True
