"""The report stage of a scored DICOM instance: its SR, filed on its row, sent back.

A not-assessable instance (refused by the input check) takes the same path: its SR records
"not assessable" with the reasons and advice instead of a finding (serve/dicom/sr.py).

    scored row (serve/dicom/intake.py) -> SR built (highdicom, serve/dicom/sr.py)
        in one child process
        -> SR archive (WADO-RS) -> the row's ``sr_key`` -> forward outbox -> spool entry removed

Why a stage of its own: building a TID 1500 SR with highdicom costs about as much CPU as
decoding the cine (some 20 ms of pure Python per instance), and it is not part of the
result. Built on the scoring path it doubled the work between an acknowledgement and the
result row, and a burst of instances queued behind it. Here the result row is committed as
soon as the score is known (``forward`` already ``pending`` when a destination is set, and
``sr_key`` null until the SR exists), and the SR follows in one child process (spawned at
the first SR, niceness ``REPORT_NICENESS``): it takes nothing from the server's GIL. An SR
is not started while instances wait for their result (``busy``), for at most
``REPORT_DEFER_S``: under a burst the SRs trail the results and catch up when it ends, and
a flood that never ends still gets them, that much later. A child that dies is replaced
and the job tried again.

Nothing is lost: the spool entry is removed only once its SR is archived and in the
forward outbox. A crash in between leaves the entry; at the next start the intake finds
its row and hands it straight back here (no second score), and every step is idempotent:
the SR's UIDs come from the entry id, the archive and the outbox overwrite, and an SR
already sent or already waiting in the outbox is not queued again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import pydicom
from pydicom.uid import generate_uid

from labral.datasets.manifests.pseudonyms import Pseudonymizer
from labral.serve.dicom.forward import Forwarder
from labral.serve.dicom.spool import Spool, SpoolEntry
from labral.serve.dicom.sr import lower_priority, sr_file_for
from labral.serve.service import ScoringService
from labral.serve.store.database import ResultsStore
from labral.serve.store.sr_archive import SrArchive
from labral.serve.verdicts import Refusal

log = logging.getLogger("labral.serve")
#: Jobs in progress at once: one builds its SR (in the single SR process) while the other
#: writes (fsync-bound, in the default executor).
REPORT_TASKS = 2
#: At shutdown, how long the SRs still queued may take before they are left to the spool.
REPORT_DRAIN_S = 15.0
#: An SR waits while instances wait for their result (scoring first), but never longer than
#: this after its row: a sustained flood still gets its SRs, REPORT_DEFER_S behind.
REPORT_DEFER_S = 10.0
#: How often a deferred SR looks again whether the node is idle.
REPORT_IDLE_POLL_S = 0.05
NO_SR = "no SR: the source lacks what an SR copies"
#: Forward states after which an SR is not queued again (``serve/dicom/forward.py``).
FORWARD_DONE = ("sent", "dead_letter")

SrUids = tuple[str, str, str]


@dataclass
class ReportJob:
    """A scored instance whose SR is still to be made.

    Attributes:
        entry: its spool entry (removed once the SR is kept).
        header: the source's header (no pixel data).
        result_id: its committed result row.
        probability / decision: the row's score (None for a not-assessable clip).
        warnings: the row's warnings (the SR's own note is added when none can be made).
        forward: the row's forward state (None: forwarding off).
        queued_at: ``time.monotonic()`` when the job was made (bounds its deferral).
        refusal: the input check's reasons and advice when the clip is not assessable (its SR
            says "not assessable" instead of giving a finding); None when scored.
    """

    entry: SpoolEntry
    header: pydicom.Dataset
    result_id: int
    probability: float | None
    decision: bool | None
    warnings: list[str] = field(default_factory=list)
    forward: str | None = None
    queued_at: float = field(default_factory=time.monotonic)
    refusal: Refusal | None = None


class Reporter:
    """Makes, keeps and forwards the SR of each scored instance, off the scoring path.

    Args:
        service: the scoring service (its bundle's threshold and identity go in the SR).
        store: the results store (``set_report``).
        keys: pseudonymizer of UIDs.
        spool: where the entries leave from.
        archive: the SRs made (WADO-RS).
        forwarder: where SRs go back to the PACS, or None.
        on_done: called on the event loop with (entry id, SR UIDs or None) after each job.
        busy: True while instances wait for their result row; an SR is not started then
            (for at most ``REPORT_DEFER_S`` after its job was queued). None: never busy.
    """

    def __init__(
        self,
        service: ScoringService,
        store: ResultsStore,
        keys: Pseudonymizer,
        spool: Spool,
        archive: SrArchive,
        forwarder: Forwarder | None,
        on_done: Callable[[str, SrUids | None], None],
        busy: Callable[[], bool] | None = None,
    ) -> None:
        self.service = service
        self.store = store
        self.keys = keys
        self.spool = spool
        self.archive = archive
        self.forwarder = forwarder
        self.on_done = on_done
        self.busy = busy
        self._queue: asyncio.Queue[ReportJob] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._builder: ProcessPoolExecutor | None = None

    @property
    def waiting(self) -> int:
        """Jobs queued and not started (for logs and benchmarks)."""
        return 0 if self._queue is None else self._queue.qsize()

    def start(self) -> None:
        """Start the report tasks on the running loop."""
        self._queue = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._work()) for _ in range(REPORT_TASKS)]

    async def stop(self) -> None:
        """Finish the queued SRs (at most ``REPORT_DRAIN_S``), then stop; a job not finished
        leaves its spool entry for the next start."""
        if self._queue is not None and self._tasks:
            try:
                await asyncio.wait_for(self._queue.join(), REPORT_DRAIN_S)
            except TimeoutError:
                log.warning("%d SRs not made before shutdown; made at the next start", self.waiting)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._builder is not None:
            self._builder.shutdown(wait=False, cancel_futures=True)
            self._builder = None

    def _pool(self) -> ProcessPoolExecutor:
        """The SR process (spawned, not forked: the server runs threads), started on use."""
        if self._builder is None:
            self._builder = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=lower_priority,
            )
        return self._builder

    def put(self, job: ReportJob) -> None:
        """Queue a job (event loop only)."""
        assert self._queue is not None, "Reporter.start() first"
        self._queue.put_nowait(job)

    async def _when_idle(self, queued_at: float) -> None:
        """Return once nothing waits to be scored, or ``REPORT_DEFER_S`` after ``queued_at``."""
        if self.busy is None:
            return
        deadline = queued_at + REPORT_DEFER_S
        while self.busy() and time.monotonic() < deadline:
            await asyncio.sleep(REPORT_IDLE_POLL_S)

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            await self._when_idle(job.queued_at)
            uids = None
            try:
                uids = await self.report(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # the disk or the store failed: the spool keeps the entry
                log.exception(
                    "SR of spooled instance %s not kept; retried at next start", job.entry.id
                )
            with contextlib.suppress(Exception):
                self.on_done(job.entry.id, uids)
            self._queue.task_done()

    async def report(self, job: ReportJob) -> SrUids | None:
        """Make, keep and queue the SR of one job, then let its spool entry go.

        Returns:
            The SR's (study, series, SOP instance) UIDs, or None when none could be made.
        """
        made = await self._make_sr(job)
        await asyncio.to_thread(self._file, job, made)
        return None if made is None else made[1]

    async def _make_sr(self, job: ReportJob) -> tuple[bytes, SrUids] | None:
        """The SR for a job; its UIDs come from the entry id (the same SR if made again)."""
        bundle = self.service.bundle
        series = generate_uid(entropy_srcs=[job.entry.id, "series"])
        instance = generate_uid(entropy_srcs=[job.entry.id, "instance"])
        args = (
            job.header,
            job.probability,
            job.decision,
            float(bundle.threshold),
            bundle.identity(),
            series,
            instance,
            job.refusal,
        )
        loop = asyncio.get_running_loop()
        try:
            made = await loop.run_in_executor(self._pool(), sr_file_for, *args)
        except BrokenProcessPool:  # the SR process died (killed, out of memory): a new one
            log.warning("the SR process ended; starting a new one for spooled %s", job.entry.id)
            self._builder = None
            made = await loop.run_in_executor(self._pool(), sr_file_for, *args)
        if isinstance(made, str):
            note = f"{NO_SR} ({made})"
            if note not in job.warnings:
                job.warnings.append(note)
            return None
        data, study = made
        return data, (study, series, instance)

    def _file(self, job: ReportJob, made: tuple[bytes, SrUids] | None) -> None:
        """Archive the SR, note it on the row, hand it to the forwarder, free the entry."""
        entry = job.entry
        sr_key = None
        if made is not None:
            data, uids = made
            self.archive.put(data, *uids)
            sr_key = self.keys.key(uids[2])
        self.store.set_report(job.result_id, sr_key, job.warnings)
        forwarder = self.forwarder
        if made is not None and forwarder is not None and job.forward not in FORWARD_DONE:
            if not forwarder.holds(entry.id):  # after a crash the start may have queued it
                forwarder.keep(entry.id, made[0])
                forwarder.send_later(entry.id)
        self.spool.remove(entry)
