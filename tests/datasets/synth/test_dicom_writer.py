"""The DICOM writer: valid US multi-frame files that read back with the right pixels and facts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit

from labral.datasets.synth.dicom_writer import (
    HEADER_ROWS,
    MANUFACTURER,
    encode_cine_dicom,
    write_cine_dicom,
)
from labral.errors import BadConfigError

US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
WHO = {"patient": "P0007", "side": "L", "clip": 2, "dataset_seed": 5}


def _region_crop(ds: pydicom.Dataset) -> np.ndarray:
    region = ds.SequenceOfUltrasoundRegions[0]
    pixels = ds.pixel_array
    return pixels[
        :,
        region.RegionLocationMinY0 : region.RegionLocationMaxY1 + 1,
        region.RegionLocationMinX0 : region.RegionLocationMaxX1 + 1,
    ]


@pytest.mark.parametrize("syntax", ["explicit", "jpeg"])
def test_header_facts_are_consistent(tmp_path: Path, fake_clip, syntax: str) -> None:
    fake_clip.fps = 19.0  # 1000/19 has no short decimal form: Frame Time must keep precision
    path = write_cine_dicom(fake_clip, tmp_path / "a.dcm", syntax=syntax, patient=WHO)
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == US_MULTIFRAME
    assert ds.file_meta.TransferSyntaxUID == (
        JPEGBaseline8Bit if syntax == "jpeg" else ExplicitVRLittleEndian
    )
    assert ds.Modality == "US" and ds.Manufacturer == MANUFACTURER
    assert int(ds.NumberOfFrames) == fake_clip.frames.shape[0]
    assert 1000.0 / float(ds.FrameTime) == pytest.approx(fake_clip.fps, rel=1e-9)
    assert int(ds.CineRate) == round(fake_clip.fps)
    assert ds.FrameIncrementPointer == Tag(0x0018, 0x1063)
    region = ds.SequenceOfUltrasoundRegions[0]
    _, h, w = fake_clip.frames.shape
    assert region.RegionLocationMaxY1 - region.RegionLocationMinY0 + 1 == h
    assert region.RegionLocationMaxX1 - region.RegionLocationMinX0 + 1 == w
    assert region.RegionLocationMinY0 >= HEADER_ROWS  # the text band sits above the region
    assert region.RegionLocationMaxX1 < ds.Columns and region.RegionLocationMaxY1 < ds.Rows
    assert region.PhysicalUnitsXDirection == 3 and region.PhysicalUnitsYDirection == 3
    assert region.PhysicalDeltaY == pytest.approx(fake_clip.spacing_mm[0] / 10)
    assert region.PhysicalDeltaX == pytest.approx(fake_clip.spacing_mm[1] / 10)
    assert region.TransducerFrequency == 9000  # kHz from params center_freq_mhz=9.0
    assert str(ds.PatientName).startswith("SYNTHETIC^HIP^P0007")
    assert ds.Laterality == "L" and ds.BurnedInAnnotation == "YES"


def test_explicit_pixels_round_trip_exactly(tmp_path: Path, fake_clip) -> None:
    path = write_cine_dicom(fake_clip, tmp_path / "e.dcm", syntax="explicit", patient=WHO)
    ds = pydicom.dcmread(path)
    np.testing.assert_array_equal(_region_crop(ds), fake_clip.frames)
    assert ds.pixel_array[:, :HEADER_ROWS].max() > 100  # burned-in text outside the region


def test_jpeg_pixels_close_and_marked_lossy(tmp_path: Path, fake_clip) -> None:
    path = write_cine_dicom(fake_clip, tmp_path / "j.dcm", syntax="jpeg", jpeg_quality=90)
    ds = pydicom.dcmread(path)
    error = np.abs(_region_crop(ds).astype(int) - fake_clip.frames.astype(int))
    assert error.mean() < 6.0
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    assert ds.LossyImageCompression == "01"
    assert ds.LossyImageCompressionMethod == "ISO_10918_1"
    assert float(ds.LossyImageCompressionRatio) > 1.0
    fragments = list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=8))
    assert len(fragments) == fake_clip.frames.shape[0]
    assert all(f[:2] == b"\xff\xd8" for f in fragments)  # one JPEG per frame


def test_lower_quality_gives_smaller_file(tmp_path: Path, fake_clip) -> None:
    hi = write_cine_dicom(fake_clip, tmp_path / "hi.dcm", jpeg_quality=95)
    lo = write_cine_dicom(fake_clip, tmp_path / "lo.dcm", jpeg_quality=30)
    assert lo.stat().st_size < hi.stat().st_size


def test_no_burned_in_text_leaves_canvas_black(tmp_path: Path, fake_clip) -> None:
    path = write_cine_dicom(fake_clip, tmp_path / "n.dcm", syntax="explicit", burned_in_text=False)
    ds = pydicom.dcmread(path)
    assert ds.BurnedInAnnotation == "NO"
    assert ds.pixel_array[:, :HEADER_ROWS].max() == 0


def test_same_clip_same_bytes_and_distinct_uids(tmp_path: Path, fake_clip) -> None:
    a = write_cine_dicom(fake_clip, tmp_path / "a.dcm", patient=WHO)
    b = write_cine_dicom(fake_clip, tmp_path / "b.dcm", patient=WHO)
    c = write_cine_dicom(fake_clip, tmp_path / "c.dcm", patient={**WHO, "clip": 3})
    assert a.read_bytes() == b.read_bytes() == encode_cine_dicom(fake_clip, patient=WHO)
    da, dc = pydicom.dcmread(a), pydicom.dcmread(c)
    assert da.SOPInstanceUID != dc.SOPInstanceUID
    assert da.SeriesInstanceUID == dc.SeriesInstanceUID  # same hip -> same series
    assert da.StudyInstanceUID == dc.StudyInstanceUID


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [({"syntax": "rle"}, "formats.dicom_syntax"), ({"jpeg_quality": 0}, "formats.jpeg_quality")],
)
def test_bad_arguments_name_the_setting(tmp_path: Path, fake_clip, kwargs, setting) -> None:
    with pytest.raises(BadConfigError, match=setting):
        write_cine_dicom(fake_clip, tmp_path / "x.dcm", **kwargs)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools (dciodvfy) not installed")
@pytest.mark.parametrize("syntax", ["explicit", "jpeg"])
def test_dciodvfy_reports_no_errors(tmp_path: Path, fake_clip, syntax: str) -> None:
    path = write_cine_dicom(fake_clip, tmp_path / "v.dcm", syntax=syntax, patient=WHO)
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    report = result.stdout + result.stderr
    assert "USMultiFrameImage" in report  # it recognised the IOD
    errors = [line for line in report.splitlines() if line.startswith("Error")]
    assert errors == [], report


@pytest.mark.skipif(shutil.which("dcmdump") is None, reason="dcmtk (dcmdump) not installed")
@pytest.mark.parametrize("syntax", ["explicit", "jpeg"])
def test_dcmdump_reads_the_file(tmp_path: Path, fake_clip, syntax: str) -> None:
    path = write_cine_dicom(fake_clip, tmp_path / "d.dcm", syntax=syntax)
    result = subprocess.run(["dcmdump", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "UltrasoundMultiframeImageStorage" in result.stdout
    assert "(0028,0009) AT (0018,1063)" in result.stdout
    assert ("JPEG Baseline" in result.stdout) == (syntax == "jpeg")
