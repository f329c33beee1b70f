"""DICOMweb: STOW-RS stores and scores instances; WADO-RS returns the SRs made for them.

    POST /dicomweb/studies                                  STOW-RS (PS3.18 10.5)
    GET  /dicomweb/studies/{study}                          WADO-RS: every SR of the study
    GET  /dicomweb/studies/{study}/series/{series}/instances/{instance}   WADO-RS: one SR

STOW-RS takes ``multipart/related; type="application/dicom"``. Every part goes through
the DICOM node's path (:class:`~labral.serve.dicom.intake.Intake`: header checks, durable spool,
``ScoringService.score``, SR, results row), and the answer waits until each part is scored.
It is the standard response (``application/dicom+json``): ``ReferencedSOPSequence`` for
the scored instances, each with the ``RetrieveURL`` of the SR made for it (labral keeps no
copy of the source instance, so its retrievable result is that SR), and
``FailedSOPSequence`` with a ``FailureReason`` for the others (:data:`FAILURE_REASON`).
An instance the input check refuses (not assessable) is valid DICOM, stored and answered:
it is referenced like a scored one, and its SR says "not assessable" and why.
200 when all were scored, 202 when some failed, 409 when none was scored.

WADO-RS serves only the SRs labral made (their own study, series and SOP instance UIDs) as
``multipart/related; type="application/dicom"``. Both need the API key, as the rest of the
API does.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from pydicom.dataset import Dataset

from labral.errors import LabralError
from labral.serve.dicom.intake import REPORTED, Outcome
from labral.serve.dicom.node import CANNOT_UNDERSTAND, DIMSE_STATUS, dimse_status
from labral.serve.dicom.receipt import Receipt
from labral.serve.http.deps import ServiceDep, SettingsDep, require_api_key
from labral.serve.http.errors import (
    BusyError,
    InternalError,
    InvalidRequestError,
    MissingFileError,
    NotReadyError,
    PayloadTooLargeError,
    RequestTimeoutError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
    error_responses,
)
from labral.serve.http.recording import http_caller, record_read
from labral.serve.stateful import Stateful, get_stateful

router = APIRouter(prefix="/dicomweb", tags=["dicomweb"], responses=error_responses(InternalError))
DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
PROCESSING_FAILURE = 0x0110
#: stable error code -> FailureReason (0008,1197) of a part that was not scored.
FAILURE_REASON = {cls.code: status for cls, status in DIMSE_STATUS.items()}
FAILURE_REASON["internal_error"] = PROCESSING_FAILURE
#: A UID path segment: DICOM UIDs are at most 64 characters (PS3.5 9.1).
StudyUID = Annotated[str, Path(max_length=64, description="Study Instance UID")]
STOW_ERRORS = (
    UnauthorizedError,
    UnsupportedMediaTypeError,
    PayloadTooLargeError,
    MissingFileError,
    InvalidRequestError,
    NotReadyError,
    BusyError,
    RequestTimeoutError,
    InternalError,
)
_STOW_JSON = {"content": {DICOM_JSON: {"schema": {"type": "object"}}}}
STOW_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "every instance was stored and scored (or found not assessable by the "
        "input check: its SR says so)",
        **_STOW_JSON,
    },
    202: {"description": "some instances failed (FailedSOPSequence)", **_STOW_JSON},
    409: {"description": "no instance could be stored or scored", **_STOW_JSON},
    **error_responses(*STOW_ERRORS),
}
STOW_BODY = {
    "description": 'multipart/related; type="application/dicom": one DICOM Part 10 '
    "Ultrasound Multi-frame instance per part",
    "content": {
        "multipart/related": {"schema": {"type": "string", "format": "binary", "minLength": 1}}
    },
    "required": True,
}


class SrNotFoundError(LabralError):
    """No SR made by labral matches these UIDs."""

    code = "not_found"
    http_status = 404


WADO_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": 'multipart/related; type="application/dicom": the SRs, one per part',
        "content": {"multipart/related": {"schema": {"type": "string", "format": "binary"}}},
    },
    **error_responses(UnauthorizedError, SrNotFoundError, InvalidRequestError, InternalError),
}


# ---- multipart/related ---------------------------------------------------------------
def _parameters(content_type: str) -> tuple[str, dict[str, str]]:
    media, *rest = (piece.strip() for piece in content_type.split(";"))
    params = {}
    for item in rest:
        name, _, value = item.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return media.lower(), params


def split_multipart(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart body: (headers with lower-case names, content) each.

    Raises:
        InvalidRequestError: no closing delimiter, or a part without its header block.
    """
    delimiter = b"\r\n--" + boundary.encode("ascii", "replace")
    segments = (b"\r\n" + body).split(delimiter)
    parts = []
    for segment in segments[1:]:
        if segment.startswith(b"--"):
            return parts
        head, separator, content = segment.partition(b"\r\n\r\n")
        if not separator:
            raise InvalidRequestError("a multipart part has no header block; check the body")
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, content))
    raise InvalidRequestError("the multipart body has no closing delimiter; it is truncated")


def multipart_related(parts: list[bytes]) -> tuple[bytes, str]:
    """Body and Content-Type of a ``multipart/related; type="application/dicom"`` answer."""
    boundary = uuid.uuid4().hex
    chunks = []
    for part in parts:
        chunks += [f"--{boundary}\r\nContent-Type: {DICOM}\r\n\r\n".encode(), part, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f'multipart/related; type="{DICOM}"; boundary={boundary}'


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the body exceeds {limit} bytes (serve max_upload_bytes)")
    received, chunks = 0, []
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLargeError(f"the body exceeds {limit} bytes (serve max_upload_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def _dicom_parts(request: Request, body: bytes) -> list[bytes]:
    media, params = _parameters(request.headers.get("content-type", ""))
    kind = params.get("type", "").lower()
    if media != "multipart/related" or kind != DICOM:
        raise UnsupportedMediaTypeError(
            f'STOW-RS takes multipart/related; type="{DICOM}" (got {media or "(none)"!r} '
            f"type={kind or '(none)'!r}); send each instance as an application/dicom part"
        )
    if not params.get("boundary"):
        raise InvalidRequestError("the multipart/related Content-Type has no boundary")
    parts = split_multipart(body, params["boundary"])
    found = [content for headers, content in parts if content]
    for headers, _ in parts:
        part_type = _parameters(headers.get("content-type", DICOM))[0]
        if part_type != DICOM:
            raise UnsupportedMediaTypeError(
                f"a part is {part_type!r}; labral stores {DICOM} parts only (no metadata+bulk)"
            )
    if not found:
        raise MissingFileError("the STOW-RS body holds no instance")
    return found


# ---- STOW-RS -------------------------------------------------------------------------
def _stow_answer(
    base: str, results: list[tuple[Receipt, Outcome | None]]
) -> tuple[int, dict[str, Any]]:
    answer = Dataset()
    referenced, failed = [], []
    for receipt, outcome in results:
        item = Dataset()
        if receipt.sop_class_uid:
            item.ReferencedSOPClassUID = receipt.sop_class_uid
        if receipt.sop_instance_uid:
            item.ReferencedSOPInstanceUID = receipt.sop_instance_uid
        if outcome is not None and outcome.status in REPORTED:  # scored or not_assessable
            if outcome.sr_uids is not None:
                study, series, instance = outcome.sr_uids
                item.RetrieveURL = f"{base}/studies/{study}/series/{series}/instances/{instance}"
            referenced.append(item)
            continue
        code = receipt.error.code if receipt.error is not None else (outcome and outcome.reason)
        item.FailureReason = (
            dimse_status(receipt.error)
            if receipt.error is not None
            else FAILURE_REASON.get(str(code), CANNOT_UNDERSTAND)
        )
        failed.append(item)
    if referenced:
        answer.ReferencedSOPSequence = referenced
    if failed:
        answer.FailedSOPSequence = failed
    status = 200 if not failed else (202 if referenced else 409)
    return status, answer.to_json_dict()


@router.post(
    "/studies",
    dependencies=[Depends(require_api_key)],
    openapi_extra={"requestBody": STOW_BODY},
    responses=STOW_RESPONSES,
    response_class=Response,  # the answers are documented above, application/dicom+json
)
async def stow_rs(
    request: Request,
    service: ServiceDep,
    settings: SettingsDep,
    stateful: Annotated[Stateful, Depends(get_stateful)],
) -> Response:
    """STOW-RS: store and score every instance; the PS3.18 store response."""
    if not service.ready.is_set():
        raise NotReadyError("the model is still loading; retry when /readyz answers 200")
    with service.admit():
        body = await _read_body(request, settings.max_upload_bytes)
        parts = _dicom_parts(request, body)
        del body
        caller = http_caller(request)
        receipts = [
            await asyncio.to_thread(stateful.intake.receive, part, "stowrs", caller)
            for part in parts
        ]
        del parts
        spooled = [r for r in receipts if r.entry is not None]
        try:
            outcomes = await asyncio.wait_for(
                asyncio.gather(*(stateful.intake.submit(r.entry) for r in spooled)),
                settings.request_timeout_s * max(1, len(spooled)),
            )
        except TimeoutError as exc:
            raise RequestTimeoutError(
                "scoring took longer than request_timeout_s per instance; the instances are "
                "stored and will be scored: read them at GET /v1/results"
            ) from exc
    by_entry = {id(r): outcome for r, outcome in zip(spooled, outcomes, strict=True)}
    results = [(r, by_entry.get(id(r))) for r in receipts]
    base = str(request.base_url).rstrip("/") + router.prefix
    status, answer = _stow_answer(base, results)
    return JSONResponse(answer, status_code=status, media_type=DICOM_JSON)


# ---- WADO-RS -------------------------------------------------------------------------
async def _srs(request: Request, found: list, key: str | None) -> Response:
    if not found:
        await record_read(request, "retrieve", "not_found", key)
        raise SrNotFoundError(
            "labral made no SR with these UIDs; the RetrieveURL of a STOW-RS answer names one"
        )
    parts = [await asyncio.to_thread(path.read_bytes) for path in found]
    await record_read(request, "retrieve", f"{len(parts)} SR", key)
    body, content_type = multipart_related(parts)
    return Response(body, media_type=content_type)


@router.get(
    "/studies/{study}",
    dependencies=[Depends(require_api_key)],
    responses=WADO_RESPONSES,
    response_class=Response,
)
async def retrieve_study(
    request: Request, study: StudyUID, stateful: Annotated[Stateful, Depends(get_stateful)]
) -> Response:
    """WADO-RS: every SR labral made in this study."""
    found = await asyncio.to_thread(stateful.archive.find, study)
    return await _srs(request, found, None)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}",
    dependencies=[Depends(require_api_key)],
    responses=WADO_RESPONSES,
    response_class=Response,
)
async def retrieve_instance(
    request: Request,
    study: StudyUID,
    series: Annotated[str, Path(max_length=64, description="Series Instance UID of the SR")],
    instance: Annotated[str, Path(max_length=64, description="SOP Instance UID of the SR")],
    stateful: Annotated[Stateful, Depends(get_stateful)],
) -> Response:
    """WADO-RS: one SR labral made, by its own study, series and SOP instance UIDs."""
    found = await asyncio.to_thread(stateful.archive.find, study, series, instance)
    return await _srs(request, found, stateful.keys.key(instance))
