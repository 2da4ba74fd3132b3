"""Finding what to ingest under the given paths, and what kind of source each file is."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".m4v", ".mkv", ".webm", ".wmv", ".mpg", ".mpeg"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
REPORT_SUFFIXES = frozenset({".txt", ".md", ".xml"})
IGNORED_NAMES = frozenset({"DICOMDIR", "LICENSE", "README", "Thumbs.db", ".DS_Store"})


class SourceKind(StrEnum):
    DICOM = "dicom"
    VIDEO = "video"
    IMAGE = "image"
    REPORT = "report"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SourceFile:
    path: Path
    kind: SourceKind


def _has_dicom_preamble(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def classify(path: Path, dicom_extensions: Iterable[str] = (".dcm", ".dicom", "")) -> SourceKind:
    """The kind of source ``path`` is, from its name and, for DICOM, its preamble."""
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return SourceKind.VIDEO
    if suffix in IMAGE_SUFFIXES:
        return SourceKind.IMAGE
    if suffix in REPORT_SUFFIXES:
        return SourceKind.REPORT
    if suffix in {e.lower() for e in dicom_extensions if e}:
        return SourceKind.DICOM
    if _has_dicom_preamble(path):
        return SourceKind.DICOM
    return SourceKind.UNKNOWN


def discover(paths: Iterable[Path], dicom_extensions: Iterable[str] = (".dcm", ".dicom", "")) -> Iterator[SourceFile]:
    """Every file under ``paths`` (files or folders, walked recursively, in sorted order).

    Hidden files and folders and well-known non-data names (DICOMDIR, README, ...) are left out;
    everything else is yielded with its kind, including ``UNKNOWN`` so the caller can report it.
    A path that does not exist is yielded as ``UNKNOWN`` too.
    """
    exts = tuple(dicom_extensions)
    for root in paths:
        if root.is_file() or not root.exists():
            yield SourceFile(root, classify(root, exts) if root.exists() else SourceKind.UNKNOWN)
            continue
        for p in sorted(root.rglob("*")):
            rel_parts = p.relative_to(root).parts
            if any(part.startswith(".") for part in rel_parts) or not p.is_file():
                continue
            if p.name in IGNORED_NAMES or p.stem.upper().startswith("LICENSE"):
                continue
            yield SourceFile(p, classify(p, exts))
