"""Read an ultrasound cine DICOM object into a :class:`~labral.datasets.clip.Clip`.

Order of work, so a hostile file fails before it costs memory: parse the header, leaving
the pixel data unread (``defer_size``); check modality, frame count and
:class:`ReadLimits`; check that a decoder for the transfer syntax is installed; only then
read and decode the pixels, convert to grey, pick the timing and crop to the tissue region.

Colour to grey: when the decoder hands back YCbCr (``YBR_FULL``/``YBR_FULL_422``, usual for
JPEG) the luma plane Y is taken directly (it *is* BT.601 luma); RGB and PALETTE COLOR
(after its lookup table) are converted with the BT.601 luma formula
``Y = 0.299 R + 0.587 G + 0.114 B``.
"""

from __future__ import annotations

import hashlib
import io
import math
from typing import Any, BinaryIO

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, get_decoder
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import UID

from labral.datasets.clip import Clip
from labral.datasets.limits import ReadLimits
from labral.datasets.regions import locate_tissue_region, regions_from_dataset
from labral.datasets.video_reader import decode_gray_video
from labral.errors import (
    CorruptPixelDataError,
    LabralError,
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
#: JPEG Baseline and Extended: decoded by Pillow (libjpeg-turbo) where installed, not by
#: pydicom's first choice, pylibjpeg-libjpeg: about 3x faster on a 40-frame cine (4 ms
#: against 11), and it lets go of the GIL while it decodes, so the service's decode threads
#: run side by side. The two IDCTs differ by at most 1 grey level on some pixels.
PILLOW_FIRST = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"})
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
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


def _pixel_bytes(ds: Dataset, fileobj: BinaryIO, syntax: UID) -> bytes | memoryview:
    """The Pixel Data value; a view of the buffer, not a copy, where that is safe.

    A data set parsed from an in-memory buffer with its pixel data deferred holds the
    value's offset and length: a native (not encapsulated, not deflated) value is then a
    slice of that buffer (checked against the length field in front of it), which spares
    a copy of the whole clip. Anything else reads the element through pydicom.
    """
    raw = ds.get_item("PixelData", keep_deferred=True)
    deferred = isinstance(raw, RawDataElement) and raw.value is None
    if deferred and isinstance(fileobj, io.BytesIO) and not syntax.is_encapsulated:
        start, length = int(raw.value_tell), int(raw.length)
        buffer = memoryview(fileobj.getvalue())  # the bytes it was made from: not a copy
        field = bytes(buffer[start - 4 : start]) if start >= 4 else b""
        little = syntax != "1.2.840.10008.1.2.2"  # Explicit VR Big Endian
        deflated = syntax == "1.2.840.10008.1.2.1.99"  # parsed from an inflated copy
        length_field = length.to_bytes(4, "little" if little else "big")
        if not deflated and field == length_field and start + length <= len(buffer):
            return buffer[start : start + length]
    return ds.PixelData


def _check_pixel_length(
    ds: Dataset, syntax: UID, frames: int, data: bytes | memoryview | None = None
) -> None:
    """Raise when the pixel data is missing, empty or shorter than the header declares.

    ``data``: the value when already at hand (:func:`_pixel_bytes`), else read from ``ds``.
    """
    if data is None:
        if "PixelData" not in ds:
            raise CorruptPixelDataError("the DICOM object has no Pixel Data (7FE0,0010)")
        data = ds.PixelData
    if data is None or len(data) == 0:
        raise CorruptPixelDataError("the Pixel Data element is empty; the file is truncated")
    if syntax.is_encapsulated:
        try:
            found = sum(1 for _ in pydicom.encaps.generate_frames(data, number_of_frames=frames))
        except (ValueError, KeyError, EOFError) as error:
            raise CorruptPixelDataError(
                f"the encapsulated Pixel Data is malformed ({error}); the file is truncated "
                "or corrupt: export it again"
            ) from error
        if found < frames:
            raise CorruptPixelDataError(
                f"the Pixel Data holds {found} compressed frames but {frames} are declared; "
                "the file is truncated: export it again"
            )
        return
    expected = get_expected_length(ds, unit="bytes")
    if len(data) < expected:
        raise CorruptPixelDataError(
            f"the Pixel Data has {len(data)} bytes but the header declares {expected} "
            "(frames x rows x columns x samples); the file is truncated: export it again"
        )


def _luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of RGB (..., H, W, 3); uint8 stays uint8 (grey in = grey out exactly)."""
    if rgb.dtype == np.uint8:  # Pillow's "L" is BT.601 in 16-bit fixed point, in C
        flat = np.ascontiguousarray(rgb).reshape(-1, *rgb.shape[-3:])
        gray = np.stack([np.asarray(Image.fromarray(f, "RGB").convert("L")) for f in flat])
        return gray.reshape(rgb.shape[:-1])
    return rgb.astype(np.float32) @ _LUMA


def _to_gray(arr: np.ndarray, photometric: str, ds: Dataset) -> np.ndarray:
    """Decoded frames (..., H, W) or (..., H, W, 3) -> grey (..., H, W), uint8 or float32."""
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        return _luma(rgb) if rgb.dtype == np.uint8 else _luma(rgb) / 257.0
    if arr.shape[-1] != 3 or arr.ndim < 3:
        return arr
    if photometric.startswith("YBR_FULL"):
        return arr[..., 0]
    if photometric.startswith("YBR_PARTIAL"):
        return np.clip((arr[..., 0].astype(np.float32) - 16.0) * (255.0 / 219.0), 0, 255)
    return _luma(arr)


def _to_uint8(gray: np.ndarray, bits_stored: int) -> np.ndarray:
    """Grey (T, H, W) of any numeric dtype -> uint8; >8-bit data is stretched clip-wide."""
    if gray.dtype == np.uint8:
        return gray
    if bits_stored <= 8 and gray.min() >= 0 and gray.max() <= 255:
        return np.rint(gray).astype(np.uint8)
    lo, hi = float(gray.min()), float(gray.max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.rint((gray.astype(np.float32) - lo) * scale).astype(np.uint8)


def _decode_gray(
    ds: Dataset, syntax: UID, frames: int, pixels: bytes | memoryview | None = None
) -> tuple[np.ndarray, str]:
    """Decode every frame to grey uint8 (T, H, W); colour frames one at a time to save memory.

    ``pixels``: the Pixel Data value when already at hand (:func:`_pixel_bytes`).
    """
    rows, cols = int(ds.Rows), int(ds.Columns)
    stored_pi = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    bits_allocated = int(ds.get("BitsAllocated", 8))
    bits_stored = int(ds.get("BitsStored", bits_allocated))
    decoder = get_decoder(syntax)
    plugin = "pillow" if str(syntax) in PILLOW_FIRST else ""
    if plugin not in decoder.available_plugins:
        plugin = ""  # pydicom's own order
    colour = int(ds.get("SamplesPerPixel", 1)) == 3 or stored_pi == "PALETTE COLOR"
    try:
        unsigned_8bit = bits_allocated == bits_stored == 8 and not ds.get("PixelRepresentation")
        if not colour and not syntax.is_encapsulated and unsigned_8bit:
            # native 8-bit grey: the pixels are the bytes already read (length checked by
            # _check_pixel_length); a read-only view, copied once when the clip is cropped
            meta = {}
            data = ds.PixelData if pixels is None else pixels
            gray = np.frombuffer(data, np.uint8, frames * rows * cols)
            gray = gray.reshape(frames, rows, cols)
        elif not colour:
            arr, meta = decoder.as_array(ds, as_rgb=False, view_only=True, decoding_plugin=plugin)
            gray = arr.reshape(frames, rows, cols)
        elif not syntax.is_encapsulated:  # raw bytes already in memory: convert in chunks
            arr, meta = decoder.as_array(ds, as_rgb=False, view_only=True)
            pi = str(meta.get("photometric_interpretation", stored_pi))
            arr = arr.reshape(frames, rows, cols, -1)
            if arr.shape[-1] == 1:  # PALETTE COLOR: indices, one sample per pixel
                arr = arr[..., 0]
            gray = None
            for start in range(0, frames, 16):
                chunk = _to_gray(arr[start : start + 16], pi, ds)
                if gray is None:  # the dtype is known once the first chunk is converted
                    gray = np.empty((frames, rows, cols), chunk.dtype)
                gray[start : start + 16] = chunk
        else:  # compressed colour: one frame at a time, never the whole RGB clip in memory
            eight_bit = bits_allocated <= 8
            gray = np.empty((frames, rows, cols), np.uint8 if eight_bit else np.float32)
            meta, decoded = {}, 0
            frames_decoded = decoder.iter_array(ds, as_rgb=False, decoding_plugin=plugin)
            for index, (arr, meta) in enumerate(frames_decoded):
                frame = _to_gray(arr, str(meta.get("photometric_interpretation", stored_pi)), ds)
                gray[index] = np.clip(frame, 0, 255) if eight_bit else frame
                decoded = index + 1
            if decoded < frames:
                raise CorruptPixelDataError(
                    f"only {decoded} of {frames} frames decoded; the file is truncated: "
                    "export it again"
                )
    except LabralError:
        raise
    except Exception as error:  # decoders raise many types on damaged data
        raise CorruptPixelDataError(
            f"decoding the {syntax.name} pixel data failed ({type(error).__name__}: {error}); "
            "the file is corrupt or truncated: export it again"
        ) from error
    gray8 = _to_uint8(gray, bits_stored)
    if stored_pi == "MONOCHROME1":
        gray8 = 255 - gray8
    return gray8, str(meta.get("photometric_interpretation", stored_pi))


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
    pixels = _pixel_bytes(ds, fileobj, syntax)
    if pixels is None or len(pixels) == 0:
        raise CorruptPixelDataError("the DICOM object has no Pixel Data (7FE0,0010)")
    video_warnings: list[str] = []
    if is_video:
        gray, video_warnings = _decode_video_pixels(ds, frames, limits)
        decoded_pi = "luma"
    else:
        _check_pixel_length(ds, syntax, frames, pixels)
        gray, decoded_pi = _decode_gray(ds, syntax, frames, pixels)

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
