# One command to set up and run the main job, one to set up and run the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SAMPLE ?= ../shared/data/dicom
WORKSPACE ?= workspace

.PHONY: setup demo test lint unit integration bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	@test -d "$(SAMPLE)" || { echo "sample folder '$(SAMPLE)' not found: run 'make demo SAMPLE=<folder of DICOM/MP4/PNG/report files>'"; exit 2; }
	RAG_HOME=$(WORKSPACE) $(VENV)/bin/rag ingest "$(SAMPLE)"
	RAG_HOME=$(WORKSPACE) $(VENV)/bin/rag store info

lint: setup
	$(PY) -m ruff check rag tests bench
	$(PY) -m ruff format --check rag tests bench
	$(PY) -m mypy rag

unit: setup
	$(PY) -m pytest -m "not integration"

integration: setup
	$(PY) -m pytest -m integration

test: lint
	$(PY) -m pytest

bench: setup
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) $(WORKSPACE) .pytest_cache .mypy_cache .ruff_cache
