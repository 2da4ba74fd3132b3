# One command to set up and run the main job, one to set up and run the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SAMPLE ?= ../shared/data/dicom
WORKSPACE ?= workspace

.PHONY: setup demo ingest-sample test lint unit integration bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

# The main job. The archive and the checkpoint are reused when present.
ARCHIVE := $(WORKSPACE)/archive
CKPT := $(WORKSPACE)/checkpoints/last.pt
export RAG_INGEST__SIZE ?= 112

$(ARCHIVE)/truth/studies.csv: | setup
	$(VENV)/bin/rag simulate --out $(ARCHIVE) --patients 12 --seed 0 --workers 2 --preview

$(WORKSPACE)/rag.sqlite3: $(ARCHIVE)/truth/studies.csv
	RAG_HOME=$(WORKSPACE) $(VENV)/bin/rag ingest $(ARCHIVE)/patients --workers 2

$(CKPT): $(WORKSPACE)/rag.sqlite3
	RAG_HOME=$(WORKSPACE) $(VENV)/bin/rag train --out $(WORKSPACE)/checkpoints --epochs 4

demo: setup $(CKPT)
	RAG_HOME=$(WORKSPACE) $(VENV)/bin/rag embed --checkpoint $(CKPT)
	RAG_HOME=$(WORKSPACE) $(VENV)/bin/rag store info

ingest-sample: setup
	@test -d "$(SAMPLE)" || { echo "sample folder '$(SAMPLE)' not found: make ingest-sample SAMPLE=<folder>"; exit 2; }
	RAG_HOME=$(WORKSPACE) $(VENV)/bin/rag ingest "$(SAMPLE)"

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
	$(PY) bench/simulate.py
	$(PY) bench/embed.py

clean:
	rm -rf $(VENV) $(WORKSPACE) .pytest_cache .mypy_cache .ruff_cache
