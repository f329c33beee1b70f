"""One exception family for labral, each class with a stable code and one HTTP status.

The CLI prints ``str(error)`` and exits non-zero; the service maps ``error.http_status``
and ``error.code`` into a JSON body in one place (``labral.serve``).
"""

from __future__ import annotations


class LabralError(Exception):
    """Base class. ``code`` is stable (clients match on it); ``http_status`` is its 4xx/5xx."""

    code: str = "labral_error"
    http_status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        """JSON-ready ``{"code": ..., "message": ...}``."""
        return {"code": self.code, "message": self.message}


class NotDicomError(LabralError):
    """The bytes are neither a DICOM file nor a supported video/array format."""

    code = "not_dicom"
    http_status = 415


class UnsupportedMediaError(LabralError):
    """A file type labral cannot read at all (neither DICOM, video nor .npy)."""

    code = "unsupported_media"
    http_status = 415


class NotUltrasoundError(LabralError):
    """A DICOM object that is not an ultrasound image (e.g. CT, MR, a report)."""

    code = "not_ultrasound"
    http_status = 422


class NotACineError(LabralError):
    """An ultrasound object with a single frame: the dynamic sign needs a cine clip."""

    code = "not_a_cine"
    http_status = 422


class UnsupportedTransferSyntaxError(LabralError):
    """Pixel data in a transfer syntax that no installed decoder handles."""

    code = "unsupported_transfer_syntax"
    http_status = 415


class CorruptPixelDataError(LabralError):
    """Pixel data truncated, malformed or inconsistent with the header."""

    code = "corrupt_pixel_data"
    http_status = 422


class OverLimitError(LabralError):
    """Frames, dimensions or bytes beyond the configured limits (checked before decoding)."""

    code = "over_limit"
    http_status = 413


class BadManifestError(LabralError):
    """A manifest that is missing, malformed, has bad labels, leaks patients or empty splits."""

    code = "bad_manifest"
    http_status = 400


class BadConfigError(LabralError):
    """A configuration value that cannot work; the message names the setting."""

    code = "bad_config"
    http_status = 400


class IncompatibleBundleError(LabralError):
    """A model bundle that is missing pieces or was written by an incompatible version."""

    code = "incompatible_bundle"
    http_status = 500


class TrainingDivergedError(LabralError):
    """Training produced a non-finite loss, logit or weight; the message names the epoch and
    the optimizer step, and what to try."""

    code = "training_diverged"
    http_status = 500
