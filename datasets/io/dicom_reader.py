"""Read an ultrasound cine DICOM object into a :class:`~labral.datasets.io.clip.Clip`.

Order of work, so a hostile file fails before it costs memory: parse the header, leaving
the pixel data unread (``defer_size``); check modality, frame count and
:class:`ReadLimits`; check that a decoder for the transfer syntax is installed; only then
read and decode the pixels to grey (:mod:`labral.datasets.io.dicom_pixels`), pick the timing
and crop to the tissue region.
"""

from __future__ import annotations

import hashlib
import io
from typing import BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag
from pydicom.uid import UID
from pydicom.values import converters

from labral.datasets.io.clip import Clip
from labral.datasets.io.dicom_header import (
    character_sets,
    frame_rate,
    read_header,
    regions_from_header,
)
from labral.datasets.io.dicom_pixels import check_pixel_length, decode_gray, pixel_bytes
from labral.datasets.io.limits import ReadLimits
from labral.datasets.io.regions import locate_tissue_region
from labral.datasets.io.video_reader import decode_gray_video
from labral.errors import (
    CorruptPixelDataError,
    NotDicomError,
    UnsupportedMediaError,
)


def instance_hash(sop_instance_uid: str | None) -> str | None:
    """SHA-256 hex digest of the SOP Instance UID (a stable, non-identifying key)."""
    if not sop_instance_uid:
        return None
    return hashlib.sha256(str(sop_instance_uid).encode("ascii", "replace")).hexdigest()


#: Elements larger than this (the pixel data, big lookup tables) stay on disk until used.
DEFER_BYTES = 64 * 1024


def _not_file_meta(tag: BaseTag, vr: str | None, length: int) -> bool:
    return tag.group != 2


def _parse_plain_part10(fileobj: BinaryIO) -> FileDataset | None:
    """``dcmread`` for the usual file, in about 60% of its time; None for anything else.

    The usual file: a preamble and ``DICM``, an Explicit VR Little Endian file meta group
    naming a transfer syntax that is not deflated, then the data set. pydicom's own readers
    (``read_dataset``, ``FileMetaDataset``, ``FileDataset``) parse it, without the steps of
    ``dcmread`` such a file never needs: the command-set probe, the VR sniffing of a meta
    group without a transfer syntax, the checks that convert file meta elements. Anything
    else (no preamble, implicit meta, a command set, deflate, a private syntax) returns
    None, and :func:`_read_dataset` hands the file to ``dcmread``.
    """
    fileobj.seek(0)
    preamble = fileobj.read(128)
    if fileobj.read(4) != b"DICM":
        return None
    meta = read_dataset(fileobj, False, True, stop_when=_not_file_meta)
    elements = [meta.get_item(tag, keep_deferred=True) for tag in meta.keys()]
    if not elements or any(e.VR not in converters for e in elements):
        return None  # not Explicit VR Little Endian: dcmread's sniffing decides
    syntax_uid = meta.get_item(0x00020010, keep_deferred=True)  # Transfer Syntax UID
    if syntax_uid is None or not syntax_uid.value:
        return None
    syntax = UID(syntax_uid.value.decode("ascii", "replace").rstrip("\0 "))
    if syntax.is_private or not syntax.is_transfer_syntax or syntax.is_deflated:
        return None
    start = fileobj.tell()
    if fileobj.read(2) == b"\0\0":  # a command set (group 0000) follows the meta group
        return None
    fileobj.seek(start)
    implicit, little = syntax.is_implicit_VR, syntax.is_little_endian
    body = read_dataset(fileobj, implicit, little, defer_size=DEFER_BYTES)
    ds = FileDataset(fileobj, body, preamble, FileMetaDataset(meta), implicit, little)
    ds.set_original_encoding(implicit, little, character_sets(body))
    return ds


def _read_dataset(fileobj: BinaryIO) -> Dataset:
    """Parse the data set once, leaving the pixel data unread until it is accessed."""
    errors = (InvalidDicomError, EOFError, ValueError, KeyError, OSError, TypeError)
    try:
        try:
            ds = _parse_plain_part10(fileobj)
        except Exception:  # noqa: BLE001 - dcmread below parses it, or says why not
            ds = None
        if ds is None:
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


def _decode_video_pixels(
    pixels: bytes | memoryview, frames: int, limits: ReadLimits
) -> tuple[np.ndarray, list[str]]:
    """MPEG-2/H.264/HEVC pixel data (encapsulated) -> grey uint8 (T, H, W) through PyAV."""
    try:
        stream = b"".join(pydicom.encaps.generate_fragments(pixels))
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
    ds = _read_dataset(fileobj)  # pixel data deferred: nothing decoded yet
    header = read_header(ds, limits)
    syntax, frames = header.syntax, header.frames
    if not getattr(ds, "file_meta", None) or "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta = getattr(ds, "file_meta", None) or pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = syntax
    pixels = pixel_bytes(ds, fileobj, syntax)
    video_warnings: list[str] = []
    if header.is_video:
        gray, video_warnings = _decode_video_pixels(pixels, frames, limits)
        decoded_pi = "luma"
    else:
        check_pixel_length(header, pixels)
        gray, decoded_pi = decode_gray(header, pixels)

    fps, fps_source, warnings = frame_rate(header, default_fps)
    warnings = video_warnings + warnings
    box, spacing, region, region_warnings = locate_tissue_region(gray, regions_from_header(header))
    y0, y1, x0, x1 = box
    source = {
        "format": "dicom",
        "modality": header.modality or "US",
        "sop_class_uid": header.sop_class_uid,
        "transfer_syntax_uid": str(syntax),
        "photometric": header.photometric,
        "decoded_photometric": decoded_pi,
        "bits_allocated": header.bits_allocated,
        "manufacturer": header.text("Manufacturer"),
        "model": header.text("ManufacturerModelName"),
        "original": (
            [int(v) for v in gray.shape]
            if header.is_video
            else [frames, header.rows, header.columns]
        ),
        "instance_hash": instance_hash(header.value("SOPInstanceUID")),
        "fps_source": fps_source,
        "region": region,
    }
    return Clip(
        frames=gray[:, y0:y1, x0:x1],  # a view: of the file's bytes for native 8-bit grey
        fps=float(fps),
        spacing_mm=spacing,
        source=source,
        warnings=warnings + region_warnings,
    )
