"""Scalar attributes an index row may carry beside its vector: the ``view`` of a clip and the ``modality``
of what was embedded, so that a search can be restricted to, say, apical four-chamber clips.

``view`` is one of :data:`~rag.vocab.views.COARSE_VIEWS`, or ``""`` for rows without one (report sections,
stills, clips whose view is unknown). ``modality`` is one of :data:`MODALITIES`, one per kind of
embeddings (:data:`MODALITY_OF_SOURCE`), or ``""`` when unknown. Milvus stores both as VARCHAR fields and
filters on them inside the search; FAISS stores neither, so a filter on them is first turned into
allowed IDs (:meth:`rag.index.protocol.SearchFilter.resolved`).

Nothing heavy is imported here: the catalog and the embeddings are read only by :func:`attributes_for`
and :func:`index_attributes` callers that pass them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.core.errors import IndexInputError
from rag.core.lookup import did_you_mean
from rag.vocab.views import COARSE_VIEWS, normalise_view

if TYPE_CHECKING:
    from rag.index.catalog import Catalog

__all__ = [
    "ATTRIBUTES",
    "MODALITIES",
    "MODALITY_OF_SOURCE",
    "attributes_for",
    "check_attributes",
    "check_names",
    "index_attributes",
]

ATTRIBUTES: tuple[str, ...] = ("view", "modality")
"""The attribute fields a row may carry."""
MODALITY_OF_SOURCE: dict[str, str] = {"clips": "echo_video", "images": "still_image", "sections": "report_section"}
"""The modality of each kind of embeddings (``rag embed``): cines, stills (echo frames or other images), report
sections."""
MODALITIES: tuple[str, ...] = tuple(MODALITY_OF_SOURCE.values())
ALLOWED: dict[str, tuple[str, ...]] = {"view": COARSE_VIEWS, "modality": MODALITIES}
MAX_LENGTH = 32
"""VARCHAR length of the attribute fields (the longest name is 25 characters)."""


def _hint(name: object, attribute: str) -> str:
    """`` Did you mean 'x'?`` for a misspelt name (a view label such as 'PLAX' is read as a view), else ``""``."""
    if not isinstance(name, str):
        return ""
    if attribute == "view":
        view = normalise_view(name)
        if view is not None:
            return f" Did you mean {view!r}?"
    return did_you_mean(name, ALLOWED[attribute])


def check_names(values: Iterable[str] | str, attribute: str, *, where: str) -> tuple[str, ...]:
    """``values`` sorted and de-duplicated, each one of the ``attribute``'s names (a lone string is one name).

    Raises:
        IndexInputError: an unknown name; the message names it, the closest name and every allowed one.
    """
    names = (values,) if isinstance(values, str) else tuple(values)
    allowed = ALLOWED[attribute]
    for name in names:
        if not isinstance(name, str) or name not in allowed:
            raise IndexInputError(
                f"Unknown {attribute} {name!r} in {where}.{_hint(name, attribute)} Available: {list(allowed)}"
            )
    return tuple(sorted(set(names)))


def check_attributes(attributes: Mapping[str, object], n: int) -> dict[str, list[str]]:
    """Validate per-row attributes of ``n`` rows before anything is written.

    Args:
        attributes: ``{"view": (n,) str, "modality": (n,) str}`` or a subset; ``""`` means none/unknown.

    Returns: the same keys, each a list of ``n`` names.

    Raises:
        IndexInputError: an unknown key, a value that is not one name per row, or an unknown name.
    """
    if not isinstance(attributes, Mapping):
        raise IndexInputError(
            f"attributes must be a mapping like {{'view': [...], 'modality': [...]}}, got {type(attributes).__name__}"
        )
    unknown = sorted(set(attributes) - set(ATTRIBUTES))
    if unknown:
        raise IndexInputError(f"Unknown attribute(s) {unknown}. Available: {list(ATTRIBUTES)}")
    out: dict[str, list[str]] = {}
    for key, raw in attributes.items():
        arr = np.asarray(raw, dtype=object) if not isinstance(raw, str) else np.asarray([raw], dtype=object)
        if arr.ndim != 1 or arr.size != n:
            raise IndexInputError(
                f"attributes[{key!r}] must hold one name per ID ({n}), got shape {arr.shape}; pass a 1-D array of "
                f"{n} strings ('' where a row has no {key})"
            )
        values = arr.tolist()
        bad = [v for v in values if not isinstance(v, str) or (v and v not in ALLOWED[key])]
        if bad:
            shown = ", ".join(sorted({repr(v) for v in bad})[:5])
            raise IndexInputError(
                f"Unknown {key}(s) {shown} in attributes[{key!r}] ({len(bad)} rows).{_hint(bad[0], key)} "
                f"Available: {list(ALLOWED[key])}, or '' for a row without one"
            )
        out[key] = values
    return out


def attributes_for(
    source: str,
    ids: np.ndarray,
    *,
    catalog: Catalog | None = None,
    view_probs: np.ndarray | None = None,
    view_classes: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """The ``view`` and ``modality`` of each row of an index over ``source`` vectors (``clips``, ``images``,
    ``sections``).

    Args:
        ids: (n,) int64 store row IDs of ``source``.
        catalog: the store's catalog; a clip's view is the one its source declared there.
        view_probs: (n, V) float32 aligned with ``ids``: the view head's probabilities, used for clips that
            declared no view (all-zero rows: no prediction).
        view_classes: the columns of ``view_probs`` (default ``COARSE_VIEWS``).

    Returns: ``{"view": (n,) str, "modality": (n,) str}``; views are ``""`` outside clips and where unknown.

    Raises:
        IndexInputError: an unknown source.
    """
    if source not in MODALITY_OF_SOURCE:
        raise IndexInputError(f"Unknown source {source!r}. Available: {list(MODALITY_OF_SOURCE)}")
    ids = np.asarray(ids, dtype=np.int64)
    views = np.full(ids.size, "", dtype=object)
    if source == "clips" and ids.size and (catalog is not None or view_probs is not None):
        from rag.index.library_tables import clip_view_codes, predicted_view_codes

        predicted = None
        if view_probs is not None:
            predicted = predicted_view_codes(view_probs, tuple(view_classes or COARSE_VIEWS))
        codes = clip_view_codes(catalog, ids, predicted)
        names = np.asarray([*COARSE_VIEWS, ""], dtype=object)
        views = names[np.where(codes >= 0, codes, len(COARSE_VIEWS))]
    return {"view": views, "modality": np.full(ids.size, MODALITY_OF_SOURCE[source], dtype=object)}


def index_attributes(
    source: str,
    ids: np.ndarray,
    *,
    catalog: Catalog | None = None,
    embeddings_dir: Path | str | None = None,
) -> dict[str, np.ndarray]:
    """:func:`attributes_for` with the view probabilities read from a ``rag embed`` folder when it has them.

    Clips the folder lacks (or a folder that is gone) get no predicted view; everything else as
    :func:`attributes_for`.
    """
    folder = Path(embeddings_dir) if embeddings_dir is not None else None
    ids = np.asarray(ids, dtype=np.int64)
    if source != "clips" or folder is None or not (folder / "clips.view_probs.npy").is_file():
        return attributes_for(source, ids, catalog=catalog)
    import json

    from rag.core.arrays import lookup

    emb_ids = np.asarray(np.load(folder / "clips.ids.npy", allow_pickle=False), dtype=np.int64)
    probs = np.asarray(np.load(folder / "clips.view_probs.npy", mmap_mode="r", allow_pickle=False))
    manifest = folder / "manifest.json"
    classes = (json.loads(manifest.read_text()).get("view_classes") if manifest.is_file() else None) or COARSE_VIEWS
    order = np.argsort(emb_ids, kind="stable")
    pos, found = lookup(emb_ids[order], ids)
    aligned = np.zeros((ids.size, probs.shape[1] if probs.ndim == 2 else 0), dtype=np.float32)
    aligned[found] = probs[order[pos[found]]]
    return attributes_for(source, ids, catalog=catalog, view_probs=aligned, view_classes=classes)
