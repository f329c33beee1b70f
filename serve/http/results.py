"""``GET /v1/results``: stored results, newest first, paged and filtered (needs the API key)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, WithJsonSchema

from labral.serve.http.deps import require_api_key
from labral.serve.http.errors import (
    InternalError,
    InvalidRequestError,
    UnauthorizedError,
    error_responses,
)
from labral.serve.http.recording import record_read
from labral.serve.http.schemas import ModelIdentity
from labral.serve.stateful import Stateful, get_stateful
from labral.serve.store.database import ResultFilter

router = APIRouter(prefix="/v1", tags=["results"], responses=error_responses(InternalError))
MAX_PAGE = 500
#: the largest offset a 64-bit SQL OFFSET holds (SQLite and PostgreSQL); more would be a 500
MAX_OFFSET = 2**63 - 1
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def _date_time_text(value: Any) -> Any:
    """An ISO 8601 date and time, or a bare date (its midnight); refuse what pydantic would
    otherwise read as a time but OpenAPI's date-time and date are not, such as a number (Unix
    seconds). A time without a zone is accepted, as UTC (:func:`_as_utc`)."""
    if isinstance(value, str) and _DATE.match(value):
        return f"{value}T00:00:00"
    if isinstance(value, str) and not _DATE_TIME.match(value):
        raise ValueError(
            "expected an ISO 8601 date and time or a date, e.g. 2026-01-31T08:00:00Z or 2026-01-31"
        )
    return value


#: what the document declares: either form, as the filter accepts
_DATE_TIME_OR_DATE = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]
}


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


#: a filter time, always zone-aware
DateTime = Annotated[
    dt.datetime,
    BeforeValidator(_date_time_text),
    AfterValidator(_as_utc),
    WithJsonSchema(_DATE_TIME_OR_DATE),
]


class StoredResult(BaseModel):
    """One row of the results store: no names, ids or UIDs, only keyed hashes of UIDs."""

    id: int
    created_at: dt.datetime = Field(description="when it was stored (UTC)")
    source: Literal["upload", "cstore", "stowrs", "stream"]
    status: Literal["scored", "not_assessable", "failed"] = Field(
        description="scored; not_assessable (the input check refused the clip: no "
        "probability or decision); failed (reason says why)"
    )
    reason: str | None = Field(description="the stable error code of a failure")
    reasons: list[str] = Field(
        description="the input check's reason codes of a not-assessable clip (image_quality, "
        "no_manoeuvre, not_hip_view, out_of_distribution, check_failed); else empty"
    )
    advice: str | None = Field(description="what to do, for a not-assessable clip")
    instance_key: str | None = Field(description="keyed hash of the SOP Instance UID")
    study_key: str | None = Field(description="keyed hash of the Study Instance UID")
    probability: float | None
    decision: bool | None
    threshold: float | None
    model: ModelIdentity | None
    timing_ms: dict[str, float] | None
    warnings: list[str]
    sr_key: str | None = Field(description="keyed hash of the SOP Instance UID of its SR")
    forward: Literal["pending", "sent", "dead_letter"] | None = Field(
        description="how sending its SR to dicom.forward went (null: not forwarded)"
    )


class ResultsPage(BaseModel):
    """A page of stored results, newest first."""

    total: int = Field(description="results matching the filters")
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page (null: last page)")
    results: list[StoredResult]


def to_json(row: dict[str, Any]) -> dict[str, Any]:
    """A store row as :class:`StoredResult` JSON."""
    model = None
    if row["model_name"]:
        model = {
            "name": row["model_name"],
            "version": row["model_version"] or "",
            "sha256": row["model_sha256"] or "",
        }
    keep = ("id", "source", "status", "reason", "instance_key", "study_key", "probability")
    return {
        **{key: row[key] for key in keep},
        "created_at": row["created_at"].isoformat(),
        "reasons": row["reasons"] or [],
        "advice": row["advice"],
        "decision": row["decision"],
        "threshold": row["threshold"],
        "model": model,
        "timing_ms": row["timing_ms"],
        "warnings": row["warnings"] or [],
        "sr_key": row["sr_key"],
        "forward": row["forward"],
    }


@router.get(
    "/results",
    response_model=ResultsPage,
    dependencies=[Depends(require_api_key)],
    responses=error_responses(UnauthorizedError, InvalidRequestError, InternalError),
)
async def list_results(
    request: Request,
    stateful: Annotated[Stateful, Depends(get_stateful)],
    since: Annotated[
        DateTime | None, Query(description="stored at or after (UTC; a date means its midnight)")
    ] = None,
    until: Annotated[DateTime | None, Query(description="stored before (UTC)")] = None,
    decision: Annotated[bool | None, Query(description="only this decision")] = None,
    status: Annotated[
        Literal["scored", "not_assessable", "failed"] | None,
        Query(description="only this status (not_assessable: refused by the input check)"),
    ] = None,
    source: Annotated[Literal["upload", "cstore", "stowrs", "stream"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="results per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="results skipped")] = 0,
) -> Any:
    """Stored results, newest first; every read is audited."""
    if since is not None and until is not None and since >= until:
        raise InvalidRequestError("since must be earlier than until")
    where = ResultFilter(since=since, until=until, decision=decision, status=status, source=source)
    total, rows = await asyncio.to_thread(stateful.store.page, where, limit=limit, offset=offset)
    await record_read(request, "read", "ok")
    following = offset + len(rows)
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": following if following < total else None,
        "results": [to_json(row) for row in rows],
    }
