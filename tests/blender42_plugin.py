"""pytest plugin for the Blender 4.2 LTS run (`pytest --noconftest -p tests.blender42_plugin`, see
test_blender42.py): conftest.py's fixtures, except that the digits checkpoints come from the 5.0
process through NNVIS_DIGITS_RUN, because the 4.2 virtualenv has no TensorFlow. A test that
imports keras/tensorflow (TensorFlow as the oracle) is skipped with NO_TF as the reason."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import addon, empty_scene, extension_zip  # noqa: E402,F401  (sets the user folder)
from test_blender42 import NO_TF  # noqa: E402


class _SkipTensorFlow:
    """Import hook: importing keras or tensorflow skips the test instead of failing it."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("keras", "tensorflow"):
            pytest.skip(NO_TF, allow_module_level=True)


sys.meta_path.insert(0, _SkipTensorFlow())


def pytest_report_header(config):
    import bpy
    return f"blender {bpy.app.version_string}"


@pytest.fixture(scope="session")
def digits_run():
    return Path(os.environ["NNVIS_DIGITS_RUN"]), None


_EXIT = {}


def pytest_sessionfinish(session, exitstatus):
    _EXIT["status"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Leave without the interpreter's teardown: bpy 4.2 as a module segfaults at exit once any
    PropertyGroup with an update callback was registered — five lines without nnvis reproduce it
    (`class P(PropertyGroup): x: IntProperty(update=f)`, register, exit → SIGSEGV), also after
    unregistering. The results (report, junit XML) are written by now; keep pytest's status."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_EXIT.get("status", 0))
