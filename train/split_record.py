"""Which patients a model has seen: hashed patient ids of a run's train and validation splits.

``labral export`` records them in the bundle (``split_patients`` in its spec), so that
``labral bench`` can refuse to score, or leave out, clips of patients the model trained or
was calibrated on (:mod:`labral.bench.overlap`). Ids are never stored: each is
``sha256(salt + ":" + patient)``, cut to :data:`HASH_HEX` hex digits, with a random salt per
bundle (the same patient hashes differently in two bundles).

The patients are read back from the run's manifest, split as training split it, and the
record is written only if that manifest still has the run's ``data_fingerprint``; otherwise
(moved or edited manifest, cross-validation folds) the bundle says the overlap cannot be
checked.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from labral.train.data import data_fingerprint, load_rows

#: Hex digits kept of each salted SHA-256 (64 bits: collisions are negligible for cohorts).
HASH_HEX = 16
#: Splits whose patients the model has seen (test is held out, so it may be scored).
SEEN_SPLITS = ("train", "val")


def hash_patient(patient: str, salt: str) -> str:
    """The salted, truncated SHA-256 of one patient id."""
    return hashlib.sha256(f"{salt}:{patient}".encode()).hexdigest()[:HASH_HEX]


def hash_patients(patients: Iterable[str], salt: str) -> list[str]:
    """Sorted unique hashes of ``patients``."""
    return sorted({hash_patient(str(p), salt) for p in patients})


def split_patient_record(
    config: dict[str, Any], recorded_fingerprint: str | None
) -> dict[str, Any]:
    """The bundle's ``split_patients`` entry for a training run.

    Args:
        config: the run's resolved config (``data.manifest`` names its manifest).
        recorded_fingerprint: the fingerprint training recorded (calibration.json).

    Returns:
        ``{"salt", "hash": "sha256", "hex_digits", "splits": {"train": [...], "val": [...]}}``,
        or ``{"unavailable": reason}`` when the run's patients cannot be recovered.
    """
    manifest = (config.get("data") or {}).get("manifest")
    if not manifest or not Path(str(manifest)).is_file():
        return {"unavailable": f"the run's manifest {manifest!r} is not readable at export"}
    rows = load_rows(Path(str(manifest)))
    if recorded_fingerprint is None or data_fingerprint(rows) != recorded_fingerprint:
        return {
            "unavailable": f"{manifest} no longer matches the run's data fingerprint (edited, "
            "or the run split it itself, as cross-validation folds do)"
        }
    salt = secrets.token_hex(8)
    splits = {
        name: hash_patients((r["patient"] for r in rows if r.get("split") == name), salt)
        for name in SEEN_SPLITS
    }
    return {"salt": salt, "hash": "sha256", "hex_digits": HASH_HEX, "splits": splits}
