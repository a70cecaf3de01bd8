# The two set-up commands: `make demo` (train, import, render an MP4) and `make test`.
# Both create/reuse .venv and install what they need from PyPI.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.nnvis-installed

.PHONY: demo test build clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[blender,tf,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/nnvis demo

test: $(STAMP)
	$(PY) -m pytest

build: $(STAMP)
	$(VENV)/bin/nnvis build

clean:
	rm -rf dist build out wheels
