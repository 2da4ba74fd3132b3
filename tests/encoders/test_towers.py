"""Towers, view head and preprocessing: shapes, normalisation, reference equality, offline behaviour."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rag.encoders as enc
from rag.core.errors import CheckpointError, EncoderError, EncoderInputError, WeightsUnavailableError
from rag.encoders.model import EchoEncoder
from rag.encoders.registry import REGISTRY_ENV
from rag.encoders.towers.minilm import MiniLMTextTower, minilm_dir
from rag.encoders.towers.mvit import MViTVideoTower
from rag.encoders.towers.openclip import reference_model
from tests.encoders._entries import TINY_OPEN_CLIP_CFG, fake_hub_cache, tiny_open_clip_entry, write_entry

TEXTS = ["Normal left ventricular size and systolic function.", "Moderate mitral regurgitation.", "IVC dilated"]


@pytest.fixture(scope="module")
def tiny() -> EchoEncoder:
    torch.manual_seed(0)
    return enc.create("echo-video-tiny")


@pytest.fixture
def user_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "registry"
    folder.mkdir()
    monkeypatch.setenv(REGISTRY_ENV, str(folder))
    yield folder


def _clips(n: int, frames: int, side: int, channels: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (frames, side, side, channels), dtype=np.uint8) for _ in range(n)]


# --- preprocessing ----------------------------------------------------------------------------


def test_clip_to_tensor_grayscale_rgb_resize_and_loop() -> None:
    pre = enc.get_spec("echo-video-tiny").preprocessing
    gray = _clips(1, 16, 112, 1)[0]
    x = enc.clip_to_tensor(gray, pre)
    assert x.shape == (3, 16, 112, 112) and x.dtype == torch.float32
    raw = torch.from_numpy(gray[..., 0]).float()
    for c in range(3):
        assert torch.allclose(x[c], (raw - pre.mean[c]) / pre.std[c])
    rgb = _clips(1, 40, 64, 3)[0]
    y = enc.clip_to_tensor(rgb, pre)
    assert y.shape == (3, 16, 112, 112)  # resized 64 -> 112, first 16 of 40 frames
    flat = np.full((16, 224, 224, 3), 29, np.uint8)
    z = enc.clip_to_tensor(flat, pre)  # downsizing a flat image keeps it flat
    assert z.shape == (3, 16, 112, 112)
    assert torch.allclose(z[0], torch.full_like(z[0], (29 - pre.mean[0]) / pre.std[0]), atol=1e-5)
    short = _clips(1, 3, 112, 3)[0]
    looped = enc.clip_to_tensor(short, pre)
    assert torch.equal(looped[:, 0], looped[:, 3]) and torch.equal(looped[:, 2], looped[:, 14])
    batch = enc.batch_clips([gray, rgb, short], pre)
    assert batch.shape == (3, 3, 16, 112, 112)
    still = enc.image_to_tensor(rgb[0], pre)
    assert still.shape == (3, 1, 112, 112)
    assert enc.batch_images([rgb[0], gray[0, ..., 0]], pre).shape == (2, 3, 1, 112, 112)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 32, 32, 3), np.float32),
        np.zeros((32, 32, 3), np.uint8),
        np.zeros((4, 32, 32, 2), np.uint8),
        np.zeros((4, 32, 48, 3), np.uint8),
        np.zeros((0, 32, 32, 3), np.uint8),
    ],
)
def test_clip_to_tensor_refuses_bad_arrays(bad: np.ndarray) -> None:
    with pytest.raises(EncoderInputError):
        enc.clip_to_tensor(bad, enc.get_spec("echo-video-tiny").preprocessing)


# --- the tiny encoder ---------------------------------------------------------------------------


def test_tiny_encoder_outputs(tiny: EchoEncoder) -> None:
    x = enc.batch_clips(_clips(2, 16, 112, 1), tiny.spec.preprocessing)
    with torch.no_grad():
        emb, logits = tiny.video_features(x)
        probs = tiny.view_probabilities(x)
        text = tiny.encode_text(TEXTS)
        still = tiny.encode_image(x[:, :, 0])
        few = tiny.encode_video(x[:, :, :5])
    assert emb.shape == (2, 256) and logits.shape == (2, 11) and text.shape == (3, 256)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(text.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(still.norm(dim=-1), torch.ones(2), atol=1e-5) and few.shape == (2, 256)
    assert probs.shape == (2, len(enc.VIEW_CLASSES)) and torch.allclose(probs.sum(dim=-1), torch.ones(2))
    assert tiny.device == torch.device("cpu") and not tiny.training
    assert tiny.encode_text([]).shape == (0, 256)
    assert isinstance(tiny, enc.Encoder)


def test_grid_encoder_keeps_where_things_are() -> None:
    torch.manual_seed(0)
    grid = enc.create("echo-video-grid")
    pre = grid.spec.preprocessing
    assert (pre.frames, pre.size, grid.spec.embed_dim) == (16, 64, 128)
    x = enc.batch_clips(_clips(3, 16, 112, 3), pre)
    with torch.no_grad():
        emb, logits = grid.video_features(x)
        still = grid.encode_image(x[:, :, 0])
        # the same bright patch in another corner of every frame: a global average would not tell them apart
        left = torch.full((1, 3, 16, 64, 64), -0.5)
        right = left.clone()
        left[..., 4:20, 4:20] = 3.0
        right[..., 44:60, 44:60] = 3.0
        apart = grid.encode_video(torch.cat([left, right]))
    assert emb.shape == (3, 128) and logits.shape == (3, 11) and still.shape == (3, 128)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert float(apart[0] @ apart[1]) < 0.99
    with pytest.raises(EncoderInputError, match=r"\(B, 3, 16, 64, 64\)"):
        grid.encode_video(torch.zeros(1, 3, 16, 112, 112))


def test_tiny_encoder_input_checks(tiny: EchoEncoder) -> None:
    with pytest.raises(EncoderInputError, match=r"\(B, 3, 16, 112, 112\).*batch_clips"):
        tiny.encode_video(torch.zeros(1, 3, 16, 64, 64))
    with pytest.raises(EncoderInputError):
        tiny.encode_video(torch.zeros(1, 3, 17, 112, 112))
    with pytest.raises(EncoderInputError, match="one string"):
        tiny.encode_text("a single string")


def test_minilm_base_equals_sentence_transformers(tiny: EchoEncoder) -> None:
    from sentence_transformers import SentenceTransformer

    text = tiny.text
    assert isinstance(text, MiniLMTextTower)
    with torch.no_grad():
        base = text.sentence_embeddings(tiny.tokenize(TEXTS))
    reference = SentenceTransformer(str(minilm_dir()), device="cpu").encode(TEXTS, convert_to_tensor=True)
    assert base.shape == (3, 384)
    assert torch.allclose(base, reference.cpu(), atol=1e-5)


def test_minilm_frozen_backbone_trainable_projection(tiny: EchoEncoder) -> None:
    text = tiny.text
    assert isinstance(text, MiniLMTextTower) and text.frozen
    assert not any(p.requires_grad for p in text.backbone.parameters())
    assert all(p.requires_grad for p in text.proj.parameters())
    tiny.train()
    try:
        assert not text.backbone.training and text.proj.training
        out = tiny.encode_text(TEXTS[:2])
        torch.autograd.backward(out.sum())
        proj = text.proj
        assert isinstance(proj, torch.nn.Linear) and proj.weight.grad is not None
    finally:
        tiny.zero_grad(set_to_none=True)
        tiny.eval()


# --- every shipped entry builds -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["echo-video-grid", "echo-video-tiny", "echoprime-mvit", "echoclip"])
def test_each_shipped_entry_builds(name: str) -> None:
    model = enc.create(name)
    counts = model.parameter_counts()
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert model.spec.name == name and model.view_head.out_features == 11
    assert model.spec.embed_dim == enc.get_spec(name).embed_dim


# --- echoprime-mvit -------------------------------------------------------------------------------


def _reference_mvit() -> Any:
    from torchvision.models.video import mvit_v2_s

    ref = mvit_v2_s()
    ref.head[-1] = torch.nn.Linear(768, 512)
    return ref.eval()


def test_echoprime_tower_matches_torchvision_and_loads_weights(tmp_path: Path) -> None:
    model = enc.create("echoprime-mvit")
    torch.manual_seed(1)
    ref = _reference_mvit()
    assert isinstance(model.video, MViTVideoTower)
    tower = model.video.backbone
    ours = {k: tuple(v.shape) for k, v in tower.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert ours == theirs
    plain, wrapped = tmp_path / "echo_prime_encoder.pt", tmp_path / "wrapped.pt"
    torch.save(ref.state_dict(), plain)
    torch.save({f"module.{k}": v for k, v in ref.state_dict().items()}, wrapped)
    enc.load_echoprime_weights(model, wrapped)
    for k, v in ref.state_dict().items():
        assert torch.equal(tower.state_dict()[k], v), k
    model2 = enc.create("echoprime-mvit", checkpoint=plain)  # the released file, as create() takes it
    assert isinstance(model2.video, MViTVideoTower)
    for k, v in ref.state_dict().items():
        assert torch.equal(model2.video.backbone.state_dict()[k], v), k
    x = enc.batch_clips(_clips(1, 16, 224, 3), model.spec.preprocessing)
    with torch.no_grad():
        expected = F.normalize(ref(x), dim=-1)
        got = model2.encode_video(x)
    assert torch.allclose(got, expected, atol=1e-5)


def test_echoprime_loader_names_bad_keys(tmp_path: Path) -> None:
    model = enc.create("echoprime-mvit")
    assert isinstance(model.video, MViTVideoTower)
    sd = model.video.backbone.state_dict()
    bad = {k: v for k, v in sd.items() if not k.startswith("blocks.3.")}
    bad["extra.weight"] = torch.zeros(1)
    bad["head.1.weight"] = torch.zeros(400, 768)
    path = tmp_path / "bad.pt"
    torch.save(bad, path)
    with pytest.raises(CheckpointError) as err:
        enc.load_echoprime_weights(model, path)
    msg = str(err.value)
    assert "missing keys: blocks.3." in msg and "unexpected keys: extra.weight" in msg
    assert "head.1.weight (400, 768)" in msg and "echo_prime_encoder.pt" in msg
    with pytest.raises(CheckpointError, match="does not exist"):
        enc.load_echoprime_weights(model, tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot be read"):
        enc.load_echoprime_weights(model, tmp_path / "junk.pt")
    with pytest.raises(EncoderError, match="echoprime-mvit"):
        enc.load_echoprime_weights(torch.nn.Linear(2, 2), path)


# --- open_clip towers -----------------------------------------------------------------------------


def _save_reference(path: Path, seed: int = 3) -> Any:
    torch.manual_seed(seed)
    ref = reference_model(TINY_OPEN_CLIP_CFG).eval()
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(ref.state_dict(), str(path))
    else:
        torch.save(ref.state_dict(), path)
    return ref


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_open_clip_frames_match_reference_weights(user_registry: Path, tmp_path: Path, suffix: str) -> None:
    import open_clip

    weights = tmp_path / f"tiny{suffix}"
    ref = _save_reference(weights)
    write_entry(user_registry, tiny_open_clip_entry("tiny-clip", pretrained=str(weights)))
    model = enc.create("tiny-clip")
    assert model.spec.video.kwargs["pretrained"] is None  # weights now live in the model / its checkpoints
    assert model.spec.video.kwargs["model"]["embed_dim"] == 32
    assert model.spec.preprocessing.tokenizer == "open_clip:simple"
    x = enc.batch_clips(_clips(2, 4, 64, 3), model.spec.preprocessing)
    tok = open_clip.SimpleTokenizer(context_length=16)
    with torch.no_grad():
        frames = ref.encode_image(x.transpose(1, 2).reshape(8, 3, 64, 64))
        expected_video = F.normalize(F.normalize(frames, dim=-1).view(2, 4, -1).mean(1), dim=-1)
        expected_still = F.normalize(ref.encode_image(x[:, :, 0]), dim=-1)
        expected_text = F.normalize(ref.encode_text(tok(TEXTS)), dim=-1)
        assert torch.allclose(model.encode_video(x), expected_video, atol=1e-5)
        assert torch.allclose(model.encode_image(x[:, :, 0]), expected_still, atol=1e-5)
        assert torch.allclose(model.encode_text(TEXTS), expected_text, atol=1e-5)
        assert model.view_probabilities(x).shape == (2, 11)
    assert torch.allclose(model.logit_scale, ref.logit_scale)


def test_open_clip_config_from_json_file_and_builtin_name(user_registry: Path, tmp_path: Path) -> None:
    import json

    cfg_path = tmp_path / "rag-tiny-vit.json"
    cfg_path.write_text(json.dumps(TINY_OPEN_CLIP_CFG))
    write_entry(user_registry, tiny_open_clip_entry("from-json", model=str(cfg_path)))
    model = enc.create("from-json")
    assert model.spec.video.kwargs["model"] == TINY_OPEN_CLIP_CFG
    with pytest.raises(EncoderError, match=r"Unknown open_clip model 'ViT-B-23'.*ViT-B-32"):
        write_entry(user_registry, tiny_open_clip_entry("typo", model="ViT-B-23"))
        enc.create("typo")


def test_open_clip_adopts_model_values_with_warning(user_registry: Path, caplog: pytest.LogCaptureFixture) -> None:
    entry = tiny_open_clip_entry("mis-sized")
    entry["preprocessing"]["size"] = 96
    entry["embed_dim"] = 64
    write_entry(user_registry, entry)
    model = enc.create("mis-sized")
    assert model.spec.preprocessing.size == 64 and model.spec.embed_dim == 32
    assert "preprocessing.size 96 replaced by 64" in caplog.text


@pytest.mark.parametrize(
    ("pretrained", "repo"),
    [
        ("echoclip", "mkaichristensen/echo-clip"),
        ("biomedclip", "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"),
        ("hf-hub:mkaichristensen/echo-clip-r", "mkaichristensen/echo-clip-r"),
    ],
)
def test_hub_weights_offline_fail_fast(user_registry: Path, tmp_path: Path, pretrained: str, repo: str) -> None:
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    entry = tiny_open_clip_entry("hub-local", model=None, pretrained=pretrained, cache_dir=str(cache))
    write_entry(user_registry, entry)
    with pytest.raises(WeightsUnavailableError) as err:
        enc.create("hub-local")
    msg = str(err.value)
    assert repo in msg and "open_clip_config.json" in msg and str(cache) in msg
    assert f"hf download {repo}" in msg and "nothing is downloaded" in msg


def test_open_clip_tag_offline_fails_naming_the_file(
    user_registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    entry = tiny_open_clip_entry("b32-openai", model="ViT-B-32", pretrained="openai")
    write_entry(user_registry, entry)
    import open_clip  # noqa: F401  (the import itself is not what is timed)

    with pytest.raises(WeightsUnavailableError) as err:
        enc.create("b32-openai")
    msg = str(err.value)
    assert "timm/vit_base_patch32_clip_224.openai" in msg and str(tmp_path / "hub") in msg
    assert "openaipublic" in msg and os.path.join(str(tmp_path), ".cache", "clip") in msg
    write_entry(user_registry, tiny_open_clip_entry("bad-tag", model="ViT-B-32", pretrained="laion9b"))
    with pytest.raises(EncoderError, match="neither a file nor an open_clip tag"):
        enc.create("bad-tag")


def test_hub_weights_load_from_local_cache(user_registry: Path, tmp_path: Path) -> None:
    import json

    weights = tmp_path / "w.safetensors"
    ref = _save_reference(weights, seed=5)
    config = {"model_cfg": TINY_OPEN_CLIP_CFG, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25] * 3}}
    cache = tmp_path / "hub"
    fake_hub_cache(
        cache,
        "someone/tiny-echo-clip",
        {"open_clip_config.json": json.dumps(config).encode(), "open_clip_model.safetensors": weights.read_bytes()},
    )
    entry = tiny_open_clip_entry("hub-tiny", model=None, pretrained="hf-hub:someone/tiny-echo-clip",
                                 cache_dir=str(cache))  # fmt: skip
    write_entry(user_registry, entry)
    model = enc.create("hub-tiny")
    assert model.spec.preprocessing.mean == (127.5, 127.5, 127.5)  # the weights' statistics win
    assert model.spec.video.kwargs["origin"] == "hf-hub:someone/tiny-echo-clip"
    x = torch.randn(2, 3, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model.encode_image(x), F.normalize(ref.encode_image(x[:, :, 0]), dim=-1), atol=1e-5)


def test_device_argument_is_checked() -> None:
    with pytest.raises(EncoderError, match="not a torch device"):
        enc.create("echo-video-tiny", device="gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(EncoderError, match="CUDA is not available"):
            enc.create("echo-video-tiny", device="cuda")
