"""The input check ``labral export`` puts in a bundle: fitted on the run's own clips.

The run's manifest gives the valid clips (its ``train`` split trains, its ``val`` split
calibrates); :mod:`labral.input_check.fit` adds generated valid clips of every level and
generated wrong inputs. A fitted check is cached under ``input_check.cache_dir``, keyed by
everything it was fitted from (settings, the manifest's data fingerprint, the code of the
check, the view network and the generator), so exporting a second model of the same run
data reuses it; the check does not depend on the detector.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from labral.datasets.io.reader import read_cine
from labral.errors import LabralError
from labral.input_check.check import InputCheck
from labral.input_check.fit import CheckData, fit_input_check, generated_data
from labral.input_check.settings import InputCheckSettings
from labral.train.data import data_fingerprint, load_rows

log = logging.getLogger("labral.export")

#: Source folders (from the repository root) whose code decides what a fitted check is.
CODE_FOLDERS = ("labral/input_check", "datasets/synth", "models")


def _code_hash() -> str:
    """SHA-256 over the check's, the view network's and the generator's source files."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for folder in (root / name for name in CODE_FOLDERS):
        for path in sorted(folder.glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _evenly(rows: list[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    if len(rows) <= keep:
        return rows
    return [rows[int(i)] for i in np.linspace(0, len(rows) - 1, keep).round()]


def manifest_data(manifest: Path, limit: int) -> tuple[CheckData, int]:
    """The run's train and val clips, decoded (a clip that fails to decode is skipped).

    Returns:
        The data and how many clips were skipped.
    """
    rows = load_rows(manifest)
    data, skipped = CheckData(), 0
    for split, target in (("train", data.valid_train), ("val", data.valid_calibration)):
        for row in _evenly([r for r in rows if r.get("split") == split], limit):
            try:
                target.append(read_cine(row["path"]))
            except LabralError as exc:
                skipped += 1
                log.warning("input check: skipped %s (%s)", row["path"], exc.code)
                continue
            if split == "val":
                data.calibration_groups.append(str(row.get("difficulty") or "manifest"))
    return data, skipped


def check_for_run(settings: InputCheckSettings, config: dict[str, Any]) -> InputCheck | None:
    """The input check for a training run's bundle (None when ``enabled=false``).

    Raises:
        BadManifestError: the run's manifest cannot be read.
        ValueError: too few clips to fit (see :func:`labral.input_check.fit.fit_input_check`).
    """
    if not settings.enabled:
        return None
    manifest = (config.get("data") or {}).get("manifest")
    data, skipped = CheckData(), 0
    fingerprint = "no-manifest"
    if manifest and Path(str(manifest)).is_file() and settings.manifest_clips > 0:
        fingerprint = data_fingerprint(load_rows(Path(str(manifest))))
    key_source = {
        "settings": settings.model_dump(exclude={"cache_dir"}),
        "data": fingerprint,
        "code": _code_hash(),
    }
    key = hashlib.sha256(json.dumps(key_source, sort_keys=True).encode()).hexdigest()[:16]
    cached = Path(settings.cache_dir) / key if settings.cache_dir else None
    if cached is not None and (cached / ".complete").is_file():
        print(f"input check: reusing {cached}")
        return InputCheck.load(cached)
    if fingerprint != "no-manifest":
        data, skipped = manifest_data(Path(str(manifest)), settings.manifest_clips)
    generated_data(settings, data)
    check = fit_input_check(data, settings)
    check.info["manifest_skipped"] = skipped
    print(
        f"input check: fitted on {len(data.valid_train)} valid and {len(data.wrong)} wrong "
        f"clips; refuses {check.info['calibration']['false_refusal']:.1%} of "
        f"{len(data.valid_calibration)} valid calibration clips"
    )
    if cached is not None:
        shutil.rmtree(cached, ignore_errors=True)
        check.save(cached)
        (cached / ".complete").write_text(key)
    return check
