"""The input check's verdict on one clip: ``scored`` or ``not_assessable`` with reasons.

Every route (HTTP, the clinician page, the DICOM node, DICOMweb, ``labral bench``) reads
this one object from :class:`labral.scoring.ClipScore`, so the same clip gets the same
verdict everywhere. A not-assessable clip gets no decision: its reasons are machine-readable
codes (:data:`REASONS`), ``advice`` is one sentence telling the clinician what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Status of a clip that passed the check (or was scored by a bundle without one).
SCORED = "scored"
#: Status of a clip the check refused: no decision is given.
NOT_ASSESSABLE = "not_assessable"

#: Reason codes, in the order they are reported, with the sentence the clinician reads.
ADVICE: dict[str, str] = {
    "image_quality": (
        "The image cannot be read ({detail}): check probe contact, gel and gain, then record "
        "the clip again."
    ),
    "no_manoeuvre": (
        "The hip did not move: record the flexion, adduction and internal-rotation manoeuvre "
        "with the probe held on the anterior hip."
    ),
    "not_hip_view": (
        "This is not the anterior oblique view of the hip: align the probe with the femoral "
        "neck so the femoral head, acetabular rim and labrum are in view, then record again."
    ),
    "out_of_distribution": (
        "This clip is unlike the clips the model was trained on: check the view and the "
        "scanner settings, or have the clip read by a person."
    ),
    "check_failed": (
        "The input check could not run on this clip ({detail}): have the clip read by a person."
    ),
}
REASONS: tuple[str, ...] = tuple(ADVICE)
#: Each reason in a few words (the page's list, the SR's code meanings: at most 64 characters).
REASON_TITLES: dict[str, str] = {
    "image_quality": "Image quality too poor to assess",
    "no_manoeuvre": "No hip manoeuvre in the clip",
    "not_hip_view": "Not the anterior hip view",
    "out_of_distribution": "Unlike the clips the model was trained on",
    "check_failed": "The input check could not run",
}

#: What each image-quality detail means, in the clinician's words (``{detail}`` above).
QUALITY_DETAILS: dict[str, str] = {
    "blank": "the frames are blank",
    "saturated": "the frames are saturated",
    "noise_only": "the frames show noise, no anatomy",
    "too_short": "the clip is too short to hold the manoeuvre",
    "frames_missing": "frames are missing or repeated",
}


@dataclass
class CheckVerdict:
    """One clip's verdict.

    Attributes:
        assessable: False when any detector refused the clip (then no decision is given).
        reasons: the refusing detectors' codes (:data:`REASONS` order); empty when assessable.
        details: reason -> finer code (e.g. ``{"image_quality": "blank"}``,
            ``{"check_failed": "ValueError"}``).
        scores: every detector's continuous score (higher = more likely wrong input), so
            benchmarks can draw ROC curves of each; empty when the bundle has no check.
        thresholds: the threshold each score was compared with (``score > threshold`` refuses).
        checked: False when the bundle carries no input check (exported before it existed):
            the clip is scored, with a warning.
    """

    assessable: bool = True
    reasons: list[str] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    checked: bool = True

    @property
    def status(self) -> str:
        """:data:`SCORED` or :data:`NOT_ASSESSABLE`."""
        return SCORED if self.assessable else NOT_ASSESSABLE

    @property
    def advice(self) -> str:
        """The clinician's sentence for the first reason (the most basic: an unreadable image
        before a still hip before a wrong view); empty when assessable."""
        if not self.reasons:
            return ""
        return advice_for(self.reasons[0], self.details.get(self.reasons[0]))

    @property
    def warning(self) -> str | None:
        """The warning an unchecked score carries, else None."""
        if self.checked:
            return None
        return (
            "this bundle has no input check (exported before labral 0.3): the clip was scored "
            "without checking its view, manoeuvre or image quality; re-export the model with "
            "`labral export` to get one"
        )

    def to_json(self) -> dict[str, Any]:
        """``{"status", "checked", "reasons", "details", "advice", "scores", "thresholds"}``."""
        return {
            "status": self.status,
            "checked": self.checked,
            "reasons": list(self.reasons),
            "details": dict(self.details),
            "advice": self.advice,
            "scores": {k: round(float(v), 6) for k, v in self.scores.items()},
            "thresholds": {k: round(float(v), 6) for k, v in self.thresholds.items()},
        }


def advice_for(reason: str, detail: str | None = None) -> str:
    """The clinician's sentence for one reason code (``detail`` fills ``{detail}``)."""
    text = ADVICE[reason]
    if "{detail}" in text:
        shown = QUALITY_DETAILS.get(detail or "", detail or "unknown")
        text = text.format(detail=shown)
    return text


def unchecked() -> CheckVerdict:
    """The verdict of a bundle without an input check: assessable, ``checked=False``."""
    return CheckVerdict(checked=False)


def check_failed(exc: BaseException) -> CheckVerdict:
    """The verdict when the check itself raised: not assessable, reason ``check_failed``."""
    return CheckVerdict(
        assessable=False, reasons=["check_failed"], details={"check_failed": type(exc).__name__}
    )
