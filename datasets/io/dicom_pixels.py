"""Pixel data of a DICOM cine, from the parsed data set to grey uint8 frames (T, H, W).

The header, the limits and the decoder have been checked first
(:func:`labral.datasets.io.dicom_header.read_header`). Here: the Pixel Data value (a view of the
file's bytes where that is safe), its length against the header, and decoding to grey.

Colour to grey: when the decoder hands back YCbCr (``YBR_FULL``/``YBR_FULL_422``, usual for
JPEG) the luma plane Y is taken directly (it *is* BT.601 luma); RGB and PALETTE COLOR
(after its lookup table) are converted with the BT.601 luma formula
``Y = 0.299 R + 0.587 G + 0.114 B``.
"""

from __future__ import annotations

import io
from typing import BinaryIO

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, get_decoder
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import UID

from labral.datasets.io.dicom_header import CineHeader
from labral.errors import CorruptPixelDataError, LabralError

#: JPEG Baseline and Extended: decoded by Pillow (libjpeg-turbo) where installed, not by
#: pydicom's first choice, pylibjpeg-libjpeg: about 3x faster on a 40-frame cine (4 ms
#: against 11), and it lets go of the GIL while it decodes, so the service's decode threads
#: run side by side. The two IDCTs differ by at most 1 grey level on some pixels.
PILLOW_FIRST = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"})
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def pixel_bytes(ds: Dataset, fileobj: BinaryIO, syntax: UID) -> bytes | memoryview:
    """The Pixel Data value; a view of the buffer, not a copy, where that is safe.

    A data set parsed from an in-memory buffer with its pixel data deferred holds the
    value's offset and length: a native (not encapsulated, not deflated) value is then a
    slice of that buffer (checked against the length field in front of it), which spares
    a copy of the whole clip. Anything else reads the element through pydicom.

    Raises:
        CorruptPixelDataError: there is no Pixel Data element, or it is empty.
    """
    raw = ds.get_item("PixelData", keep_deferred=True)
    if raw is None:
        raise CorruptPixelDataError("the DICOM object has no Pixel Data (7FE0,0010)")
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
    value = ds.PixelData
    if value is None or len(value) == 0:
        raise CorruptPixelDataError("the Pixel Data element is empty; the file is truncated")
    return value


def check_pixel_length(header: CineHeader, data: bytes | memoryview) -> None:
    """Raise when the pixel data (:func:`pixel_bytes`) is shorter than the header declares."""
    ds, syntax, frames = header.ds, header.syntax, header.frames
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
    if header.native_grey_8bit:  # one byte per pixel: what decode_gray views
        expected = frames * header.rows * header.columns
    else:
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


def decode_gray(header: CineHeader, pixels: bytes | memoryview) -> tuple[np.ndarray, str]:
    """Decode every frame to grey uint8 (T, H, W); colour frames one at a time to save memory.

    ``pixels``: the Pixel Data value (:func:`pixel_bytes`), length checked.

    Returns:
        ``(grey, photometric)``: the frames and the photometric interpretation decoded.
    """
    frames, rows, cols = header.frames, header.rows, header.columns
    stored_pi = header.photometric or "MONOCHROME2"
    meta: dict = {}
    if header.native_grey_8bit:
        # the pixels are the bytes already read (length checked by check_pixel_length): a
        # read-only view; the clip's crop is a view of it too (resizing makes the copy)
        gray = np.frombuffer(pixels, np.uint8, frames * rows * cols).reshape(frames, rows, cols)
    else:
        gray, meta = _decode_with_pydicom(header, stored_pi)
    gray8 = _to_uint8(gray, header.bits_stored)
    if stored_pi == "MONOCHROME1":
        gray8 = 255 - gray8
    return gray8, str(meta.get("photometric_interpretation", stored_pi))


def _decode_with_pydicom(header: CineHeader, stored_pi: str) -> tuple[np.ndarray, dict]:
    """Everything but native 8-bit grey, through pydicom's decoders: (T, H, W) grey, meta."""
    ds, syntax, frames = header.ds, header.syntax, header.frames
    rows, cols = header.rows, header.columns
    decoder = get_decoder(syntax)
    plugin = "pillow" if str(syntax) in PILLOW_FIRST else ""
    if plugin not in decoder.available_plugins:
        plugin = ""  # pydicom's own order
    colour = header.samples == 3 or stored_pi == "PALETTE COLOR"
    try:
        if not colour:
            arr, meta = decoder.as_array(ds, as_rgb=False, view_only=True, decoding_plugin=plugin)
            return arr.reshape(frames, rows, cols), meta
        if not syntax.is_encapsulated:  # raw bytes already in memory: convert in chunks
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
            return gray, meta
        # compressed colour: one frame at a time, never the whole RGB clip in memory
        eight_bit = header.bits_allocated <= 8
        gray = np.empty((frames, rows, cols), np.uint8 if eight_bit else np.float32)
        meta, decoded = {}, 0
        frames_decoded = decoder.iter_array(ds, as_rgb=False, decoding_plugin=plugin)
        for index, (arr, meta) in enumerate(frames_decoded):
            frame = _to_gray(arr, str(meta.get("photometric_interpretation", stored_pi)), ds)
            gray[index] = np.clip(frame, 0, 255) if eight_bit else frame
            decoded = index + 1
    except LabralError:
        raise
    except Exception as error:  # decoders raise many types on damaged data
        raise CorruptPixelDataError(
            f"decoding the {syntax.name} pixel data failed ({type(error).__name__}: {error}); "
            "the file is corrupt or truncated: export it again"
        ) from error
    if decoded < frames:
        raise CorruptPixelDataError(
            f"only {decoded} of {frames} frames decoded; the file is truncated: export it again"
        )
    return gray, meta
