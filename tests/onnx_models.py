"""ONNX files written by torch for the ONNX tests, and onnxruntime's value of every node (the oracle).

torch and onnxruntime are test-only (the `torch` extra); nnvis reads the files without them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def export(model, path: Path, size: int = 64, channels: int = 3, **kwargs) -> Path:
    """`model` (eval mode) exported by the TorchScript exporter with a fixed (1, C, size, size)
    input named "input"."""
    import torch
    model.eval()
    x = torch.zeros(1, channels, size, size)
    torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["input"],
                      output_names=["output"], **kwargs)
    return path


def torchvision_model(name: str, seed: int = 0):
    import torch
    import torchvision
    torch.manual_seed(seed)
    return getattr(torchvision.models, name)(weights=None)


def node_outputs(path, x: np.ndarray) -> dict[str, np.ndarray]:
    """onnxruntime's outputs of every node for the batch `x` (NCHW), by node name (`name:k` for
    output k > 0, as nnvis names a Split's outputs)."""
    import onnx
    import onnxruntime as ort
    model = onnx.load(str(path))
    graph_outputs = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for out in node.output:
            if out and out not in graph_outputs:
                model.graph.output.append(onnx.helper.make_empty_tensor_value_info(out))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(None, {model.graph.input[0].name: x})))
    return {node.name if k == 0 else f"{node.name}:{k}": values[out]     # nnvis' layer names
            for node in model.graph.node for k, out in enumerate(node.output) if out in values}


def channels_last(value: np.ndarray, config: dict | None = None) -> np.ndarray:
    """onnxruntime's value of a node as nnvis holds it, through the layout its layer's config
    records: (1, C, H, W) → (H, W, C), other ranks without the batch, unless the layer's value
    had its axes moved (an NHWC value after a Transpose, a 5-D channel shuffle)."""
    from nnvis_addon.model.onnx_layout import of_layer
    return of_layer(value.shape, config or {}).as_nnvis(value)


def assert_nodes_match(run, path, probe_nchw, epoch, rtol=1e-4):
    """Every layer's activation equals onnxruntime's output of its node (laid out as nnvis
    holds it), within `rtol` of the layer's largest value; returns onnxruntime's values."""
    oracle = node_outputs(path, probe_nchw[None])
    assert not [l.name for l in run.layers if not run.has_activations(l.name)]
    for layer in run.layers[1:]:
        want = channels_last(oracle[layer.name], layer.config)
        got = run.activations(layer.name, epoch)
        assert got.shape == want.shape, layer.name
        scale = float(np.abs(want).max()) or 1.0
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=layer.name)
    return oracle
