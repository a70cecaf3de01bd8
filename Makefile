# The two set-up commands: `make demo` (train, import, render an MP4) and `make test`.
# Both create/reuse .venv and install what they need from PyPI.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.nnvis-installed
# Blender 4.2 LTS: a second virtualenv without TensorFlow; tests/test_blender42.py runs the spine
# and render tests in it on checkpoints the main venv trains.
VENV42 := .venv-blender42
STAMP42 := $(VENV42)/.nnvis-installed
BPY42 := 4.2.23

.PHONY: demo test build clean venv42

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[blender,tf,test,torch]"
	touch $(STAMP)

$(STAMP42): pyproject.toml
	test -x $(VENV42)/bin/python || $(PYTHON) -m venv $(VENV42)
	$(VENV42)/bin/python -m pip install --quiet "bpy==$(BPY42)" -e ".[test]"
	touch $(STAMP42)

venv42: $(STAMP42)

demo: $(STAMP)
	$(VENV)/bin/nnvis demo

test: $(STAMP) $(STAMP42)
	$(PY) -m pytest

build: $(STAMP)
	$(VENV)/bin/nnvis build

clean:
	rm -rf dist build out wheels
