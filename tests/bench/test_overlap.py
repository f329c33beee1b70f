"""`labral bench` on a manifest never scores a bundle's training patients unawares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labral.bench import command
from labral.bench.overlap import OverlapError
from labral.train.split_record import hash_patients
from tests.helpers.bundles import blob_scorer, toy_bundle


def _bundle_trained_on(folder: Path, train: list[str], val: list[str]) -> Path:
    salt = "5a17"
    record = {
        "salt": salt,
        "hash": "sha256",
        "hex_digits": 16,
        "splits": {"train": hash_patients(train, salt), "val": hash_patients(val, salt)},
    }
    return toy_bundle(
        folder, blob_scorer(), model_name="seen", model_version="test", split_patients=record
    )


def test_overlap_is_refused_by_default_and_excluded_on_request(
    bench_assets, compose_bench, tmp_path: Path
) -> None:
    bundle = _bundle_trained_on(tmp_path / "seen", ["P000", "P001"], ["P002"])
    suite = f"suite={bench_assets['manifest']}"
    with pytest.raises(OverlapError, match=r"seen: 6 clips of 3 patients.*overlap=exclude"):
        command.run(compose_bench(tmp_path / "r", [f"bundle={bundle}", suite]))
    assert not (tmp_path / "r" / "out" / "results.json").exists()  # nothing half-written

    results = command.run(
        compose_bench(tmp_path / "x", [f"bundle={bundle}", suite, "overlap=exclude"])
    )
    assert results["suite"]["n_clips"] == 24 - 6 and results["suite"]["n_patients"] == 9
    assert results["overlap"]["excluded_clips"] == 6
    assert results["overlap"]["per_model"]["seen"] == {"checked": True, "clips": 6, "patients": 3}
    predictions = (tmp_path / "x" / "out" / "predictions.csv").read_text()
    assert "p0_c0.dcm" not in predictions and "p3_c0.dcm" in predictions


def test_a_bundle_without_split_records_is_scored_with_a_warning(
    bench_assets, compose_bench, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = [f"bundle={bench_assets['bundle']}", f"suite={bench_assets['manifest']}"]
    results = command.run(compose_bench(tmp_path / "o", overrides))
    assert "patient overlap not checked" in capsys.readouterr().out
    entry = results["overlap"]["per_model"]["blob-detector"]
    assert entry["checked"] is False and "records no training patients" in entry["note"]
    saved = json.loads((tmp_path / "o" / "out" / "results.json").read_text())
    assert saved["suite"]["n_clips"] == 24
