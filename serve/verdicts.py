"""The input check's verdict as the service shows it: reason titles, the SR's refusal, JSON.

The verdict itself is :class:`labral.input_check.verdict.CheckVerdict`, computed once per
clip by :meth:`labral.scoring.ClipScorer.prepare` (the service's decode pool runs it), so
every route (``POST /v1/predictions``, the clinician page, the DICOM node, DICOMweb) shows
the same verdict for the same clip. This module holds what the routes add to it:

- :func:`reason_title`: a reason code in a clinician's words
  (:data:`labral.input_check.verdict.REASON_TITLES`: the page's list, the SR's code meanings);
- :class:`Refusal`: what a not-assessable clip's SR records instead of a finding (reason
  codes, their titles, the advice sentence). It is built from a verdict, or from a stored
  results row (``reasons``, ``advice``) when an SR is made again after a restart, so both
  give the same SR;
- :func:`check_json`: the ``input_check`` object of an HTTP answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from labral.input_check.verdict import NOT_ASSESSABLE, REASON_TITLES, SCORED, CheckVerdict

__all__ = [
    "NOT_ASSESSABLE",
    "SCORED",
    "Refusal",
    "check_json",
    "reason_title",
]


def reason_title(reason: str) -> str:
    """A reason code in words (an unknown code as it stands)."""
    return REASON_TITLES.get(reason, reason)


@dataclass(frozen=True)
class Refusal:
    """What a not-assessable clip's SR records instead of a finding (picklable: it goes to
    the SR process).

    Attributes:
        reasons: the verdict's reason codes (:data:`labral.input_check.verdict.REASONS`).
        advice: the sentence telling the clinician what to do.
    """

    reasons: tuple[str, ...]
    advice: str

    @property
    def titles(self) -> tuple[str, ...]:
        """The reasons in words (:data:`REASON_TITLES`)."""
        return tuple(reason_title(r) for r in self.reasons)

    @classmethod
    def of(cls, verdict: CheckVerdict) -> Refusal | None:
        """The refusal of a verdict; None when the clip is assessable."""
        if verdict.assessable:
            return None
        return cls(tuple(verdict.reasons), verdict.advice)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Refusal | None:
        """The refusal a results row records (``status``, ``reasons``, ``advice``); None for
        a scored row."""
        if row.get("status") != NOT_ASSESSABLE:
            return None
        return cls(tuple(row.get("reasons") or ()), str(row.get("advice") or ""))


def _finite(value: float) -> float | None:
    """A score for JSON: None when it is not a finite number (JSON has no inf or NaN)."""
    return value if math.isfinite(value) else None


def check_json(verdict: CheckVerdict) -> dict[str, Any]:
    """The ``input_check`` object of an answer: the verdict's JSON, ``reason_titles`` added
    (the reasons in words, same order), scores and thresholds null where not finite."""
    body = verdict.to_json()
    body["reason_titles"] = [reason_title(r) for r in verdict.reasons]
    body["scores"] = {k: _finite(v) for k, v in body["scores"].items()}
    body["thresholds"] = {k: _finite(v) for k, v in body["thresholds"].items()}
    return body
