"""Video exports (MP4, AVI, MOV, MKV via PyAV), NumPy arrays, and that no identity leaks."""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import numpy as np
import pytest

from labral.datasets.io.reader import ReadLimits, read_cine, sniff_format
from labral.errors import (
    CorruptPixelDataError,
    NotACineError,
    OverLimitError,
    UnsupportedMediaError,
)

PAD = 16  # black margin around the image in the video exports


def _padded(frames: np.ndarray) -> np.ndarray:
    """The tissue crop inside a black margin, with a burned-in text line in the margin."""
    t, h, w = frames.shape
    out = np.zeros((t, h + 2 * PAD, w + 2 * PAD), np.uint8)
    out[:, PAD : PAD + h, PAD : PAD + w] = frames
    out[:, 3:6, 4:60] = 255
    return out


def write_video(
    path: Path, frames: np.ndarray, fps: int, *, fmt: str, codec: str, pix_fmt: str
) -> Path:
    """Encode uint8 (T, H, W) grey frames with PyAV."""
    with av.open(str(path), mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:]
        stream.pix_fmt = pix_fmt
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="gray")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture
def tissue(expected_crop: np.ndarray) -> np.ndarray:
    """uint8 (8, 48, 56): the tissue crop of the reference clip."""
    return expected_crop


@pytest.mark.parametrize(
    ("name", "fmt", "codec", "pix_fmt", "fps", "kind", "tolerance"),
    [
        ("clip.mp4", "mp4", "libx264", "yuv420p", 25, "mp4", 4.0),
        ("clip.mov", "mov", "libx264", "yuv420p", 30, "mp4", 4.0),
        ("clip.avi", "avi", "mjpeg", "yuvj420p", 15, "avi", 4.0),
        ("clip.mkv", "matroska", "ffv1", "gray", 20, "matroska", 0.0),
    ],
)
def test_video_exports(tmp_path, tissue, name, fmt, codec, pix_fmt, fps, kind, tolerance):
    path = write_video(tmp_path / name, _padded(tissue), fps, fmt=fmt, codec=codec, pix_fmt=pix_fmt)
    assert sniff_format(path.read_bytes()[:132]) == kind
    clip = read_cine(path)
    assert clip.fps == pytest.approx(fps, rel=1e-3)
    assert clip.num_frames == 8
    assert clip.source["format"] == kind
    assert clip.spacing_mm is None
    # the black margin and the text in it are cropped away (allow codec blur at edges)
    y0, y1, x0, x1 = clip.source["region"]["bounds_yx"]
    assert abs(y0 - PAD) <= 2 and abs(x0 - PAD) <= 2
    assert abs((y1 - y0) - tissue.shape[1]) <= 3 and abs((x1 - x0) - tissue.shape[2]) <= 3
    assert any("cropped the video" in w for w in clip.warnings)
    sy, sx = PAD - y0, PAD - x0
    inner = clip.frames[:, sy + 2 : sy + 46, sx + 2 : sx + 54].astype(float)
    assert np.abs(inner - tissue[:, 2:46, 2:54]).mean() <= max(tolerance, 0.0) + 1e-9


def test_video_from_bytes_matches_path(tmp_path, tissue):
    path = write_video(
        tmp_path / "a.mp4", _padded(tissue), 25, fmt="mp4", codec="libx264", pix_fmt="yuv420p"
    )
    assert np.array_equal(read_cine(path).frames, read_cine(path.read_bytes()).frames)


def test_video_frame_limit_from_metadata(tmp_path, tissue):
    path = write_video(
        tmp_path / "a.mp4", tissue, 25, fmt="mp4", codec="libx264", pix_fmt="yuv420p"
    )
    with pytest.raises(OverLimitError, match="8 frames"):
        read_cine(path, limits=ReadLimits(max_frames=5))


def test_video_without_frame_count_stops_decoding_at_the_limit(tmp_path, tissue):
    path = write_video(tmp_path / "a.mkv", tissue, 25, fmt="matroska", codec="ffv1", pix_fmt="gray")
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 0  # Matroska does not declare a count
    with pytest.raises(OverLimitError, match="more than 5 frames"):
        read_cine(path, limits=ReadLimits(max_frames=5))


def test_video_size_limit(tmp_path, tissue):
    path = write_video(
        tmp_path / "a.mp4", tissue, 25, fmt="mp4", codec="libx264", pix_fmt="yuv420p"
    )
    with pytest.raises(OverLimitError, match="max_cols"):
        read_cine(path, limits=ReadLimits(max_cols=50))


def test_mp4_cut_before_its_index_cannot_be_opened(tmp_path, tissue):
    path = write_video(
        tmp_path / "a.mp4", tissue, 25, fmt="mp4", codec="libx264", pix_fmt="yuv420p"
    )
    with pytest.raises(UnsupportedMediaError, match="could not be opened"):
        read_cine(path.read_bytes()[:200])  # PyAV writes the moov index at the end


def test_damaged_mov_raises_corrupt_pixel_data(tmp_path, tissue):
    frames = np.concatenate([tissue] * 4)  # 32 frames, lossless, size known per frame
    path = write_video(tmp_path / "a.mov", frames, 25, fmt="mov", codec="mjpeg", pix_fmt="yuvj420p")
    data = path.read_bytes()
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 32
    moov = data.rfind(b"moov") - 4
    # keep the index (at the end) but zero the second half of the frame data
    damaged = data[: moov // 2] + b"\x00" * (moov - moov // 2) + data[moov:]
    with pytest.raises(CorruptPixelDataError):
        read_cine(damaged)


def test_numpy_grey_array(frames):
    clip = read_cine(frames, default_fps=17.0)
    assert np.array_equal(clip.frames, frames)
    assert clip.frames is not frames
    assert clip.fps == 17.0
    assert clip.source["format"] == "array"


def test_numpy_rgb_array_uses_bt601_luma():
    rgb = np.zeros((3, 4, 5, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 200, 90
    clip = read_cine(rgb)
    assert np.all(clip.frames == round(0.299 * 10 + 0.587 * 200 + 0.114 * 90))


def test_npy_file(tmp_path, frames):
    path = tmp_path / "clip.bin"  # the name does not matter, the content does
    np.save(path.with_suffix(".npy"), frames)
    path.with_suffix(".npy").rename(path)
    clip = read_cine(path)
    assert np.array_equal(clip.frames, frames)
    assert clip.source["format"] == "npy"


def test_npy_limits_checked_from_its_header(tmp_path):
    path = tmp_path / "big.npy"
    big = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(3000, 4, 4))
    del big
    with pytest.raises(OverLimitError, match="3000 frames"):
        read_cine(path)


@pytest.mark.parametrize(
    ("array", "error"),
    [
        (np.zeros((4, 8, 8), np.float32), UnsupportedMediaError),
        (np.zeros((8, 8), np.uint8), UnsupportedMediaError),
        (np.zeros((1, 8, 8), np.uint8), NotACineError),
    ],
)
def test_bad_arrays(array, error):
    with pytest.raises(error):
        read_cine(array)


def test_no_identity_in_source_or_warnings(rd, write_dicom, base_dicom):
    clips = [
        read_cine(base_dicom),
        read_cine(write_dicom("nt.dcm", timing={}, regions=[])),  # warnings present
    ]
    needles = [s.lower() for s in rd.identity_strings()]
    for clip in clips:
        text = (json.dumps(clip.source) + json.dumps(clip.warnings) + repr(clip)).lower()
        for needle in needles:
            assert needle not in text
        assert len(clip.source["instance_hash"]) == 64
    assert any(clips[1].warnings)


def test_identity_not_in_error_messages(write_dicom, frames):
    from labral.errors import LabralError

    with pytest.raises(LabralError) as info:
        read_cine(write_dicom("one.dcm", frames[:1], modality="US"))
    assert "Doe" not in str(info.value) and "PID-4711" not in str(info.value)


def test_sniffing_ignores_the_file_name(tmp_path, base_dicom, tissue):
    disguised = tmp_path / "movie.mp4"
    disguised.write_bytes(base_dicom.read_bytes())
    assert read_cine(disguised).source["format"] == "dicom"
    buffer = io.BytesIO()
    np.save(buffer, tissue)
    assert read_cine(buffer.getvalue()).source["format"] == "npy"
