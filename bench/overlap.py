"""No scoring of the patients a model trained or was calibrated on.

A bundle exported by this labral records salted hashes of its train and validation
patients (``split_patients``, :mod:`labral.train.split_record`). Before a manifest suite is
scored, every row's patient is hashed with each bundle's salt and looked up:

- ``overlap=refuse`` (default): stop with :class:`OverlapError`, naming how many clips (and
  patients) of which bundle's splits the manifest holds, and what to do;
- ``overlap=exclude``: leave those clips out (for every bundle, so all are scored on the
  same clips) and say how many;
- ``overlap=ignore``: score everything, and say so in results.json.

A bundle without the record (older bundles, cross-validation folds) is scored with a
warning that overlap was not checked. Synthetic suites never share patients with training
(:mod:`labral.bench.seeds`), so the check is for manifests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from labral.bundle import Bundle
from labral.errors import BadConfigError, LabralError
from labral.train.split_record import hash_patient

MODES = ("refuse", "exclude", "ignore")


class OverlapError(LabralError):
    """The suite holds clips of patients a bundle trained or was calibrated on."""

    code = "patient_overlap"
    http_status = 409


def seen_patients(bundle: Bundle, patients: Sequence[str]) -> tuple[np.ndarray | None, str]:
    """Which of ``patients`` (N,) the bundle's train/val splits hold.

    Returns:
        bool (N,) (None when the bundle has no usable record) and a note saying why not.
    """
    record = bundle.spec.get("split_patients")
    if not isinstance(record, dict) or "splits" not in record:
        reason = (record or {}).get("unavailable") if isinstance(record, dict) else None
        return None, reason or "the bundle records no training patients (exported before 0.2)"
    salt = str(record["salt"])
    seen = {h for hashes in record["splits"].values() for h in hashes}
    return np.array([hash_patient(str(p), salt) in seen for p in patients], dtype=bool), ""


def check_overlap(
    records: Sequence[dict[str, Any]], bundles: Sequence[Bundle], names: Sequence[str], mode: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply the overlap rule to a manifest suite.

    Args:
        records: the suite's rows (N). bundles/names: the bundles and their result names.
        mode: one of :data:`MODES`.

    Returns:
        bool (N,) rows to score, and the ``overlap`` block of results.json (per bundle: clips
        and patients seen in training, or why it was not checked; the rule; rows left out).

    Raises:
        BadConfigError: unknown mode. OverlapError: ``refuse`` and some rows overlap.
    """
    if mode not in MODES:
        raise BadConfigError(f"overlap={mode!r}: use one of {', '.join(MODES)}")
    patients = [str(r["patient"]) for r in records]
    keep = np.ones(len(records), bool)
    report: dict[str, Any] = {"mode": mode, "per_model": {}}
    problems = []
    for name, bundle in zip(names, bundles, strict=True):
        seen, note = seen_patients(bundle, patients)
        if seen is None:
            report["per_model"][name] = {"checked": False, "note": note}
            print(f"labral bench: warning: {name}: patient overlap not checked ({note})")
            continue
        n_patients = len({p for p, s in zip(patients, seen, strict=True) if s})
        report["per_model"][name] = {
            "checked": True,
            "clips": int(seen.sum()),
            "patients": n_patients,
        }
        if seen.any():
            problems.append(f"{name}: {int(seen.sum())} clips of {n_patients} patients")
            keep &= ~seen
    if problems and mode == "refuse":
        raise OverlapError(
            "the suite holds clips of patients the model trained or was calibrated on ("
            + "; ".join(problems)
            + "); score a held-out manifest, or pass overlap=exclude to leave them out "
            "(overlap=ignore scores them anyway)"
        )
    report["excluded_clips"] = int((~keep).sum()) if mode == "exclude" else 0
    if mode != "exclude":
        keep[:] = True
    return keep, report
