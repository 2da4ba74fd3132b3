"""Writing echo clips as real DICOM files (Ultrasound Multi-frame / Ultrasound Image Storage).

Used by the simulated archive, the benchmarks and the tests, so that they exercise ingestion through
exactly the files a hospital has: a full pixel module, frame timing, an optional Sequence of
Ultrasound Regions, and one of the encodings echo carts export (JPEG baseline YBR_FULL_422, RLE or
uncompressed; grayscale or colour).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

Encoding = Literal["jpeg", "rle", "raw"]


@dataclass(frozen=True)
class Region:
    """A rectangle of the Sequence of Ultrasound Regions (inclusive pixel bounds)."""

    x0: int
    y0: int
    x1: int
    y1: int
    spatial_format: int = 1  # 2D
    data_type: int = 1  # tissue


@dataclass(frozen=True)
class StudyInfo:
    """Identity and descriptive attributes written into every instance of a study."""

    patient_name: str
    patient_id: str
    study_uid: str
    study_date: dt.date
    birth_date: dt.date | None = None
    sex: str = ""
    study_description: str = "Echocardiogram"
    institution: str = ""
    accession: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def write_us_dicom(
    path: Path,
    frames: np.ndarray,
    *,
    study: StudyInfo,
    series_uid: str,
    sop_uid: str,
    frame_time_ms: float | None = None,
    encoding: Encoding = "jpeg",
    series_description: str = "",
    view_name: str = "",
    regions: tuple[Region, ...] = (),
    instance_number: int = 1,
    jpeg_quality: int = 92,
) -> None:
    """Write ``frames`` as one DICOM instance.

    Args:
        frames: (T, H, W) or (T, H, W, 1) uint8 grayscale, or (T, H, W, 3) uint8 RGB. T = 1 writes an
            Ultrasound Image (still); T > 1 a multi-frame cine with Frame Time.
        encoding: ``jpeg`` (baseline; colour as YBR_FULL_422), ``rle`` (RLE Lossless) or ``raw``
            (Explicit VR Little Endian).
    """
    from pydicom import Dataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import (
        UID,
        JPEGBaseline8Bit,
        RLELossless,
        UltrasoundImageStorage,
        UltrasoundMultiFrameImageStorage,
    )

    if frames.ndim == 3:
        frames = frames[..., np.newaxis]
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        raise ValueError(f"frames must be (T, H, W[, 1|3]) uint8, got {frames.shape} {frames.dtype}")
    n, rows, cols, samples = frames.shape
    multi = n > 1
    sop_class = UltrasoundMultiFrameImageStorage if multi else UltrasoundImageStorage

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    if study.birth_date:
        ds.PatientBirthDate = study.birth_date.strftime("%Y%m%d")
    ds.PatientSex = study.sex
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study.study_date.strftime("%Y%m%d")
    ds.StudyTime = "101500"
    ds.StudyDescription = study.study_description
    ds.AccessionNumber = study.accession
    ds.InstitutionName = study.institution
    ds.Modality = "US"
    ds.SeriesDescription = series_description
    if view_name:
        ds.ViewName = view_name
    ds.InstanceNumber = instance_number
    for keyword, value in study.extra.items():
        setattr(ds, keyword, value)

    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = samples
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if samples == 3:
        ds.PlanarConfiguration = 0
    if multi:
        ds.NumberOfFrames = n
        ds.FrameIncrementPointer = 0x00181063
        if frame_time_ms is not None:
            ds.FrameTime = f"{frame_time_ms:.3f}"
            ds.CineRate = round(1000.0 / frame_time_ms)
    if regions:
        ds.SequenceOfUltrasoundRegions = [_region_item(r) for r in regions]

    if encoding == "jpeg":
        from PIL import Image

        encoded = []
        for f in frames:
            buf = io.BytesIO()
            img = Image.fromarray(f[..., 0] if samples == 1 else f)
            img.save(buf, format="JPEG", quality=jpeg_quality, subsampling=1 if samples == 3 else 0)
            encoded.append(buf.getvalue())
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.PhotometricInterpretation = "YBR_FULL_422" if samples == 3 else "MONOCHROME2"
        ds.PixelData = encapsulate(encoded)
        ds["PixelData"].VR = "OB"
        ds.LossyImageCompression = "01"
    else:
        from pydicom.uid import ExplicitVRLittleEndian

        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
        ds.PixelData = np.ascontiguousarray(frames if samples == 3 else frames[..., 0]).tobytes()
        if encoding == "rle":
            ds.compress(RLELossless, encoding_plugin="pydicom" if _no_rle_plugin() else "", generate_instance_uid=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _no_rle_plugin() -> bool:
    import importlib.util

    return importlib.util.find_spec("rle") is None


def _region_item(r: Region) -> object:
    from pydicom import Dataset

    item = Dataset()
    item.RegionSpatialFormat = r.spatial_format
    item.RegionDataType = r.data_type
    item.RegionFlags = 0
    item.RegionLocationMinX0 = r.x0
    item.RegionLocationMinY0 = r.y0
    item.RegionLocationMaxX1 = r.x1
    item.RegionLocationMaxY1 = r.y1
    item.PhysicalUnitsXDirection = 3  # cm
    item.PhysicalUnitsYDirection = 3
    item.PhysicalDeltaX = 0.03
    item.PhysicalDeltaY = 0.03
    return item
