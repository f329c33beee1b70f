"""Patient-grouped stratified splits and the leakage check."""

from __future__ import annotations

import numpy as np
import pytest

from labral.datasets.manifests.splits import assign_splits, check_no_leakage
from labral.errors import BadConfigError, BadManifestError


def cohort(patients: int = 60, clips: int = 3, positive_every: int = 3) -> list[dict]:
    """``patients`` patients with ``clips`` clips each; every 3rd patient is positive."""
    return [
        {"path": f"p{p}_{c}.dcm", "patient": f"p{p}", "label": int(p % positive_every == 0)}
        for p in range(patients)
        for c in range(clips)
    ]


def patients_by_split(records: list[dict]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in records:
        out.setdefault(r["split"], set()).add(r["patient"])
    return out


def test_splits_are_patient_disjoint_sized_and_stratified():
    records = assign_splits(cohort(), {"train": 0.7, "val": 0.15, "test": 0.15}, seed=1)
    groups = patients_by_split(records)
    assert groups["train"].isdisjoint(groups["val"]) and groups["val"].isdisjoint(groups["test"])
    assert groups["train"].isdisjoint(groups["test"])
    assert {k: len(v) for k, v in groups.items()} == {"train": 42, "val": 9, "test": 9}
    for name in ("train", "val", "test"):
        labels = [r["label"] for r in records if r["split"] == name]
        assert abs(np.mean(labels) - 1 / 3) < 0.05, name  # 20 of 60 patients are positive
    check_no_leakage(records)


def test_split_is_seeded():
    a = assign_splits(cohort(), seed=4)
    assert a == assign_splits(cohort(), seed=4)
    assert a != assign_splits(cohort(), seed=5)


def test_existing_split_column_is_honoured():
    records = cohort(30)
    for r in records:
        if r["patient"] in ("p1", "p2"):
            r["split"] = "test"
    out = assign_splits(records, seed=0)
    assert all(r["split"] == "test" for r in out if r["patient"] in ("p1", "p2"))
    assert len(patients_by_split(out)) == 3


def test_leakage_fails_loudly_naming_patients():
    records = cohort(6)
    for r, split in zip(records, ["train", "val", "train"] * 6, strict=False):
        r["split"] = split
    with pytest.raises(
        BadManifestError, match=r"patient leakage: 6 patient\(s\).*p0 in \['train', 'val'\]"
    ):
        check_no_leakage(records)
    with pytest.raises(BadManifestError, match="leakage"):
        assign_splits(records)


def test_empty_split_and_bad_fractions():
    with pytest.raises(BadManifestError, match=r"\['val', 'test'\] would be empty"):
        assign_splits(cohort(patients=1))
    with pytest.raises(BadConfigError, match="sum to 1"):
        assign_splits(cohort(), {"train": 0.5, "val": 0.2, "test": 0.2})
