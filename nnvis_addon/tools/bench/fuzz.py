"""`nnvis bench fuzz`: every file reader fed mutated, truncated and random variants of real files.

Seeds are written by TensorFlow/Keras (`fuzz_seeds.py`, in a child process so this one never loads
TensorFlow). Each input is written to a scratch folder and read the way the add-on reads it; what
counts, per format:

- NNVisError: the reader refused the file (expected for most inputs);
- other exceptions: must be 0 — anything else would surface in Blender as a traceback;
- inputs slower than 1 s (timed again without tracemalloc before counting), must be 0; an input
  still running after 20 s is stopped and counted;
- the largest allocation (tracemalloc peak while reading) relative to the input's size, with a
  64 KiB floor for fixed costs: a length or shape field obeyed before it is checked against the
  file's size shows up here (or as a MemoryError behind an NNVisError, also counted as a failure).

Mutations are drawn from `random.Random(seed)`, so `--seed` reproduces a run; `--keep DIR` saves
the failing inputs. The same formats drive the hypothesis tests (tests/test_fuzz.py).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import NNVisError
from .fuzz_formats import FORMATS

SLOW_SECONDS = 1.0
HANG_SECONDS = 20.0
ALLOC_FLOOR = 64 << 10
MAX_ALLOC_RATIO = 16         # peak allocation / max(input size, ALLOC_FLOOR) allowed


class _Hang(BaseException):
    """Raised by the watchdog; a BaseException so a reader's `except Exception` cannot hide it."""


# --- running inputs ----------------------------------------------------------------------------

@dataclass
class Outcome:
    kind: str                    # "ok", "rejected" (NNVisError), "crash" (anything else)
    detail: str                  # the exception, with where it was raised
    seconds: float
    size: int                    # bytes of input
    peak: int                    # tracemalloc peak while reading, bytes

    @property
    def ratio(self) -> float:
        return self.peak / max(self.size, ALLOC_FLOOR)

    @property
    def slow(self) -> bool:
        return self.seconds > SLOW_SECONDS


def _describe(e: BaseException) -> str:
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f" at {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}" if tb else ""
    message = str(e)[:200].encode("ascii", "backslashreplace").decode()
    return f"{type(e).__name__}{where}: {message}"


def _memory_error_behind(e: BaseException) -> BaseException | None:
    """A MemoryError that an NNVisError was raised from (an allocation obeyed a bad field)."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, MemoryError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


@contextlib.contextmanager
def _watchdog(seconds: float):
    if not hasattr(signal, "setitimer") or os.name == "nt":
        yield
        return

    def fire(signum, frame):
        raise _Hang(f"still running after {seconds:g} s")
    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _run_steps(steps) -> tuple[str, str]:
    kind, detail = "ok", ""
    for step in steps:
        try:
            step()
        except NNVisError as e:
            behind = _memory_error_behind(e)
            if behind is not None:
                return "crash", f"NNVisError from {_describe(behind)}"
            kind, detail = "rejected", str(e)[:300]
        except _Hang as e:
            return "crash", f"hang: {e}"
        except Exception as e:      # noqa: BLE001 - counting these is the point
            return "crash", _describe(e)
    return kind, detail


class Fuzzer:
    """Writes inputs into a scratch folder and reads them, measuring time and allocations."""

    def __init__(self, scratch: Path):
        self.scratch = Path(scratch)

    def write(self, files: dict[str, bytes]) -> Path:
        folder = self.scratch / "input"
        shutil.rmtree(folder, ignore_errors=True)
        for name, data in files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def run(self, fmt, files: dict[str, bytes]) -> Outcome:
        folder = self.write(files)
        size = sum(len(d) for d in files.values())
        started = not tracemalloc.is_tracing()
        if started:
            tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            start = time.perf_counter()
            with _watchdog(HANG_SECONDS), warnings.catch_warnings():
                warnings.simplefilter("ignore")       # numpy's notes on odd .npy headers
                kind, detail = _run_steps(fmt.steps(folder))
            seconds = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            if started:
                tracemalloc.stop()
        if seconds > SLOW_SECONDS and kind != "crash":      # tracemalloc slows Python down
            seconds = min(self._time_untraced(fmt, folder) for _ in range(2))
        return Outcome(kind, detail, seconds, size, peak)

    @staticmethod
    def _time_untraced(fmt, folder: Path) -> float:
        tracing = tracemalloc.is_tracing()
        tracemalloc.stop()
        try:
            start = time.perf_counter()
            with _watchdog(HANG_SECONDS), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _run_steps(fmt.steps(folder))
            return time.perf_counter() - start
        finally:
            if tracing:
                tracemalloc.start()


@dataclass
class Tally:
    format: str
    inputs: int = 0
    rejected: int = 0
    accepted: int = 0
    crashes: list[str] = field(default_factory=list)
    slow: list[str] = field(default_factory=list)
    big: list[str] = field(default_factory=list)
    slowest: float = 0.0
    max_peak: int = 0
    max_ratio: float = 0.0

    def add(self, outcome: Outcome, label: str) -> bool:
        """Count one input; True if it failed (crash, slow or too large an allocation)."""
        self.inputs += 1
        self.rejected += outcome.kind == "rejected"
        self.accepted += outcome.kind == "ok"
        self.slowest = max(self.slowest, outcome.seconds)
        self.max_peak = max(self.max_peak, outcome.peak)
        self.max_ratio = max(self.max_ratio, outcome.ratio)
        failed = False
        if outcome.kind == "crash":
            self.crashes.append(f"{label}: {outcome.detail}")
            failed = True
        if outcome.slow:
            self.slow.append(f"{label}: {outcome.seconds:.2f} s")
            failed = True
        if outcome.ratio > MAX_ALLOC_RATIO:
            self.big.append(f"{label}: {outcome.peak} bytes for a {outcome.size}-byte input")
            failed = True
        return failed

    @property
    def ok(self) -> bool:
        return not (self.crashes or self.slow or self.big)


def fuzz(fmt, count: int, seed: int, scratch: Path, keep: Path | None = None,
         progress=None) -> Tally:
    """Read `count` variants of the format's seed; failing inputs are copied under `keep`."""
    rng = random.Random(f"{fmt.name}/{seed}")
    fuzzer, tally = Fuzzer(scratch), Tally(fmt.name)
    for i in range(count):
        files = fmt.variant(rng)
        label = f"{fmt.name} input {i} (seed {seed})"
        if tally.add(fuzzer.run(fmt, files), label) and keep is not None:
            shutil.copytree(fuzzer.scratch / "input", keep / fmt.name / f"input_{i:06d}",
                            dirs_exist_ok=True)
        if progress and (i + 1) % 500 == 0:
            progress(tally)
    return tally


# --- the command -------------------------------------------------------------------------------

def make_seeds(folder: Path) -> None:
    """Seed files from TensorFlow, in a child process (TensorFlow stays out of this one)."""
    done = subprocess.run([sys.executable, "-m", f"{__package__}.fuzz_seeds", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise NNVisError(f"making the fuzz seeds with TensorFlow failed:\n{done.stderr[-2000:]}")


def _limit_memory(extra: int = 4 << 30) -> None:
    """Cap this process' address space so a runaway allocation fails instead of swapping."""
    try:
        import resource
        with open("/proc/self/status") as f:
            vm = next(int(line.split()[1]) << 10 for line in f if line.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + extra, resource.getrlimit(
            resource.RLIMIT_AS)[1]))
    except (ImportError, OSError, ValueError, StopIteration):
        pass


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.2f} MiB"


def _print_tally(t: Tally, out) -> None:
    print(f"{t.format:<10} {t.inputs:>7} {t.rejected:>10} {t.accepted:>8} {len(t.crashes):>7} "
          f"{len(t.slow):>5} {t.slowest:>8.3f} {_mib(t.max_peak):>11} {t.max_ratio:>8.1f}x",
          file=out)
    for line in (t.crashes + t.slow + t.big)[:10]:
        print(f"    {line}", file=out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="nnvis bench fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="inputs per format")
    parser.add_argument("--format", action="append", choices=sorted(FORMATS),
                        help="fuzz only this format (repeatable); default all")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the mutations")
    parser.add_argument("--seeds", type=Path, help="seed files made earlier (skips TensorFlow)")
    parser.add_argument("--keep", type=Path, help="copy failing inputs into this folder")
    args = parser.parse_args(argv)
    _limit_memory()
    names = args.format or list(FORMATS)
    with tempfile.TemporaryDirectory(prefix="nnvis-fuzz-") as tmp:
        seeds = args.seeds
        if seeds is None:
            seeds = Path(tmp) / "seeds"
            print("making seed files with TensorFlow ...", file=sys.stderr, flush=True)
            make_seeds(seeds)

        def progress(t: Tally):
            print(f"  {t.format}: {t.inputs} inputs, {len(t.crashes)} exceptions, "
                  f"{len(t.slow)} slow", file=sys.stderr, flush=True)
        print(f"{'format':<10} {'inputs':>7} {'NNVisError':>10} {'read ok':>8} {'other':>7} "
              f"{'slow':>5} {'slowest':>8} {'max alloc':>11} {'/size':>9}")
        tallies = []
        for name in names:
            tally = fuzz(FORMATS[name](seeds), args.count, args.seed, Path(tmp), args.keep,
                         progress)
            _print_tally(tally, sys.stdout)
            sys.stdout.flush()
            tallies.append(tally)
    print(f"other = exceptions other than NNVisError (must be 0); slow = inputs over "
          f"{SLOW_SECONDS:g} s (must be 0); /size = peak allocation / max(input size, "
          f"{ALLOC_FLOOR >> 10} KiB) (must stay <= {MAX_ALLOC_RATIO})")
    return 0 if all(t.ok for t in tallies) else 1


if __name__ == "__main__":
    sys.exit(main())
