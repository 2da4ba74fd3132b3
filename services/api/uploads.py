"""Uploaded studies: size and type checked before anything is stored, saved under server-chosen names.

A file is accepted by what it is (its first bytes), not by what it is called: DICOM (``DICM`` at byte
128), MP4/MOV (``ftyp`` at byte 4), AVI (``RIFF....AVI ``), PNG and JPEG. The client's file name is never
used as a path: files land in a fresh folder under ``<workspace>/uploads/`` as ``0000.dcm``, ``0001.mp4``
..., so a name like ``../../etc/passwd`` cannot write outside the workspace. A rejected upload leaves
nothing behind.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from services.api.security import ApiError

__all__ = ["kind_of", "save_upload"]


def kind_of(head: bytes) -> str | None:
    """The file type by its first bytes, or None."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dcm"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mp4"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:3] == b"\xff\xd8\xff":
        return "jpg"
    return None


def save_upload(files: Sequence[tuple[str, bytes]], uploads: Path, *, max_bytes: int) -> Path:
    """Check every file, then write them into a new folder; return it.

    Raises:
        ApiError: 400 no file; 413 over ``max_bytes`` in all; 415 a file that is none of the accepted kinds.
    """
    if not files:
        raise ApiError(400, "no file uploaded: send one or more DICOM, MP4/AVI, PNG or JPEG files as 'files'")
    total = sum(len(data) for _, data in files)
    if total > max_bytes:
        raise ApiError(413, f"upload of {total} bytes is over the limit of {max_bytes} bytes")
    kinds = []
    for n, (name, data) in enumerate(files):
        kind = kind_of(data[:132])
        if kind is None:
            shown = Path(name).name[:80] or f"file {n}"
            raise ApiError(415, f"'{shown}' is not a DICOM, MP4/AVI, PNG or JPEG file (judged by its content)")
        kinds.append(kind)
    folder = uploads / uuid.uuid4().hex
    folder.mkdir(parents=True)
    try:
        for n, ((_, data), kind) in enumerate(zip(files, kinds, strict=True)):
            (folder / f"{n:04d}.{kind}").write_bytes(data)
    except OSError as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise ApiError(507, f"cannot store the upload: {e.strerror}") from e
    return folder
