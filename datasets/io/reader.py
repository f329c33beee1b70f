"""``read_cine``: one entry point for every cine source (DICOM, video export, NumPy).

The format is sniffed from the content, never trusted from the file name:
DICOM (``DICM`` at byte 128, or a preamble-less data set), MP4/MOV (``ftyp``), AVI
(``RIFF....AVI ``), Matroska/WebM (EBML magic) and NumPy ``.npy`` (``\\x93NUMPY``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from labral.datasets.io.clip import Clip
from labral.datasets.io.dicom_reader import read_dicom
from labral.datasets.io.limits import ReadLimits
from labral.datasets.io.video_reader import read_video
from labral.errors import NotACineError, NotDicomError, UnsupportedMediaError

__all__ = ["ReadLimits", "read_cine", "sniff_format", "clip_from_array"]

Source = str | os.PathLike | bytes | bytearray | memoryview | np.ndarray

#: Magic numbers of formats we recognise but do not read (for a clearer error).
_OTHER_MEDIA = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
}
_QUICKTIME_ATOMS = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


#: Files up to this size are read in one call and parsed from memory: pydicom's deferred
#: pixel data is then a slice of those bytes, not a second read of the file (about 50 us of
#: 300 for a 0.7 MB uncompressed cine); larger files are parsed from disk.
READ_WHOLE_BYTES = 64 << 20


def sniff_format(head: bytes) -> str:
    """Name the container from the first bytes of a file.

    Args:
        head: at least the first 132 bytes (fewer if the file is shorter).

    Returns:
        ``"dicom"``, ``"dicom?"`` (looks like a preamble-less data set), ``"mp4"``, ``"avi"``,
        ``"matroska"`` or ``"npy"``.

    Raises:
        UnsupportedMediaError: a recognised format labral does not read (PNG, JPEG, PDF, ...).
        NotDicomError: anything unrecognised.
    """
    if head[128:132] == b"DICM":
        return "dicom"
    if head[:6] == b"\x93NUMPY":
        return "npy"
    if head[4:8] in _QUICKTIME_ATOMS:
        return "mp4"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    for magic, name in _OTHER_MEDIA.items():
        if head.startswith(magic):
            raise UnsupportedMediaError(
                f"the data is {name}, not a cine clip; send a DICOM cine, an MP4/AVI/MOV "
                "export or a .npy array of frames"
            )
    if head[:2] in (b"\x02\x00", b"\x08\x00") or head[:2] == b"\x00\x08":
        return "dicom?"
    raise NotDicomError(
        "the data is not a DICOM file (no 'DICM' marker at byte 128 and no data set at the "
        "start) nor a supported video (MP4/MOV/AVI/MKV) or .npy array; check the export"
    )


def clip_from_array(
    array: np.ndarray, *, limits: ReadLimits, default_fps: float, media: str = "array"
) -> Clip:
    """Wrap research frames in a Clip (no cropping, ``default_fps`` with a warning).

    Args:
        array: uint8 (T, H, W) grey or (T, H, W, 3) RGB (converted with BT.601 luma).
        limits: frame and size limits.
        default_fps: the frame rate to record.
        media: ``"array"`` or ``"npy"`` for ``source["format"]``.

    Returns:
        A Clip holding a uint8 (T, H, W) copy of the frames.

    Raises:
        UnsupportedMediaError: wrong dtype or shape.
        NotACineError: fewer than 2 frames.
        OverLimitError: beyond ``limits``.
    """
    if array.dtype != np.uint8:
        raise UnsupportedMediaError(
            f"frame arrays must be uint8, got {array.dtype}; scale to 0-255 and use "
            ".astype(np.uint8)"
        )
    if array.ndim == 4 and array.shape[-1] in (1, 3):
        rgb = array.shape[-1] == 3
    elif array.ndim == 3:
        rgb = False
    else:
        raise UnsupportedMediaError(
            f"frame arrays must be (T, H, W) or (T, H, W, 3); got shape {tuple(array.shape)}"
        )
    if array.shape[0] < 2:
        raise NotACineError(f"the array holds {array.shape[0]} frame(s); a cine needs 2 or more")
    limits.check_shape(*array.shape[:3], 3 if rgb else 1)
    if rgb:
        frames = np.rint(array.astype(np.float32) @ _LUMA).astype(np.uint8)
    else:
        frames = np.array(array.reshape(array.shape[:3]), dtype=np.uint8, copy=True)
    return Clip(
        frames=frames,
        fps=float(default_fps),
        spacing_mm=None,
        source={
            "format": media,
            "modality": None,
            "photometric": "RGB" if rgb else "MONOCHROME2",
            "original": [int(v) for v in array.shape[:3]],
            "instance_hash": None,
            "fps_source": "default",
            "region": None,
        },
        warnings=[f"a frame array carries no timing; assumed {default_fps} frames/s"],
    )


def _read_npy(fileobj: BinaryIO, *, limits: ReadLimits, default_fps: float) -> Clip:
    fileobj.seek(0)
    try:
        version = np.lib.format.read_magic(fileobj)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0  # 2.0 and 3.0 share the length field
        )
        shape, _, dtype = read_header(fileobj)  # header only: no array allocated yet
    except (ValueError, OSError, SyntaxError) as error:
        raise UnsupportedMediaError(f"the .npy header is unreadable ({error})") from error
    if len(shape) in (3, 4):
        limits.check_shape(*shape[:3], shape[3] if len(shape) == 4 else 1, dtype.itemsize)
    fileobj.seek(0)
    try:
        array = np.load(fileobj, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise UnsupportedMediaError(
            f"the .npy array could not be loaded ({error}); save it with np.save"
        ) from error
    return clip_from_array(array, limits=limits, default_fps=default_fps, media="npy")


def _read_stream(fileobj: BinaryIO, *, limits: ReadLimits, default_fps: float) -> Clip:
    fileobj.seek(0)
    head = fileobj.read(132)
    kind = sniff_format(head)
    if kind in ("dicom", "dicom?"):
        return read_dicom(fileobj, limits=limits, default_fps=default_fps)
    if kind == "npy":
        return _read_npy(fileobj, limits=limits, default_fps=default_fps)
    return read_video(fileobj, limits=limits, default_fps=default_fps, media=kind)


def read_cine(
    source: Source, *, limits: ReadLimits | None = None, default_fps: float = 20.0
) -> Clip:
    """Read a cine clip from a path, raw bytes or a frame array.

    Args:
        source: a file path, the file's bytes, or a uint8 array (T, H, W) / (T, H, W, 3).
        limits: size limits checked before decoding (default :class:`ReadLimits`).
        default_fps: frame rate used, with a warning, when the source states none.

    Returns:
        A Clip: uint8 (T, H, W) grey frames cropped to the tissue region, fps, spacing_mm
        (row, col) or None, identity-free ``source`` facts and ``warnings``.

    Raises:
        NotDicomError, UnsupportedMediaError, NotUltrasoundError, NotACineError,
        UnsupportedTransferSyntaxError, CorruptPixelDataError, OverLimitError
        (all :class:`labral.errors.LabralError`); FileNotFoundError for a missing path.
    """
    limits = limits or ReadLimits()
    if isinstance(source, np.ndarray):
        return clip_from_array(source, limits=limits, default_fps=default_fps)
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        limits.check_input_size(len(data))
        return _read_stream(io.BytesIO(data), limits=limits, default_fps=default_fps)
    if isinstance(source, str | os.PathLike):
        with Path(source).open("rb") as fileobj:
            size = os.fstat(fileobj.fileno()).st_size
            limits.check_input_size(size)
            if size <= READ_WHOLE_BYTES:  # one read; parsing and pixel access stay in memory
                data = io.BytesIO(fileobj.read())
                return _read_stream(data, limits=limits, default_fps=default_fps)
            return _read_stream(fileobj, limits=limits, default_fps=default_fps)
    raise UnsupportedMediaError(
        f"read_cine takes a path, bytes or a uint8 array, not {type(source).__name__}"
    )
