"""Response models (they document the API in OpenAPI and check what leaves the service)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class Prediction(BaseModel):
    """One scored clip. ``relevance`` has one value in [0, 1] per source frame (maximum 1)."""

    probability: float
    decision: bool
    label: str
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
