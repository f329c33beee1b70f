"""Every typed error read_cine raises, with messages that say what to do."""

from __future__ import annotations

import shutil
import subprocess
import time
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pydicom
import pytest
from PIL import Image

from labral.datasets.io import dicom_header
from labral.datasets.io.reader import ReadLimits, read_cine
from labral.errors import (
    CorruptPixelDataError,
    LabralError,
    NotACineError,
    NotDicomError,
    NotUltrasoundError,
    OverLimitError,
    UnsupportedMediaError,
    UnsupportedTransferSyntaxError,
)


def test_random_bytes_named_dcm_is_not_dicom(tmp_path):
    path = tmp_path / "scan.dcm"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(NotDicomError, match="not a DICOM file"):
        read_cine(path)


def test_text_file_is_not_dicom():
    with pytest.raises(NotDicomError):
        read_cine(b"patient notes: nothing to see here\n" * 10)


def test_png_is_unsupported_media(tmp_path):
    path = tmp_path / "frame.dcm"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path, format="PNG")
    with pytest.raises(UnsupportedMediaError, match="PNG"):
        read_cine(path)


def test_errors_are_labral_errors_with_codes(tmp_path):
    with pytest.raises(LabralError) as info:
        read_cine(b"\x00" * 300)
    assert info.value.code == "not_dicom"


def test_ct_modality_is_not_ultrasound(write_dicom):
    path = write_dicom("ct.dcm", modality="CT", sop_class="1.2.840.10008.5.1.4.1.1.2")
    with pytest.raises(NotUltrasoundError, match="'CT'"):
        read_cine(path)


def test_single_frame_is_not_a_cine(write_dicom, frames):
    with pytest.raises(NotACineError, match="single frame"):
        read_cine(write_dicom("one.dcm", frames[:1]))


def test_single_frame_us_sop_class_is_not_a_cine(write_dicom, frames):
    path = write_dicom("usimg.dcm", frames[:1], sop_class="1.2.840.10008.5.1.4.1.1.6.1")
    with pytest.raises(NotACineError):
        read_cine(path)


def test_img2dcm_from_jpeg_secondary_capture_is_not_ultrasound(rd, tmp_path, frames):
    jpeg = tmp_path / "still.jpg"
    Image.fromarray(frames[0]).save(jpeg, quality=95)
    out = tmp_path / "still.dcm"
    rd.dcmtk("img2dcm", jpeg, out)
    with pytest.raises(NotUltrasoundError, match="not 'US'"):
        read_cine(out)


def test_img2dcm_with_us_modality_is_not_a_cine(rd, tmp_path, frames):
    jpeg = tmp_path / "still.jpg"
    Image.fromarray(frames[0]).save(jpeg, quality=95)
    out = tmp_path / "still_us.dcm"
    rd.dcmtk("img2dcm", "-k", "Modality=US", jpeg, out)
    with pytest.raises(NotACineError):
        read_cine(out)


def test_missing_decoder_names_the_package(rd, base_dicom, monkeypatch):
    out = base_dicom.with_name("jpeg.dcm")
    rd.dcmtk("dcmcjpeg", "+eb", base_dicom, out)
    fake = SimpleNamespace(is_available=False, missing_dependencies=["pylibjpeg"])
    monkeypatch.setattr(dicom_header, "get_decoder", lambda syntax: fake)
    with pytest.raises(UnsupportedTransferSyntaxError, match="pip install pylibjpeg"):
        read_cine(out)


def test_syntax_unknown_to_pydicom_is_unsupported(base_dicom):
    ds = pydicom.dcmread(base_dicom)
    ds.compress(pydicom.uid.JPEGLSLossless)  # 1.2.840.10008.1.2.4.80
    ds.save_as(base_dicom)
    data = base_dicom.read_bytes()
    # same length, so the meta group length stays right: a syntax no pydicom release knows
    data = data.replace(b"1.2.840.10008.1.2.4.80", b"1.2.840.10008.1.2.4.99", 1)
    with pytest.raises(UnsupportedTransferSyntaxError, match=r"1\.2\.840\.10008\.1\.2\.4\.99"):
        read_cine(data)


def test_truncated_native_pixel_data(base_dicom):
    data = base_dicom.read_bytes()
    with pytest.raises(CorruptPixelDataError, match="truncated"):
        read_cine(data[: len(data) - 3000])


@pytest.mark.filterwarnings("ignore:End of file reached")
def test_truncated_jpeg_pixel_data(rd, base_dicom):
    out = base_dicom.with_name("jpeg.dcm")
    rd.dcmtk("dcmcjpeg", "+eb", base_dicom, out)
    data = out.read_bytes()
    with pytest.raises(CorruptPixelDataError, match="truncated"):
        read_cine(data[: len(data) // 2])


def test_corrupt_jpeg_fragment(rd, base_dicom):
    out = base_dicom.with_name("jpeg.dcm")
    rd.dcmtk("dcmcjpeg", "+eb", base_dicom, out)
    ds = pydicom.dcmread(out)
    fragments = list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=8))
    fragments[3] = b"\xff\xd8" + b"\x00" * 200 + b"\xff\xd9"
    ds.PixelData = pydicom.encaps.encapsulate(fragments)
    ds.save_as(out)
    with pytest.raises(CorruptPixelDataError, match="export it again"):
        read_cine(out)


def test_no_pixel_data(write_dicom):
    path = write_dicom("nopix.dcm")
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(CorruptPixelDataError, match="no Pixel Data"):
        read_cine(path)


def test_100000_declared_frames_fail_fast_without_allocating(write_dicom, frames):
    path = write_dicom("bomb.dcm", frames[:2], number_of_frames=100000)
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(OverLimitError, match="100000 frames"):
        read_cine(path)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 5_000_000  # 100000 x 64 x 80 would be 512 MB


@pytest.mark.parametrize(
    ("limits", "match"),
    [
        (ReadLimits(max_frames=4), "max_frames"),
        (ReadLimits(max_rows=32), "max_rows"),
        (ReadLimits(max_cols=40), "max_cols"),
        (ReadLimits(max_bytes=1000), "max_bytes"),
    ],
)
def test_each_limit_is_enforced_and_named(base_dicom, limits, match):
    with pytest.raises(OverLimitError, match=match):
        read_cine(base_dicom, limits=limits)


def test_decoded_size_limit_checked_from_header(base_dicom):
    ds = pydicom.dcmread(base_dicom)
    ds.compress(pydicom.uid.RLELossless)
    ds.save_as(base_dicom)
    size = base_dicom.stat().st_size
    decoded = 8 * 64 * 80
    assert size < decoded  # the compressed file fits the limit, its decoded pixels do not
    with pytest.raises(OverLimitError, match="decoded"):
        read_cine(base_dicom, limits=ReadLimits(max_bytes=size + 10))


def test_unsupported_source_type():
    with pytest.raises(UnsupportedMediaError, match="path, bytes or a uint8 array"):
        read_cine(12345)  # type: ignore[arg-type]


def test_base_fixture_is_a_valid_us_multiframe_iod(base_dicom):
    """The files every reader test derives from pass dicom3tools' IOD validator."""
    if shutil.which("dciodvfy") is None:
        pytest.skip("dicom3tools' dciodvfy is not installed (apt-get install dicom3tools)")
    result = subprocess.run(["dciodvfy", str(base_dicom)], capture_output=True, text=True)
    report = result.stdout + result.stderr
    assert "Ultrasound Multi-frame" in report or "USMultiFrame" in report
    assert "Error -" not in report
