"""Durable files: the spool of received instances, and the one way every folder is written.

A DICOM node may acknowledge an instance only once it cannot be lost, so every file the
service keeps is written by :func:`write_durably`: to a hidden draft in the same folder,
flushed and fsynced, renamed into place (atomic on POSIX), then the folder is fsynced so the
rename itself survives a power cut. A crash leaves either the whole file or a draft, and
drafts are never read (:meth:`Spool.pending` removes them).

The spool holds one ``<id>.dcm`` per received instance, with a ``<id>.json`` sidecar written
first (source, caller, received time; no identity). An entry leaves the spool only after its
result row is committed, so on start every entry still there is scored (again, if a crash
came between commit and removal: the store keeps one row per ``intake_id``).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DRAFT_PREFIX = ".draft-"


def fsync_folder(folder: Path) -> None:
    """fsync a directory, so a rename or unlink inside it is on disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that it is whole or absent after any crash.

    Args:
        path: the final name (its folder is created).
        data: the bytes.

    Returns:
        ``path``.

    Raises:
        OSError: the disk refused (full, read-only, ...); nothing is left at ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f"{DRAFT_PREFIX}{uuid.uuid4().hex}-{path.name}")
    try:
        with open(draft, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(draft, path)
    except BaseException:
        draft.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)
    return path


def remove_durably(*paths: Path) -> None:
    """Unlink files (missing ones are fine) and fsync their folders."""
    folders = set()
    for path in paths:
        path.unlink(missing_ok=True)
        folders.add(path.parent)
    for folder in folders:
        if folder.is_dir():
            fsync_folder(folder)


@dataclass(frozen=True)
class SpoolEntry:
    """One received instance waiting to be scored.

    Attributes:
        id: 32 hex characters, unique; the result row's ``intake_id``.
        path: the instance, a DICOM Part 10 file.
        meta: ``{"source", "caller", "received_at"}`` from the sidecar (empty if it is gone).
    """

    id: str
    path: Path
    meta: dict[str, Any]

    @property
    def sidecar(self) -> Path:
        """The ``<id>.json`` beside the instance."""
        return self.path.with_suffix(".json")


class Spool:
    """A folder of received instances, oldest first.

    Args:
        folder: created if missing.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes, meta: dict[str, Any]) -> SpoolEntry:
        """Keep one instance durably (sidecar first, then the instance).

        Raises:
            OSError: the disk refused; the caller must not acknowledge the instance.
        """
        entry_id = uuid.uuid4().hex
        path = self.folder / f"{entry_id}.dcm"
        write_durably(path.with_suffix(".json"), json.dumps(meta).encode())
        write_durably(path, data)
        return SpoolEntry(entry_id, path, dict(meta))

    def pending(self) -> list[SpoolEntry]:
        """Entries still to score, oldest first; drafts and orphan sidecars are removed."""
        for leftover in self.folder.glob(f"{DRAFT_PREFIX}*"):
            leftover.unlink(missing_ok=True)
        for sidecar in self.folder.glob("*.json"):
            if not sidecar.with_suffix(".dcm").exists():
                sidecar.unlink(missing_ok=True)
        entries = []
        for path in self.folder.glob("*.dcm"):
            try:
                meta = json.loads(path.with_suffix(".json").read_text())
            except (OSError, ValueError):
                meta = {}
            entries.append((path.stat().st_mtime_ns, path.stem, path, meta))
        return [SpoolEntry(stem, path, meta) for _, stem, path, meta in sorted(entries)]

    def remove(self, entry: SpoolEntry) -> None:
        """Forget a scored entry (instance first, so a crash leaves an orphan sidecar only).

        No fsync: an unlink lost in a power cut brings the entry back at the next start,
        where its stored row (same ``intake_id``) ends it without a second result.
        """
        entry.path.unlink(missing_ok=True)
        entry.sidecar.unlink(missing_ok=True)
