"""Decode the pixel data of a DICOM instance into :class:`~rag.ingest.media.DecodedMedia`.

The header is checked before any pixel is decoded, so an absurd ``Rows`` / ``Columns`` /
``NumberOfFrames`` fails at once with :class:`~rag.core.errors.InvalidMediaError` instead of exhausting
memory. Decoding goes through pydicom's pixel decoders and the installed pylibjpeg plugins (RLE, JPEG
baseline / extended / lossless, JPEG-LS, JPEG 2000). Colour conversion is done once: pydicom already
returns RGB for YBR_FULL, YBR_FULL_422 and JPEG 2000 YBR_RCT / YBR_ICT, and its report of the
resulting photometric interpretation decides whether anything is left to convert.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.core.errors import DecodeError, InvalidMediaError, UnsupportedInputError
from rag.ingest.media import DecodedMedia, MediaKind, TimingSource, UltrasoundRegion

if TYPE_CHECKING:
    import pydicom
    from pydicom.uid import UID

__all__ = ["decode_dicom", "dicom_kind", "frame_timing", "ultrasound_regions"]

logger = logging.getLogger(__name__)

_GRAY = ("MONOCHROME1", "MONOCHROME2")
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT")
_PALETTE = "PALETTE COLOR"


def decode_dicom(
    ds: pydicom.Dataset, *, max_frames: int, max_pixels_per_frame: int, frame_limit: int | None = None
) -> DecodedMedia:
    """Decode the frames of ``ds`` to 8-bit RGB or 8-bit grayscale.

    Args:
        ds: a dataset read with pixel data (``pydicom.dcmread(path)``).
        max_frames: largest ``NumberOfFrames`` accepted.
        max_pixels_per_frame: largest ``Rows * Columns`` accepted.
        frame_limit: decode only the first ``frame_limit`` frames (the ones time-based sampling will
            use); ``source_frames`` still reports the full count. ``None`` decodes every frame.

    Returns:
        :class:`DecodedMedia` whose ``frames`` are ``(T, H, W, 3)`` uint8 RGB for RGB, YBR_* and
        PALETTE COLOR sources, or ``(T, H, W, 1)`` uint8 for MONOCHROME1 (inverted so that high is
        bright) and MONOCHROME2. Sources stored with more than 8 bits are mapped to 8 bits with the
        first window centre / width when present, else with the minimum and maximum of the whole clip.

    Raises:
        InvalidMediaError: missing or absurd dimensions, zero frames, or limits exceeded; the message
            names the attribute, its value and the limit.
        UnsupportedInputError: a transfer syntax with no decoder, a missing decoding plugin, or a
            pixel layout this reader does not handle.
        DecodeError: the pixel data is truncated or corrupt.
    """
    header = _check_header(ds, max_frames=max_frames, max_pixels_per_frame=max_pixels_per_frame)
    tsyntax = _transfer_syntax(ds)
    if not tsyntax.is_compressed:
        _check_native_length(ds, header)
    n_decode = header.n_frames if frame_limit is None else max(1, min(frame_limit, header.n_frames))
    raw, photometric_out = _decode_pixels(ds, tsyntax, header, n_decode)
    frames = _to_uint8_frames(ds, raw, header, photometric_out)
    frame_time_ms, timing_source = frame_timing(ds) if header.n_frames > 1 else (None, "none")
    kind = dicom_kind(ds)
    logger.debug(
        "decoded DICOM: %d frame(s) %dx%d, %s, %s, timing from %s",
        header.n_frames,
        header.rows,
        header.columns,
        header.photometric,
        tsyntax.name,
        timing_source,
    )
    return DecodedMedia(
        frames=frames,
        frame_time_ms=frame_time_ms,
        timing_source=timing_source,
        regions=ultrasound_regions(ds),
        photometric=header.photometric,
        source_frames=header.n_frames,
        kind=kind,
    )


def dicom_kind(ds: pydicom.Dataset) -> MediaKind:
    """``"cine"`` when ``NumberOfFrames`` is above 1, else ``"still"``."""
    try:
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        n_frames = 1
    return "cine" if n_frames > 1 else "still"


def frame_timing(ds: pydicom.Dataset) -> tuple[float | None, TimingSource]:
    """Time between frames in milliseconds and the attribute it was read from.

    Tried in order: FrameTime (0018,1063) in ms; FrameTimeVector (0018,1065), the mean of its entries
    after the first (the first is the time before frame 1, 0 by definition); CineRate (0018,0040) in
    frames per second; RecommendedDisplayFrameRate (0008,2144) in frames per second. Values that are
    missing, zero, negative or not numbers are skipped. Returns ``(None, "none")`` when none is usable.
    """
    frame_time = _positive_float(ds.get("FrameTime"))
    if frame_time is not None:
        return frame_time, "FrameTime"
    vector = ds.get("FrameTimeVector")
    if vector is not None:
        entries = [_finite_float(v) for v in _as_list(vector)[1:]]
        if entries and all(v is not None and v >= 0 for v in entries):
            mean = float(np.mean(np.asarray(entries, dtype=np.float64)))
            if mean > 0:
                return mean, "FrameTimeVector"
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        rate = _positive_float(ds.get(keyword))
        if rate is not None:
            source: TimingSource = "CineRate" if keyword == "CineRate" else "RecommendedDisplayFrameRate"
            return 1000.0 / rate, source
    return None, "none"


def ultrasound_regions(ds: pydicom.Dataset) -> tuple[UltrasoundRegion, ...]:
    """Parse the Sequence of Ultrasound Regions (0018,6011).

    Items that lack a bound or whose bounds are inverted are skipped; bounds are clipped to the image.
    """
    sequence = ds.get("SequenceOfUltrasoundRegions")
    if not sequence:
        return ()
    rows = int(ds.get("Rows", 0) or 0)
    columns = int(ds.get("Columns", 0) or 0)
    regions: list[UltrasoundRegion] = []
    for position, item in enumerate(sequence):
        try:
            x0, y0 = int(item.RegionLocationMinX0), int(item.RegionLocationMinY0)
            x1, y1 = int(item.RegionLocationMaxX1), int(item.RegionLocationMaxY1)
        except (AttributeError, TypeError, ValueError):
            logger.debug("ultrasound region item %d has no usable bounds; skipped", position)
            continue
        if columns > 0 and rows > 0:
            x0, x1 = max(0, x0), min(columns - 1, x1)
            y0, y1 = max(0, y0), min(rows - 1, y1)
        if x1 < x0 or y1 < y0:
            logger.debug("ultrasound region item %d is empty inside the image; skipped", position)
            continue
        regions.append(
            UltrasoundRegion(
                x0=x0,
                y0=y0,
                x1=x1,
                y1=y1,
                spatial_format=int(item.get("RegionSpatialFormat", 0) or 0),
                data_type=int(item.get("RegionDataType", 0) or 0),
                flags=int(item.get("RegionFlags", 0) or 0),
            )
        )
    return tuple(regions)


@dataclass(frozen=True)
class _Header:
    """Image pixel attributes, checked before decoding."""

    rows: int
    columns: int
    n_frames: int
    samples: int
    bits_allocated: int
    bits_stored: int
    photometric: str


def _check_header(ds: pydicom.Dataset, *, max_frames: int, max_pixels_per_frame: int) -> _Header:
    if "PixelData" not in ds:
        raise UnsupportedInputError(
            "the dataset has no PixelData (7FE0,0010): not an image instance, or it was read with "
            "stop_before_pixels=True; read it again with pixel data"
        )
    rows = _header_int(ds, "Rows")
    columns = _header_int(ds, "Columns")
    n_frames = _header_int(ds, "NumberOfFrames", default=1)
    if rows <= 0 or columns <= 0:
        raise InvalidMediaError(f"Rows x Columns = {rows} x {columns}: both must be at least 1")
    if n_frames <= 0:
        raise InvalidMediaError(f"NumberOfFrames = {n_frames}: a DICOM image needs at least 1 frame")
    if rows * columns > max_pixels_per_frame:
        raise InvalidMediaError(
            f"Rows x Columns = {rows} x {columns} = {rows * columns} pixels exceeds "
            f"max_pixels_per_frame = {max_pixels_per_frame}; raise the limit if the file is genuine"
        )
    if n_frames > max_frames:
        raise InvalidMediaError(
            f"NumberOfFrames = {n_frames} exceeds max_frames = {max_frames} "
            f"({n_frames * rows * columns} pixels in all); raise the limit if the file is genuine"
        )
    samples = _header_int(ds, "SamplesPerPixel", default=1)
    bits_allocated = _header_int(ds, "BitsAllocated")
    bits_stored = _header_int(ds, "BitsStored", default=bits_allocated)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric in _GRAY or photometric == _PALETTE:
        expected_samples = 1
    elif photometric in _COLOUR:
        expected_samples = 3
    else:
        raise UnsupportedInputError(
            f"PhotometricInterpretation '{photometric}' is not supported; "
            f"supported: {', '.join((*_GRAY, _PALETTE, *_COLOUR))}"
        )
    if samples != expected_samples:
        raise InvalidMediaError(
            f"SamplesPerPixel = {samples} contradicts PhotometricInterpretation '{photometric}' "
            f"(expects {expected_samples})"
        )
    if bits_allocated not in (8, 16) or (expected_samples == 3 and bits_allocated != 8):
        allowed = "8" if expected_samples == 3 else "8 or 16"
        raise UnsupportedInputError(
            f"BitsAllocated = {bits_allocated} with '{photometric}' is not supported (allowed: {allowed})"
        )
    if not 1 <= bits_stored <= bits_allocated:
        raise InvalidMediaError(f"BitsStored = {bits_stored} must lie between 1 and BitsAllocated = {bits_allocated}")
    return _Header(
        rows=rows,
        columns=columns,
        n_frames=n_frames,
        samples=samples,
        bits_allocated=bits_allocated,
        bits_stored=bits_stored,
        photometric=photometric,
    )


def _header_int(ds: pydicom.Dataset, keyword: str, *, default: int | None = None) -> int:
    value = ds.get(keyword)
    if value is None or value == "":
        if default is None:
            raise InvalidMediaError(f"the image has no {keyword}; it is required to decode the pixel data")
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as e:
        raise InvalidMediaError(f"{keyword} = {value!r} is not an integer") from e


def _transfer_syntax(ds: pydicom.Dataset) -> UID:
    from pydicom.uid import UID

    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid is None:
        raise UnsupportedInputError(
            "the dataset has no TransferSyntaxUID (0002,0010) in its file meta; "
            "read it with pydicom.dcmread or set ds.file_meta.TransferSyntaxUID"
        )
    return UID(str(uid))


def _check_native_length(ds: pydicom.Dataset, header: _Header) -> None:
    bytes_per_sample = header.bits_allocated // 8
    per_frame = header.rows * header.columns * header.samples * bytes_per_sample
    if header.photometric == "YBR_FULL_422":
        per_frame = header.rows * header.columns * 2 * bytes_per_sample
    expected = per_frame * header.n_frames
    actual = len(ds.PixelData)
    if actual < expected:
        raise DecodeError(
            f"PixelData holds {actual} bytes but {header.n_frames} frame(s) of {header.rows} x "
            f"{header.columns} x {header.samples} samples at {header.bits_allocated} bits need {expected}: "
            "the file is truncated or its image attributes are wrong"
        )


def _decode_pixels(ds: pydicom.Dataset, tsyntax: UID, header: _Header, n_decode: int) -> tuple[np.ndarray, str]:
    """Decode the first ``n_decode`` frames; returns ``(T, H, W)`` or ``(T, H, W, 3)`` and the photometric."""
    from pydicom.pixels.decoders.base import get_decoder

    name = f"{tsyntax.name} ({tsyntax})" if tsyntax.is_transfer_syntax else str(tsyntax)
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError as e:
        raise UnsupportedInputError(
            f"transfer syntax {name} has no pixel decoder in pydicom; convert the file to an "
            "uncompressed, RLE, JPEG or JPEG 2000 transfer syntax (for example with dcmdjpeg / gdcmconv)"
        ) from e
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "a decoding plugin"
        raise UnsupportedInputError(
            f"transfer syntax {name} cannot be decoded: no decoding plugin is installed. "
            f"Install one of: {missing} (pylibjpeg-libjpeg, pylibjpeg-openjpeg or pylibjpeg-rle for "
            "the pylibjpeg route)"
        )
    fast = _decode_jpeg_baseline(ds, tsyntax, header, n_decode)
    if fast is not None:
        return fast
    try:
        # YBR samples are converted to RGB once, in _to_uint8_frames (OpenCV: ~50x faster than numpy).
        options: dict[str, Any] = {"as_rgb": False}
        if n_decode < header.n_frames:
            decoded = list(decoder.iter_array(ds, indices=range(n_decode), **options))
            array, meta = np.stack([a for a, _ in decoded]), decoded[0][1]
        else:
            array, meta = decoder.as_array(ds, **options)
    except NotImplementedError as e:
        raise UnsupportedInputError(f"transfer syntax {name}: {e}") from e
    except (ValueError, RuntimeError, IndexError, EOFError, OSError) as e:
        reason = " ".join(str(e).split())
        raise DecodeError(f"cannot decode the pixel data ({name}): {reason}") from e
    if array.ndim == (2 if header.samples == 1 else 3):
        array = array[np.newaxis]
    expected = (n_decode, header.rows, header.columns)
    if array.shape[:3] != expected:
        raise DecodeError(f"decoded an array of shape {array.shape}, expected {expected} from the header ({name})")
    return array, str(meta.get("photometric_interpretation", "")).strip().upper()


_JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


def _decode_jpeg_baseline(
    ds: pydicom.Dataset, tsyntax: UID, header: _Header, n_decode: int
) -> tuple[np.ndarray, str] | None:
    """Decode 8-bit JPEG baseline frames with OpenCV (libjpeg-turbo, ~4x faster than the plugin).

    Only for the layouts whose colour handling is unambiguous: YBR_FULL(_422) colour (JFIF Y'CbCr,
    converted to RGB by the decoder) and MONOCHROME1/2. Returns ``None`` to fall back to pydicom's
    decoders for anything else, including a frame OpenCV cannot read.
    """
    import cv2
    from pydicom.encaps import generate_frames

    colour = header.photometric in ("YBR_FULL_422", "YBR_FULL") and header.samples == 3
    gray = header.photometric in _GRAY and header.samples == 1
    if str(tsyntax) != _JPEG_BASELINE or header.bits_allocated != 8 or not (colour or gray):
        return None
    flags = (cv2.IMREAD_COLOR_RGB if colour else cv2.IMREAD_GRAYSCALE) | cv2.IMREAD_IGNORE_ORIENTATION
    out = np.empty((n_decode, header.rows, header.columns, *((3,) if colour else ())), np.uint8)
    try:
        frames = generate_frames(ds.PixelData, number_of_frames=header.n_frames)
        for i in range(n_decode):
            img = cv2.imdecode(np.frombuffer(next(frames), np.uint8), flags)
            if img is None or img.shape != out.shape[1:]:
                return None
            out[i] = img
    except (ValueError, StopIteration, cv2.error):
        return None
    return out, "RGB" if colour else header.photometric


def _to_uint8_frames(ds: pydicom.Dataset, raw: np.ndarray, header: _Header, photometric_out: str) -> np.ndarray:
    """Map decoded pixels to ``(T, H, W, 3)`` uint8 RGB or ``(T, H, W, 1)`` uint8 gray."""
    from pydicom.pixels.processing import convert_color_space

    photometric = header.photometric
    if photometric == _PALETTE:
        return _palette_to_rgb(ds, raw)
    if photometric in _GRAY:
        gray = raw if raw.dtype == np.uint8 and header.bits_stored == 8 else _rescale_to_uint8(ds, raw)
        if photometric == "MONOCHROME1":
            gray = 255 - gray
        return np.ascontiguousarray(gray[..., np.newaxis], dtype=np.uint8)
    rgb = raw
    if photometric_out not in ("RGB", ""):
        # The decoder left the samples in a YBR space; convert once here.
        if photometric_out not in ("YBR_FULL", "YBR_FULL_422"):
            raise UnsupportedInputError(
                f"the decoder returned '{photometric_out}' samples for '{photometric}', which this "
                "reader does not convert to RGB"
            )
        rgb = _ybr_full_to_rgb(raw) if raw.dtype == np.uint8 else convert_color_space(raw, photometric_out, "RGB")
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def _ybr_full_to_rgb(ybr: np.ndarray) -> np.ndarray:
    """Full-range ITU-R BT.601 Y'CbCr (as in JPEG/JFIF and DICOM YBR_FULL) to RGB.

    Args:
        ybr: (T, H, W, 3) uint8 with channels Y, Cb, Cr (4:2:2 already upsampled by the decoder).

    Returns:
        (T, H, W, 3) uint8 RGB.
    """
    import cv2

    t, h, w, _ = ybr.shape
    flat = np.ascontiguousarray(ybr).reshape(t * h, w, 3)
    return np.asarray(cv2.transform(flat, _YBR_FULL_TO_RGB), dtype=np.uint8).reshape(t, h, w, 3)


# Rows R, G, B; columns Y, Cb, Cr, offset (full-range BT.601, chroma centred on 128).
_YBR_FULL_TO_RGB = np.array(
    [
        [1.0, 0.0, 1.402, -1.402 * 128],
        [1.0, -0.344136, -0.714136, (0.344136 + 0.714136) * 128],
        [1.0, 1.772, 0.0, -1.772 * 128],
    ],
    dtype=np.float32,
)


def _palette_to_rgb(ds: pydicom.Dataset, raw: np.ndarray) -> np.ndarray:
    """Apply the (possibly segmented, possibly 16-bit) palette frame by frame, scaled to 8 bits.

    16-bit entries are scaled by 255 / 65535, except palettes whose entries all have a zero low byte
    (8-bit values stored as ``v << 8``), which are shifted so that 0xFF00 stays 255.
    """
    from pydicom.pixels.processing import apply_color_lut

    def lookup(values: np.ndarray) -> np.ndarray:
        try:
            result: np.ndarray = apply_color_lut(values, ds)
        except (ValueError, KeyError, IndexError, AttributeError) as e:
            raise DecodeError(f"cannot apply the PALETTE COLOR lookup tables: {' '.join(str(e).split())}") from e
        return result

    every_index = np.arange(np.iinfo(raw.dtype).min, np.iinfo(raw.dtype).max + 1).astype(raw.dtype)
    table = lookup(every_index)
    if table.dtype not in (np.uint8, np.uint16):
        raise UnsupportedInputError(f"PALETTE COLOR lookup table entries of dtype {table.dtype} are not supported")
    high_byte_only = table.dtype == np.uint16 and not np.any(table & 0x00FF)
    out = np.empty((*raw.shape, 3), dtype=np.uint8)
    for index, frame in enumerate(raw):
        rgb = lookup(frame)
        if rgb.dtype == np.uint8:
            out[index] = rgb
        elif high_byte_only:
            out[index] = rgb >> 8
        else:
            out[index] = (rgb.astype(np.uint32) * 255 + 32767) // 65535
    return out


def _rescale_to_uint8(ds: pydicom.Dataset, raw: np.ndarray) -> np.ndarray:
    """Window (or min/max over the whole clip) grayscale samples of any depth into uint8."""
    values = raw.astype(np.float32)
    slope = _finite_float(ds.get("RescaleSlope"))
    intercept = _finite_float(ds.get("RescaleIntercept"))
    if slope is not None and slope != 0.0:
        values *= slope
    if intercept is not None:
        values += intercept
    centre = _finite_float(_first(ds.get("WindowCenter")))
    width = _finite_float(_first(ds.get("WindowWidth")))
    if centre is not None and width is not None and width >= 1.0:
        # Linear VOI function of PS3.3 C.11.2.1.2.1.
        scaled = ((values - (centre - 0.5)) / max(width - 1.0, 1.0) + 0.5) * 255.0
    else:
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    result: np.ndarray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return result


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    return [value]


def _first(value: Any) -> Any:
    values = _as_list(value)
    return values[0] if values else None


def _finite_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _positive_float(value: Any) -> float | None:
    number = _finite_float(value)
    return number if number is not None and number > 0 else None
