"""The DICOM node: a pynetdicom C-STORE SCP (and C-ECHO) beside the HTTP app.

    labral serve bundle=... dicom.enabled=true dicom.port=11112 dicom.ae_title=LABRAL

What it accepts at association negotiation: Verification, and Ultrasound Multi-frame Image
Storage (1.2.840.10008.5.1.4.1.1.3.1 and the retired 1.2.840.10008.5.1.4.1.1.3) in every
transfer syntax the reader decodes (:func:`accepted_transfer_syntaxes`: uncompressed,
deflated, RLE, JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, HTJ2K, the MPEG-2/H.264/
HEVC video syntaxes). Every other SOP class is refused there, so a scanner's CT or
single-frame image never reaches the handler.

A C-STORE is answered only after :meth:`Intake.receive` ran the reader's header checks and
wrote the instance to the spool (fsync, then rename): success (0x0000) means it cannot be
lost; it is scored afterwards, off the association. While ``dicom.max_backlog``
acknowledged instances wait for their result, the answer is held
(:meth:`Intake.wait_for_room`; each result row lets one held answer go). A
refused instance gets a failure status from :data:`DIMSE_STATUS` (the one mapping from
labral's error codes to DIMSE) with the code in Error Comment, and its failure row is stored.
"""

from __future__ import annotations

import logging
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE, evt
from pynetdicom._globals import ALL_TRANSFER_SYNTAXES
from pynetdicom.sop_class import Verification

from labral.datasets.io.dicom_header import US_MULTIFRAME, US_MULTIFRAME_RETIRED, VIDEO_SYNTAXES
from labral.errors import LabralError, NotACineError, NotUltrasoundError, OverLimitError
from labral.serve.dicom.intake import Intake
from labral.serve.http.errors import READER_ERRORS
from labral.serve.settings import DicomSettings, is_loopback

log = logging.getLogger("labral.serve")
US_CLASSES = (US_MULTIFRAME, US_MULTIFRAME_RETIRED)
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700  # Refused: Out of Resources
DOES_NOT_MATCH = 0xA900  # Error: Data Set does not match SOP Class
CANNOT_UNDERSTAND = 0xC000  # Error: Cannot understand
#: The largest PDU callers may send us. pynetdicom's default (16 KiB) cuts a 300 KiB cine
#: into some 20 PDUs, each a pass through its pure-Python state machine; 1 MiB PDUs take a
#: typical cine in one or two, which halves the CPU its reactor spends per instance.
RECEIVE_PDU_BYTES = 1 << 20
#: How long an association's DUL thread sleeps between polls of an idle socket (pynetdicom:
#: 1 ms). Each C-STORE meets several idle polls (command, data set, the sender's next
#: message), so the sleep adds up per instance: one 300 KiB C-STORE round trip took 5.8 ms at
#: 1 ms, 7.7 ms at 2 ms and 42 ms at 20 ms (pynetdicom SCU -> SCP on loopback); 2 ms halves
#: the idle wake-ups of 1 ms for that.
DUL_IDLE_POLL_S = 0.002
#: The reader's errors whose C-STORE failure status is not "Cannot understand".
_SPECIFIC_STATUS: dict[type[LabralError], int] = {
    NotUltrasoundError: DOES_NOT_MATCH,
    NotACineError: DOES_NOT_MATCH,
    OverLimitError: OUT_OF_RESOURCES,
}
#: labral's error classes (the reader's, ``READER_ERRORS``) -> the C-STORE failure status a
#: refused instance gets.
DIMSE_STATUS: dict[type[LabralError], int] = {
    cls: _SPECIFIC_STATUS.get(cls, CANNOT_UNDERSTAND) for cls in READER_ERRORS
}


def dimse_status(error: LabralError) -> int:
    """The C-STORE failure status for a typed error (0xC000 for anything unlisted)."""
    for cls in type(error).__mro__:
        if cls in DIMSE_STATUS:
            return DIMSE_STATUS[cls]
    return CANNOT_UNDERSTAND


def accepted_transfer_syntaxes() -> list[str]:
    """Every transfer syntax the reader decodes here: pydicom's available decoders + video."""
    from pydicom.pixels import get_decoder

    accepted = []
    for uid in ALL_TRANSFER_SYNTAXES:
        if uid in VIDEO_SYNTAXES:
            accepted.append(uid)
            continue
        try:
            if get_decoder(UID(uid)).is_available:
                accepted.append(uid)
        except (NotImplementedError, ValueError):
            continue
    return accepted


class DicomNode:
    """The SCP: starts a pynetdicom server thread, hands instances to the intake.

    Args:
        settings: ``dicom`` settings (address, AE title, allowed callers, associations).
        intake: checks and spools each instance, then scores it.
    """

    def __init__(self, settings: DicomSettings, intake: Intake) -> None:
        self.settings = settings
        self.intake = intake
        self.error: str | None = None
        self._server: Any = None

    @property
    def port(self) -> int | None:
        """The bound port (useful with ``dicom.port=0``), None when not listening."""
        return None if self._server is None else int(self._server.server_address[1])

    @property
    def up(self) -> bool:
        """True while the server thread accepts associations."""
        return self._server is not None and self.error is None

    def status(self) -> dict[str, Any]:
        """``{"enabled", "up", "ae_title", "port", "error"}`` for /readyz."""
        return {
            "enabled": True,
            "up": self.up,
            "ae_title": self.settings.ae_title,
            "port": self.port if self.up else self.settings.port,
            "error": self.error,
        }

    def start(self) -> None:
        """Bind and serve in background threads; a failure is kept in ``error`` (readyz)."""
        s = self.settings
        ae = AE(ae_title=s.ae_title)
        ae.maximum_associations = s.max_associations
        ae.maximum_pdu_size = RECEIVE_PDU_BYTES
        ae.require_called_aet = True  # a caller addressing another AE title is refused
        if s.allowed_callers:
            ae.require_calling_aet = list(s.allowed_callers)
        ae.add_supported_context(Verification)
        syntaxes = accepted_transfer_syntaxes()
        for sop_class in US_CLASSES:
            ae.add_supported_context(sop_class, syntaxes)
        handlers = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_CONN_OPEN, self._on_open),
        ]
        try:
            self._server = ae.start_server((s.host, s.port), block=False, evt_handlers=handlers)
        except OSError as exc:
            self.error = f"cannot listen on {s.host}:{s.port}: {exc.strerror or exc}"
            log.error("DICOM node not started: %s", self.error)
            return
        log.info("DICOM node %s listening on %s:%d", s.ae_title, s.host, self.port)
        if not is_loopback(s.host) and not s.allowed_callers:
            log.warning(
                "the DICOM node listens on %s and accepts any calling AE title; set "
                "dicom.allowed_callers to your modalities' AE titles",
                s.host,
            )

    def stop(self) -> None:
        """Stop accepting; associations in progress are closed."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # ---- handlers (association threads) -----------------------------------------------
    @staticmethod
    def _on_open(event: evt.Event) -> None:
        dul = event.assoc.dul
        if hasattr(dul, "_run_loop_delay"):  # a private pynetdicom attribute (3.0)
            dul._run_loop_delay = DUL_IDLE_POLL_S

    @staticmethod
    def _on_echo(event: evt.Event) -> int:
        return SUCCESS

    def _on_store(self, event: evt.Event) -> int | Dataset:
        requestor = event.assoc.requestor
        caller = f"{requestor.ae_title.strip()}@{requestor.address}"
        try:
            data = event.encoded_dataset()
            receipt = self.intake.receive(data, "cstore", caller)
        except OSError:
            log.exception("spool write failed; answering out of resources")
            return OUT_OF_RESOURCES
        except Exception:  # never let a handler bug kill the association silently
            log.exception("C-STORE handler failed")
            return CANNOT_UNDERSTAND
        if receipt.error is not None:
            answer = Dataset()
            answer.Status = dimse_status(receipt.error)
            answer.ErrorComment = receipt.error.code[:64]
            return answer
        assert receipt.entry is not None
        self.intake.enqueue_threadsafe(receipt.entry)
        if not self.intake.wait_for_room(receipt.entry.id):  # backpressure: it is spooled
            log.warning("scoring backlog still full after the longest wait; acknowledging")
        return SUCCESS
