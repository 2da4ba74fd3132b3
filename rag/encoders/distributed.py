"""Archive-scale embedding on Ray: decoding as CPU tasks, the encoder as an actor pool.

``embed_media_ray(items, checkpoint, parts_dir, ...)`` embeds ``(row id, clip file)`` items with a
Ray Data pipeline: ``map_batches(decode)`` reads and preprocesses clips as stateless CPU tasks, then
``map_batches(EncoderActor, concurrency=N, num_gpus=G, batch_size=B)`` runs the encoder in N actors
that each load the checkpoint once. Each batch's vectors are written by the actor as one part file
named by the batch's first and last row IDs and a digest of its IDs, by atomic rename: a batch Ray
retries (a worker killed mid-run) rewrites the same file, so no row is written twice, and the
driver reads the parts back keyed by row ID. ``address`` joins a running cluster (``ray start --head``
on one node, ``ray start --address=HEAD:6379`` on the others); without it a local Ray starts with
``workers`` CPUs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.errors import RagError

__all__ = ["EncoderActor", "RayUnavailable", "decode_batch", "embed_media_ray", "ray_engine", "read_parts"]


class RayUnavailable(RagError):
    """Ray is not installed or the cluster cannot be reached."""


def decode_batch(batch: dict[str, np.ndarray], preprocessing: dict[str, Any]) -> dict[str, np.ndarray]:
    """Read and preprocess the clips of one batch (a CPU task): ``pixels`` (B, 3, T, S, S) float32."""
    from rag.core.clipfile import read_clip
    from rag.encoders.preprocess import batch_clips
    from rag.encoders.spec import Preprocessing

    pre = Preprocessing.model_validate(preprocessing)
    clips = [read_clip(Path(str(p)))[0] for p in batch["path"]]
    return {"id": np.asarray(batch["id"], np.int64), "pixels": batch_clips(clips, pre).numpy()}


class EncoderActor:
    """One encoder per actor: loads the checkpoint once, embeds batches, writes each batch's part file."""

    def __init__(self, checkpoint: str, parts_dir: str, device: str = "cpu", crash_once: str | None = None) -> None:
        from rag.encoders.checkpoint import load_checkpoint

        self.model, _ = load_checkpoint(Path(checkpoint), device=device)
        self.model.eval()
        self.parts = Path(parts_dir)
        self.parts.mkdir(parents=True, exist_ok=True)
        self.crash_once = Path(crash_once) if crash_once else None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        ids = np.asarray(batch["id"], np.int64)
        if self.crash_once is not None and not self.crash_once.exists():
            self.crash_once.touch()  # resilience drills: the first actor to get here dies mid-batch, once
            os._exit(1)
        with torch.no_grad():
            emb, logits = self.model.video_features(torch.from_numpy(np.asarray(batch["pixels"])).to(self.model.device))
        vectors = emb.float().cpu().numpy()
        probs = torch.softmax(logits.float(), dim=1).cpu().numpy()
        digest = hashlib.sha256(ids.tobytes()).hexdigest()[:16]
        name = f"{int(ids.min())}-{int(ids.max())}-{digest}.npz"
        tmp = self.parts / f".{name}.{os.getpid()}.tmp"
        with tmp.open("wb") as f:
            np.savez(f, ids=ids, vectors=vectors, view_probs=probs)
        tmp.replace(self.parts / name)  # the same batch retried lands on the same file
        return {"id": ids, "done": np.ones(len(ids), np.int8)}


def read_parts(parts_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every part's rows, one per row ID (ids ascending), as (ids, vectors, view_probs)."""
    rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for part in sorted(parts_dir.glob("*.npz")):
        with np.load(part) as z:
            for i, v, p in zip(z["ids"], z["vectors"], z["view_probs"], strict=True):
                rows[int(i)] = (v, p)
    ids = np.array(sorted(rows), dtype=np.int64)
    if not len(ids):
        return ids, np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return ids, np.stack([rows[i][0] for i in ids]), np.stack([rows[i][1] for i in ids])


def embed_media_ray(
    items: Sequence[tuple[int, Path]],
    checkpoint: Path,
    parts_dir: Path,
    *,
    preprocessing: dict[str, Any],
    address: str | None = None,
    workers: int = 2,
    batch_size: int = 16,
    gpus_per_worker: float = 0.0,
    crash_once: Path | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embed ``items`` on Ray; returns (ids, vectors, view_probs) for every item, each once.

    Parts already in ``parts_dir`` (an earlier, interrupted run of the same checkpoint) are kept and
    their rows not embedded again. ``crash_once`` (a marker file) makes the first actor that receives
    a batch exit mid-batch, once: the drill that shows a killed worker loses nothing and repeats nothing.

    Raises:
        RayUnavailable: Ray is missing or ``address`` does not answer.
    """
    try:
        import ray
    except ImportError as e:
        raise RayUnavailable("the Ray engine needs Ray: pip install 'echo-rag[ray]' (ray[data])") from e
    done, _, _ = read_parts(parts_dir) if parts_dir.is_dir() else (np.zeros(0, np.int64), None, None)
    todo = [(i, p) for i, p in items if i not in set(done.tolist())]
    if todo:
        started = False
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, log_to_driver=False)
                else:
                    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
                started = True
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise RayUnavailable(f"cannot reach the Ray cluster at {address or 'local'}: {e}") from e
        try:
            source: Any = ray.data.from_items([{"id": int(i), "path": str(p)} for i, p in todo])
            decoded: Any = source.map_batches(
                decode_batch, fn_kwargs={"preprocessing": preprocessing}, batch_size=batch_size, num_cpus=0.5
            )
            embedded: Any = decoded.map_batches(
                EncoderActor,
                fn_constructor_kwargs={
                    "checkpoint": str(checkpoint),
                    "parts_dir": str(parts_dir),
                    "device": "cuda" if gpus_per_worker else "cpu",
                    "crash_once": str(crash_once) if crash_once else None,
                },
                batch_size=batch_size,
                compute=ray.data.ActorPoolStrategy(size=workers),  # restarts a dead actor, retries its batch
                num_gpus=gpus_per_worker,
                num_cpus=0.5,  # half a CPU each: the decode tasks must fit beside a full actor pool
            )
            embedded.materialize()
        finally:
            if started:
                ray.shutdown()
    return read_parts(parts_dir)


def ray_engine(
    checkpoint: Path,
    folder: Path,
    preprocessing: dict[str, Any],
    **settings: Any,
) -> Callable[[str, list[tuple[int, Path]]], tuple[np.ndarray, np.ndarray]]:
    """``embed_store``'s ``media_engine`` on Ray: parts under ``<folder>/ray-parts/<kind>/`` (kept, so an
    interrupted run resumes; the caller removes them once the embeddings are saved), vectors returned
    in the order asked."""

    def run(kind: str, items: list[tuple[int, Path]]) -> tuple[np.ndarray, np.ndarray]:
        parts = folder / "ray-parts" / kind
        ids, vectors, probs = embed_media_ray(items, checkpoint, parts, preprocessing=preprocessing, **settings)
        row = {int(i): n for n, i in enumerate(ids)}
        missing = [i for i, _ in items if i not in row]
        if missing:
            raise RagError(f"the Ray run returned no vector for {len(missing)} {kind} (e.g. row {missing[0]})")
        order = [row[i] for i, _ in items]
        return vectors[order], probs[order]

    return run
