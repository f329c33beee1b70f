"""Response models (they document the API in OpenAPI and check what leaves the service)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from labral.input_check.verdict import REASONS


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="stable code clients match on (serve/README.md lists them)")
    message: str = Field(description="what went wrong and what to do next")


class ErrorBody(BaseModel):
    """The body of every error answer: ``{"error": {"code", "message"}}``."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


class ModelIdentity(BaseModel):
    name: str
    version: str
    sha256: str


class ClipFacts(BaseModel):
    frames: int
    fps: float
    duration_s: float
    region_size: list[int]
    spacing_mm: list[float] | None


class Timing(BaseModel):
    decode: float
    preprocess: float
    model: float
    total: float


class KeyFrame(BaseModel):
    frame: int
    png: str


class Preview(BaseModel):
    fps: float
    frame_index: list[int]
    frames: list[str]
    key_frames: list[KeyFrame]


class SpatialMap(BaseModel):
    """Where in one peak frame the evidence lies (``labral.scoring.SpatialMap``)."""

    frame: int = Field(description="the peak (source) frame")
    model_frame: int = Field(description="the sampled source frame whose model input was used")
    size: list[int] = Field(description="[h, w] of the model input (after crop and resize)")
    values: list[list[float]] = Field(
        description="h rows of w values in [0, 1]: |d logit / d pixel| over its maximum"
    )


class InputCheck(BaseModel):
    """The input check's verdict on the clip (``labral.input_check.verdict.CheckVerdict``)."""

    status: Literal["scored", "not_assessable"]
    checked: bool = Field(
        description="false when the bundle has no input check (the clip was scored unchecked; "
        "the answer's warnings say so)"
    )
    reasons: list[Literal[REASONS]] = Field(  # type: ignore[valid-type]
        description="why the clip is not assessable, most basic first; empty when scored"
    )
    reason_titles: list[str] = Field(description="the reasons in words, in the same order")
    details: dict[str, str] = Field(
        description="reason -> finer code, e.g. image_quality: blank, saturated, noise_only, "
        "too_short or frames_missing; check_failed: the error's type"
    )
    advice: str = Field(description="one sentence for the clinician; empty when scored")
    scores: dict[str, float | None] = Field(
        description="each detector's score (higher: more likely a wrong input); empty "
        "without a check"
    )
    thresholds: dict[str, float | None] = Field(
        description="the threshold each score is compared with (score > threshold refuses)"
    )


class Prediction(BaseModel):
    """One clip's answer. ``status`` scored: the probability, decision and label, and
    ``relevance`` with one value in [0, 1] per source frame (maximum 1). ``status``
    not_assessable: the input check refused the clip (``input_check`` says why and what to
    do); probability, decision and label are null, relevance and peak_frames empty."""

    status: Literal["scored", "not_assessable"]
    probability: float | None = Field(description="null when the clip is not assessable")
    decision: bool | None = Field(description="null when the clip is not assessable")
    label: str | None = Field(description="null when the clip is not assessable")
    input_check: InputCheck
    threshold: float
    model: ModelIdentity
    clip: ClipFacts
    relevance: list[float]
    peak_frames: list[int]
    warnings: list[str]
    timing_ms: Timing
    disclaimer: str
    spatial_maps: list[SpatialMap] | None = None
    preview: Preview | None = None


class ModelCard(ModelIdentity):
    runtime: str = Field(
        description="which bundle file runs the model: torchscript (model.ts), "
        "export (model.pt2) or onnxruntime (model.onnx)"
    )
    class_names: list[str]
    threshold: float
    threshold_rule: Any = None
    temperature: float
    input_spec: dict[str, Any]
    eval_transform: dict[str, Any]
    val_metrics: Any = None
    card: str
    intended_use: str


class Health(BaseModel):
    """/healthz: ``ok`` while the process is alive, ``failed`` (503) if the bundle did not load."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "failed"]
    error: str | None = Field(None, description="why the bundle failed to load")


class DicomNodeStatus(BaseModel):
    """The DICOM node (``dicom.enabled=true``): listening or not, and why not."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    up: bool
    ae_title: str
    port: int | None
    error: str | None = Field(None, description="why the node is not listening")


class Readiness(BaseModel):
    """/readyz: ``ready`` with the model's identity, or ``loading``/``failed`` (503)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ready", "loading", "failed"]
    model: ModelIdentity | None = None
    error: str | None = Field(None, description="why the bundle failed to load")
    dicom: DicomNodeStatus | None = Field(
        None, description="the DICOM node, when enabled; not up means not ready"
    )
