"""Checkpoints: round trips, the spec travelling with the weights, refusals with clear messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import rag.encoders as enc
from rag.core.errors import CheckpointError
from rag.encoders.checkpoint import FORMAT
from rag.encoders.model import EchoEncoder
from rag.encoders.registry import REGISTRY_ENV
from rag.encoders.towers.minilm import PACKAGE, weights_sha256
from tests.encoders._entries import tiny_open_clip_entry, write_entry

TEXTS = ["Normal biventricular function.", "Severe aortic stenosis."]


@pytest.fixture(scope="module")
def tiny() -> EchoEncoder:
    torch.manual_seed(0)
    model = enc.create("echo-video-tiny")
    with torch.no_grad():  # move off the initialisation so a fresh build could not pass for a restore
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def clips() -> torch.Tensor:
    rng = np.random.default_rng(0)
    pixels = [rng.integers(0, 256, (16, 112, 112, 1), dtype=np.uint8) for _ in range(2)]
    return enc.batch_clips(pixels, enc.get_spec("echo-video-tiny").preprocessing)


@pytest.fixture(autouse=True)
def _no_user_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REGISTRY_ENV, raising=False)


def _outputs(model: EchoEncoder, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        emb, logits = model.video_features(x)
        return emb, logits, model.encode_text(TEXTS)


def test_round_trip_restores_identical_outputs(tiny: EchoEncoder, clips: torch.Tensor, tmp_path: Path) -> None:
    trainable = [p for p in tiny.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-3)
    tiny.train()
    torch.autograd.backward(tiny.encode_text(TEXTS).sum())
    opt.step()
    opt.zero_grad(set_to_none=True)
    tiny.eval()
    path = tmp_path / "ckpt" / "tiny.pt"
    sha = enc.save_checkpoint(tiny, path, epoch=3, optimizer=opt.state_dict(), extra={"loss": 0.5, "tags": ["a"]})
    assert sha == enc.file_sha256(path)
    assert [p.name for p in path.parent.iterdir()] == ["tiny.pt"]  # no temporary leftovers
    loaded, info = enc.load_checkpoint(path)
    assert info.sha256 == sha and info.epoch == 3 and info.extra == {"loss": 0.5, "tags": ["a"]}
    assert info.optimizer is not None and info.optimizer["param_groups"][0]["lr"] == 1e-3
    assert loaded.spec == tiny.spec and loaded.spec.preprocessing == tiny.spec.preprocessing
    assert not loaded.training
    for a, b in zip(_outputs(tiny, clips), _outputs(loaded, clips), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert torch.equal(loaded.logit_scale, tiny.logit_scale)
    again = enc.create(checkpoint=path)
    assert torch.allclose(_outputs(again, clips)[0], _outputs(tiny, clips)[0], atol=1e-6)
    assert enc.create("echo-video-tiny", checkpoint=str(path)).spec == tiny.spec
    # a fresh AdamW accepts the stored state
    opt2 = torch.optim.AdamW([p for p in loaded.parameters() if p.requires_grad], lr=1e-3)
    opt2.load_state_dict(info.optimizer)


def test_file_is_plain_and_leaves_frozen_minilm_out(tiny: EchoEncoder, tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt"
    enc.save_checkpoint(tiny, path)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == FORMAT and payload["spec"]["name"] == "echo-video-tiny"
    assert not any(k.startswith("text.backbone.") for k in payload["state_dict"])
    assert any(k.startswith("text.proj.") for k in payload["state_dict"])
    (record,) = payload["external"]
    assert record["prefix"] == "text.backbone." and record["package"] == PACKAGE
    assert record["sha256"] == weights_sha256()
    assert path.stat().st_size < 5_000_000


def test_foreign_package_weights_are_refused(tiny: EchoEncoder, tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt"
    enc.save_checkpoint(tiny, path)
    payload = torch.load(path, weights_only=True)
    payload["external"][0]["sha256"] = "0" * 64
    payload["external"][0]["version"] = "9.9.9"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=rf"{PACKAGE}==9\.9\.9"):
        enc.load_checkpoint(path)


def test_unfrozen_minilm_is_saved_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = enc.get_spec("echo-video-tiny").model_dump(mode="json")
    entry["name"] = "tiny-finetune-text"
    entry["text"]["kwargs"]["freeze"] = False
    write_entry(tmp_path / "reg", entry)
    monkeypatch.setenv(REGISTRY_ENV, str(tmp_path / "reg"))
    model = enc.create("tiny-finetune-text")
    with torch.no_grad():
        backbone: Any = model.text.backbone
        backbone[0].auto_model.embeddings.word_embeddings.weight[:5] += 1.0
    path = tmp_path / "ft.pt"
    enc.save_checkpoint(model, path)
    payload = torch.load(path, weights_only=True)
    assert payload["external"] == [] and any(k.startswith("text.backbone.") for k in payload["state_dict"])
    loaded, _ = enc.load_checkpoint(path)
    with torch.no_grad():
        assert torch.allclose(loaded.encode_text(TEXTS), model.encode_text(TEXTS), atol=1e-6)


def test_checkpoint_spec_wins_over_registry(tiny: EchoEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tiny.pt"
    enc.save_checkpoint(tiny, path)
    changed = tiny.spec.model_dump(mode="json")
    changed["preprocessing"]["size"] = 64
    changed["preprocessing"]["frames"] = 8
    write_entry(tmp_path / "reg", changed)
    monkeypatch.setenv(REGISTRY_ENV, str(tmp_path / "reg"))
    assert enc.get_spec("echo-video-tiny").preprocessing.size == 64
    loaded = enc.create("echo-video-tiny", checkpoint=path)
    assert loaded.spec.preprocessing.size == 112 and loaded.spec.preprocessing.frames == 16


def test_checkpoint_of_another_encoder_is_refused(tiny: EchoEncoder, tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt"
    enc.save_checkpoint(tiny, path)
    with pytest.raises(CheckpointError) as err:
        enc.create("echoprime-mvit", checkpoint=path)
    msg = str(err.value)
    assert "holds encoder 'echo-video-tiny', not 'echoprime-mvit'" in msg and str(path) in msg


def test_corrupt_and_foreign_files(tiny: EchoEncoder, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        enc.load_checkpoint(tmp_path / "absent.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match=r"junk\.pt' cannot be read"):
        enc.load_checkpoint(junk)
    good = tmp_path / "good.pt"
    enc.save_checkpoint(tiny, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        enc.load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "other/2", "weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match=r"format 'other/2'.*rag-encoder/1"):
        enc.load_checkpoint(foreign)
    bare = tmp_path / "bare.pt"
    torch.save({"conv.weight": torch.zeros(2)}, bare)
    with pytest.raises(CheckpointError, match="load_echoprime_weights"):
        enc.create(checkpoint=bare)
    with pytest.raises(CheckpointError, match=r"bare state dict.*echoprime-mvit"):
        enc.create("echo-video-tiny", checkpoint=bare)  # only an MViT entry takes a released state dict
    damaged = tmp_path / "damaged.pt"
    payload = torch.load(good, weights_only=True)
    payload["state_dict"]["video.proj.1.weight"] = torch.zeros(3, 3)
    torch.save(payload, damaged)
    with pytest.raises(CheckpointError, match=r"do not fit encoder 'echo-video-tiny'"):
        enc.load_checkpoint(damaged)
    del payload["state_dict"]["video.proj.1.weight"]
    torch.save(payload, damaged)
    with pytest.raises(CheckpointError, match=r"missing keys \['video\.proj\.1\.weight'\]"):
        enc.load_checkpoint(damaged)


def test_unsafe_extra_is_refused_at_save(tiny: EchoEncoder, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"extra\['where'\] is a PosixPath|extra\['where'\] is a WindowsPath"):
        enc.save_checkpoint(tiny, tmp_path / "x.pt", extra={"where": tmp_path})
    assert not (tmp_path / "x.pt").exists()


def test_open_clip_checkpoint_is_self_contained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.encoders.towers.openclip import reference_model
    from tests.encoders._entries import TINY_OPEN_CLIP_CFG

    weights = tmp_path / "w.pt"
    torch.manual_seed(7)
    torch.save(reference_model(TINY_OPEN_CLIP_CFG).state_dict(), weights)
    write_entry(tmp_path / "reg", tiny_open_clip_entry("tiny-clip", pretrained=str(weights)))
    monkeypatch.setenv(REGISTRY_ENV, str(tmp_path / "reg"))
    model = enc.create("tiny-clip")
    path = tmp_path / "clip.pt"
    enc.save_checkpoint(model, path)
    weights.unlink()
    monkeypatch.delenv(REGISTRY_ENV)
    loaded, _ = enc.load_checkpoint(path)
    x = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded.encode_video(x), model.encode_video(x), atol=1e-6)
        assert torch.allclose(loaded.encode_text(TEXTS), model.encode_text(TEXTS), atol=1e-6)
    assert loaded.spec == model.spec
