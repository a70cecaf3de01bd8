"""Crash safety: a recording training run SIGKILLed at random instants leaves a loadable recording.

One fork server (recorder_kill_server.py) imports TensorFlow once; each trial forks a training run
that records every epoch and kills it after a seeded random delay, and loads what is left. A few
trials die during start-up (writer creation, epoch 0, the first step's tracing, ~0.5 s); most die in
the steady state after epoch 1, where an epoch takes ~65 ms of which ~50 ms are writing. The epochs
the run reported as written must all load, complete and equal to what TensorFlow computes from
their weights.
"""
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from nnvis_addon.errors import NNVisError
from nnvis_addon.io.recording import read_recording

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
from recorder_kill_server import PROBES, build_model, data  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
STARTUP_TRIALS, STEADY_TRIALS = 4, 12
SPAN = 0.6          # seconds after the anchor line over which kill times are spread


class Server:
    def __init__(self):
        env = {**os.environ, "PYTHONPATH": os.path.dirname(HERE)}
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "recorder_kill_server.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        assert self.next() == "ready"

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def next(self) -> str:
        return self.lines.get(timeout=120)

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def kill_trial(server, folder, anchor, delay):
    """Start a run into ``folder`` and SIGKILL it ``delay`` s after it printed ``anchor``; returns
    the epochs it reported written."""
    server.proc.stdin.write(f"{folder}\n")
    server.proc.stdin.flush()
    pid, reported, line = None, [], ""
    while line != anchor or pid is None:
        line = server.next()
        pid = int(line.split()[1]) if line.startswith("pid ") else pid
        if line.startswith("epoch "):
            reported.append(int(line.split()[1]))
    try:
        time.sleep(delay)
    finally:
        os.kill(pid, signal.SIGKILL)
    while (line := server.next()) != f"reaped {pid}":
        if line.startswith("epoch "):
            reported.append(int(line.split()[1]))
    return reported


def interrupted_write(folder) -> bool:
    """Did the kill land inside a write (temp files left, or an epoch folder not yet listed)?"""
    epochs = os.path.join(folder, "epochs")
    names = os.listdir(epochs) if os.path.isdir(epochs) else []
    if os.path.exists(os.path.join(folder, "manifest.json.tmp")) or any(
            n.startswith(".tmp-") for n in names):
        return True
    try:
        listed = len(read_recording(folder).epochs)
    except NNVisError:
        listed = 0
    return len(names) > listed


def check_against_tensorflow(rec, model, probes):
    """The last epoch's predictions and activations are what TF computes from its weights."""
    last = rec.epochs[-1]
    weights = rec.weights(last)
    model.set_weights([w for name in rec.layer_names for w in weights[name]])
    np.testing.assert_allclose(rec.predictions(last), model(probes), rtol=1e-5, atol=1e-6)
    c1 = keras.Model(model.inputs[0], model.get_layer("c1").output)
    np.testing.assert_allclose(rec.activations(last)["c1"], c1(probes), rtol=1e-5, atol=1e-6)


def test_sigkill_at_random_instants_leaves_loadable_recordings(tmp_path):
    rng = random.Random(20240503)
    plan = ([("fit", (i + rng.random()) * SPAN / STARTUP_TRIALS) for i in range(STARTUP_TRIALS)]
            + [("epoch 1", (i + rng.random()) * SPAN / STEADY_TRIALS)
               for i in range(STEADY_TRIALS)])
    model, probes = build_model(), data()[0][:PROBES]
    shapes = {name: None for name in ("c1", "c2", "flat", "out")}
    server = Server()
    outcomes = []
    try:
        for trial, (anchor, delay) in enumerate(plan):
            folder = str(tmp_path / f"trial{trial}")
            reported = kill_trial(server, folder, anchor, delay)
            mid_write = interrupted_write(folder)
            try:
                rec = read_recording(folder)
            except NNVisError as e:
                # only a run killed before finishing epoch 0 may leave nothing to load
                assert not reported, (delay, reported, e)
                assert re.search(r"no manifest\.json|no usable epoch", str(e)), e
                outcomes.append((delay, 0, mid_write))
                continue
            assert rec.warnings == [], rec.warnings
            assert set(reported) <= set(rec.epochs) <= set(reported) | {len(reported)}
            assert rec.epochs == list(range(len(rec.epochs)))
            assert rec.layer_names == list(shapes)
            for epoch in rec.epochs:     # every listed epoch is complete: read every byte
                acts = rec.activations(epoch)
                for name in rec.layer_names:
                    assert np.isfinite(acts[name]).all()
                    shapes[name] = shapes[name] or acts[name].shape
                    assert acts[name].shape == shapes[name]
                    assert all(np.isfinite(w).all() for w in rec.weights(epoch)[name])
                assert np.allclose(rec.predictions(epoch).sum(axis=1), 1, atol=1e-5)
                if epoch > 0:
                    assert np.isfinite(rec.metrics[epoch]["loss"])
            check_against_tensorflow(rec, model, probes)
            outcomes.append((delay, len(rec.epochs), mid_write))
    finally:
        server.close()
    print("\n(delay s, epochs loaded, killed mid-write):",
          [(round(d, 2), n, m) for d, n, m in sorted(outcomes)])
    assert len(outcomes) == len(plan)
    assert sum(n >= 2 for _, n, _ in outcomes) >= STEADY_TRIALS
    assert max(n for _, n, _ in outcomes) >= 5
    assert any(m for _, _, m in outcomes), "no kill landed inside a write"
