"""/v1/predictions and /v1/model."""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydicom import Dataset

from labral.bundle import Bundle
from labral.errors import LabralError
from labral.serve.dicom.sr import build_sr, read_source_header, sr_bytes
from labral.serve.http.deps import ServiceDep, SettingsDep, require_api_key
from labral.serve.http.errors import (
    READER_ERRORS,
    BusyError,
    InternalError,
    NotReadyError,
    RequestTimeoutError,
    SrNeedsDicomError,
    SrSourceError,
    StoreUnavailableError,
    UnauthorizedError,
    error_responses,
)
from labral.serve.http.page_preview import build_preview
from labral.serve.http.recording import record_upload
from labral.serve.http.schemas import ModelCard, Prediction
from labral.serve.http.upload import UPLOAD_ERRORS, UPLOAD_REQUEST_BODY, read_upload
from labral.serve.service import ScoredClip, ScoringService
from labral.serve.settings import ServeSettings
from labral.serve.verdicts import Refusal, check_json

log = logging.getLogger("labral.serve")
router = APIRouter(prefix="/v1", tags=["predictions"], responses=error_responses(InternalError))
PREDICT_ERRORS = (
    UnauthorizedError,
    *UPLOAD_ERRORS,
    *READER_ERRORS,
    SrNeedsDicomError,
    SrSourceError,
    NotReadyError,
    BusyError,
    RequestTimeoutError,
    StoreUnavailableError,
    InternalError,
)
SR_RESPONSE = {
    "description": "The scored clip as JSON, or with format=sr a DICOM Comprehensive SR that "
    "references the source instance",
    "content": {"application/dicom": {"schema": {"type": "string", "format": "binary"}}},
}


class OutputFormat(StrEnum):
    json = "json"
    sr = "sr"


async def _score(
    service: ScoringService, settings: ServeSettings, data: bytes, spatial: bool
) -> ScoredClip:
    """Score with the request timeout; unexpected failures become ``internal_error``."""
    try:
        return await asyncio.wait_for(
            service.score(data, spatial=spatial), settings.request_timeout_s
        )
    except TimeoutError as exc:
        raise RequestTimeoutError(
            f"scoring took longer than {settings.request_timeout_s:g} s (serve "
            "request_timeout_s); retry later or send a shorter clip"
        ) from exc
    except LabralError:
        raise
    except Exception as exc:  # the model or a transform failed: log it, answer 500 JSON
        log.exception("prediction failed")
        raise InternalError(
            "the service failed while scoring this clip; the error was logged"
        ) from exc


@router.post(
    "/predictions",
    response_model=Prediction,
    dependencies=[Depends(require_api_key)],
    openapi_extra={"requestBody": UPLOAD_REQUEST_BODY},
    responses={200: SR_RESPONSE, **error_responses(*PREDICT_ERRORS)},
)
async def predict(
    request: Request,
    service: ServiceDep,
    settings: SettingsDep,
    format: Annotated[OutputFormat, Query(description="json, or sr for a DICOM SR")] = (
        OutputFormat.json
    ),
    preview: Annotated[bool, Query(description="add base64 PNG frames for the web page")] = False,
    spatial: Annotated[
        bool,
        Query(
            description="add spatial_maps: where in each peak frame the evidence lies "
            "(input gradient at model input size; costs about three model calls)"
        ),
    ] = False,
) -> Any:
    """Score one cine clip: calibrated probability, decision, temporal relevance; or, when the
    input check refuses it, status not_assessable with its reasons and advice (still 200)."""
    if not service.ready.is_set():
        raise NotReadyError("the model is still loading; retry when /readyz answers 200")
    with service.admit():
        data = await read_upload(request, settings.max_upload_bytes)
        # an SR needs a DICOM source: refuse a video before spending a model call on it
        source = read_source_header(data) if format is OutputFormat.sr else None
        try:
            scored = await _score(service, settings, data, spatial)
        except LabralError as error:
            await record_upload(request, data, error=error)  # a failed row with its code
            raise
    await record_upload(request, data, scored)  # the results store (serve/http/recording.py)
    score = scored.score
    log.info(
        "%s instance=%s p=%.3f frames=%d total_ms=%.1f%s",
        score.status,
        str(scored.clip.source.get("instance_hash") or "video")[:16],
        score.probability,
        scored.clip.num_frames,
        scored.timing_ms["total"],
        f" reasons={','.join(score.verdict.reasons)}" if not score.assessable else "",
    )
    if source is not None:
        return _sr_response(source, scored, service.bundle)
    return answer(scored, service.bundle, settings, spatial=spatial, preview=preview)


def sr_dataset(source: Dataset, scored: ScoredClip, bundle: Bundle) -> Dataset:
    """The scored (or refused) clip as a DICOM SR referencing its source instance (every
    route that answers with an SR builds it here)."""
    score = scored.score
    return build_sr(
        source,
        score.probability,
        score.decision,
        bundle.threshold,
        bundle.identity(),
        refusal=Refusal.of(score.verdict),
    )


def _sr_response(source: Dataset, scored: ScoredClip, bundle: Bundle) -> Response:
    """The scored (or refused) clip as a DICOM SR referencing its source instance."""
    try:
        dataset = sr_dataset(source, scored, bundle)
    except (AttributeError, ValueError, TypeError) as exc:
        raise SrSourceError(
            f"cannot build an SR referencing this DICOM ({exc}); it needs the patient, "
            "study and series attributes of a complete instance"
        ) from exc
    return Response(sr_bytes(dataset), media_type="application/dicom")


def answer(
    scored: ScoredClip, bundle: Bundle, settings: ServeSettings, *, spatial: bool, preview: bool
) -> dict[str, Any]:
    """The JSON answer of a scored clip, the one every route gives (``POST /v1/predictions``,
    a live session's ``result``): a clip the input check refused gets no decision, and none
    of the model's evidence.

    Args:
        scored: the service's result.
        bundle: the model bundle (threshold, identity, label names).
        settings: the service settings (preview sizes).
        spatial: add ``spatial_maps`` (the score must hold them).
        preview: add base64 PNG frames for the web page.
    """
    score = scored.score
    assessable = score.assessable
    body: dict[str, Any] = {
        "status": score.status,
        "probability": score.probability if assessable else None,
        "decision": score.reported_decision,
        "label": bundle.label_name(score.decision) if assessable else None,
        "input_check": check_json(score.verdict),
        "threshold": bundle.threshold,
        "model": bundle.identity(),
        "clip": scored.clip.facts(),
        "relevance": score.rounded_relevance() if assessable else [],
        "peak_frames": score.peak_frames if assessable else [],
        "warnings": scored.warnings,
        "timing_ms": scored.timing_ms,
        "disclaimer": "research tool, not a diagnosis",
    }
    if spatial:
        body["spatial_maps"] = [m.to_json() for m in score.spatial_maps]
    if preview:
        body["preview"] = build_preview(
            scored.clip.frames,
            scored.clip.fps,
            body["peak_frames"],
            max_frames=settings.preview_max_frames,
            width=settings.preview_width,
            key_width=settings.key_frame_width,
        )
    return body


@router.get(
    "/model",
    response_model=ModelCard,
    tags=["model"],
    responses=error_responses(NotReadyError, InternalError),
)
async def model_card(service: ServiceDep) -> Any:
    """The model card (bundle README), identity, input spec, threshold and eval transform."""
    if service.bundle is None:
        raise NotReadyError("the model is still loading; retry when /readyz answers 200")
    spec = service.bundle.spec
    readme = service.bundle.path / "README.md"
    return {
        **service.bundle.identity(),
        "runtime": service.bundle.runtime,
        "class_names": spec["class_names"],
        "threshold": service.bundle.threshold,
        "threshold_rule": spec.get("threshold_rule"),
        "temperature": service.bundle.temperature,
        "input_spec": spec["input_spec"],
        "eval_transform": spec["eval_transform"],
        "val_metrics": spec.get("val_metrics"),
        "card": readme.read_text() if readme.is_file() else "",
        "intended_use": "research tool, not a diagnosis",
    }
