"""Decoding DICOM, video and still images into DecodedMedia."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import av
import numpy as np
import pydicom
import pytest
from PIL import Image, ImageFile
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels.processing import convert_color_space
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEGBaseline8Bit, RLELossless

from rag.core.errors import DecodeError, InvalidMediaError, UnsupportedInputError
from rag.ingest.dicom_decode import decode_dicom, dicom_kind, frame_timing
from rag.ingest.media import DecodedMedia, UltrasoundRegion
from rag.ingest.video_decode import decode_image, decode_video

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LIMITS: dict[str, int] = {"max_frames": 1024, "max_pixels_per_frame": 2048 * 2048}


def read_shared(name: str) -> pydicom.Dataset:
    path = SHARED / "dicom" / name
    if not path.exists():
        pytest.skip(f"real test data not available: {path} (needs ../shared/data beside the repository)")
    return pydicom.dcmread(path)


def make_dataset(
    pixels: np.ndarray, photometric: str, *, syntax: UID = ExplicitVRLittleEndian, frames: int = 1, **attrs: Any
) -> Dataset:
    """A minimal image dataset; ``pixels`` is written as native pixel data unless PixelData is given."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    samples = 3 if photometric.startswith(("RGB", "YBR")) else 1
    bits = 16 if pixels.dtype == np.uint16 else 8
    rows, columns = (pixels.shape[1:3] if frames > 1 else pixels.shape[:2]) if pixels.size else (0, 0)
    ds.Rows, ds.Columns = attrs.pop("Rows", rows), attrs.pop("Columns", columns)
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = 0
    if samples == 3:
        ds.PlanarConfiguration = attrs.pop("PlanarConfiguration", 0)
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = attrs.pop("PixelData", pixels.tobytes())
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    return ds


def colour_chart() -> np.ndarray:
    """(32, 48, 3) uint8: a gray, a red and a green vertical band."""
    image = np.zeros((32, 48, 3), dtype=np.uint8)
    image[:, :16] = (128, 128, 128)
    image[:, 16:32] = (200, 30, 30)
    image[:, 32:] = (30, 180, 60)
    return image


def assert_chart(rgb: np.ndarray, tolerance: int) -> None:
    centre = rgb[16, [8, 24, 40]].astype(int)
    expected = np.array([(128, 128, 128), (200, 30, 30), (30, 180, 60)])
    assert np.abs(centre - expected).max() <= tolerance, centre


# --- real files -----------------------------------------------------------------------------------


def test_palette_rle_cine_decodes_ten_rgb_frames_with_frame_time() -> None:
    media = decode_dicom(read_shared("US-PAL-8-10x-echo.dcm"), **LIMITS)
    assert media.frames.shape == (10, 430, 600, 3)
    assert media.frames.dtype == np.uint8
    assert not media.is_grayscale
    assert media.kind == "cine"
    assert media.source_frames == 10
    assert media.frame_time_ms == pytest.approx(76.0)
    assert media.timing_source == "FrameTime"
    assert media.photometric == "PALETTE COLOR"
    # 16-bit palette entries scaled to 8 bits: full range used, nothing stuck at 0 or 255.
    assert media.frames.max() == 255
    assert 5 < media.frames.mean() < 100
    # The burned-in ECG trace at the bottom is green.
    ecg = media.frames[0, 355:400, 40:350].astype(int)
    green = (ecg[..., 1] > 100) & (ecg[..., 1] > ecg[..., 0] + 50) & (ecg[..., 1] > ecg[..., 2] + 50)
    assert green.sum() > 200


def test_rgb_uncompressed_and_jpeg2000_ybr_rct_decode_to_identical_rgb() -> None:
    plain = decode_dicom(read_shared("US1_UNCR.dcm"), **LIMITS)
    j2k = decode_dicom(read_shared("US1_J2KR.dcm"), **LIMITS)
    assert j2k.photometric == "YBR_RCT"
    assert plain.frames.shape == j2k.frames.shape == (1, 480, 640, 3)
    assert np.array_equal(plain.frames, j2k.frames)
    assert plain.kind == j2k.kind == "still"
    assert plain.frame_time_ms is None and plain.timing_source == "none"
    # No tint: the gray tissue band below the power-Doppler boxes is balanced across channels.
    tissue = j2k.frames[0, 300:335, 40:600].reshape(-1, 3).astype(float)
    means = tissue.mean(axis=0)
    assert means.max() - means.min() < 2.0, means
    assert means.mean() > 30


def test_sixteen_bit_segmented_palette_gives_sensible_rgb_and_regions() -> None:
    media = decode_dicom(read_shared("gdcm-US-ALOKA-16.dcm"), **LIMITS)
    frames = media.frames
    assert frames.shape == (1, 480, 640, 3) and frames.dtype == np.uint8
    assert 15 < frames.mean() < 120
    assert frames.max() > 200
    assert (frames == 255).mean() < 0.01 and (frames == 0).mean() < 0.9
    # The image itself is gray: its palette keeps R, G and B within a few levels.
    tissue = frames[0, 250:400, 50:300].astype(int)
    assert np.abs(tissue[..., 0] - tissue[..., 1]).mean() < 8
    assert media.regions == (
        UltrasoundRegion(x0=32, y0=24, x1=335, y1=415, spatial_format=1, data_type=1, flags=2),
        UltrasoundRegion(x0=336, y0=24, x1=639, y1=415, spatial_format=1, data_type=1, flags=2),
        UltrasoundRegion(x0=32, y0=40, x1=63, y1=103, spatial_format=0, data_type=13, flags=0),
    )
    assert [r.is_image_region for r in media.regions] == [True, True, False]
    assert len(media.image_regions) == 2


@pytest.mark.filterwarnings("ignore:Invalid value:UserWarning")
@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"Rows": 100000, "Columns": 100000}, "100000 x 100000"),
        ({"Rows": 0}, "Rows x Columns = 0 x"),
        ({"NumberOfFrames": 10**7}, "NumberOfFrames = 10000000 exceeds max_frames = 1024"),
        ({"NumberOfFrames": 0}, "NumberOfFrames = 0"),
    ],
)
def test_absurd_header_is_refused_before_any_decoding(
    changes: dict[str, int], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = read_shared("US-PAL-8-10x-echo.dcm")
    for keyword, value in changes.items():
        setattr(ds, keyword, value)

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pixel decoder must not be reached")

    monkeypatch.setattr("pydicom.pixels.decoders.base.get_decoder", no_decoding)
    with pytest.raises(InvalidMediaError, match=expected):
        decode_dicom(ds, **LIMITS)


@pytest.mark.parametrize("name", ["US1_UNCR.dcm", "US-PAL-8-10x-echo.dcm", "US1_J2KR.dcm"])
def test_truncated_pixel_data_is_a_decode_error(name: str) -> None:
    ds = read_shared(name)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    with pytest.raises(DecodeError):
        decode_dicom(ds, **LIMITS)


def test_transfer_syntax_without_decoder_is_unsupported_and_named() -> None:
    ds = read_shared("US1_UNCR.dcm")
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.4.102")
    with pytest.raises(UnsupportedInputError, match=r"MPEG-4 AVC/H\.264.*1\.2\.840\.10008\.1\.2\.4\.102"):
        decode_dicom(ds, **LIMITS)


def test_missing_plugin_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoPlugin:
        is_available = False
        missing_dependencies = ("pylibjpeg - requires pylibjpeg>=2.0 and pylibjpeg-rle>=2.0",)

    monkeypatch.setattr("pydicom.pixels.decoders.base.get_decoder", lambda uid: NoPlugin())
    with pytest.raises(UnsupportedInputError, match=r"RLE Lossless.*Install one of: pylibjpeg"):
        decode_dicom(read_shared("US-PAL-8-10x-echo.dcm"), **LIMITS)


def test_dataset_without_pixel_data_is_unsupported() -> None:
    ds = read_shared("US1_UNCR.dcm")
    del ds.PixelData
    with pytest.raises(UnsupportedInputError, match="no PixelData"):
        decode_dicom(ds, **LIMITS)


# --- synthetic DICOM: colour spaces, gray levels, timing -------------------------------------------


def test_native_ybr_full_is_converted_to_rgb_once() -> None:
    ybr = convert_color_space(colour_chart(), "RGB", "YBR_FULL")
    media = decode_dicom(make_dataset(ybr, "YBR_FULL"), **LIMITS)
    assert media.photometric == "YBR_FULL"
    assert_chart(media.frames[0], tolerance=2)


def test_jpeg_baseline_ybr_full_422_is_converted_to_rgb_once() -> None:
    buffer = io.BytesIO()
    Image.fromarray(colour_chart()).save(buffer, format="JPEG", quality=95)
    ds = make_dataset(
        colour_chart(), "YBR_FULL_422", syntax=JPEGBaseline8Bit, PixelData=encapsulate([buffer.getvalue()])
    )
    ds["PixelData"].VR = "OB"
    media = decode_dicom(ds, **LIMITS)
    assert_chart(media.frames[0], tolerance=4)
    gray = media.frames[0, 4:28, 2:14].astype(int)
    assert np.abs(gray[..., 1] - gray[..., 0]).max() <= 2  # no green tint on gray


def test_rgb_planar_configuration_one() -> None:
    chart = colour_chart()
    planar = np.ascontiguousarray(chart.transpose(2, 0, 1))
    media = decode_dicom(make_dataset(chart, "RGB", PixelData=planar.tobytes(), PlanarConfiguration=1), **LIMITS)
    assert np.array_equal(media.frames[0], chart)


def test_rle_multiframe_rgb() -> None:
    clip = np.stack([colour_chart(), colour_chart()[:, ::-1]])
    ds = make_dataset(clip, "RGB", frames=2, FrameTime=20.0)
    ds.compress(RLELossless, clip)
    media = decode_dicom(ds, **LIMITS)
    assert np.array_equal(media.frames, clip)
    assert media.kind == "cine" and media.frame_time_ms == pytest.approx(20.0)


def test_monochrome1_is_inverted_and_kept_single_channel() -> None:
    ramp = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (4, 1))
    media = decode_dicom(make_dataset(ramp, "MONOCHROME1"), **LIMITS)
    assert media.is_grayscale and media.frames.shape == (1, 4, 32, 1)
    assert np.array_equal(media.frames[0, ..., 0], 255 - ramp)


def test_monochrome2_eight_bit_is_kept_as_is() -> None:
    clip = np.random.default_rng(1).integers(0, 256, (3, 8, 12), dtype=np.uint8)
    media = decode_dicom(make_dataset(clip, "MONOCHROME2", frames=3, CineRate=25), **LIMITS)
    assert media.is_grayscale
    assert np.array_equal(media.frames[..., 0], clip)
    assert media.frame_time_ms == pytest.approx(40.0) and media.timing_source == "CineRate"


def test_sixteen_bit_gray_uses_window_when_present_else_clip_min_max() -> None:
    values = np.array([[1000, 1500, 2000, 2500, 3000]], dtype=np.uint16)
    windowed = decode_dicom(make_dataset(values, "MONOCHROME2", WindowCenter=2000, WindowWidth=1001), **LIMITS)
    assert windowed.frames[0, 0, :, 0].tolist() == [0, 0, 128, 255, 255]
    stretched = decode_dicom(make_dataset(values, "MONOCHROME2"), **LIMITS)
    assert stretched.frames[0, 0, :, 0].tolist() == [0, 64, 128, 191, 255]


def assert_timing(ds: Dataset, frame_time_ms: float | None, source: str) -> None:
    found_ms, found_source = frame_timing(ds)
    assert found_source == source
    assert found_ms == (None if frame_time_ms is None else pytest.approx(frame_time_ms))


def test_frame_timing_order_of_sources() -> None:
    ds = Dataset()
    assert_timing(ds, None, "none")
    ds.RecommendedDisplayFrameRate = 50
    assert_timing(ds, 20.0, "RecommendedDisplayFrameRate")
    ds.CineRate = 25
    assert_timing(ds, 40.0, "CineRate")
    ds.FrameTimeVector = [0.0, 30.0, 34.0, 32.0]
    assert_timing(ds, 32.0, "FrameTimeVector")
    ds.FrameTime = 76.0
    assert_timing(ds, 76.0, "FrameTime")
    ds.FrameTime = 0.0  # unusable: the next source is taken
    assert_timing(ds, 32.0, "FrameTimeVector")


def test_dicom_kind() -> None:
    ds = Dataset()
    assert dicom_kind(ds) == "still"
    ds.NumberOfFrames = 1
    assert dicom_kind(ds) == "still"
    ds.NumberOfFrames = 12
    assert dicom_kind(ds) == "cine"


def test_decoded_media_checks_its_frames() -> None:
    with pytest.raises(ValueError, match="uint8"):
        DecodedMedia(
            frames=np.zeros((1, 4, 4, 2), np.uint8),
            frame_time_ms=None,
            timing_source="none",
            regions=(),
            photometric="RGB",
            source_frames=1,
            kind="still",
        )


# --- video and still images ------------------------------------------------------------------------


def write_video(path: Path, frames: np.ndarray, fps: int) -> None:
    """Write ``(T, H, W, 3)`` uint8 RGB frames with the first available H.264 / MPEG-4 encoder."""
    codec = next(c for c in ("libx264", "mpeg4") if c in av.codecs_available)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def smooth_clip(n_frames: int, *, colour: bool) -> np.ndarray:
    """(T, 48, 64, 3) uint8 moving gradient, gray or with a red block."""
    y, x = np.mgrid[0:48, 0:64]
    frames = []
    for t in range(n_frames):
        level = ((x * 3 + y * 2 + t * 8) % 200 + 20).astype(np.uint8)
        frame = np.repeat(level[..., np.newaxis], 3, axis=-1)
        if colour:
            frame[8:24, 8:32] = (200, 30, 30)
        frames.append(frame)
    return np.stack(frames)


def test_gray_mp4_is_one_channel_with_container_fps(tmp_path: Path) -> None:
    path = tmp_path / "gray.mp4"
    clip = smooth_clip(6, colour=False)
    write_video(path, clip, fps=25)
    media = decode_video(path, **LIMITS)
    assert media.frames.shape == (6, 48, 64, 1) and media.is_grayscale
    assert media.frame_time_ms == pytest.approx(40.0)
    assert media.timing_source == "container" and media.kind == "cine"
    assert np.abs(media.frames[..., 0].astype(int) - clip[..., 0]).mean() < 4


def test_colour_mp4_keeps_three_channels(tmp_path: Path) -> None:
    path = tmp_path / "colour.mp4"
    write_video(path, smooth_clip(5, colour=True), fps=30)
    media = decode_video(path, **LIMITS)
    assert media.frames.shape == (5, 48, 64, 3) and not media.is_grayscale
    assert media.frame_time_ms == pytest.approx(1000 / 30)
    red = media.frames[0, 12:20, 12:28].reshape(-1, 3).mean(axis=0)
    assert red[0] > 150 and red[1] < 80


def test_video_limits_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, smooth_clip(6, colour=False), fps=25)
    with pytest.raises(InvalidMediaError, match="max_frames = 3"):
        decode_video(path, max_frames=3, max_pixels_per_frame=10**6)
    with pytest.raises(InvalidMediaError, match="max_pixels_per_frame = 100"):
        decode_video(path, max_frames=100, max_pixels_per_frame=100)


def test_garbage_truncated_and_frameless_videos_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 64)
    with pytest.raises(DecodeError, match="cannot open the file as a video"):
        decode_video(garbage, **LIMITS)

    good = tmp_path / "good.mp4"
    write_video(good, smooth_clip(6, colour=False), fps=25)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[:64])
    with pytest.raises((DecodeError, InvalidMediaError)):
        decode_video(truncated, **LIMITS)

    audio_only = tmp_path / "audio.mkv"
    with av.open(str(audio_only), mode="w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    with pytest.raises(InvalidMediaError, match="no video stream"):
        decode_video(audio_only, **LIMITS)


def test_decode_error_message_does_not_carry_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "DOE_JANE_echo.mp4"
    path.write_bytes(b"junk" * 100)
    with pytest.raises(DecodeError) as info:
        decode_video(path, **LIMITS)
    assert "DOE_JANE" not in str(info.value)


def test_still_images_gray_colour_and_sixteen_bit(tmp_path: Path) -> None:
    gray_rgb = tmp_path / "gray_rgb.png"
    Image.fromarray(np.repeat(smooth_clip(1, colour=False)[0, ..., :1], 3, axis=-1)).save(gray_rgb)
    media = decode_image(gray_rgb, max_pixels_per_frame=10**6)
    assert media.frames.shape == (1, 48, 64, 1) and media.kind == "still"
    assert media.timing_source == "none" and media.frame_time_ms is None and media.photometric == "RGB"

    colour = tmp_path / "colour.png"
    Image.fromarray(smooth_clip(1, colour=True)[0]).save(colour)
    assert decode_image(colour, max_pixels_per_frame=10**6).frames.shape == (1, 48, 64, 3)

    deep = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)).save(deep)
    media = decode_image(deep, max_pixels_per_frame=10**6)
    assert media.is_grayscale and media.frames[0, :, :, 0].tolist() == [[0, 64], [128, 255]]


def test_image_size_is_checked_before_pixels_are_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.png"
    Image.new("L", (400, 300)).save(path)

    def no_loading(self: Image.Image) -> None:
        raise AssertionError("pixels must not be loaded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_loading)
    with pytest.raises(InvalidMediaError, match="400 x 300 = 120000 pixels exceed max_pixels_per_frame = 1000"):
        decode_image(path, max_pixels_per_frame=1000)


def test_unreadable_image_is_a_decode_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(DecodeError):
        decode_image(path, max_pixels_per_frame=10**6)
