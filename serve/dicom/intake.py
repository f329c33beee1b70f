"""DICOM instances from the node (C-STORE) and STOW-RS: checked, spooled, scored, stored.

    receive(bytes)   header checks (serve/dicom/receipt.py, the reader's own, before any pixel is
                     decoded) -> spool (durable) -> the caller may acknowledge
    scoring          ``dicom.workers`` tasks: spool entry -> ScoringService.score (the HTTP
                     path's function, so concurrent instances share the micro-batcher's model
                     calls) -> one results row + audit line. A failure that is not the
                     instance's own (an untyped exception, a typed 5xx) is retried
                     (:data:`SCORE_TRIES`, backoff from :data:`SCORE_BACKOFF_S`); a row the
                     store refuses is retried (:data:`RECORD_TRIES`) and otherwise waits in
                     the spool for the next start: an entry leaves the spool only with its row
    report           serve/dicom/reporting.py: SR -> archive, row's sr_key, forward outbox -> spool
                     entry removed

:meth:`Intake.receive` runs in the caller's thread (a pynetdicom association thread, or a
worker thread of the STOW route); scoring runs in asyncio tasks on the app's event loop,
where the scoring service lives. Entries left in the spool by a crash are queued first when
the workers start; one whose row is already stored goes straight to the report stage.

Backlog (serve/dicom/backlog.py): while ``dicom.max_backlog`` acknowledged instances wait
for their result row, :meth:`Intake.wait_for_room` holds the next C-STORE response, so a
sender faster than the model is slowed at the acknowledgement, as the HTTP path's clients
are by waiting for their answers. A held instance is already in the spool and queued for
scoring; each result row lets one held answer go, so the model is fed steadily rather than
in waves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from labral.datasets.io.limits import ReadLimits
from labral.datasets.manifests.pseudonyms import Pseudonymizer
from labral.errors import LabralError, NotDicomError
from labral.serve.dicom.backlog import BACKLOG_WAIT_S, Backlog
from labral.serve.dicom.forward import Forwarder
from labral.serve.dicom.receipt import UID_TAGS, Receipt, check_header, uids_if_readable
from labral.serve.dicom.reporting import Reporter, ReportJob, SrUids
from labral.serve.dicom.spool import Spool, SpoolEntry
from labral.serve.dicom.sr import is_dicom, read_source_header
from labral.serve.service import ScoredClip, ScoringService, result_fields
from labral.serve.store.database import AuditEntry, ResultRow, ResultsStore
from labral.serve.store.sr_archive import SrArchive
from labral.serve.verdicts import NOT_ASSESSABLE, SCORED, Refusal

log = logging.getLogger("labral.serve")
#: Tries at recording a spooled instance (store or disk trouble) before it waits for a restart.
RECORD_TRIES = 5
#: Tries at scoring an instance when the failure is not the instance's own (an untyped
#: exception: the model, a thread pool, memory; or a typed 5xx); then its row says
#: ``internal_error``. Waits between tries start here and double.
SCORE_TRIES = 3
SCORE_BACKOFF_S = 0.5
#: Row statuses whose instance gets an SR (a not-assessable one says so instead of a finding).
REPORTED = (SCORED, NOT_ASSESSABLE)
ROUTES = {"cstore": "C-STORE", "stowrs": "POST /dicomweb/studies", "upload": "POST /v1/predictions"}


@dataclass
class Outcome:
    """A spooled instance after scoring (and its report).

    Attributes:
        status: ``scored``, ``not_assessable`` (the input check refused it; it still gets
            its SR) or ``failed``; ``reason`` the stable error code of a failure.
        result_id: its results row.
        sr_uids: (study, series, SOP instance) UIDs of the SR made for it, or None.
    """

    status: str
    reason: str | None
    result_id: int | None
    sr_uids: SrUids | None = None


class Intake:
    """The receipt checks, the spool, the scoring workers and the report stage.

    Args:
        service: the app's scoring service (its ``score`` is the only scoring function).
        store: where results and audit lines go.
        keys: pseudonymizer of UIDs.
        spool: received instances.
        archive: the SRs made.
        limits: read limits (the service's).
        workers: instances scored at once (they share the micro-batcher's model calls).
        max_backlog: acknowledged instances waiting for their result row at which
            :meth:`wait_for_room` holds further acknowledgements.
        score_delay_s: test-only pause before each instance is scored.
        forwarder: where SRs go back to the PACS (``serve/dicom/forward.py``), or None.
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
        workers: int,
        max_backlog: int,
        score_delay_s: float = 0.0,
        forwarder: Forwarder | None = None,
    ) -> None:
        self.service = service
        self.store = store
        self.keys = keys
        self.spool = spool
        self.limits = limits
        self.workers = workers
        self._backlog = Backlog(max_backlog)
        self.score_delay_s = score_delay_s
        self.forwarder = forwarder
        self.reporter = Reporter(
            service, store, keys, spool, archive, forwarder, self._reported, self.busy
        )
        self._queue: asyncio.Queue[SpoolEntry] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._waiting: dict[str, asyncio.Future[Outcome]] = {}
        self._scored: dict[str, Outcome] = {}  # submitted entries between score and report
        self._tries: dict[str, int] = {}
        self._recovered: set[str] = set()

    # ---- life cycle -------------------------------------------------------------------
    def start(self) -> int:
        """Start the workers on the running loop; queue what the spool still holds first.

        Returns:
            How many spooled instances were waiting (scored before anything new).
        """
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self.reporter.start()
        pending = self.spool.pending()
        for entry in pending:
            self._queue.put_nowait(entry)
        self._recovered = {entry.id for entry in pending}
        self._backlog.received(self._recovered)
        if pending:
            log.info("spool: %d received, unscored instances go first", len(pending))
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]
        return len(pending)

    async def stop(self) -> None:
        """Stop the workers; an instance not yet reported stays in the spool for the next start."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._backlog.clear()  # nothing is scored any more: no SR waits for scoring now
        await self.reporter.stop()

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
            sop_class, sop_instance, study = uids_if_readable(data)
            instance_key = self.keys.key(sop_instance)
            self._store_failure(source, caller, error.code, instance_key, self.keys.key(study))
            log.info("%s refused instance=%s: %s", source, _short(instance_key), error.code)
            return Receipt(None, error, sop_class, sop_instance)
        meta = {"source": source, "caller": caller, "received_at": time.time()}
        entry = self.spool.put(data, meta)
        self._backlog.received([entry.id])
        sop_class, sop_instance = (str(header.get(t, "")) or None for t in UID_TAGS[:2])
        return Receipt(entry, None, sop_class, sop_instance)

    def wait_for_room(self, entry_id: str, timeout: float = BACKLOG_WAIT_S) -> bool:
        """:meth:`Backlog.wait_for_room` (an association thread); False when ``timeout``
        passed with the backlog full (acknowledged all the same: it is in the spool)."""
        return self._backlog.wait_for_room(entry_id, timeout)

    @property
    def backlog(self) -> int:
        """Received instances without a result row yet."""
        return len(self._backlog)

    def busy(self) -> bool:
        """True while a received instance waits for its result row (SRs wait then)."""
        return bool(self._backlog)

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
        """Queue a spooled entry from the event loop; wait until it is scored and reported."""
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
            self._recovered.discard(entry.id)
            self._backlog.recorded(entry.id)
            if outcome is not None:  # None: its report is pending (see _reported)
                self._resolve(entry.id, outcome)

    def _resolve(self, entry_id: str, outcome: Outcome) -> None:
        future = self._waiting.get(entry_id)
        if future is not None and not future.done():
            future.set_result(outcome)

    def _reported(self, entry_id: str, sr_uids: SrUids | None) -> None:
        """The report stage finished an entry: answer whoever submitted it."""
        outcome = self._scored.pop(entry_id, None)
        if outcome is not None:
            outcome.sr_uids = sr_uids
            self._resolve(entry_id, outcome)

    async def _wait_ready(self) -> None:
        while not self.service.ready.is_set():
            await asyncio.sleep(0.05)

    async def _process(self, entry: SpoolEntry) -> Outcome | None:
        """Score one entry and commit its row; a scored DICOM instance goes on to its report.

        Returns:
            The outcome, or None when the report stage will give it (``_reported``).
        """
        source = entry.meta.get("source", "cstore")
        caller = entry.meta.get("caller", "spool")
        if self.score_delay_s:
            await asyncio.sleep(self.score_delay_s)
        await self._wait_ready()
        if entry.id in self._recovered:  # from before a restart: it may have its row already
            done = await asyncio.to_thread(self.store.result_id_for_intake, entry.id)
            if done is not None:
                return await self._resume(entry, await asyncio.to_thread(self.store.get, done))
        data = await asyncio.to_thread(entry.path.read_bytes)
        header = read_source_header(data)
        instance_key = self.keys.key(header.get("SOPInstanceUID"))
        row = ResultRow(
            source=source,
            status="failed",
            intake_id=entry.id,
            instance_key=instance_key,
            study_key=self.keys.key(header.get("StudyInstanceUID")),
            **self.service.model_fields(),
        )
        received_at = float(entry.meta.get("received_at", time.time()))
        scored, row.reason = await self._score(data, instance_key)
        if scored is not None:  # scored, or not_assessable: either way it gets its SR
            for name, value in result_fields(scored).items():
                setattr(row, name, value)
            queued_ms = (time.time() - received_at) * 1000 - scored.timing_ms["total"]
            row.timing_ms = {**scored.timing_ms, "queued": round(max(0.0, queued_ms), 2)}
            row.forward = "pending" if self.forwarder is not None else None
        del data
        audit = AuditEntry(ROUTES[source], caller, "score", row.reason or row.status, instance_key)
        result_id = await asyncio.to_thread(self.store.add_result, row, audit)
        log.info(
            "%s instance=%s %s%s",
            source,
            _short(instance_key),
            row.status,
            f" p={row.probability:.3f}"
            if row.probability is not None
            else f" ({row.reason or ','.join(row.reasons)})",
        )
        outcome = Outcome(row.status, row.reason, result_id)
        if row.status not in REPORTED:
            await asyncio.to_thread(self.spool.remove, entry)
            return outcome
        job = ReportJob(entry, header, result_id, row.probability, row.decision, row.warnings)
        job.refusal = Refusal.from_row(vars(row))  # None when scored
        return self._report(job, row.forward, outcome)

    async def _score(
        self, data: bytes, instance_key: str | None
    ) -> tuple[ScoredClip | None, str | None]:
        """Score one instance, retrying failures that are not the instance's own.

        Returns:
            (the score, None), or (None, the stable error code of the failure): the
            instance's own typed error at once, ``internal_error`` after :data:`SCORE_TRIES`.
        """
        attempt = 1
        while True:
            try:
                return await self.service.score(data), None
            except Exception as error:
                code = error.code if isinstance(error, LabralError) else "internal_error"
                if isinstance(error, LabralError) and error.http_status < 500:
                    return None, code  # the instance's own: the same bytes fail again
                if attempt == SCORE_TRIES:
                    log.exception("scoring instance=%s failed", _short(instance_key))
                    return None, code
                wait = SCORE_BACKOFF_S * 2 ** (attempt - 1)
                log.warning(
                    "scoring instance=%s failed (try %d of %d: %s); again in %.1f s",
                    _short(instance_key),
                    attempt,
                    SCORE_TRIES,
                    type(error).__name__,
                    wait,
                )
                await asyncio.sleep(wait)
                attempt += 1

    async def _resume(self, entry: SpoolEntry, row: dict[str, Any] | None) -> Outcome | None:
        """An entry whose row was committed before a crash: report it, never score it again."""
        assert row is not None
        outcome = Outcome(row["status"], row["reason"], int(row["id"]))
        if row["status"] not in REPORTED or row.get("sr_key") is not None:
            await asyncio.to_thread(self.spool.remove, entry)
            return outcome
        header = read_source_header(await asyncio.to_thread(entry.path.read_bytes))
        warnings = list(row.get("warnings") or [])
        job = ReportJob(
            entry, header, outcome.result_id, row["probability"], row["decision"], warnings
        )
        job.refusal = Refusal.from_row(row)  # the same SR as the first time
        return self._report(job, row.get("forward"), outcome)

    def _report(self, job: ReportJob, forward: str | None, outcome: Outcome) -> None:
        """Hand a scored entry to the report stage; its submitter is answered from there."""
        job.forward = forward
        self._scored[job.entry.id] = outcome
        self.reporter.put(job)

    def _store_failure(
        self, source: str, caller: str, code: str, instance_key: str | None, study_key: str | None
    ) -> None:
        row = ResultRow(
            source=source,
            status="failed",
            reason=code,
            instance_key=instance_key,
            study_key=study_key,
            **self.service.model_fields(),
        )
        self.store.add_result(row, AuditEntry(ROUTES[source], caller, "score", code, instance_key))


def _short(key: str | None) -> str:
    return (key or "unknown")[:16]
