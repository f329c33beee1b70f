"""What is checked when a DICOM instance arrives, before it is spooled and acknowledged.

:func:`check_header` runs the reader's own header checks (no pixel is decoded), so a
receipt and a score can never disagree about what is acceptable; :func:`uids_if_readable`
finds the UIDs of a refused instance for the sender's answer.
"""

from __future__ import annotations

import io

import pydicom

from labral.datasets import dicom_pixels, dicom_reader
from labral.datasets.limits import ReadLimits
from labral.errors import CorruptPixelDataError

#: The UIDs a receipt reads: SOP Class and SOP Instance (for the sender's answer) and the
#: Study Instance UID (keyed into a failure row's ``study_key``).
UID_TAGS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID")


def check_header(data: bytes, limits: ReadLimits) -> pydicom.Dataset:
    """What ``read_cine`` checks before it decodes a pixel, at receipt time.

    Modality, frame count, :class:`ReadLimits`, an installed decoder for the transfer
    syntax and the length of the pixel data (the number of compressed frames), all through
    the reader's own checks (``labral.datasets.dicom_reader``).

    Args:
        data: a DICOM Part 10 file.
        limits: the service's read limits.

    Returns:
        The parsed data set (pixel data deferred).

    Raises:
        NotDicomError, NotUltrasoundError, NotACineError, OverLimitError,
        UnsupportedTransferSyntaxError, CorruptPixelDataError.
    """
    limits.check_input_size(len(data))
    ds = dicom_reader._read_dataset(io.BytesIO(data))
    frames = dicom_reader._check_is_us_cine(ds)
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        samples, bits = int(ds.get("SamplesPerPixel", 1)), int(ds.get("BitsAllocated", 8))
    except (AttributeError, TypeError, ValueError) as error:
        raise CorruptPixelDataError(
            "Rows, Columns or Bits Allocated is missing or not a number in the header"
        ) from error
    limits.check_shape(frames, rows, cols, samples, max(1, bits // 8))
    syntax = dicom_reader._transfer_syntax(ds)
    if str(syntax) not in dicom_reader.VIDEO_SYNTAXES:
        dicom_reader._check_decoder(syntax)
        dicom_pixels.check_pixel_length(ds, syntax, frames)
    return ds


def uids_if_readable(data: bytes) -> tuple[str | None, str | None, str | None]:
    """(SOP Class, SOP Instance, Study Instance) UIDs of a refused instance, when parsable."""
    try:
        ds = pydicom.dcmread(
            io.BytesIO(data),
            stop_before_pixels=True,
            force=True,
            specific_tags=list(UID_TAGS),
        )
    except Exception:
        return None, None, None
    return tuple(str(ds.get(name, "")) or None for name in UID_TAGS)  # type: ignore[return-value]
