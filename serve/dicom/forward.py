"""SRs back to the PACS: C-STORE from an outbox, retries with backoff, then a dead letter.

Each SR the report stage makes (``serve/dicom/reporting.py``) is written to
``<state_dir>/outbox/<intake id>.dcm`` (durably) once its result row is committed, then
:class:`Forwarder` sends it to ``dicom.forward.ae_title`` at ``host:port`` from one thread,
over one association for as long as SRs keep coming. A try that fails (no
association, a refused context, a failure status) is repeated ``retries`` times, waiting
``backoff_s``, then twice as long each time; after the last one the SR moves to
``<state_dir>/dead_letter/``, to be sent by hand (``storescu <host> <port> dead_letter/*.dcm``)
or by moving it back into the outbox before a restart. The outbox is read again at every
start, so an SR is never lost between its row and its delivery.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path

import pydicom
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, Association
from pynetdicom.sop_class import ComprehensiveSRStorage

from labral.serve.dicom.spool import DRAFT_PREFIX, remove_durably, write_durably
from labral.serve.settings import ForwardSettings

log = logging.getLogger("labral.serve")
#: Success and the warning statuses of C-STORE (PS3.4 B.2.3): the SR is stored.
STORED = {0x0000, 0xB000, 0xB006, 0xB007}


class Forwarder:
    """Delivers outbox SRs to one destination.

    Args:
        settings: destination, retries, backoff and timeouts.
        calling_ae_title: our AE title.
        outbox / dead_letter: folders (created if missing).
        on_done: called with (intake id, ``sent`` | ``dead_letter``) after each SR.
    """

    def __init__(
        self,
        settings: ForwardSettings,
        calling_ae_title: str,
        outbox: Path,
        dead_letter: Path,
        on_done: Callable[[str, str], None],
    ) -> None:
        self.settings = settings
        self.calling_ae_title = calling_ae_title
        self.outbox = outbox
        self.dead_letter = dead_letter
        self.on_done = on_done
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._assoc: Association | None = None  # the delivery thread's open association
        self._syntax: str | None = None
        outbox.mkdir(parents=True, exist_ok=True)
        dead_letter.mkdir(parents=True, exist_ok=True)

    def start(self, recorded: Callable[[str], bool]) -> None:
        """Queue the outbox SRs whose result rows exist, then start the delivery thread.

        Args:
            recorded: True when an intake id has its result row; the others are still in
                the spool, and the intake queues them once their rows are committed.
        """
        for path in sorted(self.outbox.glob("*.dcm"), key=lambda p: p.stat().st_mtime_ns):
            if not path.name.startswith(DRAFT_PREFIX) and recorded(path.stem):
                self._queue.put(path.stem)
        self._thread = threading.Thread(target=self._run, name="labral-forward", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the current try; what is left stays in the outbox for the next start."""
        self._stopping.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def keep(self, intake_id: str, sr: bytes) -> None:
        """Put one SR in the outbox (durably), before its result row is committed."""
        write_durably(self.outbox / f"{intake_id}.dcm", sr)

    def holds(self, intake_id: str) -> bool:
        """True while an SR of this intake id waits in the outbox."""
        return (self.outbox / f"{intake_id}.dcm").is_file()

    def send_later(self, intake_id: str) -> None:
        """Queue a kept SR for delivery, once its result row is committed."""
        self._queue.put(intake_id)

    # ---- the delivery thread ----------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                name = self._queue.get()
                if name is None:
                    return
                path = self.outbox / f"{name}.dcm"
                if path.is_file():
                    try:
                        self._deliver(name, path)
                    except Exception:  # never let one SR stop the thread; the outbox keeps it
                        log.exception("forwarding SR %s failed unexpectedly", name)
                if self._queue.empty():
                    self._close()
        finally:
            self._close()

    def _deliver(self, name: str, path: Path) -> None:
        s = self.settings
        data = path.read_bytes()
        wait = s.backoff_s
        for attempt in range(s.retries + 1):
            problem = self._send(data)
            if problem is None:
                remove_durably(path)
                log.info("SR %s forwarded to %s", name, s.ae_title)
                self.on_done(name, "sent")
                return
            self._close(abort=True)  # the next try negotiates afresh
            log.warning("SR %s: try %d of %d failed: %s", name, attempt + 1, s.retries + 1, problem)
            if attempt < s.retries:
                if self._stopping.wait(wait):
                    return  # shutting down: the outbox keeps it
                wait *= 2
        write_durably(self.dead_letter / path.name, data)
        remove_durably(path)
        log.error("SR %s moved to the dead letter folder after %d tries", name, s.retries + 1)
        self.on_done(name, "dead_letter")

    def _association(self, syntax: str) -> Association | None:
        """The open association for SRs in ``syntax``, or a new one (None: none could be made).

        SRs queued back to back share one association (a burst of instances is one
        negotiation, not one per SR); it is released as soon as the queue is empty.
        """
        if self._assoc is not None and self._assoc.is_established and self._syntax == syntax:
            return self._assoc
        self._close()
        s = self.settings
        ae = AE(ae_title=self.calling_ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = s.timeout_s
        ae.connection_timeout = s.timeout_s
        ae.add_requested_context(
            ComprehensiveSRStorage, list(dict.fromkeys([syntax, ExplicitVRLittleEndian]))
        )
        ae.add_requested_context(ComprehensiveSRStorage, ImplicitVRLittleEndian)
        assoc = ae.associate(s.host, s.port, ae_title=s.ae_title)
        if not assoc.is_established:
            return None
        self._assoc, self._syntax = assoc, syntax
        return assoc

    def _close(self, abort: bool = False) -> None:
        """Release (or abort, after a failed try) the open association, if any."""
        assoc, self._assoc = self._assoc, None
        if assoc is not None and assoc.is_established:
            assoc.abort() if abort else assoc.release()

    def _send(self, data: bytes) -> str | None:
        """One C-STORE of the SR; None when stored, else what went wrong."""
        sr = pydicom.dcmread(io.BytesIO(data))
        assoc = self._association(str(sr.file_meta.TransferSyntaxUID))
        if assoc is None:
            return "no association (destination down, or it refused us)"
        try:
            status = assoc.send_c_store(sr)
        except (ValueError, RuntimeError) as exc:  # e.g. no accepted presentation context
            return str(exc)
        code = getattr(status, "Status", None)
        if code is None:
            return "no response (timeout or aborted association)"
        if code not in STORED:
            return f"failure status 0x{code:04X}"
        return None
