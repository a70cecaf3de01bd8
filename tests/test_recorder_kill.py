"""Crash safety: a recording training run SIGKILLed at random instants leaves a loadable recording.

One fork server (recorder_kill_server.py) imports TensorFlow once; each trial forks a training run
that records every epoch and kills it after a seeded random delay, and loads what is left. Kills
are spread over start-up (writer creation, epoch 0, the first step's tracing: ~0.5 s after "fit"),
over the steady state after epoch 1 (~50-150 ms an epoch, a third to half of it writing, mostly
fsync), and over the write of epoch 3 (~40-80 ms from the "writing 3" line). The epochs
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

TIER = "oracle"

HERE = os.path.dirname(os.path.abspath(__file__))
# (anchor line, trials, seconds after the anchor over which the kills are spread)
PLAN = [("fit", 3, 0.6), ("epoch 1", 6, 1.2), ("writing 3", 4, 0.08)]
RETRIES = 30


class Server:
    def __init__(self):
        env = {**os.environ, "PYTHONPATH": os.path.dirname(HERE)}
        script = os.path.join(HERE, "recorder_kill_server.py")
        self.proc = subprocess.Popen([sys.executable, script], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     env=env)
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
    pid, reported, seen = None, [], False
    while not (seen and pid):
        line = server.next()
        seen = seen or line == anchor
        assert not line.startswith("reaped "), f"the run into {folder} died before {anchor!r}"
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
    plan = [(anchor, (i + rng.random()) * span / n) for anchor, n, span in PLAN for i in range(n)]
    # The files of an epoch are written in a window of a few ms that load shifts around; when the
    # plan missed it, kills swept in 3 ms steps after "writing 3" find it (stopping at the first).
    retries = [("writing 3", 0.003 * i) for i in range(RETRIES)]
    model, probes = build_model(), data()[0][:PROBES]
    shapes = {name: None for name in ("c1", "c2", "flat", "out")}
    server = Server()
    outcomes = []
    try:
        for trial, (anchor, delay) in enumerate(plan + retries):
            if trial >= len(plan) and any(m for *_, m in outcomes):
                break
            folder = str(tmp_path / f"trial{trial}")
            reported = kill_trial(server, folder, anchor, delay)
            mid_write = interrupted_write(folder)
            try:
                rec = read_recording(folder)
            except NNVisError as e:
                # only a run killed before finishing epoch 0 may leave nothing to load
                assert not reported, (delay, reported, e)
                assert re.search(r"no manifest\.json|no usable epoch", str(e)), e
                outcomes.append((anchor, delay, 0, mid_write))
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
            outcomes.append((anchor, delay, len(rec.epochs), mid_write))
    finally:
        server.close()
    print("\n(anchor, delay s, epochs loaded, killed mid-write):",
          [(a, round(d, 2), n, m) for a, d, n, m in outcomes])
    assert len(plan) <= len(outcomes) <= len(plan) + RETRIES
    after_epoch_1 = sum(n for anchor, n, _ in PLAN if anchor != "fit")
    assert sum(n >= 2 for a, _, n, _ in outcomes[:len(plan)] if a != "fit") == after_epoch_1
    assert all(n >= 3 for _, _, n, _ in outcomes[len(plan):])     # retries kill epoch 3 mid-write
    assert max(n for _, _, n, _ in outcomes) >= 4
    assert any(m for _, _, _, m in outcomes), "no kill landed inside a write"
