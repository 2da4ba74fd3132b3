"""``rag embed``: embed every stored clip, still and report section with one encoder checkpoint.

Vectors are written under ``<workspace>/embeddings/<encoder>@<sha256[:12]>/`` — one folder per
encoder and checkpoint, so vectors of different encoders can never be mixed — as ``.npy`` arrays
plus a ``manifest.json`` naming the encoder, the checkpoint's sha256, the dimension, the
normalisation and the preprocessing. Re-running embeds only what is new and drops what the store no
longer holds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from rag.core.clipfile import read_clip, write_atomic
from rag.core.errors import RagError
from rag.store import Clip, ReportSection, StillImage, Store

if TYPE_CHECKING:
    from rag.encoders.model import EchoEncoder

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
KINDS = ("clips", "images", "sections")


class EmbeddingMismatchError(RagError):
    """Stored vectors were made by another encoder or checkpoint than the one in use."""


@dataclass(frozen=True)
class EmbeddingSet:
    """Vectors of one kind: ``ids`` (n,) int64 store row IDs, ``vectors`` (n, dim) float32 L2-normalised."""

    kind: str
    ids: np.ndarray
    vectors: np.ndarray
    extra: dict[str, np.ndarray]


def embeddings_dir(root: Path, encoder: str, sha256: str) -> Path:
    return root / f"{encoder}@{sha256[:12]}"


def _save(folder: Path, kind: str, ids: np.ndarray, vectors: np.ndarray, extra: dict[str, np.ndarray]) -> None:
    import io

    for name, arr in {"ids": ids, "vectors": vectors, **extra}.items():
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        write_atomic(folder / f"{kind}.{name}.npy", buf.getvalue())


def load_embeddings(folder: Path, kind: str, *, encoder: str | None = None, sha256: str | None = None) -> EmbeddingSet:
    """Load one kind of vectors, checking the manifest against the expected encoder and checkpoint.

    Raises:
        EmbeddingMismatchError: the folder holds another encoder's or checkpoint's vectors.
    """
    manifest = json.loads((folder / MANIFEST).read_text())
    if encoder is not None and manifest["encoder"] != encoder:
        raise EmbeddingMismatchError(
            f"{folder} holds vectors of encoder '{manifest['encoder']}', not '{encoder}'; run `rag embed` with it"
        )
    if sha256 is not None and manifest["checkpoint_sha256"] != sha256:
        raise EmbeddingMismatchError(
            f"{folder} holds vectors of checkpoint {manifest['checkpoint_sha256'][:12]}, not {sha256[:12]}; "
            "run `rag embed` with the checkpoint in use"
        )
    ids = np.load(folder / f"{kind}.ids.npy")
    vectors = np.load(folder / f"{kind}.vectors.npy")
    extra = {
        p.name.split(".")[1]: np.load(p)
        for p in folder.glob(f"{kind}.*.npy")
        if p.name.split(".")[1] not in ("ids", "vectors")
    }
    return EmbeddingSet(kind, ids, vectors, extra)


def _batched(seq: Sequence[Any], n: int) -> list[Sequence[Any]]:
    return [seq[i : i + n] for i in range(0, len(seq), n)]


def _embed_media(
    model: EchoEncoder, paths: Sequence[Path], batch_size: int, tick: Callable[[int], None]
) -> tuple[np.ndarray, np.ndarray]:
    import torch

    from rag.encoders.preprocess import batch_clips

    vecs, probs = [], []
    with torch.no_grad():
        for chunk in _batched(list(paths), batch_size):
            video = batch_clips([read_clip(p)[0] for p in chunk], model.spec.preprocessing).to(model.device)
            emb, logits = model.video_features(video)
            vecs.append(emb.float().cpu().numpy())
            probs.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
            tick(len(chunk))
    dim = model.spec.embed_dim
    n_views = len(model.spec.view_classes)
    return (
        np.concatenate(vecs) if vecs else np.zeros((0, dim), np.float32),
        np.concatenate(probs) if probs else np.zeros((0, n_views), np.float32),
    )


def embed_store(
    store: Store,
    media_dir: Path,
    root: Path,
    model: EchoEncoder,
    checkpoint_sha256: str,
    *,
    batch_size: int = 32,
    progress: bool = False,
    media_engine: Callable[[str, list[tuple[int, Path]]], tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, int]:
    """Embed what the store holds and the folder lacks; returns the count of vectors per kind.

    ``media_engine(kind, [(row id, file)])`` embeds clips and stills elsewhere (the Ray engine,
    :mod:`rag.encoders.distributed`) and returns (vectors, view_probs) in the order given; report
    sections are always embedded here.
    """
    import torch
    from tqdm import tqdm

    folder = embeddings_dir(root, model.spec.name, checkpoint_sha256)
    folder.mkdir(parents=True, exist_ok=True)
    model.eval()
    with store.session() as s:
        clips = s.execute(select(Clip.id, Clip.path).order_by(Clip.id)).all()
        images = s.execute(select(StillImage.id, StillImage.path).order_by(StillImage.id)).all()
        sections = s.execute(select(ReportSection.id, ReportSection.text).order_by(ReportSection.id)).all()
    wanted: dict[str, list[tuple[int, Any]]] = {
        "clips": [(i, media_dir / p) for i, p in clips],
        "images": [(i, media_dir / p) for i, p in images],
        "sections": [(i, t) for i, t in sections],
    }
    counts: dict[str, int] = {}
    total = sum(len(v) for v in wanted.values())
    with tqdm(total=total, desc="embed", unit="item", disable=not progress) as bar:
        for kind in KINDS:
            have: EmbeddingSet | None = None
            if (folder / f"{kind}.ids.npy").is_file():
                have = load_embeddings(folder, kind)
            known = {int(i): n for n, i in enumerate(have.ids)} if have is not None else {}
            todo = [(i, x) for i, x in wanted[kind] if i not in known]
            bar.update(len(wanted[kind]) - len(todo))
            extra_new: dict[str, np.ndarray] = {}
            if kind == "sections":
                vecs = []
                with torch.no_grad():
                    for chunk in _batched([t for _, t in todo], batch_size):
                        vecs.append(model.encode_text(list(chunk)).float().cpu().numpy())
                        bar.update(len(chunk))
                new = np.concatenate(vecs) if vecs else np.zeros((0, model.spec.embed_dim), np.float32)
            elif media_engine is not None and todo:
                new, probs = media_engine(kind, list(todo))
                bar.update(len(todo))
                extra_new["view_probs"] = probs
            else:
                new, probs = _embed_media(model, [p for _, p in todo], batch_size, bar.update)
                extra_new["view_probs"] = probs
            ids_new = np.array([i for i, _ in todo], dtype=np.int64)
            keep_ids = {i for i, _ in wanted[kind]}
            if have is not None:
                keep = np.array([int(i) in keep_ids for i in have.ids], dtype=bool)
                ids = np.concatenate([have.ids[keep], ids_new])
                vectors = np.concatenate([have.vectors[keep], new.astype(np.float32)])
                extra = {k: np.concatenate([have.extra[k][keep], v]) for k, v in extra_new.items()}
            else:
                ids, vectors, extra = ids_new, new.astype(np.float32), extra_new
            order = np.argsort(ids, kind="stable")
            _save(folder, kind, ids[order], vectors[order], {k: v[order] for k, v in extra.items()})
            counts[kind] = len(ids)
    manifest = {
        "encoder": model.spec.name,
        "checkpoint_sha256": checkpoint_sha256,
        "dim": model.spec.embed_dim,
        "metric": "inner_product",
        "normalisation": "l2",
        "preprocessing": model.spec.preprocessing.model_dump(mode="json"),
        "view_classes": list(model.spec.view_classes),
        "counts": counts,
    }
    write_atomic(folder / MANIFEST, json.dumps(manifest, indent=2).encode())
    log.info("embeddings written: %s", counts)
    return counts
