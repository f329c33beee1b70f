"""A DICOM Comprehensive SR (TID 1500 measurement report, made with highdicom) for a score.

The report references the source instance (its study, series and SOP instance UIDs, as
evidence and as the measurement group's source image) and the model identity (algorithm
name, version and SHA-256), so a PACS can store it next to the clip. Its one measurement
group (TID 1501) holds either

- **a finding** (the clip was scored): the calibrated probability (NUM, ``LABRAL-P``) and
  the decision at the bundle threshold (CODE ``LABRAL-D`` = ``LABRAL-POS`` or
  ``LABRAL-NEG``); or
- **"not assessable"** (the input check refused the clip, :class:`Refusal`): no probability
  and no decision, but the qualitative evaluation ``LABRAL-D`` = ``LABRAL-NA`` ("Not
  assessable by the model"), one ``LABRAL-NAR`` ("Reason not assessable") CODE per reason,
  valued with that reason's code (:data:`REASON_CODES`), and the advice sentence as a TEXT
  item named (121075, DCM, "Recommendation").

Concepts that DICOM and SNOMED CT have no code for are in the private ``99LABRAL`` scheme
(never passed off as standard); the standard ones are DCM's Recommendation and UCUM's "1".
"""

from __future__ import annotations

import io
import os
from typing import Any

import highdicom as hd
import pydicom
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from labral.errors import NotDicomError
from labral.input_check.verdict import REASON_TITLES
from labral.serve.http.errors import SrNeedsDicomError
from labral.serve.verdicts import Refusal

DICM_MAGIC = b"DICM"
# Private-scheme concepts for what DCM/SCT have no code for.
PROBABILITY = hd.sr.CodedConcept(
    "LABRAL-P", "99LABRAL", "Probability of anterior labral detachment"
)
DETACHMENT = hd.sr.CodedConcept("LABRAL-D", "99LABRAL", "Anterior labral detachment")
PROCEDURE = hd.sr.CodedConcept("LABRAL-US", "99LABRAL", "Dynamic ultrasound of the hip")
PRESENT = hd.sr.CodedConcept("LABRAL-POS", "99LABRAL", "Suggested by the model")
ABSENT = hd.sr.CodedConcept("LABRAL-NEG", "99LABRAL", "Not suggested by the model")
UNIT_ONE = hd.sr.CodedConcept("1", "UCUM", "no units")
NOT_ASSESSABLE = hd.sr.CodedConcept("LABRAL-NA", "99LABRAL", "Not assessable by the model")
NOT_ASSESSABLE_REASON = hd.sr.CodedConcept("LABRAL-NAR", "99LABRAL", "Reason not assessable")
#: The input check's reason codes (labral.input_check.verdict.REASONS) as 99LABRAL codes;
#: the meanings are :data:`labral.input_check.verdict.REASON_TITLES`.
REASON_CODE_VALUES = {
    "image_quality": "LABRAL-NA-IQ",
    "no_manoeuvre": "LABRAL-NA-MAN",
    "not_hip_view": "LABRAL-NA-VIEW",
    "out_of_distribution": "LABRAL-NA-OOD",
    "check_failed": "LABRAL-NA-FAIL",
}
REASON_CODES = {
    reason: hd.sr.CodedConcept(value, "99LABRAL", REASON_TITLES[reason])
    for reason, value in REASON_CODE_VALUES.items()
}
#: An unknown reason code (from a newer labral's row): recorded as "other", named in text.
OTHER_REASON = hd.sr.CodedConcept("LABRAL-NA-OTHER", "99LABRAL", "Other reason")
#: Niceness of the DICOM node's SR process: scoring, which a scanner waits for, comes first.
REPORT_NICENESS = 10


def is_dicom(data: bytes) -> bool:
    """True when the bytes carry the DICOM Part 10 preamble."""
    return len(data) >= 132 and data[128:132] == DICM_MAGIC


def read_source_header(data: bytes) -> pydicom.Dataset:
    """The source's header (no pixel data), kept in memory only.

    Raises:
        SrNeedsDicomError: the upload is a video or other non-DICOM file.
    """
    if not is_dicom(data):
        raise SrNeedsDicomError(
            "format=sr needs a DICOM source to reference; this upload is not DICOM. "
            "Ask for JSON (no format) for video exports"
        )
    try:
        return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    except Exception as exc:  # already scored, so unlikely; still a client-side problem
        raise NotDicomError(f"the DICOM header cannot be read for the SR ({exc})") from exc


def build_sr(
    source: pydicom.Dataset,
    probability: float | None,
    decision: bool | None,
    threshold: float,
    identity: dict[str, Any],
    *,
    refusal: Refusal | None = None,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> pydicom.Dataset:
    """Build the SR dataset.

    Args:
        source: header of the scored DICOM instance.
        probability: calibrated probability in [0, 1] (ignored with ``refusal``).
        decision: probability >= threshold (ignored with ``refusal``).
        threshold: the bundle's decision threshold.
        identity: ``{"name", "version", "sha256"}`` of the model.
        refusal: the input check refused the clip: the SR records "not assessable", its
            reasons and advice instead of a finding (module docstring).
        series_instance_uid / sop_instance_uid: the SR's own UIDs (new ones when None); the
            DICOM node derives them from the spool entry, so scoring it again after a crash
            makes the same SR rather than a second one.

    Returns:
        A ``highdicom.sr.ComprehensiveSR`` (a pydicom Dataset).
    """
    algorithm = hd.sr.AlgorithmIdentification(
        name=str(identity["name"])[:64],
        version=str(identity.get("version") or "unversioned")[:64],
        parameters=[f"sha256={identity['sha256']}"[:64], f"threshold={threshold:.4f}"],
    )
    source_image = hd.sr.SourceImageForMeasurementGroup(
        referenced_sop_class_uid=source.SOPClassUID,
        referenced_sop_instance_uid=source.SOPInstanceUID,
    )
    if refusal is None:
        if probability is None or decision is None:
            raise ValueError("a scored clip's SR needs its probability and decision")
        group = _finding_group(algorithm, source_image, probability, decision)
    else:
        group = _refusal_group(algorithm, source_image, refusal)
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name="labral", model_name=str(identity["name"])[:64]
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=PROCEDURE,
        imaging_measurements=[group],
    )
    return hd.sr.ComprehensiveSR(
        evidence=[source],
        content=report,
        series_instance_uid=series_instance_uid or generate_uid(),
        series_number=9901,
        sop_instance_uid=sop_instance_uid or generate_uid(),
        instance_number=1,
        manufacturer="labral (research tool, not a diagnosis)",
        is_complete=True,
    )


def _finding_group(
    algorithm: hd.sr.AlgorithmIdentification,
    source_image: hd.sr.SourceImageForMeasurementGroup,
    probability: float,
    decision: bool,
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """A scored clip's measurement group: the probability and the decision."""
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier="clip score"),
        algorithm_id=algorithm,
        source_images=[source_image],
        measurements=[
            hd.sr.Measurement(
                name=PROBABILITY,
                value=round(float(probability), 6),
                unit=UNIT_ONE,
                algorithm_id=algorithm,
            )
        ],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(name=DETACHMENT, value=PRESENT if decision else ABSENT)
        ],
    )


def _refusal_group(
    algorithm: hd.sr.AlgorithmIdentification,
    source_image: hd.sr.SourceImageForMeasurementGroup,
    refusal: Refusal,
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """A refused clip's measurement group: "not assessable", each reason, the advice."""
    evaluations = [hd.sr.QualitativeEvaluation(name=DETACHMENT, value=NOT_ASSESSABLE)]
    for reason in refusal.reasons:
        value = REASON_CODES.get(reason, OTHER_REASON)
        evaluations.append(hd.sr.QualitativeEvaluation(name=NOT_ASSESSABLE_REASON, value=value))
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=generate_uid(), identifier="clip not assessable"
        ),
        algorithm_id=algorithm,
        source_images=[source_image],
        qualitative_evaluations=evaluations,
    )
    words = "; ".join(refusal.titles) or "no reason recorded"
    advice = refusal.advice or "Have the clip read by a person."
    # TEXT qualitative evaluation (TID 1501): the reasons in words and what to do next
    group[0].ContentSequence.append(
        hd.sr.TextContentItem(
            name=codes.DCM.Recommendation,
            value=f"Not assessable ({words}). {advice}",
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
        )
    )
    return group


def sr_bytes(dataset: pydicom.Dataset) -> bytes:
    """Serialise the SR as a DICOM Part 10 file."""
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def lower_priority() -> None:
    """Initializer of the SR process: lower its CPU priority by :data:`REPORT_NICENESS`."""
    os.nice(REPORT_NICENESS)


def sr_file_for(
    source: pydicom.Dataset,
    probability: float | None,
    decision: bool | None,
    threshold: float,
    identity: dict[str, Any],
    series_instance_uid: str,
    sop_instance_uid: str,
    refusal: Refusal | None = None,
) -> tuple[bytes, str] | str:
    """One SR as a Part 10 file: the job of the DICOM node's SR process (picklable in/out).

    Args: as :func:`build_sr`.

    Returns:
        ``(file bytes, the SR's Study Instance UID)``, or the name of the error when the
        source lacks what an SR copies (AttributeError, ValueError or TypeError).
    """
    try:
        sr = build_sr(
            source,
            probability,
            decision,
            threshold,
            identity,
            refusal=refusal,
            series_instance_uid=series_instance_uid,
            sop_instance_uid=sop_instance_uid,
        )
    except (AttributeError, ValueError, TypeError) as exc:
        return type(exc).__name__
    return sr_bytes(sr), str(sr.StudyInstanceUID)
