"""The files of a saved FAISS index: ``index.faiss`` (+ ``refine.faiss``) and its ID table (``ids.npy`` or,
for HNSW, ``labels.npy``).

Each file is written under a temporary name and renamed, so a reader never sees a partial file and an index
memory-mapped from the same folder keeps working. Reading checks that the files match the kind and dimension
the manifest names and belong together, and says how to recover (rebuild) when they do not.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.errors import VectorIndexError
from rag.index.faiss_params import import_faiss

INDEX_FILE = "index.faiss"
REFINE_FILE = "refine.faiss"
IDS_FILE = "ids.npy"
LABELS_FILE = "labels.npy"
_SIDE_FILES = (INDEX_FILE, REFINE_FILE, IDS_FILE, LABELS_FILE)

log = logging.getLogger(__name__)


def write_index_files(folder: Path, index: Any, refine: Any, table: np.ndarray, *, labels: bool) -> None:
    """Write ``index`` (+ ``refine`` unless None) and the ID ``table`` (``labels.npy`` when ``labels``, else
    ``ids.npy``) to ``folder``, and delete the files of an earlier save that this one does not write."""
    faiss = import_faiss()
    folder.mkdir(parents=True, exist_ok=True)
    written = {INDEX_FILE}
    _write_faiss(faiss, index, folder / INDEX_FILE)
    if refine is not None:
        _write_faiss(faiss, refine, folder / REFINE_FILE)
        written.add(REFINE_FILE)
    name = LABELS_FILE if labels else IDS_FILE
    _write_npy(table, folder / name)
    written.add(name)
    for stale in set(_SIDE_FILES) - written:
        (folder / stale).unlink(missing_ok=True)


def read_index_files(folder: Path, *, kind: str, dim: int, mmap: bool) -> tuple[Any, Any, np.ndarray]:
    """Read what :func:`write_index_files` wrote, memory-mapped (read-only) when ``mmap``.

    Returns:
        the FAISS index, the refine index (None when there is none; never for hnsw) and the ID table.

    Raises:
        VectorIndexError: a file is missing or unreadable, or does not match ``kind`` / ``dim``.
    """
    faiss = import_faiss()
    flags = (faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY) if mmap else 0
    index_file = folder / INDEX_FILE
    index = _read_faiss(faiss, index_file, flags)
    expected = {
        "flat": faiss.IndexIDMap2,
        "hnsw": faiss.IndexHNSWFlat,
        "ivf_flat": faiss.IndexIVFFlat,
        "ivf_pq": faiss.IndexIVFPQ,
    }[kind]
    if not isinstance(index, expected):
        raise VectorIndexError(
            f"{index_file} holds a {type(index).__name__}, not the {kind} index its manifest names; "
            "rebuild it with `rag index build`"
        )
    if int(index.d) != dim:
        raise VectorIndexError(
            f"{index_file} holds {index.d}-d vectors but its manifest says dim={dim}; rebuild it with `rag index build`"
        )
    refine = None
    if kind == "hnsw":
        table = _read_npy(folder / LABELS_FILE)
    else:
        table = _read_npy(folder / IDS_FILE)
        if (folder / REFINE_FILE).is_file():
            refine = _read_faiss(faiss, folder / REFINE_FILE, flags)
    if int(index.ntotal) != table.size:
        raise VectorIndexError(
            f"{folder}: the FAISS index holds {index.ntotal} vectors but its ID table {table.size}; "
            "the files do not belong together, rebuild with `rag index build`"
        )
    return index, refine, table


def index_mtime(folder: Path) -> float:
    """The modification time of ``folder``'s index file (how a memory-mapped index notices it was replaced)."""
    return (folder / INDEX_FILE).stat().st_mtime


def read_into_memory(folder: Path, mtime: float, *, refine: bool) -> tuple[Any, Any]:
    """Read an index memory-mapped (read-only) from ``folder`` into memory, to change it.

    Args:
        mtime: :func:`index_mtime` when the index was mapped; a different one means the files were replaced.
        refine: also read ``refine.faiss``.

    Returns:
        the index, and the refine index (None when not asked for or not there).
    """
    index_file = folder / INDEX_FILE
    if not index_file.is_file() or index_file.stat().st_mtime != mtime:
        raise VectorIndexError(
            f"{index_file} changed since this index was memory-mapped from it; load the index again to change it"
        )
    log.info("reading %s into memory to change it (it was memory-mapped, read-only)", folder)
    faiss = import_faiss()
    index = faiss.read_index(str(index_file))
    if (folder / REFINE_FILE).is_file() and refine:
        return index, faiss.read_index(str(folder / REFINE_FILE))
    return index, None


def _write_faiss(faiss: Any, index: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        faiss.write_index(index, str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_npy(arr: np.ndarray, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            np.save(f, np.ascontiguousarray(arr, dtype=np.int64), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_faiss(faiss: Any, path: Path, flags: int) -> Any:
    if not path.is_file():
        raise VectorIndexError(f"Index file {path} is missing; rebuild the index with `rag index build`")
    try:
        return faiss.read_index(str(path), flags)
    except RuntimeError as e:
        raise VectorIndexError(
            f"Index file {path} cannot be read by FAISS ({e}); rebuild it with `rag index build`"
        ) from e


def _read_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise VectorIndexError(f"ID table {path} is missing; rebuild the index with `rag index build`")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise VectorIndexError(f"ID table {path} cannot be read ({e}); rebuild the index with `rag index build`") from e
    if arr.ndim != 1 or arr.dtype != np.int64:
        raise VectorIndexError(f"ID table {path} must be a 1-D int64 array, got {arr.dtype} {arr.shape}")
    return np.array(arr)
