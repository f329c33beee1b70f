"""The SRs the service made for DICOM instances, kept for WADO-RS and retention.

An SR files itself in the patient's study, so it carries the patient and study attributes
it copied from its source: it is the one thing the service keeps that holds identity (the
spool holds it until an instance is scored). Folder and file names carry only keyed
hashes: ``<state_dir>/sr/<study_key>/<series_key>.<instance_key>.dcm``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from labral.datasets.manifests.pseudonyms import Pseudonymizer
from labral.serve.dicom.spool import DRAFT_PREFIX, remove_durably, write_durably


class SrArchive:
    """SR files found by their study, series and SOP instance UIDs.

    Args:
        folder: created if missing.
        pseudonymizer: turns the UIDs into file names.
    """

    def __init__(self, folder: Path, pseudonymizer: Pseudonymizer) -> None:
        self.folder = folder
        self.keys = pseudonymizer
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, study: str, series: str, instance: str) -> Path:
        key = self.keys.key
        return self.folder / str(key(study)) / f"{key(series)}.{key(instance)}.dcm"

    def put(self, data: bytes, study: str, series: str, instance: str) -> Path:
        """Keep one SR (a DICOM Part 10 file) durably; the same UIDs overwrite it."""
        return write_durably(self._path(study, series, instance), data)

    def find(
        self, study: str, series: str | None = None, instance: str | None = None
    ) -> list[Path]:
        """The SRs of a study, narrowed to a series and an instance when given, oldest first."""
        folder = self.folder / str(self.keys.key(study))
        if not folder.is_dir():
            return []
        if series is not None and instance is not None:
            path = self._path(study, series, instance)
            return [path] if path.is_file() else []
        pattern = f"{self.keys.key(series)}.*.dcm" if series is not None else "*.dcm"
        found = [p for p in folder.glob(pattern) if not p.name.startswith(DRAFT_PREFIX)]
        return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def purge_before(self, cutoff: dt.datetime) -> int:
        """Delete SRs last written before ``cutoff`` (retention); returns how many."""
        limit = cutoff.timestamp()
        old = [p for p in self.folder.glob("*/*.dcm") if p.stat().st_mtime < limit]
        remove_durably(*old)
        for folder in {p.parent for p in old}:
            if folder.is_dir() and not any(folder.iterdir()):
                os.rmdir(folder)
        return len(old)
