"""The tests' one DICOM writer: US multi-frame cines (and bad inputs) built with pydicom alone.

It is deliberately independent of ``labral.datasets.synth.dicom_writer``, so the reader and
the service are tested against files that labral's own writer did not shape. Every header
attribute a test changes is an argument of :func:`cine_dataset`; :func:`encode` re-encodes a
data set in another transfer syntax (JPEG Baseline with Pillow, the lossless ones with
pydicom's encoders, implicit VR by relabelling).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
US_SINGLE = "1.2.840.10008.5.1.4.1.1.6.1"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
#: Identity written into every test file; none of it may leak into a Clip, a log or a table.
PATIENT = {
    "PatientName": "Doe^Jane^Secret",
    "PatientID": "PID-4711-XYZ",
    "PatientBirthDate": "19700123",
    "InstitutionName": "St Example Hospital",
    "ReferringPhysicianName": "House^Gregory",
    "AccessionNumber": "ACC998877",
}
#: syntax name -> transfer syntax :func:`encode` writes
SYNTAXES = {
    "explicit": ExplicitVRLittleEndian,
    "implicit": ImplicitVRLittleEndian,
    "jpeg": JPEGBaseline8Bit,
    "rle": RLELossless,
    "jpegls": JPEGLSLossless,
    "j2k": JPEG2000Lossless,
}


def region_item(
    x0: int,
    y0: int,
    x1: int,
    y1: int,
    *,
    fmt: int = 1,
    dtype: int = 1,
    delta_cm: float = 0.01,
    delta_y_cm: float | None = None,
) -> Dataset:
    """One Sequence of Ultrasound Regions item (inclusive bounds) with cm units.

    The pixel spacing is ``delta_cm`` across and ``delta_y_cm`` (default 1.5 * ``delta_cm``,
    so a reader that swaps the axes is caught) down.
    """
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
    item.PhysicalDeltaY = delta_cm * 1.5 if delta_y_cm is None else delta_y_cm
    return item


def whole_frame_region(frames: np.ndarray, spacing_mm: float = 0.3) -> Dataset:
    """A tissue region covering every pixel of ``frames`` (T, H, W), square pixels."""
    cm = spacing_mm / 10.0
    height, width = frames.shape[1:3]
    return region_item(0, 0, width - 1, height - 1, delta_cm=cm, delta_y_cm=cm)


def cine_dataset(
    frames: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    regions: list[Dataset] | None = None,
    timing: dict[str, Any] | None = None,
    modality: str = "US",
    sop_class: str = US_MULTIFRAME,
    number_of_frames: int | None = None,
    identity: dict[str, str] | None = None,
) -> Dataset:
    """An Explicit VR Little Endian US multi-frame data set holding ``frames`` as stored.

    Args:
        frames: stored pixel values, uint8/uint16 (T, H, W) or uint8 (T, H, W, 3) colour
            (colour is written interleaved; convert planar yourself).
        photometric: Photometric Interpretation to declare.
        regions: Sequence of Ultrasound Regions items; None is one tissue region over the
            whole frame (0.3 mm pixels), ``[]`` writes no sequence.
        timing: DICOM keywords -> values; default ``{"FrameTime": 40.0}`` (25 fps).
        modality, sop_class, number_of_frames: header overrides for error tests.
        identity: patient and study keywords -> values; default :data:`PATIENT`.
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
    for keyword, value in (PATIENT if identity is None else identity).items():
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
        regions = [whole_frame_region(frames)]
    if regions:
        ds.SequenceOfUltrasoundRegions = regions
    ds.PixelData = np.ascontiguousarray(frames).tobytes()
    return ds


def _jpeg_fragments(ds: Dataset, quality: int) -> list[bytes]:
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), ds.Rows, ds.Columns)
    fragments = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame.astype(np.uint8)).save(buffer, "JPEG", quality=quality)
        fragments.append(buffer.getvalue())
    return fragments


def encode(ds: Dataset, syntax: str, jpeg_quality: int = 90) -> Dataset:
    """Re-encode a grey uint8 Explicit VR data set in place in ``syntax`` (see :data:`SYNTAXES`)."""
    if syntax not in SYNTAXES:
        raise ValueError(f"unknown syntax {syntax!r}; use one of {sorted(SYNTAXES)}")
    if syntax == "jpeg":
        ds.PixelData = encapsulate(_jpeg_fragments(ds, jpeg_quality))
        ds["PixelData"].VR = "OB"
        ds.LossyImageCompression = "01"
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    elif syntax == "implicit":
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    elif syntax != "explicit":
        ds.compress(SYNTAXES[syntax])
    return ds


def write_dicom(path: Path, frames: np.ndarray, syntax: str = "explicit", **header: Any) -> Path:
    """Write :func:`cine_dataset` of ``frames`` (``header``: its keywords) in ``syntax``."""
    ds = encode(cine_dataset(frames, **header), syntax)
    ds.save_as(path, enforce_file_format=True)
    return path


def dicom_bytes(frames: np.ndarray, syntax: str = "explicit", **header: Any) -> bytes:
    """The file :func:`write_dicom` would write, as bytes."""
    buffer = io.BytesIO()
    encode(cine_dataset(frames, **header), syntax).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
