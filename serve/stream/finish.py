"""The end of a live session: score the recorded clip offline, store its row, answer.

The recorded clip goes through exactly what ``POST /v1/predictions`` runs after decoding
(:meth:`ScoringService.score_clip`: ``prepare`` with the input check, the batcher's model
call, ``finish``) and is answered by the same function (``predictions.answer``), so the
session's final result equals offline scoring of the same frames. A session that ended
early (a dropped connection, a limit, a bad frame) still stores its row, marked partial:
``reason`` holds the code it ended with.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from concurrent.futures import Executor
from typing import Any

from fastapi import FastAPI

from labral.serve.dicom.sr import read_source_header, sr_bytes
from labral.serve.http import predictions
from labral.serve.service import ScoredClip, ScoringService, result_fields
from labral.serve.store.database import AuditEntry, ResultRow
from labral.serve.stream.session import StreamSession

log = logging.getLogger("labral.serve")
STREAM_ROUTE = "WS /v1/stream"


def stream_row(
    service: ScoringService, scored: ScoredClip | None, ended: str | None, stream_ms: float
) -> ResultRow:
    """The session's results row: source ``stream``; ``reason`` is why it ended early."""
    row = ResultRow(source="stream", status="failed", **service.model_fields())
    if scored is not None:
        for name, value in result_fields(scored).items():
            setattr(row, name, value)
        row.timing_ms = {**(row.timing_ms or {}), "stream_work": round(stream_ms, 2)}
    row.reason = ended or (None if scored is not None else "no_frames")
    if ended and scored is not None:
        row.warnings = [*row.warnings, f"partial: the session ended early ({ended})"]
    return row


def sr_base64(header_b64: str, scored: ScoredClip, service: ScoringService) -> str:
    """A DICOM SR of the result referencing the source whose header the client sent."""
    source = read_source_header(base64.b64decode(header_b64, validate=True))
    dataset = predictions.sr_dataset(source, scored, service.bundle)
    return base64.b64encode(sr_bytes(dataset)).decode("ascii")


async def finish_session(
    app: FastAPI,
    session: StreamSession,
    executor: Executor,
    *,
    ended: str | None,
    caller: str,
    dicom_header: str | None = None,
) -> dict[str, Any]:
    """Score the recorded frames, store the row, return the ``result`` message.

    Args:
        app: the app (its service, settings and results store).
        session: the session (its spool is read, not discarded).
        executor: the stream worker pool.
        ended: the code the session ended with early, or None after a ``close`` message.
        caller: who streamed (for the audit line).
        dicom_header: base64 DICOM header of the source, when an SR was asked for.
    """
    service: ScoringService = app.state.service
    loop = asyncio.get_running_loop()
    scored = None
    if session.frames > 0:
        clip = await loop.run_in_executor(executor, session.recorded_clip)
        scored = await service.score_clip(clip, executor=executor)
    row = stream_row(service, scored, ended, session.work_s * 1000)
    entry = AuditEntry(STREAM_ROUTE, caller, "score", row.reason or row.status)
    store = app.state.stateful.store
    result_id = await asyncio.to_thread(store.add_result, row, entry)
    body: dict[str, Any] = {
        "type": "result",
        "result_id": result_id,
        "ended": ended,
        "stream": session.summary(),
    }
    if scored is None:
        return {**body, "status": "failed", "reason": row.reason}
    settings = app.state.settings
    body.update(predictions.answer(scored, service.bundle, settings, spatial=False, preview=False))
    if dicom_header:
        try:
            body["sr"] = await loop.run_in_executor(
                executor, sr_base64, dicom_header, scored, service
            )
        except Exception as exc:  # the result stands; the SR could not be made
            log.warning("stream SR failed: %s", exc)
            body["sr_error"] = f"no SR: the DICOM header could not be used ({exc})"
    return body
