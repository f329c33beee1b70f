"""Results rows and audit lines for HTTP requests (uploads, result reads, retrievals).

``POST /v1/predictions`` calls :func:`record_upload` once per scored (or refused) upload,
before it answers: every attempt is one row (serve/README.md), so when the store refuses
the row the client gets 503 ``store_unavailable`` (and may retry), never a score without
its row. An audit line of a read (:func:`record_read`) is logged and counted when the store
refuses it, and the read is still answered.
"""

from __future__ import annotations

import asyncio
import io
import logging

import pydicom
from fastapi import Request

from labral.errors import LabralError
from labral.serve.dicom.sr import is_dicom
from labral.serve.http.errors import StoreUnavailableError
from labral.serve.service import ScoredClip, result_fields
from labral.serve.store.database import AuditEntry, ResultRow

log = logging.getLogger("labral.serve")
UPLOAD_ROUTE = "POST /v1/predictions"


def http_caller(request: Request) -> str:
    """Who called: the client address, marked when a bearer key was checked."""
    host = request.client.host if request.client else "unknown"
    keyed = request.app.state.settings.auth_required
    return f"http:{host}" + (" (key)" if keyed else "")


def _uids(data: bytes) -> tuple[str | None, str | None]:
    """(SOP Instance UID, Study Instance UID) of a DICOM upload; (None, None) otherwise."""
    if not is_dicom(data):
        return None, None
    try:
        ds = pydicom.dcmread(
            io.BytesIO(data),
            stop_before_pixels=True,
            specific_tags=["SOPInstanceUID", "StudyInstanceUID"],
        )
    except Exception:
        return None, None
    return (str(ds.get("SOPInstanceUID", "")) or None, str(ds.get("StudyInstanceUID", "")) or None)


async def record_upload(
    request: Request,
    data: bytes,
    scored: ScoredClip | None = None,
    error: LabralError | None = None,
) -> int | None:
    """Store one upload's result row (scored, not_assessable with the input check's reasons,
    or failed with the error's code) and audit line.

    Args:
        request: the prediction request (its app holds the store).
        data: the uploaded bytes (only the UIDs of a DICOM header are read, to key them).
        scored: the scoring service's result, or None when ``error`` is given.
        error: why scoring failed.

    Returns:
        The result row's id.

    Raises:
        StoreUnavailableError: the store refused the row (503; chained to ``error``, if any).
    """
    stateful = request.app.state.stateful
    service = request.app.state.service
    instance, study = _uids(data)
    keys = stateful.keys
    row = ResultRow(
        source="upload",
        status="failed",
        instance_key=keys.key(instance),
        study_key=keys.key(study),
        **service.model_fields(),
    )
    if scored is not None:  # scored, or not_assessable with the input check's reasons
        for name, value in result_fields(scored).items():
            setattr(row, name, value)
    else:
        row.reason = error.code if error is not None else "internal_error"
    entry = AuditEntry(
        UPLOAD_ROUTE, http_caller(request), "score", row.reason or row.status, row.instance_key
    )
    try:
        return await asyncio.to_thread(stateful.store.add_result, row, entry)
    except Exception as exc:
        log.exception("the results store refused an upload's row; answering 503")
        outcome = "it was scored" if scored is not None else f"it was refused ({row.reason})"
        raise StoreUnavailableError(
            f"{outcome}, but the results store could not record it, and no answer goes out "
            "without its row; retry shortly"
        ) from exc


async def record_read(request: Request, action: str, outcome: str, key: str | None = None) -> None:
    """Append one audit line for a read (results page, SR retrieval); never raises."""
    stateful = request.app.state.stateful
    route = getattr(request.scope.get("route"), "path", "?")  # the template: never the UIDs
    entry = AuditEntry(
        f"{request.method} {route}",
        http_caller(request),
        action,
        outcome,
        key,
    )
    try:
        await asyncio.to_thread(stateful.store.add_audit, entry)
    except Exception:
        log.exception("the results store refused an audit line")
