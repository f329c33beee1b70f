"""The intake's backlog: received instances waiting for their result row (any thread).

While ``dicom.max_backlog`` acknowledged instances wait for their row,
:meth:`Backlog.wait_for_room` holds the next C-STORE response (up to
:data:`BACKLOG_WAIT_S`), so a sender faster than the model is slowed at the
acknowledgement instead of filling a queue that delays every result behind it. Each row
(:meth:`Backlog.recorded`) lets one held answer go.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

#: Longest a C-STORE response is held while the backlog is full: well inside the DIMSE
#: timeouts of scanners and PACS (30 s and more), after which the instance is acknowledged
#: anyway (it is in the spool).
BACKLOG_WAIT_S = 10.0


class Backlog:
    """Spool entries without a result row, and which of them were acknowledged.

    Args:
        max_acknowledged: acknowledged entries waiting for their row at which
            :meth:`wait_for_room` holds further acknowledgements (``dicom.max_backlog``).
    """

    def __init__(self, max_acknowledged: int) -> None:
        self.max_acknowledged = max_acknowledged
        self._unrecorded: set[str] = set()  # received, no result row yet
        self._acknowledged: set[str] = set()  # of those, acknowledged
        self._room = threading.Condition()

    def received(self, entry_ids: Iterable[str]) -> None:
        """Count spooled entries as waiting for their row."""
        with self._room:
            self._unrecorded.update(entry_ids)

    def wait_for_room(self, entry_id: str, timeout: float = BACKLOG_WAIT_S) -> bool:
        """Block while ``max_acknowledged`` acknowledged entries wait for their row; then
        count ``entry_id`` as acknowledged (unless it already has its row).

        Returns:
            False when ``timeout`` passed with the backlog still full.
        """
        with self._room:
            free = self._room.wait_for(
                lambda: len(self._acknowledged) < self.max_acknowledged, timeout
            )
            if entry_id in self._unrecorded:
                self._acknowledged.add(entry_id)
            return free

    def recorded(self, entry_id: str) -> None:
        """``entry_id`` has its row (or waits for the next start): one held answer may go."""
        with self._room:
            self._unrecorded.discard(entry_id)
            self._acknowledged.discard(entry_id)
            self._room.notify_all()

    def clear(self) -> None:
        """Nothing is scored any more (the workers stopped): release every held answer."""
        with self._room:
            self._unrecorded.clear()
            self._acknowledged.clear()
            self._room.notify_all()

    def __len__(self) -> int:
        return len(self._unrecorded)
