"""What the service keeps, started and stopped with the app's lifespan.

    <state_dir>/results.sqlite   the results store (unless store.url names another database)
    <state_dir>/pseudonym.key    the key of the store's UID hashes (unless store.pseudonym_key)
    <state_dir>/spool/           DICOM instances received and not yet scored
    <state_dir>/sr/              the SRs made for them (WADO-RS)
    <state_dir>/outbox/          SRs waiting to be forwarded; dead_letter/ those that failed

Start order: the store (its migrations run), the intake workers (the spool's leftovers go
first), the forwarder, then the DICOM node; stop order is the reverse. The model may still
be loading meanwhile: the node receives and spools, and the workers wait for /readyz.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from labral.datasets.manifests.pseudonyms import Pseudonymizer
from labral.serve.dicom.forward import Forwarder
from labral.serve.dicom.intake import Intake
from labral.serve.dicom.node import DicomNode
from labral.serve.dicom.pseudonym import store_pseudonymizer
from labral.serve.dicom.spool import Spool
from labral.serve.service import ScoringService
from labral.serve.settings import DicomSettings, ServeSettings
from labral.serve.store.database import AuditEntry, ResultsStore, utcnow
from labral.serve.store.sr_archive import SrArchive

log = logging.getLogger("labral.serve")
RETENTION_PERIOD_S = 3600.0
#: Libraries that log UIDs at INFO (highdicom names the source instance it copies from,
#: pynetdicom the instances of a C-STORE): their INFO lines never reach the service's logs.
UID_LOGGERS = ("highdicom", "pynetdicom")


@dataclass
class Stateful:
    """The stateful parts of one app (``app.state.stateful``)."""

    state_dir: Path
    store: ResultsStore
    keys: Pseudonymizer
    archive: SrArchive
    intake: Intake
    node: DicomNode | None
    forwarder: Forwarder | None

    def node_status(self) -> dict[str, object] | None:
        """The DICOM node's status for /readyz (None when ``dicom.enabled`` is false)."""
        return None if self.node is None else self.node.status()


def get_stateful(request: Request) -> Stateful:
    """FastAPI dependency: the app's stateful parts."""
    return request.app.state.stateful


def store_url(settings: ServeSettings, state_dir: Path) -> str:
    """``store.url``, or embedded SQLite in the state folder."""
    return settings.store.url or f"sqlite:///{(state_dir / 'results.sqlite').resolve()}"


@contextlib.asynccontextmanager
async def run_stateful(settings: ServeSettings, service: ScoringService) -> AsyncIterator[Stateful]:
    """Open the store and start the intake, the forwarder and the DICOM node for the lifespan.

    Args:
        settings: the service settings (``state_dir``, ``store``, ``dicom``).
        service: the scoring service whose ``score`` the intake calls.
    """
    for name in UID_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    temporary = settings.state_dir is None
    state_dir = Path(tempfile.mkdtemp(prefix="labral-serve-")) if temporary else settings.state_dir
    assert state_dir is not None
    if temporary:
        log.warning("state_dir is not set: results, spool and SRs live in a temporary folder")
    state_dir.mkdir(parents=True, exist_ok=True)
    store = await asyncio.to_thread(ResultsStore.open, store_url(settings, state_dir))
    keys = store_pseudonymizer(settings.store.pseudonym_key, state_dir)
    archive = SrArchive(state_dir / "sr", keys)
    dicom = settings.dicom
    forwarder = None
    if dicom.forward.enabled:
        forwarder = Forwarder(
            dicom.forward,
            dicom.ae_title,
            state_dir / "outbox",
            state_dir / "dead_letter",
            on_done=lambda intake_id, state: _forwarded(store, dicom, intake_id, state),
        )
    intake = Intake(
        service,
        store,
        keys,
        Spool(state_dir / "spool"),
        archive,
        settings.read_limits(),
        workers=dicom.workers,
        max_backlog=dicom.max_backlog,
        score_delay_s=dicom.score_delay_s,
        forwarder=forwarder,
    )
    intake.start()
    if forwarder is not None:
        forwarder.start(
            recorded=lambda intake_id: store.result_id_for_intake(intake_id) is not None
        )
    node = DicomNode(dicom, intake) if dicom.enabled else None
    if node is not None:
        await asyncio.to_thread(node.start)
    retention = None
    if settings.store.retention_days is not None:
        retention = asyncio.create_task(_retain(store, archive, settings.store.retention_days))
    try:
        yield Stateful(state_dir, store, keys, archive, intake, node, forwarder)
    finally:
        if retention is not None:
            retention.cancel()
        if node is not None:
            await asyncio.to_thread(node.stop)
        await intake.stop()
        if forwarder is not None:
            await asyncio.to_thread(forwarder.stop)
        store.close()
        if temporary:
            shutil.rmtree(state_dir, ignore_errors=True)


def _forwarded(store: ResultsStore, dicom: DicomSettings, intake_id: str, state: str) -> None:
    """Record a forward's outcome on its result row and in the audit trail."""
    forward = dicom.forward
    result_id = store.result_id_for_intake(intake_id)
    if result_id is None:
        return
    store.set_forward(result_id, state)
    row = store.get(result_id) or {}
    destination = f"{forward.ae_title}@{forward.host}:{forward.port}"
    store.add_audit(
        AuditEntry("C-STORE SCU", destination, "forward", state, row.get("instance_key"), result_id)
    )


async def _retain(store: ResultsStore, archive: SrArchive, days: float) -> None:
    """Delete results and SRs older than ``days``, now and every hour."""
    while True:
        cutoff = utcnow() - dt.timedelta(days=days)
        rows = await asyncio.to_thread(store.purge_before, cutoff)
        files = await asyncio.to_thread(archive.purge_before, cutoff)
        if rows or files:
            log.info(
                "retention: %d results and %d SRs older than %g days deleted", rows, files, days
            )
        await asyncio.sleep(RETENTION_PERIOD_S)
