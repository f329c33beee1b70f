"""One clip of a planned data set: the job that describes it and the render of its pixels.

:func:`labral.datasets.synth.dataset.plan_dataset` draws the jobs; the data set builder and
the preview both render a job with :func:`render_job`, so the preview shows exactly what
was written.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from labral.datasets.synth.generate import draw_patient, generate_clip
from labral.datasets.synth.settings import SynthSettings
from labral.datasets.synth.types import SynthClip


@dataclass(frozen=True)
class ClipJob:
    """Everything needed to make one clip, independent of any other job.

    Attributes:
        index: position in the manifest (0-based).
        patient: synthetic patient id, e.g. ``"P0007"``.
        patient_seed: seed passed to ``draw_patient`` (same for all clips of a patient).
        side: ``"R"`` or ``"L"``.
        hip: hip id, ``"<patient>_<side>"``.
        hip_label: 1 = the hip is detached, 0 = intact (:mod:`hips`).
        provocation: how far this clip loads the joint, in [0, 1].
        extrusion_threshold: the provocation the hip needs to extrude (same per hip).
        clip: clip number within the hip (0-based).
        clip_type: ``"positive"`` (extrusion visible) or one of ``NEGATIVE_TYPES``.
        seed: seed passed to ``generate_clip``.
        fps: frame rate of the clip.
        split: ``"train"``, ``"val"`` or ``"test"`` (by patient).
        syntax: DICOM transfer syntax key (``"jpeg"`` or ``"explicit"``).
        relpath: DICOM path relative to the output folder.
        difficulty: the patient's difficulty level (``dataset.spread_levels``).
    """

    index: int
    patient: str
    patient_seed: int
    side: str
    hip: str
    hip_label: int
    provocation: float
    extrusion_threshold: float
    clip: int
    clip_type: str
    seed: int
    fps: float
    split: str
    syntax: str
    relpath: str
    difficulty: str


@lru_cache(maxsize=8)
def _anatomy(patient_seed: int) -> dict[str, Any]:
    return draw_patient(patient_seed)


def render_job(job: ClipJob, settings: SynthSettings) -> SynthClip:
    """Generate the pixels and ground truth of one planned clip (no files written).

    Returns:
        The ``SynthClip`` (frames uint8 (T, H, W), extrusion mask bool (T, H, W), ...).
    """
    return generate_clip(
        copy.deepcopy(_anatomy(job.patient_seed)),  # a cached dict must never be mutated
        job.clip_type,
        job.seed,
        frames=settings.clip.frames,
        height=settings.clip.height,
        width=settings.clip.width,
        fps=job.fps,
        side=job.side,
        overrides=dict(settings.overrides) or None,
        difficulty=settings.level_of(job.difficulty),
    )
