"""Fixtures for reader tests: a small ultrasound cine and a tiny DICOM writer of our own.

The writer is deliberately independent of ``labral.datasets.synth.dicom_writer`` so the
reader is tested against files that labral's own writer did not shape; dcmtk then makes
the transfer-syntax variants.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

#: Identity written into every test file; none of it may leak into a Clip.
PATIENT = {
    "PatientName": "Doe^Jane^Secret",
    "PatientID": "PID-4711-XYZ",
    "PatientBirthDate": "19700123",
    "InstitutionName": "St Example Hospital",
    "ReferringPhysicianName": "House^Gregory",
    "AccessionNumber": "ACC998877",
}
#: Tissue region (inclusive bounds, DICOM convention) inside the 64 x 80 frames.
REGION = {"x0": 12, "y0": 8, "x1": 67, "y1": 55}
T, H, W = 8, 64, 80


def make_frames(t: int = T, h: int = H, w: int = W) -> np.ndarray:
    """uint8 (T, H, W): smooth tissue with a moving bright disc inside REGION, black outside,
    a burned-in bright text bar at the top left and a caliper mark at the bottom right."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = np.zeros((t, h, w), dtype=np.uint8)
    for i in range(t):
        tissue = 60 + 100 * (yy / h) + 20 * np.sin(xx / 7.0 + i / 2.0)
        disc = 80 * np.exp(-((yy - 30) ** 2 + (xx - 25 - 3 * i) ** 2) / 40.0)
        image = np.clip(tissue + disc, 0, 255)
        frame = np.zeros((h, w), np.float32)
        r = REGION
        frame[r["y0"] : r["y1"] + 1, r["x0"] : r["x1"] + 1] = image[
            r["y0"] : r["y1"] + 1, r["x0"] : r["x1"] + 1
        ]
        frame[1:4, 2:30] = 255  # burned-in text line
        frame[h - 4 : h - 2, w - 8 : w - 2] = 250  # caliper mark
        frames[i] = np.rint(frame).astype(np.uint8)
    frames[0, 10, 14] = 255  # make the full 0..255 range present (16-bit scaling test)
    return frames


def region_item(
    x0: int, y0: int, x1: int, y1: int, *, fmt: int = 1, dtype: int = 1, delta_cm: float = 0.01
) -> Dataset:
    """One Sequence of Ultrasound Regions item with cm units."""
    item = Dataset()
    item.RegionSpatialFormat = fmt
    item.RegionDataType = dtype
    item.RegionFlags = 0
    item.RegionLocationMinX0 = x0
    item.RegionLocationMinY0 = y0
    item.RegionLocationMaxX1 = x1
    item.RegionLocationMaxY1 = y1
    item.PhysicalUnitsXDirection = 3
    item.PhysicalUnitsYDirection = 3
    item.PhysicalDeltaX = delta_cm
    item.PhysicalDeltaY = delta_cm * 1.5
    return item


def build_dataset(
    frames: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    regions: list[Dataset] | None = None,
    timing: dict[str, Any] | None = None,
    modality: str = "US",
    sop_class: str = "1.2.840.10008.5.1.4.1.1.3.1",
    number_of_frames: int | None = None,
) -> Dataset:
    """An Explicit VR Little Endian US multi-frame data set holding ``frames`` as stored.

    Args:
        frames: stored pixel values, uint8/uint16 (T, H, W) or uint8 (T, H, W, 3) colour
            (colour is written interleaved; convert planar yourself).
        photometric: Photometric Interpretation to declare.
        regions: Sequence of Ultrasound Regions items; default one tissue region = REGION.
        timing: DICOM keywords -> values; default ``{"FrameTime": 40.0}`` (25 fps).
        modality, sop_class, number_of_frames: header overrides for error tests.
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.Manufacturer = "TestVendor"
    ds.ManufacturerModelName = "Probe9000"
    for keyword, value in PATIENT.items():
        setattr(ds, keyword, value)
    ds.BurnedInAnnotation = "YES"
    # remaining Type 1/2 attributes of the US Multi-frame IOD, so dciodvfy accepts the file
    ds.ImageType = ["ORIGINAL", "PRIMARY", "MUSCULOSKELETAL", "0001"]
    ds.PatientSex = "F"
    ds.StudyDate, ds.StudyTime, ds.StudyID = "20240101", "101500", "1"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.Laterality, ds.PatientOrientation = "R", ""
    ds.NumberOfFrames = number_of_frames or frames.shape[0]
    ds.Rows, ds.Columns = int(frames.shape[1]), int(frames.shape[2])
    colour = frames.ndim == 4
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    bits = 16 if frames.dtype == np.uint16 else 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = 0
    ds.FrameIncrementPointer = (0x0018, 0x1063)
    for keyword, value in (timing if timing is not None else {"FrameTime": 40.0}).items():
        setattr(ds, keyword, value)
    if regions is None:
        regions = [region_item(**REGION)]
    if regions:
        ds.SequenceOfUltrasoundRegions = regions
    ds.PixelData = np.ascontiguousarray(frames).tobytes()
    return ds


@pytest.fixture
def frames() -> np.ndarray:
    """The reference grey clip, uint8 (8, 64, 80)."""
    return make_frames()


@pytest.fixture
def expected_crop(frames: np.ndarray) -> np.ndarray:
    """What read_cine should return for the base file: frames cropped to REGION."""
    r = REGION
    return frames[:, r["y0"] : r["y1"] + 1, r["x0"] : r["x1"] + 1]


@pytest.fixture
def write_dicom(tmp_path: Path) -> Callable[..., Path]:
    """``write_dicom(name, frames=None, **build_dataset kwargs) -> Path``."""

    def _write(name: str = "base.dcm", stored: np.ndarray | None = None, **kwargs: Any) -> Path:
        ds = build_dataset(make_frames() if stored is None else stored, **kwargs)
        path = tmp_path / name
        ds.save_as(path, enforce_file_format=True)
        return path

    return _write


@pytest.fixture
def base_dicom(write_dicom: Callable[..., Path]) -> Path:
    """The base MONOCHROME2 Explicit VR Little Endian cine with one tissue region."""
    return write_dicom()


def dcmtk(tool: str, *args: str | Path) -> None:
    """Run a dcmtk tool, skipping the calling test when it is not installed."""
    if shutil.which(tool) is None:
        pytest.skip(f"dcmtk's {tool} is not installed (apt-get install dcmtk)")
    subprocess.run([tool, *map(str, args)], check=True, capture_output=True, timeout=60)


def identity_strings() -> list[str]:
    """Every identifying value written into test files, for leak checks."""
    return [v.split("^")[0] for v in PATIENT.values()] + list(PATIENT.values())


def dataset_of(path: Path) -> Dataset:
    """Full read with pydicom (for assertions on what a tool wrote)."""
    return pydicom.dcmread(path)


@pytest.fixture
def rd() -> SimpleNamespace:
    """The helpers above as one namespace (test modules cannot import conftest directly)."""
    return SimpleNamespace(
        make_frames=make_frames,
        region_item=region_item,
        build_dataset=build_dataset,
        dcmtk=dcmtk,
        identity_strings=identity_strings,
        dataset_of=dataset_of,
        REGION=REGION,
        PATIENT=PATIENT,
    )
