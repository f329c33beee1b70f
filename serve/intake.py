"""DICOM instances from the node (C-STORE) and STOW-RS: checked, spooled, scored, stored.

    receive(bytes)   header checks (the reader's own, before any pixel is decoded)
                     -> spool (durable) -> the caller may acknowledge
    workers          spool entry -> ScoringService.score (the HTTP path's function)
                     -> SR (serve/sr.py) kept in the SR archive, queued for forwarding
                     -> one results row + audit line -> spool entry removed

:meth:`Intake.receive` runs in the caller's thread (a pynetdicom association thread, or a
worker thread of the STOW route); scoring runs in ``dicom.workers`` asyncio tasks on the
app's event loop, where the scoring service lives. Entries left in the spool by a crash
are queued first when the workers start.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from dataclasses import dataclass
from typing import Any

import pydicom
from pydicom.uid import generate_uid

from labral.datasets import dicom_reader
from labral.datasets.limits import ReadLimits
from labral.errors import CorruptPixelDataError, LabralError, NotDicomError
from labral.serve.forward import Forwarder
from labral.serve.pseudonym import Pseudonymizer
from labral.serve.service import ScoredClip, ScoringService
from labral.serve.spool import Spool, SpoolEntry
from labral.serve.sr import build_sr, is_dicom, read_source_header, sr_bytes
from labral.serve.sr_archive import SrArchive
from labral.serve.store import AuditEntry, ResultRow, ResultsStore

log = logging.getLogger("labral.serve")
#: Tries at recording a spooled instance (store or disk trouble) before it waits for a restart.
RECORD_TRIES = 5
ROUTES = {"cstore": "C-STORE", "stowrs": "POST /dicomweb/studies", "upload": "POST /v1/predictions"}


def check_header(data: bytes, limits: ReadLimits) -> pydicom.Dataset:
    """What ``read_cine`` checks before it decodes a pixel, at receipt time.

    Modality, frame count, :class:`ReadLimits`, an installed decoder for the transfer
    syntax and the length of the pixel data (the number of compressed frames), all through
    the reader's own checks (``labral.datasets.dicom_reader``), so a receipt and a score can
    never disagree about what is acceptable.

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
        dicom_reader._check_pixel_length(ds, syntax, frames)
    return ds


@dataclass
class Receipt:
    """What :meth:`Intake.receive` made of one instance.

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


@dataclass
class Outcome:
    """A spooled instance after scoring.

    Attributes:
        status: ``scored`` or ``failed``; ``reason`` the stable error code of a failure.
        result_id: its results row.
        sr_uids: (study, series, SOP instance) UIDs of the SR made for it, or None.
    """

    status: str
    reason: str | None
    result_id: int | None
    sr_uids: tuple[str, str, str] | None = None


def scored_values(scored: ScoredClip) -> tuple[float, bool]:
    """(probability, decision) of a ``ScoringService.score`` result."""
    return float(scored.score.probability), bool(scored.score.decision)


class Intake:
    """The receipt checks, the spool and the scoring workers of DICOM instances.

    Args:
        service: the app's scoring service (its ``score`` is the only scoring function).
        store: where results and audit lines go.
        keys: pseudonymizer of UIDs.
        spool: received instances.
        archive: the SRs made.
        limits: read limits (the service's).
        workers: instances scored at once.
        score_delay_s: test-only pause before each instance is scored.
        forwarder: where SRs go back to the PACS (``serve/forward.py``), or None.
    """

    def __init__(
        self,
        service: ScoringService,
        store: ResultsStore,
        keys: Pseudonymizer,
        spool: Spool,
        archive: SrArchive,
        limits: ReadLimits,
        *,
        workers: int = 2,
        score_delay_s: float = 0.0,
        forwarder: Forwarder | None = None,
    ) -> None:
        self.service = service
        self.store = store
        self.keys = keys
        self.spool = spool
        self.archive = archive
        self.limits = limits
        self.workers = workers
        self.score_delay_s = score_delay_s
        self.forwarder = forwarder
        self._queue: asyncio.Queue[SpoolEntry] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._waiting: dict[str, asyncio.Future[Outcome]] = {}
        self._tries: dict[str, int] = {}

    # ---- life cycle -------------------------------------------------------------------
    def start(self) -> int:
        """Start the workers on the running loop; queue what the spool still holds first.

        Returns:
            How many spooled instances were waiting (scored before anything new).
        """
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        pending = self.spool.pending()
        for entry in pending:
            self._queue.put_nowait(entry)
        if pending:
            log.info("spool: %d received, unscored instances go first", len(pending))
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]
        return len(pending)

    async def stop(self) -> None:
        """Stop the workers; an instance being scored stays in the spool for the next start."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # ---- receipt (any thread) ---------------------------------------------------------
    def receive(self, data: bytes, source: str, caller: str) -> Receipt:
        """Check one instance and spool it; a refused one gets its failure row here.

        Args:
            data: a DICOM Part 10 file.
            source: ``cstore`` or ``stowrs``.
            caller: who sent it (calling AE title and address, or client address).

        Returns:
            The receipt; acknowledge the instance only when ``receipt.entry`` is set.

        Raises:
            OSError: the spool could not be written (answer "out of resources").
        """
        try:
            if not is_dicom(data):
                raise NotDicomError(
                    "not a DICOM Part 10 file (no DICM prefix); send each instance as a file "
                    "with its File Meta Information"
                )
            header = check_header(data, self.limits)
        except LabralError as error:
            sop_class, sop_instance, study = _uids_if_readable(data)
            instance_key = self.keys.key(sop_instance)
            self._store_failure(source, caller, error.code, instance_key, self.keys.key(study))
            log.info("%s refused instance=%s: %s", source, _short(instance_key), error.code)
            return Receipt(None, error, sop_class, sop_instance)
        meta = {"source": source, "caller": caller, "received_at": time.time()}
        entry = self.spool.put(data, meta)
        sop_class, sop_instance = (str(header.get(t, "")) or None for t in _UID_TAGS[:2])
        return Receipt(entry, None, sop_class, sop_instance)

    def enqueue_threadsafe(self, entry: SpoolEntry) -> None:
        """Queue a spooled entry from any thread (it is scored at the next start otherwise)."""
        loop, queue = self._loop, self._queue
        if loop is None or queue is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(queue.put_nowait, entry)
        except RuntimeError:  # the loop closed meanwhile: the spool keeps it
            pass

    async def submit(self, entry: SpoolEntry) -> Outcome:
        """Queue a spooled entry from the event loop and wait until it is scored."""
        assert self._queue is not None and self._loop is not None, "Intake.start() first"
        future = self._loop.create_future()
        self._waiting[entry.id] = future
        self._queue.put_nowait(entry)
        try:
            return await asyncio.shield(future)
        finally:
            self._waiting.pop(entry.id, None)

    # ---- scoring (event loop) ---------------------------------------------------------
    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            entry = await self._queue.get()
            try:
                outcome = await self._process(entry)
            except asyncio.CancelledError:
                raise
            except Exception:  # the store is down, the disk full: keep it, retry later
                tries = self._tries[entry.id] = self._tries.get(entry.id, 0) + 1
                if tries < RECORD_TRIES:
                    log.exception("spooled instance %s not recorded (try %d)", entry.id, tries)
                    await asyncio.sleep(min(30.0, 0.5 * 2**tries))
                    self._queue.put_nowait(entry)
                    continue
                # it stays in the spool, to be scored at the next start
                log.exception("spooled instance %s kept for the next start", entry.id)
                outcome = Outcome("failed", "internal_error", None)
            self._tries.pop(entry.id, None)
            future = self._waiting.get(entry.id)
            if future is not None and not future.done():
                future.set_result(outcome)

    async def _wait_ready(self) -> None:
        while not self.service.ready.is_set():
            await asyncio.sleep(0.05)

    async def _process(self, entry: SpoolEntry) -> Outcome:
        source = entry.meta.get("source", "cstore")
        caller = entry.meta.get("caller", "spool")
        if self.score_delay_s:
            await asyncio.sleep(self.score_delay_s)
        await self._wait_ready()
        done = await asyncio.to_thread(self.store.result_id_for_intake, entry.id)
        if done is not None:  # scored before a crash that came before the spool removal
            await asyncio.to_thread(self.spool.remove, entry)
            return Outcome("scored", None, done)
        data = await asyncio.to_thread(entry.path.read_bytes)
        header = read_source_header(data)
        instance_key = self.keys.key(header.get("SOPInstanceUID"))
        row = ResultRow(
            source=source,
            status="failed",
            intake_id=entry.id,
            instance_key=instance_key,
            study_key=self.keys.key(header.get("StudyInstanceUID")),
            **self._model_fields(),
        )
        queued_ms = (time.time() - float(entry.meta.get("received_at", time.time()))) * 1000
        sr_data, sr_uids = None, None
        try:
            scored = await self.service.score(data)
        except LabralError as error:
            row.reason = error.code
        except Exception:
            log.exception("scoring spooled instance=%s failed", _short(instance_key))
            row.reason = "internal_error"
        else:
            row.status = "scored"
            row.probability, row.decision = scored_values(scored)
            row.timing_ms = {**scored.timing_ms, "queued": round(queued_ms, 2)}
            row.warnings = list(scored.warnings)
            sr_data, sr_uids = await asyncio.to_thread(self._make_sr, entry, header, row)
        if sr_data is not None and sr_uids is not None:
            await asyncio.to_thread(self.archive.put, sr_data, *sr_uids)
            row.sr_key = self.keys.key(sr_uids[2])
            if self.forwarder is not None:
                row.forward = "pending"
                await asyncio.to_thread(self.forwarder.keep, entry.id, sr_data)
        audit = AuditEntry(ROUTES[source], caller, "score", row.reason or "scored", instance_key)
        result_id = await asyncio.to_thread(self.store.add_result, row, audit)
        if row.forward == "pending" and self.forwarder is not None:
            self.forwarder.send_later(entry.id)
        await asyncio.to_thread(self.spool.remove, entry)
        log.info(
            "%s instance=%s %s%s",
            source,
            _short(instance_key),
            row.status,
            f" p={row.probability:.3f}" if row.probability is not None else f" ({row.reason})",
        )
        return Outcome(row.status, row.reason, result_id, sr_uids)

    def _model_fields(self) -> dict[str, Any]:
        bundle = getattr(self.service, "bundle", None)
        if bundle is None:
            return {}
        identity = bundle.identity()
        return {
            "model_name": identity.get("name"),
            "model_version": identity.get("version"),
            "model_sha256": identity.get("sha256"),
            "threshold": float(bundle.threshold),
        }

    def _make_sr(
        self, entry: SpoolEntry, header: pydicom.Dataset, row: ResultRow
    ) -> tuple[bytes | None, tuple[str, str, str] | None]:
        """The SR for a scored entry; its UIDs come from the entry id (same SR if redone)."""
        bundle = self.service.bundle
        series = generate_uid(entropy_srcs=[entry.id, "series"])
        instance = generate_uid(entropy_srcs=[entry.id, "instance"])
        try:
            sr = build_sr(
                header,
                float(row.probability),
                bool(row.decision),
                float(bundle.threshold),
                bundle.identity(),
                series_instance_uid=series,
                sop_instance_uid=instance,
            )
        except (AttributeError, ValueError, TypeError) as exc:
            row.warnings.append(f"no SR: the source lacks what an SR copies ({type(exc).__name__})")
            return None, None
        return sr_bytes(sr), (str(sr.StudyInstanceUID), series, instance)

    def _store_failure(
        self, source: str, caller: str, code: str, instance_key: str | None, study_key: str | None
    ) -> None:
        row = ResultRow(
            source=source,
            status="failed",
            reason=code,
            instance_key=instance_key,
            study_key=study_key,
            **self._model_fields(),
        )
        self.store.add_result(row, AuditEntry(ROUTES[source], caller, "score", code, instance_key))


_UID_TAGS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID")


def _short(key: str | None) -> str:
    return (key or "unknown")[:16]


def _uids_if_readable(data: bytes) -> tuple[str | None, str | None, str | None]:
    """(SOP Class, SOP Instance, Study Instance) UIDs of a refused instance, when parsable."""
    try:
        ds = pydicom.dcmread(
            io.BytesIO(data),
            stop_before_pixels=True,
            force=True,
            specific_tags=list(_UID_TAGS),
        )
    except Exception:
        return None, None, None
    return tuple(str(ds.get(name, "")) or None for name in _UID_TAGS)  # type: ignore[return-value]
