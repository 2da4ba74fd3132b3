"""Turning one source file into a stored-ready clip or still (the work done in worker processes).

Nothing here touches the store or the pseudonymisation key: a worker gets a path and the ingestion
settings and returns pixels plus technical metadata, or raises an :class:`rag.core.errors.IngestError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rag.core.clipfile import encode_clip
from rag.core.config import IngestConfig
from rag.core.errors import DecodeError, InvalidMediaError, UnsupportedInputError
from rag.ingest.media import DecodedMedia
from rag.vocab.views import ViewLabel, view_from_dicom

StoredKind = Literal["clip", "image"]


@dataclass(frozen=True)
class PreparedMedia:
    """A decoded, masked, time-sampled and resized item ready to be written."""

    stored_kind: StoredKind
    source_format: Literal["dicom", "video", "image"]
    source_sha256: str  # of the encoded pixel data (DICOM) or of the file bytes (video, image)
    content_sha256: str  # of the decoded source frames: equal pixels in any encoding give one hash
    data: bytes  # the encoded clip file (see rag.core.clipfile)
    view: ViewLabel | None
    source_frames: int
    source_height: int
    source_width: int
    fps: float | None
    timing_source: str
    photometric: str
    is_grayscale: bool
    mask_source: str
    frames: int
    looped_frames: int
    size: int


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def frames_sha256(frames: np.ndarray) -> str:
    """The sha256 of decoded frames, shape included.

    Args:
        frames: (T, H, W, C) uint8.
    """
    h = hashlib.sha256(str(frames.shape).encode())
    h.update(np.ascontiguousarray(frames).tobytes())
    return h.hexdigest()


def pixel_data_sha256(ds: Any) -> str:
    """The sha256 of a dataset's encoded Pixel Data (the same pixels give the same hash)."""
    if "PixelData" not in ds:
        raise InvalidMediaError("the DICOM file has no Pixel Data (7FE0,0010): the file is truncated or holds no image")
    return hashlib.sha256(bytes(ds.PixelData)).hexdigest()


def read_dicom(path: Path, *, headers_only: bool = False) -> Any:
    """Read a DICOM file with pydicom, turning every failure into a one-line reason."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=headers_only)
    except InvalidDicomError as e:
        raise UnsupportedInputError(f"not a DICOM file ({e})") from e
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        raise DecodeError(f"unreadable or truncated DICOM file ({type(e).__name__}: {e})") from e
    return ds


def _masked_and_sampled(media: DecodedMedia, cfg: IngestConfig) -> tuple[Any, str]:
    import numpy as np

    from rag.ingest.mask import SectorMask, sector_mask
    from rag.ingest.sampling import preprocess

    if cfg.mask == "none":
        h, w = media.frames.shape[1:3]
        smask = SectorMask(mask=np.ones((h, w), dtype=bool), source="none")
    elif cfg.mask == "pixels":
        smask = sector_mask(dataclasses.replace(media, regions=()))
    elif cfg.mask == "regions" and not media.regions:
        h, w = media.frames.shape[1:3]
        smask = SectorMask(mask=np.ones((h, w), dtype=bool), source="none")
    else:
        smask = sector_mask(media)
    n_out = 1 if media.kind == "still" else cfg.frames
    prepared = preprocess(media, smask, frames=n_out, stride=cfg.stride, target_fps=cfg.target_fps, size=cfg.size)
    return prepared, smask.source


def _finish(
    media: DecodedMedia,
    cfg: IngestConfig,
    *,
    source_format: Literal["dicom", "video", "image"],
    source_sha256: str,
    view: ViewLabel | None,
) -> PreparedMedia:
    prepared, mask_source = _masked_and_sampled(media, cfg)
    fps = 1000.0 / media.frame_time_ms if media.frame_time_ms else None
    meta = {
        "source_format": source_format,
        "fps": fps,
        "timing_source": media.timing_source,
        "frame_indices": [int(i) for i in prepared.indices],
        "looped_frames": int(prepared.looped),
        "mask_source": mask_source,
        "grayscale": media.is_grayscale,
        "view": view.view if view else None,
    }
    data = encode_clip(prepared.pixels, meta)
    stored_kind: StoredKind = "image" if media.kind == "still" else "clip"
    return PreparedMedia(
        stored_kind=stored_kind,
        source_format=source_format,
        source_sha256=source_sha256,
        content_sha256=frames_sha256(media.frames),
        data=data,
        view=view,
        source_frames=int(media.source_frames),
        source_height=int(media.frames.shape[1]),
        source_width=int(media.frames.shape[2]),
        fps=fps,
        timing_source=media.timing_source,
        photometric=media.photometric,
        is_grayscale=media.is_grayscale,
        mask_source=mask_source,
        frames=int(prepared.pixels.shape[0]),
        looped_frames=int(prepared.looped),
        size=int(prepared.pixels.shape[1]),
    )


def frames_needed(ds: Any, cfg: IngestConfig) -> int | None:
    """How many leading frames time-based sampling reads, or ``None`` when it needs them all.

    Sampling takes the frames nearest to ``k * stride / target_fps`` seconds; frames after the last of
    those are never used, so they are not decoded (a 64-frame cine at 30 fps needs its first 31).
    A clip too short for the window loops, and then needs every frame.
    """
    from rag.ingest.dicom_decode import frame_timing
    from rag.ingest.sampling import sample_indices

    try:
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        return None
    if n_frames <= 1:
        return None
    frame_time_ms, _ = frame_timing(ds)
    try:
        sampling = sample_indices(
            n_frames, frame_time_ms, frames=cfg.frames, stride=cfg.stride, target_fps=cfg.target_fps
        )
    except ValueError:
        return None
    return None if sampling.looped else int(sampling.indices.max()) + 1


def prepare_dicom(path: Path, cfg: IngestConfig) -> PreparedMedia:
    """Decode, mask, sample and encode one DICOM file."""
    from rag.ingest.dicom_decode import decode_dicom

    ds = read_dicom(path)
    sha = pixel_data_sha256(ds)
    media = decode_dicom(
        ds,
        max_frames=cfg.max_frames,
        max_pixels_per_frame=cfg.max_pixels_per_frame,
        frame_limit=frames_needed(ds, cfg),
    )
    return _finish(media, cfg, source_format="dicom", source_sha256=sha, view=view_from_dicom(ds))


def prepare_video(path: Path, cfg: IngestConfig) -> PreparedMedia:
    """Decode, mask, sample and encode one MP4/AVI/... export."""
    from rag.ingest.video_decode import decode_video

    media = decode_video(path, max_frames=cfg.max_frames, max_pixels_per_frame=cfg.max_pixels_per_frame)
    return _finish(media, cfg, source_format="video", source_sha256=sha256_file(path), view=None)


def prepare_image(path: Path, cfg: IngestConfig) -> PreparedMedia:
    """Decode, mask and encode one PNG/JPEG still."""
    from rag.ingest.video_decode import decode_image

    media = decode_image(path, max_pixels_per_frame=cfg.max_pixels_per_frame)
    return _finish(media, cfg, source_format="image", source_sha256=sha256_file(path), view=None)
