"""What is checked when a DICOM instance arrives, before it is spooled and acknowledged.

:func:`check_header` runs the reader's own header checks (no pixel is decoded), so a
receipt and a score can never disagree about what is acceptable; :func:`uids_if_readable`
finds the UIDs of a refused instance for the sender's answer.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pydicom

from labral.datasets.io import dicom_pixels, dicom_reader
from labral.datasets.io.dicom_header import read_header
from labral.datasets.io.limits import ReadLimits
from labral.errors import LabralError
from labral.serve.dicom.spool import SpoolEntry

#: The UIDs a receipt reads: SOP Class and SOP Instance (for the sender's answer) and the
#: Study Instance UID (keyed into a failure row's ``study_key``).
UID_TAGS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID")


@dataclass
class Receipt:
    """What :meth:`~labral.serve.dicom.intake.Intake.receive` made of one instance.

    Attributes:
        entry: the spool entry (None when the instance was refused).
        error: why it was refused (its failure row is already stored).
        sop_class_uid / sop_instance_uid: the instance's own, for the sender's answer only
            (never stored nor logged).
    """

    entry: SpoolEntry | None
    error: LabralError | None
    sop_class_uid: str | None
    sop_instance_uid: str | None


def check_header(data: bytes, limits: ReadLimits) -> pydicom.Dataset:
    """What ``read_cine`` checks before it decodes a pixel, at receipt time.

    Modality, frame count, :class:`ReadLimits`, an installed decoder for the transfer
    syntax and the length of the pixel data (the number of compressed frames), all through
    the reader's own checks (:func:`labral.datasets.io.dicom_header.read_header`).

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
    buffer = io.BytesIO(data)
    ds = dicom_reader._read_dataset(buffer)
    header = read_header(ds, limits)
    pixels = dicom_pixels.pixel_bytes(ds, buffer, header.syntax)  # a view where it can be
    if not header.is_video:
        dicom_pixels.check_pixel_length(header, pixels)
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
