"""Response models (they document the API in OpenAPI and check what leaves the service)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


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


class Prediction(BaseModel):
    """One scored clip. ``relevance`` has one value in [0, 1] per source frame."""

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
    preview: Preview | None = None


class ModelCard(ModelIdentity):
    class_names: list[str]
    threshold: float
    threshold_rule: Any = None
    temperature: float
    input_spec: dict[str, Any]
    eval_transform: dict[str, Any]
    val_metrics: Any = None
    card: str
    intended_use: str
