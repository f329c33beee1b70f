"""Write a synthetic cine clip as a DICOM Ultrasound Multi-frame Image.

The file looks like a scanner export: the tissue region sits inside a larger canvas with a
header text band (burned-in annotation, optional), the Sequence of Ultrasound Regions gives
the region bounds and the physical pixel size in cm, and the timing is stated three ways
(Frame Time, Cine Rate, Recommended Display Frame Rate) with the Frame Increment Pointer
naming Frame Time. Two transfer syntaxes: Explicit VR Little Endian (native pixels) and
JPEG Baseline 1.2.840.10008.1.2.4.50 (one encapsulated fragment per frame, MONOCHROME2).

Every UID and date is derived from the clip's identity (patient, hip, clip) so the same
clip always gives the same file bytes. Identities are synthetic and say so.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    UltrasoundMultiFrameImageStorage,
)

from labral.datasets.io.regions import DATA_TYPE_TISSUE, SPATIAL_FORMAT_2D, UNITS_CM
from labral.datasets.synth.types import SynthClip
from labral.errors import BadConfigError

#: Supported ``syntax`` values -> transfer syntax UID.
SYNTAXES = {"explicit": ExplicitVRLittleEndian, "jpeg": JPEGBaseline8Bit}

MANUFACTURER = "labral-synth"
MODEL_NAME = "SYNTH-HIP L12-5"
SOFTWARE_VERSIONS = "labral-synth 0.1"
#: Rows of the header text band above the tissue region, and the margin around it.
HEADER_ROWS = 24
MARGIN = 8

_FRAME_TIME_TAG = Tag(0x0018, 0x1063)
_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://labral.invalid/synth")


def _uid(*parts: object) -> str:
    """A deterministic 2.25.<UUID as integer> UID (UUID v5 of the identity parts)."""
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, '/'.join(str(p) for p in parts)).int}"


def _canvas_geometry(height: int, width: int) -> tuple[int, int, int, int]:
    """Canvas (rows, cols) and the tissue region's top-left (row, col) inside it.

    Canvas sides are rounded up to multiples of 8 so JPEG blocks never straddle the edge.
    """
    top, left = HEADER_ROWS, MARGIN
    rows = -(-(top + height + MARGIN) // 8) * 8
    cols = -(-(left + width + MARGIN) // 8) * 8
    return rows, cols, top, left


def _header_text(clip: SynthClip, side: str) -> list[str]:
    depth_cm = clip.frames.shape[1] * clip.spacing_mm[0] / 10.0
    return [
        f"LABRAL-SYNTH MSK HIP {side}",
        f"{_center_freq_mhz(clip):.1f}MHz D{depth_cm:.1f}cm {clip.fps:.0f}Hz",
    ]


def render_canvas(clip: SynthClip, *, side: str = "R", burned_in_text: bool = True) -> np.ndarray:
    """Place the tissue frames inside a scanner-like canvas.

    Args:
        clip: the generated clip; ``clip.frames`` is uint8 (T, H, W).
        side: hip side written into the header text.
        burned_in_text: draw the header text band (outside the tissue region).

    Returns:
        uint8 (T, rows, cols) canvas frames; the region sits at
        ``[HEADER_ROWS:HEADER_ROWS+H, MARGIN:MARGIN+W]``.
    """
    t, h, w = clip.frames.shape
    rows, cols, top, left = _canvas_geometry(h, w)
    canvas = np.zeros((t, rows, cols), dtype=np.uint8)
    canvas[:, top : top + h, left : left + w] = clip.frames
    if burned_in_text:
        band = Image.new("L", (cols, top), 0)
        draw = ImageDraw.Draw(band)
        font = ImageFont.load_default()
        for i, line in enumerate(_header_text(clip, side)):
            draw.text((2, 1 + 11 * i), line, fill=220, font=font)
        canvas[:, :top, :] = np.asarray(band, dtype=np.uint8)[None]
    return canvas


def _encode_jpeg_frames(canvas: np.ndarray, quality: int) -> list[bytes]:
    """Compress each uint8 (rows, cols) frame as a baseline 8-bit grayscale JPEG."""
    fragments = []
    for frame in canvas:
        buffer = io.BytesIO()
        Image.fromarray(frame, mode="L").save(buffer, format="JPEG", quality=quality)
        fragments.append(buffer.getvalue())
    return fragments


def _region_sequence(clip: SynthClip, top: int, left: int) -> Sequence:
    """One 2-D tissue region with its bounds (inclusive) and physical deltas in cm."""
    _, h, w = clip.frames.shape
    region = Dataset()
    region.RegionSpatialFormat = SPATIAL_FORMAT_2D
    region.RegionDataType = DATA_TYPE_TISSUE
    region.RegionFlags = 0
    region.RegionLocationMinX0 = left
    region.RegionLocationMinY0 = top
    region.RegionLocationMaxX1 = left + w - 1
    region.RegionLocationMaxY1 = top + h - 1
    region.PhysicalUnitsXDirection = UNITS_CM
    region.PhysicalUnitsYDirection = UNITS_CM
    region.PhysicalDeltaX = float(clip.spacing_mm[1]) / 10.0
    region.PhysicalDeltaY = float(clip.spacing_mm[0]) / 10.0
    region.ReferencePixelX0 = w // 2
    region.ReferencePixelY0 = 0
    freq_mhz = _center_freq_mhz(clip)
    region.TransducerFrequency = int(round(freq_mhz * 1000))  # kHz
    return Sequence([region])


def _center_freq_mhz(clip: SynthClip) -> float:
    """The clip's centre frequency in MHz from its params (7.5 MHz if not recorded).

    Looked up in ``params["overrides"]``, ``params``, ``params["imaging"]`` and
    ``params["anatomy"]`` (where the generator keeps the probe set-up), in that order.
    """
    params = clip.params or {}
    sources = [params.get("overrides"), params, params.get("imaging"), params.get("anatomy")]
    for source in sources:
        value = source.get("center_freq_mhz") if isinstance(source, Mapping) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return 7.5


def build_dataset(
    clip: SynthClip,
    *,
    syntax: str = "jpeg",
    jpeg_quality: int = 90,
    burned_in_text: bool = True,
    patient: Mapping[str, Any] | None = None,
) -> Dataset:
    """Build the DICOM dataset (with file meta) for one clip without writing it.

    Args:
        clip: the generated clip; ``clip.frames`` is uint8 (T, H, W), T >= 1.
        syntax: ``"jpeg"`` (JPEG Baseline, encapsulated) or ``"explicit"`` (Explicit VR LE).
        jpeg_quality: Pillow JPEG quality 1-95 (used for ``"jpeg"`` only).
        burned_in_text: burn a header text band into the pixels outside the region.
        patient: identity of the synthetic subject: ``patient`` (e.g. ``"P0007"``),
            ``side`` (``"R"``/``"L"``), ``clip`` (index within the hip), ``sex``
            (``"F"``/``"M"``/``"O"``), ``age_years``, ``dataset_seed``. Missing keys get
            synthetic defaults.

    Returns:
        A ``pydicom.Dataset`` of SOP class 1.2.840.10008.5.1.4.1.1.3.1 ready to save.

    Raises:
        BadConfigError: unknown ``syntax``, quality outside 1-95, or frames not uint8 (T, H, W).
    """
    _check_options(clip, syntax, jpeg_quality)
    who = dict(patient or {})
    side = str(who.get("side", clip.params.get("side", "R")))
    ds = Dataset()
    _set_identity(ds, who, side)
    _set_cine_image(ds, clip, side, burned_in_text)
    ds.file_meta = _file_meta(ds.SOPInstanceUID, syntax)
    canvas = render_canvas(clip, side=side, burned_in_text=burned_in_text)
    _set_pixel_data(ds, canvas, syntax, int(jpeg_quality))
    return ds


def _check_options(clip: SynthClip, syntax: str, jpeg_quality: int) -> None:
    """Refuse an unknown syntax, a JPEG quality outside 1..95 or frames not uint8 (T, H, W)."""
    if syntax not in SYNTAXES:
        raise BadConfigError(f"formats.dicom_syntax={syntax!r}: use one of {sorted(SYNTAXES)}")
    if not 1 <= int(jpeg_quality) <= 95:
        raise BadConfigError(f"formats.jpeg_quality={jpeg_quality}: use an integer in 1..95")
    frames = clip.frames
    if frames.dtype != np.uint8 or frames.ndim != 3 or frames.shape[0] < 1:
        raise BadConfigError(
            f"clip.frames must be uint8 (T, H, W) with T >= 1; got {frames.dtype} {frames.shape}"
        )


def _set_identity(ds: Dataset, who: Mapping[str, Any], side: str) -> None:
    """Patient, study, series and instance attributes: UIDs, dates and names derived from
    the synthetic subject (``who``), so the same clip always gets the same identity."""
    pid = str(who.get("patient", "P0000"))
    clip_no = int(who.get("clip", 0))
    seed = who.get("dataset_seed", 0)
    # A fake but valid date per patient (2020-01-01 .. 2020-12-28), fixed time per clip.
    day = sum(map(ord, pid + str(seed))) % 360
    date = f"2020{1 + day // 30:02d}{1 + day % 28:02d}"
    time = f"{9 + clip_no % 8:02d}{(7 * clip_no) % 60:02d}00"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "MUSCULOSKELETAL", "0001"]
    ds.SOPClassUID = UltrasoundMultiFrameImageStorage
    ds.SOPInstanceUID = _uid("sop", seed, pid, side, clip_no)
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.StudyDate, ds.SeriesDate, ds.ContentDate = date, date, date
    ds.AcquisitionDateTime = date + time
    ds.StudyTime, ds.SeriesTime, ds.ContentTime = time, time, time
    ds.AccessionNumber = f"SYN{pid[-4:]}"
    ds.Modality = "US"
    ds.Manufacturer = MANUFACTURER
    ds.InstitutionName = "SYNTHETIC DATA - NOT A PATIENT"
    ds.ReferringPhysicianName = "SYNTHETIC^REFERRER"
    ds.StationName = "LABRALSYN01"
    ds.StudyDescription = "SYNTHETIC DYNAMIC HIP US"
    ds.SeriesDescription = f"ANTERIOR OBLIQUE HIP {side} CINE"
    ds.ManufacturerModelName = MODEL_NAME
    ds.PatientName = f"SYNTHETIC^HIP^{pid}"
    ds.PatientID = f"SYN-{pid}"
    ds.PatientBirthDate = ""
    ds.PatientSex = str(who.get("sex", "O"))
    if "age_years" in who:
        ds.PatientAge = f"{int(who['age_years']):03d}Y"
    ds.PatientIdentityRemoved = "NO"  # never real: synthetic, there is nothing to remove
    ds.BodyPartExamined = "HIP"
    ds.DeviceSerialNumber = "SYN0001"
    ds.SoftwareVersions = SOFTWARE_VERSIONS
    ds.StudyInstanceUID = _uid("study", seed, pid)
    ds.SeriesInstanceUID = _uid("series", seed, pid, side)
    ds.StudyID = pid
    ds.SeriesNumber = 1 if side == "R" else 2
    ds.InstanceNumber = clip_no + 1
    ds.PatientOrientation = ""
    ds.Laterality = side


def _set_cine_image(ds: Dataset, clip: SynthClip, side: str, burned_in_text: bool) -> None:
    """Cine timing, the tissue region and the image pixel module of the canvas."""
    frame_count, height, width = clip.frames.shape
    rows, cols, top, left = _canvas_geometry(height, width)
    ds.FrameTime = f"{1000.0 / clip.fps:.12g}"  # DS holds 16 characters
    ds.CineRate = int(round(clip.fps))
    ds.EffectiveDuration = f"{frame_count / clip.fps:.4f}"
    ds.TransducerType = "LINEAR"
    ds.SequenceOfUltrasoundRegions = _region_sequence(clip, top, left)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = frame_count
    ds.FrameIncrementPointer = _FRAME_TIME_TAG
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.BurnedInAnnotation = "YES" if burned_in_text else "NO"
    ds.RecommendedDisplayFrameRate = int(round(clip.fps))
    ds.PreferredPlaybackSequencing = 0  # looping


def _file_meta(sop_instance_uid: str, syntax: str) -> FileMetaDataset:
    """File meta information of an Ultrasound Multi-frame instance in ``syntax``."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.ImplementationClassUID = _uid("labral-synth-implementation")
    meta.ImplementationVersionName = "LABRALSYN01"
    meta.TransferSyntaxUID = SYNTAXES[syntax]
    return meta


def _set_pixel_data(ds: Dataset, canvas: np.ndarray, syntax: str, jpeg_quality: int) -> None:
    """Pixel Data of the uint8 (T, rows, cols) canvas: JPEG fragments or raw bytes."""
    if syntax == "jpeg":
        fragments = _encode_jpeg_frames(canvas, jpeg_quality)
        ratio = canvas.nbytes / max(1, sum(len(f) for f in fragments))
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionRatio = f"{ratio:.2f}"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        ds.PixelData = encapsulate(fragments, has_bot=True)
    else:
        ds.LossyImageCompression = "00"
        ds.PixelData = canvas.tobytes()
    ds["PixelData"].VR = "OB"


def write_cine_dicom(
    clip: SynthClip,
    path: str | Path,
    *,
    syntax: str = "jpeg",
    jpeg_quality: int = 90,
    burned_in_text: bool = True,
    patient: Mapping[str, Any] | None = None,
) -> Path:
    """Write one clip as a DICOM Ultrasound Multi-frame Image file.

    Args:
        clip: the generated clip; ``clip.frames`` is uint8 (T, H, W).
        path: destination file (parent folders are created).
        syntax: ``"jpeg"`` (JPEG Baseline 1.2.840.10008.1.2.4.50) or ``"explicit"``.
        jpeg_quality: Pillow JPEG quality 1-95 (``"jpeg"`` only).
        burned_in_text: burn header text into the canvas outside the tissue region.
        patient: synthetic identity (see :func:`build_dataset`).

    Returns:
        The written path.

    Raises:
        BadConfigError: bad syntax, quality or frames (see :func:`build_dataset`).
    """
    data = encode_cine_dicom(
        clip,
        syntax=syntax,
        jpeg_quality=jpeg_quality,
        burned_in_text=burned_in_text,
        patient=patient,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def encode_cine_dicom(clip: SynthClip, **options: Any) -> bytes:
    """The bytes of the DICOM file :func:`write_cine_dicom` would write (Part 10 format).

    Args:
        clip: the generated clip; ``clip.frames`` is uint8 (T, H, W).
        **options: ``syntax``, ``jpeg_quality``, ``burned_in_text``, ``patient`` as for
            :func:`build_dataset`.

    Returns:
        The complete file content (128-byte preamble, ``DICM``, file meta, data set).

    Raises:
        BadConfigError: bad syntax, quality or frames (see :func:`build_dataset`).
    """
    buffer = io.BytesIO()
    build_dataset(clip, **options).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
