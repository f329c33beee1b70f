"""The per-file half of ``labral manifest``: list a folder, sniff and check each file.

Every file is sniffed by content (the reader's :func:`sniff_format`), never by its name.
DICOM files are checked from the header alone (``stop_before_pixels``) with the reader's own
checks, in the reader's order; video exports and ``.npy`` arrays (and every file with
``decode=true``) are read in full with :func:`read_cine`. A failure becomes the file's skip
code and reason on its :class:`ScannedFile`. Header identifiers are kept in memory only
(``ScannedFile.keys``); :func:`_quiet_pydicom` silences pydicom, whose warnings can quote
header values. :mod:`labral.datasets.manifests.from_folder` joins the results to the labels.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from labral.datasets.io.dicom_header import read_header
from labral.datasets.io.limits import ReadLimits
from labral.datasets.io.reader import read_cine, sniff_format
from labral.errors import LabralError, NotDicomError

_PARSE_ERRORS = (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, AttributeError)


@dataclass
class ScannedFile:
    """What one file's header says. ``keys`` holds identifiers: memory only, never written."""

    path: Path
    rel: str
    keys: dict[str, str] = field(default_factory=dict)
    side: str | None = None
    instance: str | None = None
    device: str | None = None
    code: str | None = None
    reason: str | None = None

    @property
    def kept(self) -> bool:
        return self.code is None

    def skip(self, code: str, reason: str) -> None:
        self.code, self.reason = code, reason


@contextlib.contextmanager
def _quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's warnings and log records, which can quote header values."""
    logger = logging.getLogger("pydicom")
    disabled = logger.disabled
    logger.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.disabled = disabled


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    text = str(value).strip() if value is not None else ""
    return text or None


def laterality(ds: Dataset) -> str | None:
    """``L``/``R`` from Image Laterality (0020,0062), else Laterality (0020,0060); else None."""
    for keyword in ("ImageLaterality", "Laterality"):
        value = (_text(ds, keyword) or "").upper()
        if value in ("L", "R"):
            return value
    return None


def _read_header(found: ScannedFile, limits: ReadLimits) -> None:
    """Parse the header, record its facts, and run the reader's checks (raising its errors)."""
    try:
        ds = pydicom.dcmread(found.path, stop_before_pixels=True, force=True)
    except _PARSE_ERRORS as error:
        raise NotDicomError(
            f"the data could not be parsed as DICOM ({type(error).__name__}); send an "
            "ultrasound cine as a DICOM Part 10 file, an MP4/AVI/MOV export or a .npy array"
        ) from error
    for keyword in ("PatientID", "AccessionNumber", "StudyInstanceUID"):
        if value := _text(ds, keyword):
            found.keys[keyword] = value
    found.side = laterality(ds)
    found.instance = _text(ds, "SOPInstanceUID")
    found.device = (
        " ".join(t for t in (_text(ds, "Manufacturer"), _text(ds, "ManufacturerModelName")) if t)
        or None
    )
    read_header(ds, limits)


def scan_file(path: Path, rel: str, *, limits: ReadLimits, decode: bool) -> ScannedFile:
    """Check one file as the reader would; a failure is recorded as its skip code and reason.

    Args:
        path: the file.
        rel: its path relative to the scanned folder (POSIX separators).
        limits: the reader's limits, checked from the header.
        decode: also read the whole clip with :func:`read_cine`.

    Returns:
        A :class:`ScannedFile`; ``code`` is None when the file is a readable cine.
    """
    found = ScannedFile(path=path, rel=rel)
    try:
        with path.open("rb") as handle:
            media = sniff_format(handle.read(132))
        if media in ("dicom", "dicom?"):
            _read_header(found, limits)
        if decode or media not in ("dicom", "dicom?"):
            read_cine(path, limits=limits)
    except LabralError as error:
        found.skip(error.code, error.message)
    except OSError as error:
        found.skip("unreadable", f"the file cannot be read ({error.strerror or 'I/O error'})")
    except Exception as error:  # noqa: BLE001 - a parser bug on one file must not end the scan
        found.skip("unreadable", f"the file could not be parsed ({type(error).__name__})")
    return found


def list_files(root: Path, exclude: set[Path]) -> tuple[list[tuple[Path, str]], int]:
    """Every non-hidden file under ``root``, as (path, relative POSIX path) sorted by the latter.

    Returns:
        The files, and how many hidden files and folders were passed over.
    """
    files, hidden = [], 0
    for folder, dirs, names in os.walk(root):
        base = Path(folder)
        kept_dirs = []
        for name in sorted(dirs):
            if name.startswith(".") or (base / name).resolve() in exclude:
                hidden += name.startswith(".")
                continue
            kept_dirs.append(name)
        dirs[:] = kept_dirs
        for name in sorted(names):
            path = base / name
            if name.startswith("."):
                hidden += 1
            elif path.resolve() not in exclude:
                files.append((path, path.relative_to(root).as_posix()))
    return sorted(files, key=lambda item: item[1]), hidden
