"""Read an ultrasound cine DICOM object into a :class:`~labral.datasets.clip.Clip`.

Order of work, so a hostile file fails before it costs memory: parse the header, leaving
the pixel data unread (``defer_size``); check modality, frame count and
:class:`ReadLimits`; check that a decoder for the transfer syntax is installed; only then
read and decode the pixels to grey (:mod:`labral.datasets.dicom_pixels`), pick the timing
and crop to the tissue region.
"""

from __future__ import annotations

import hashlib
import io
import math
from typing import Any, BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import get_decoder
from pydicom.uid import UID

from labral.datasets.clip import Clip
from labral.datasets.dicom_pixels import check_pixel_length, decode_gray, pixel_bytes
from labral.datasets.limits import ReadLimits
from labral.datasets.regions import locate_tissue_region, regions_from_dataset
from labral.datasets.video_reader import decode_gray_video
from labral.errors import (
    CorruptPixelDataError,
    NotACineError,
    NotDicomError,
    NotUltrasoundError,
    UnsupportedMediaError,
    UnsupportedTransferSyntaxError,
)

US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
US_MULTIFRAME_RETIRED = "1.2.840.10008.5.1.4.1.1.3"
US_SINGLE_FRAME = ("1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.6")

#: What to ``pip install`` for each compressed transfer syntax family.
_PLUGIN_HINTS = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg pylibjpeg-libjpeg (or pillow)",
    "1.2.840.10008.1.2.4.51": "pylibjpeg pylibjpeg-libjpeg (or pillow)",
    "1.2.840.10008.1.2.4.57": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pyjpegls (or pylibjpeg pylibjpeg-libjpeg)",
    "1.2.840.10008.1.2.4.81": "pyjpegls (or pylibjpeg pylibjpeg-libjpeg)",
    "1.2.840.10008.1.2.4.90": "pylibjpeg pylibjpeg-openjpeg (or pillow)",
    "1.2.840.10008.1.2.4.91": "pylibjpeg pylibjpeg-openjpeg (or pillow)",
    "1.2.840.10008.1.2.4.201": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg pylibjpeg-openjpeg",
}
#: MPEG-2, MPEG-4 AVC/H.264 and HEVC/H.265 transfer syntaxes: the fragments together hold
#: one video bit stream, which PyAV (FFmpeg) decodes; pydicom has no decoder for them.
VIDEO_SYNTAXES = frozenset(
    f"1.2.840.10008.1.2.4.{suffix}"
    for suffix in (
        "100", "100.1", "101", "101.1", "102", "102.1", "103", "103.1",
        "104", "104.1", "105", "105.1", "106", "106.1", "107", "108",
    )
)  # fmt: skip


def instance_hash(sop_instance_uid: str | None) -> str | None:
    """SHA-256 hex digest of the SOP Instance UID (a stable, non-identifying key)."""
    if not sop_instance_uid:
        return None
    return hashlib.sha256(str(sop_instance_uid).encode("ascii", "replace")).hexdigest()


#: Elements larger than this (the pixel data, big lookup tables) stay on disk until used.
DEFER_BYTES = 64 * 1024


def _read_dataset(fileobj: BinaryIO) -> Dataset:
    """Parse the data set once, leaving the pixel data unread until it is accessed."""
    errors = (InvalidDicomError, EOFError, ValueError, KeyError, OSError, TypeError)
    try:
        fileobj.seek(0)
        ds = pydicom.dcmread(fileobj, defer_size=DEFER_BYTES, force=True)
        if len(ds) == 0:  # pydicom gives up on a file that ends inside encapsulated pixels
            fileobj.seek(0)
            if len(pydicom.dcmread(fileobj, stop_before_pixels=True, force=True)) > 0:
                raise CorruptPixelDataError(
                    "the file ends inside its Pixel Data; it is truncated: export it again"
                )
        return ds
    except errors as error:
        raise NotDicomError(
            f"the data could not be parsed as DICOM ({type(error).__name__}); send an "
            "ultrasound cine as a DICOM Part 10 file, an MP4/AVI/MOV export or a .npy array"
        ) from error


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid:
        return UID(str(uid))
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if implicit:
        return UID("1.2.840.10008.1.2")
    return UID("1.2.840.10008.1.2.1" if little else "1.2.840.10008.1.2.2")


def _check_is_us_cine(ds: Dataset) -> int:
    """Return the declared frame count after checking modality and multi-frame-ness."""
    sop_class = str(ds.get("SOPClassUID", ""))
    modality = str(ds.get("Modality", "") or "").upper()
    is_us_class = sop_class in (US_MULTIFRAME, US_MULTIFRAME_RETIRED, *US_SINGLE_FRAME)
    if modality != "US" and not (modality == "" and is_us_class):
        name = modality or "missing"
        raise NotUltrasoundError(
            f"the DICOM object's Modality is {name!r}, not 'US'; labral reads ultrasound "
            "cine clips only (export the hip ultrasound cine from the scanner or PACS)"
        )
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError) as error:
        raise CorruptPixelDataError("Number of Frames (0028,0008) is not a number") from error
    if sop_class in US_SINGLE_FRAME or frames <= 1:
        raise NotACineError(
            f"the ultrasound object holds a single frame ({frames} declared); the dynamic "
            "sign needs a cine clip: export the Ultrasound Multi-frame (cine) object instead"
        )
    return frames


def _check_decoder(syntax: UID) -> None:
    hint = _PLUGIN_HINTS.get(str(syntax), "")
    try:
        decoder = get_decoder(syntax)
    except (NotImplementedError, ValueError) as error:  # ValueError: unknown to this pydicom
        raise UnsupportedTransferSyntaxError(
            f"no decoder exists in pydicom for transfer syntax {syntax} ({syntax.name}); "
            "re-export the cine uncompressed or as JPEG (e.g. with dcmtk's dcmconv/dcmcjpeg), "
            "or as an MP4 file"
        ) from error
    if not decoder.is_available:
        package = hint or ", ".join(getattr(decoder, "missing_dependencies", [])) or "a plugin"
        raise UnsupportedTransferSyntaxError(
            f"no installed decoder handles transfer syntax {syntax} ({syntax.name}); "
            f"install one with: pip install {package}"
        )


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _decode_video_pixels(
    ds: Dataset, frames: int, limits: ReadLimits
) -> tuple[np.ndarray, list[str]]:
    """MPEG-2/H.264/HEVC pixel data -> grey uint8 (T, H, W) through PyAV."""
    try:
        stream = b"".join(pydicom.encaps.generate_fragments(ds.PixelData))
        gray, _, _, warnings = decode_gray_video(
            io.BytesIO(stream), limits=limits, media="DICOM MPEG"
        )
    except UnsupportedMediaError as error:
        raise CorruptPixelDataError(
            f"the MPEG pixel data could not be decoded ({error.message})"
        ) from error
    except (ValueError, KeyError, EOFError) as error:
        raise CorruptPixelDataError(
            f"the encapsulated MPEG pixel data is malformed ({error}); export it again"
        ) from error
    if gray.shape[0] != frames:
        warnings.append(f"the header declares {frames} frames but {gray.shape[0]} decoded")
    return gray, warnings


def _positive(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def frame_rate(ds: Dataset, default_fps: float) -> tuple[float, str, list[str]]:
    """Frames per second from the header, in order of trust.

    Frame Time (0018,1063) ms; Frame Time Vector (0018,1065), mean of the increments after a
    leading 0; Cine Rate (0018,0040); Recommended Display Frame Rate (0008,2144).

    Returns:
        ``(fps, tag_name_used, warnings)``; ``default_fps`` with a warning when none is valid.
    """
    warnings: list[str] = []
    frame_time = _positive(ds.get("FrameTime"))
    if frame_time:
        return 1000.0 / frame_time, "FrameTime", warnings
    vector = ds.get("FrameTimeVector")
    if vector is not None:
        items = list(vector) if isinstance(vector, MultiValue | list | tuple) else [vector]
        values = [v for v in (_number(item) for item in items) if v is not None]
        if values and values[0] == 0:
            values = values[1:]
        mean = _positive(np.mean(values)) if values else None
        if mean:
            return 1000.0 / mean, "FrameTimeVector", warnings
        warnings.append("Frame Time Vector has no positive increments; ignored")
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        fps = _positive(ds.get(keyword))
        if fps:
            return fps, keyword, warnings
    warnings.append(
        f"no frame timing in the header (Frame Time, Frame Time Vector, Cine Rate, Recommended "
        f"Display Frame Rate); assumed {default_fps} frames/s"
    )
    return float(default_fps), "default", warnings


def read_dicom(fileobj: BinaryIO, *, limits: ReadLimits, default_fps: float) -> Clip:
    """Read a DICOM ultrasound cine from a seekable binary file object.

    Args:
        fileobj: seekable binary stream positioned anywhere (it is rewound).
        limits: checked from the header before any pixel data is read.
        default_fps: frame rate used (with a warning) when the header has no timing.

    Returns:
        A Clip: uint8 (T, H, W) grey frames cropped to the tissue region.

    Raises:
        NotDicomError, NotUltrasoundError, NotACineError, OverLimitError,
        UnsupportedTransferSyntaxError, CorruptPixelDataError.
    """
    ds = header = _read_dataset(fileobj)  # pixel data deferred: nothing decoded yet
    if not any(k in header for k in ("SOPClassUID", "Modality", "Rows")):
        raise NotDicomError(
            "the data parsed as DICOM holds no SOP Class, Modality or image attributes; "
            "send an ultrasound cine DICOM file"
        )
    frames = _check_is_us_cine(header)
    try:
        rows, cols = int(header.Rows), int(header.Columns)
        samples = int(header.get("SamplesPerPixel", 1))
        bits = int(header.get("BitsAllocated", 8))
    except (AttributeError, TypeError, ValueError) as error:
        raise CorruptPixelDataError(
            "Rows, Columns or Bits Allocated is missing or not a number in the header"
        ) from error
    limits.check_shape(frames, rows, cols, samples, max(1, bits // 8))
    syntax = _transfer_syntax(header)
    is_video = str(syntax) in VIDEO_SYNTAXES
    if not is_video:
        _check_decoder(syntax)

    if not getattr(ds, "file_meta", None) or "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta = getattr(ds, "file_meta", None) or pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = syntax
    if "PixelData" not in ds:
        raise CorruptPixelDataError("the DICOM object has no Pixel Data (7FE0,0010)")
    pixels = pixel_bytes(ds, fileobj, syntax)
    if pixels is None or len(pixels) == 0:
        raise CorruptPixelDataError("the DICOM object has no Pixel Data (7FE0,0010)")
    video_warnings: list[str] = []
    if is_video:
        gray, video_warnings = _decode_video_pixels(ds, frames, limits)
        decoded_pi = "luma"
    else:
        check_pixel_length(ds, syntax, frames, pixels)
        gray, decoded_pi = decode_gray(ds, syntax, frames, pixels)

    fps, fps_source, warnings = frame_rate(ds, default_fps)
    warnings = video_warnings + warnings
    box, spacing, region, region_warnings = locate_tissue_region(gray, regions_from_dataset(ds))
    y0, y1, x0, x1 = box
    source = {
        "format": "dicom",
        "modality": str(ds.get("Modality", "US")),
        "sop_class_uid": str(ds.get("SOPClassUID", "")),
        "transfer_syntax_uid": str(syntax),
        "photometric": str(ds.get("PhotometricInterpretation", "")),
        "decoded_photometric": decoded_pi,
        "bits_allocated": bits,
        "manufacturer": str(ds.get("Manufacturer", "") or ""),
        "model": str(ds.get("ManufacturerModelName", "") or ""),
        "original": [int(v) for v in gray.shape] if is_video else [frames, rows, cols],
        "instance_hash": instance_hash(ds.get("SOPInstanceUID")),
        "fps_source": fps_source,
        "region": region,
    }
    return Clip(
        frames=np.array(gray[:, y0:y1, x0:x1], dtype=np.uint8, order="C", copy=True),
        fps=float(fps),
        spacing_mm=spacing,
        source=source,
        warnings=warnings + region_warnings,
    )
