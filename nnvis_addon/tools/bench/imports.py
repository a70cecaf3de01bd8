"""`nnvis bench import`: wall time and peak memory of importing real networks, and where it goes.

For each model a first process (TensorFlow) writes a `.keras` architecture, three epochs of
`.weights.h5` (random init, each epoch nudged) and a probe, and times nnvis' numpy forward pass
against TensorFlow's (`bench.forward.measure`, side by side in one process). A second process, with
no TensorFlow in it, imports the folder like the importer does (`load_run` + `build_scene` in bpy)
and reports its wall time, its CPU time (all threads; close to the wall time of an idle machine,
since a shared one stretches only the wall), peak RSS and the forward-pass share. `*_onnx_*` models are torchvision
networks exported per epoch to ONNX by torch (the `torch` extra), timed against onnxruntime.
Models are cached in `build/bench-models/`.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from ..packaging import ROOT

MODELS = {  # name → (keras.applications key or "digits", input size)
    "digits": ("digits", 32),
    "mobilenetv2_96": ("mobilenetv2", 96),
    "vgg16_224": ("vgg16", 224),
    "resnet50_224": ("resnet50", 224),
    "densenet121_224": ("densenet121", 224),
    "resnet18_onnx_224": ("torch:resnet18", 224),      # torchvision, exported to ONNX by torch
}
CACHE = ROOT / "build" / "bench-models"


def prepare(name: str) -> dict:
    """Write the model's checkpoints (TensorFlow) and return the TF-vs-numpy forward timing."""
    import numpy as np
    key, size = MODELS[name]
    folder = CACHE / name
    folder.mkdir(parents=True, exist_ok=True)
    if key.startswith("torch:"):
        return _prepare_onnx(key.split(":", 1)[1], size, folder)
    if key == "digits":
        from ..demo import train_digits
        if not (folder / "model.keras").exists():
            train_digits(folder, epochs=2, samples=300)
        return {"tf_forward_s": None}
    from .forward import build_application, measure
    if not (folder / "model.keras").exists():
        model = build_application(key, size)
        rng = np.random.default_rng(0)
        model.save(folder / "model.keras")
        for epoch in range(3):
            model.save_weights(folder / f"epoch_{epoch:02d}.weights.h5")
            model.set_weights([w + 0.02 * float(np.std(w) or 1.0) * rng.standard_normal(w.shape)
                               .astype(w.dtype) for w in model.get_weights()])
        np.save(folder / "probe.npy",
                rng.uniform(0, 1, (size, size, 3)).astype(np.float32))
    timing = measure(key, size, repeats=1)
    return {"tf_forward_s": timing["tf_forward_s"], "numpy_forward_s": timing["forward_s"]}


def _prepare_onnx(key: str, size: int, folder: Path) -> dict:
    """Three epochs of a torchvision model as ONNX files (weights nudged per epoch), a (C, H, W)
    probe, and one forward pass timed in onnxruntime and in nnvis' numpy (best of 3 / of 2)."""
    import numpy as np
    import onnxruntime as ort
    from ...model.forward import forward_batch
    from ...io.onnx import read_onnx_epoch
    if not (folder / "epoch_02.onnx").exists():
        import torch
        import torchvision
        torch.manual_seed(0)
        model = getattr(torchvision.models, key)(weights=None).eval()
        x = torch.zeros(1, 3, size, size)
        for epoch in range(3):
            torch.onnx.export(model, (x,), str(folder / f"epoch_{epoch:02d}.onnx"), dynamo=False,
                              input_names=["input"])
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.02 * float(p.std() if p.numel() > 1 else 1.0) * torch.randn_like(p))
        np.save(folder / "probe.npy", np.random.default_rng(0).uniform(0, 1, (3, size, size))
                .astype(np.float32))
    probe = np.load(folder / "probe.npy", allow_pickle=False)[None]
    session = ort.InferenceSession(str(folder / "epoch_00.onnx"),
                                   providers=["CPUExecutionProvider"])
    ort_s = []
    for _ in range(3):
        start = time.perf_counter()
        session.run(None, {session.get_inputs()[0].name: probe})
        ort_s.append(time.perf_counter() - start)
    network, weights = read_onnx_epoch(folder / "epoch_00.onnx")
    numpy_s = []
    for _ in range(2):
        start = time.perf_counter()
        forward_batch(network, weights, probe.transpose(0, 2, 3, 1))
        numpy_s.append(time.perf_counter() - start)
    return {"tf_forward_s": min(ort_s), "numpy_forward_s": min(numpy_s), "oracle": "onnxruntime"}


def import_once(name: str) -> dict:
    """Import the prepared folder in this process (no TensorFlow) and measure it."""
    import bpy
    from ... import load_run
    from ...scene import build_scene
    bpy.ops.wm.read_factory_settings(use_empty=True)
    start, cpu = time.perf_counter(), time.process_time()
    run = load_run(CACHE / name)
    loaded = time.perf_counter()
    build_scene(run)
    done = time.perf_counter()
    return {"model": name, "seconds": done - start, "cpu_s": time.process_time() - cpu,
            "peak_rss_mb": peak_rss_mb(),
            "forward_s": run.forward_seconds / len(run.epochs),      # one pass, like TF's column
            "forward_total_s": run.forward_seconds,
            "read_s": loaded - start - run.forward_seconds,
            "scene_s": done - loaded, "epochs": len(run.epochs), "layers": len(run.layers),
            "objects": len(bpy.data.objects)}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-m", "nnvis_addon.tools.bench.imports", *args],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"bench child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nnvis bench import", description=__doc__)
    p.add_argument("--json", action="store_true", help="print rows as JSON")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--child", choices=["prepare", "import"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        (name,) = args.models
        print(json.dumps(prepare(name) if args.child == "prepare" else import_once(name)))
        return 0
    rows = []
    for name in args.models:
        tf = _child(["--child", "prepare", "--models", name])
        row = _child(["--child", "import", "--models", name])
        row["tf_forward_s"] = tf["tf_forward_s"]
        row["oracle"] = tf.get("oracle", "TF")
        row["side_by_side_numpy_s"] = tf.get("numpy_forward_s")
        rows.append(row)
        if not args.json:
            share = row["forward_total_s"] / row["seconds"] if row["seconds"] else 0.0
            tf_s = "—" if row["tf_forward_s"] is None else \
                f"{row['tf_forward_s']:.2f} vs numpy {row['side_by_side_numpy_s']:.2f}"
            print(f"{name:16s} {row['seconds']:7.1f} s (CPU {row['cpu_s']:5.1f} s)  "
                  f"peak {row['peak_rss_mb']:7.0f} MB  "
                  f"forward {row['forward_s']:5.2f} s/pass ({row['oracle']} {tf_s}; "
                  f"{share:4.0%} of import)  "
                  f"read {row['read_s']:5.2f} s  scene {row['scene_s']:6.2f} s  "
                  f"{row['objects']} objects", flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
