"""Patient-grouped, label-stratified splits and k-fold, with a leakage check that fails loudly.

All clips of one patient always land in the same split (clips of one hip are strongly
correlated, so a patient in two splits inflates every metric).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from labral.datasets.manifests.manifest import SPLIT_NAMES
from labral.errors import BadConfigError, BadManifestError
from labral.labels import CLASS_NAMES

Record = dict[str, Any]


def check_no_leakage(records: Sequence[Mapping[str, Any]]) -> None:
    """Raise if any patient has clips in more than one split.

    Args:
        records: manifest records with ``patient`` and ``split``.

    Raises:
        BadManifestError: lists every leaking patient with its splits.
    """
    splits_of: dict[str, set[str]] = defaultdict(set)
    for record in records:
        if record.get("split") is not None:
            splits_of[str(record["patient"])].add(str(record["split"]))
    leaks = {p: sorted(s) for p, s in splits_of.items() if len(s) > 1}
    if leaks:
        listed = ", ".join(f"{p} in {s}" for p, s in sorted(leaks.items())[:20])
        raise BadManifestError(
            f"patient leakage: {len(leaks)} patient(s) appear in more than one split ({listed}); "
            "assign each patient to exactly one split"
        )


def _check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    unknown = set(fractions) - set(SPLIT_NAMES)
    if unknown:
        raise BadConfigError(f"splits: unknown split name(s) {sorted(unknown)}")
    values = {name: float(fractions.get(name, 0.0)) for name in SPLIT_NAMES}
    if min(values.values()) < 0 or abs(sum(values.values()) - 1.0) > 1e-6:
        raise BadConfigError(f"splits: fractions must be >= 0 and sum to 1, got {values}")
    return values


def _allocate(count: int, fractions: dict[str, float]) -> list[str]:
    """Split names for ``count`` items, sized by largest remainder."""
    exact = {name: count * f for name, f in fractions.items()}
    sizes = {name: int(np.floor(v)) for name, v in exact.items()}
    by_remainder = sorted(fractions, key=lambda n: (sizes[n] - exact[n], SPLIT_NAMES.index(n)))
    for name in by_remainder[: count - sum(sizes.values())]:
        sizes[name] += 1
    return [name for name in SPLIT_NAMES for _ in range(sizes[name])]


def assign_splits(
    records: Sequence[Mapping[str, Any]],
    fractions: Mapping[str, float] | None = None,
    seed: int = 0,
) -> list[Record]:
    """Assign train/val/test by patient, stratified by patient label; keeps existing splits.

    Patients whose clips already carry a ``split`` keep it; the others are shuffled (seeded)
    within each stratum (a patient is positive if any clip is) and dealt out by ``fractions``.

    Args:
        records: manifest records (``patient``, ``label``, optional ``split``).
        fractions: ``{"train": 0.7, "val": 0.15, "test": 0.15}`` by default; sum to 1.
        seed: shuffling seed; the same seed gives the same split.

    Returns:
        New record dicts (same order) each with ``split`` set.

    Raises:
        BadConfigError: bad fractions.
        BadManifestError: patient leakage in the given splits, or a split with a non-zero
            fraction ends up empty.
    """
    wanted = _check_fractions(fractions or {"train": 0.7, "val": 0.15, "test": 0.15})
    check_no_leakage(records)
    fixed: dict[str, str] = {}
    label_of: dict[str, int] = defaultdict(int)
    for record in records:
        patient = str(record["patient"])
        label_of[patient] = max(label_of[patient], int(record["label"]))
        if record.get("split") is not None:
            fixed[patient] = str(record["split"])
    free = [p for p in dict.fromkeys(str(r["patient"]) for r in records) if p not in fixed]
    rng = np.random.default_rng(seed)
    chosen = dict(fixed)
    for stratum in (0, 1):
        patients = [p for p in free if label_of[p] == stratum]
        order = rng.permutation(len(patients))
        for patient_pos, name in zip(order, _allocate(len(patients), wanted), strict=True):
            chosen[patients[patient_pos]] = name
    out = [{**record, "split": chosen[str(record["patient"])]} for record in records]
    empty = [n for n in SPLIT_NAMES if wanted[n] > 0 and not any(r["split"] == n for r in out)]
    if empty:
        raise BadManifestError(
            f"split(s) {empty} would be empty with {len(label_of)} patient(s) and fractions "
            f"{wanted}; add patients or set those fractions to 0"
        )
    return out


def patient_label(records: Sequence[Mapping[str, Any]], label_key: str = "hip_label") -> dict:
    """Patient id -> 0/1: 1 when any of the patient's rows has ``label_key`` 1 (``label`` is
    used for a row without ``label_key``)."""
    label_of: dict[str, int] = defaultdict(int)
    for record in records:
        value = record.get(label_key)
        label_of[str(record["patient"])] |= int(record["label"] if value is None else value)
    return dict(label_of)


def patient_folds(
    records: Sequence[Mapping[str, Any]],
    k: int,
    seed: int = 0,
    label_key: str = "hip_label",
    min_per_class: int = 2,
) -> list[int]:
    """Assign every record a fold 0..k-1 by patient, stratified by the patient's label.

    Within each class (a patient is positive if any hip is, :func:`patient_label`) the
    patients are shuffled (seeded) and dealt round-robin, so fold sizes per class differ by
    at most one and every clip of a patient shares its fold.

    Args:
        records: manifest records (``patient``, ``label``, optional ``hip_label``).
        k: number of folds (>= 2).
        seed: shuffling seed; the same records and seed give the same folds.
        label_key: the column to stratify by (``hip_label``, the diagnosis).
        min_per_class: patients of each class every fold must hold.

    Returns:
        The fold of each record (same order).

    Raises:
        BadConfigError: ``k`` < 2.
        BadManifestError: a fold would hold fewer than ``min_per_class`` patients of a class
            (the message names the class and the fold).
    """
    if k < 2:
        raise BadConfigError(f"cv.folds={k}: needs at least 2 folds")
    check_no_leakage(records)
    label_of = patient_label(records, label_key)
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    for stratum in (0, 1):
        patients = sorted(p for p, y in label_of.items() if y == stratum)
        for position, index in enumerate(rng.permutation(len(patients))):
            fold_of[patients[index]] = position % k
        for fold in range(k):
            count = sum(1 for p in patients if fold_of[p] == fold)
            if count < min_per_class:
                raise BadManifestError(
                    f"cv fold {fold} of {k} holds {count} patient(s) of class {stratum} "
                    f"({label_key} {stratum}, {CLASS_NAMES[stratum]}); each fold needs at "
                    f"least {min_per_class} (the manifest has {len(patients)} such "
                    f"patient(s)): use fewer folds or add patients"
                )
    return [fold_of[str(record["patient"])] for record in records]
