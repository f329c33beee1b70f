"""The data set builder: determinism, manifest integrity, splits by patient, files on disk."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest

from labral.datasets.synth.dataset import (
    allocate_counts,
    assign_splits,
    plan_dataset,
    render_job,
    synthesize,
)
from labral.datasets.synth.difficulty import load_difficulty
from labral.datasets.synth.settings import SynthSettings
from labral.datasets.synth.types import NEGATIVE_TYPES, POSITIVE_TYPE
from labral.errors import BadConfigError


def tiny(
    out: Path, clip: dict | None = None, formats: dict | None = None, **changes
) -> SynthSettings:
    """Small, fast settings (8-frame 48x48 clips, no preview, no progress bar); ``clip`` and
    ``formats`` change keys of those groups."""
    given: dict = {"out": str(out), "n_patients": 6, "preview": False, "progress": False}
    given |= {"workers": 1, "clip": {"frames": 8, "height": 48, "width": 48, **(clip or {})}}
    return SynthSettings.from_config({**given, "formats": formats or {}, **changes})


def rows_of(manifest: Path) -> list[dict]:
    return [json.loads(line) for line in manifest.read_text().splitlines()]


def test_allocate_counts_is_exact_and_proportional() -> None:
    counts = allocate_counts(10, {"a": 1.0, "b": 1.0, "c": 2.0, "d": 0.0})
    assert sum(counts.values()) == 10 and counts["d"] == 0
    assert counts["c"] == 5 and sorted([counts["a"], counts["b"]]) == [2, 3]


@pytest.mark.parametrize("n_patients", [3, 4, 10, 57])
def test_every_split_non_empty_when_possible(n_patients: int) -> None:
    fractions = {"train": 0.7, "val": 0.15, "test": 0.15}
    splits = assign_splits(n_patients, fractions, np.random.default_rng(0))
    counts = Counter(splits)
    assert set(counts) == {"train", "val", "test"} and sum(counts.values()) == n_patients
    assert counts["train"] >= counts["val"]


def test_same_result_for_any_worker_count(tmp_path: Path) -> None:
    one = synthesize(tiny(tmp_path / "w1", workers=1, formats={"dicom_syntax": "mixed"}))
    two = synthesize(
        tiny(tmp_path / "w2", workers=2, chunksize=3, formats={"dicom_syntax": "mixed"})
    )
    assert one.read_text() == two.read_text()
    for row in rows_of(one):
        assert (one.parent / row["path"]).read_bytes() == (two.parent / row["path"]).read_bytes()
    s1, s2 = (json.loads((m.parent / "dataset.json").read_text()) for m in (one, two))
    assert s1["fingerprint"] == s2["fingerprint"]
    for summary in (s1, s2):  # only the timing and the output folder may differ
        del summary["run"], summary["settings"]["out"]
    assert s1 == s2


def test_seed_changes_the_data(tmp_path: Path) -> None:
    a = synthesize(tiny(tmp_path / "a", seed=1))
    b = synthesize(tiny(tmp_path / "b", seed=2))
    fa, fb = (json.loads((m.parent / "dataset.json").read_text())["fingerprint"] for m in (a, b))
    assert fa != fb


def test_manifest_integrity(tmp_path: Path) -> None:
    settings = tiny(tmp_path / "m", n_patients=24, prevalence=0.4, clip={"frames": 32})
    manifest = synthesize(settings)
    rows = rows_of(manifest)
    files = sorted(
        p.relative_to(manifest.parent).as_posix() for p in manifest.parent.rglob("*.dcm")
    )
    assert sorted(r["path"] for r in rows) == files  # rows match files one to one
    split_of: dict[str, set[str]] = {}
    for row in rows:
        split_of.setdefault(row["patient"], set()).add(row["split"])
        assert row["label"] == int(row["clip_type"] == POSITIVE_TYPE)
        assert row["frames"] == 32 and 15 <= row["fps"] <= 30
        assert row["hip"] == f"{row['patient']}_{row['side']}"
        assert row["label"] <= row["hip_label"]  # an intact hip never extrudes
        assert row["side"] in ("R", "L")
        if row["label"] == 0:
            assert row["extrusion_frames"] == []  # negatives never extrude
        assert all(0 <= i < row["frames"] for i in row["extrusion_frames"])
    assert any(r["extrusion_frames"] for r in rows if r["label"] == 1)
    assert all(len(s) == 1 for s in split_of.values())  # no patient in two splits
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    types = Counter(r["clip_type"] for r in rows)
    assert set(types) == {POSITIVE_TYPE, *NEGATIVE_TYPES}  # every class and type present
    hip_labels: dict[str, set[int]] = {}
    for row in rows:
        hip_labels.setdefault(row["hip"], set()).add(row["hip_label"])
    assert all(len(v) == 1 for v in hip_labels.values())  # one diagnosis per hip
    detached = {h for h, v in hip_labels.items() if v == {1}}
    assert len(detached) == round(0.4 * len(hip_labels))  # prevalence is per hip, exact
    # a detached hip extrudes only in the clips that load it enough: some show nothing
    assert any(r["hip"] in detached and r["label"] == 0 for r in rows)
    assert all(
        (r["label"] == 1) == (r["provocation"] >= r["extrusion_threshold"])
        for r in rows
        if r["hip"] in detached and r["params"]["variant"] != "burst_outside_clip"
    )
    hips = Counter(r["hip"] for r in rows)
    assert all(2 <= n <= 4 for n in hips.values())
    summary = json.loads((manifest.parent / "dataset.json").read_text())
    assert summary["clips"] == len(rows) and summary["by_type"] == dict(sorted(types.items()))
    assert sum(s["clips"] for s in summary["by_split"].values()) == len(rows)
    assert summary["by_hip_label"]["detached"] == len(detached)
    assert summary["difficulty"] == "medium"


def test_patient_anatomy_is_shared_across_clips(tmp_path: Path) -> None:
    jobs = plan_dataset(tiny(tmp_path, n_patients=5))
    seeds: dict[str, set[int]] = {}
    for job in jobs:
        seeds.setdefault(job.patient, set()).add(job.patient_seed)
    assert all(len(s) == 1 for s in seeds.values())
    assert len({next(iter(s)) for s in seeds.values()}) == 5
    assert len({job.seed for job in jobs}) == len(jobs)  # every clip has its own seed


def test_dicom_pixels_are_the_generated_clip(tmp_path: Path) -> None:
    settings = tiny(tmp_path / "px", n_patients=2, formats={"dicom_syntax": "explicit"})
    manifest = synthesize(settings)
    job = plan_dataset(settings)[0]
    clip = render_job(job, settings)
    ds = pydicom.dcmread(manifest.parent / job.relpath)
    region = ds.SequenceOfUltrasoundRegions[0]
    crop = ds.pixel_array[
        :,
        region.RegionLocationMinY0 : region.RegionLocationMaxY1 + 1,
        region.RegionLocationMinX0 : region.RegionLocationMaxX1 + 1,
    ]
    np.testing.assert_array_equal(crop, clip.frames)
    assert float(ds.FrameTime) == pytest.approx(1000.0 / job.fps, rel=1e-4)


def test_mp4_and_preview_written(tmp_path: Path) -> None:
    manifest = synthesize(tiny(tmp_path / "v", n_patients=8, formats={"mp4": True}, preview=True))
    rows = rows_of(manifest)
    assert all((manifest.parent / r["mp4"]).stat().st_size > 0 for r in rows)
    summary = json.loads((manifest.parent / "dataset.json").read_text())
    previews = [manifest.parent / p for p in summary["preview"]]
    assert previews[0].name == "contact_sheet.png"
    present = {r["clip_type"] for r in rows}
    assert {p.stem for p in previews[1:]} == present
    assert all(p.stat().st_size > 0 for p in previews)


def test_rerun_in_same_folder_leaves_no_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "again"
    synthesize(tiny(out, n_patients=8))
    manifest = synthesize(tiny(out, n_patients=2))
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*.dcm")}
    assert on_disk == {r["path"] for r in rows_of(manifest)}
    (out / "dataset.json").write_text('{"name": "someone else"}')
    (out / "clips" / "keep.txt").write_text("not ours to delete")
    synthesize(tiny(out, n_patients=2))
    assert (out / "clips" / "keep.txt").exists()


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools (dciodvfy) not installed")
def test_generated_files_pass_dciodvfy(tmp_path: Path) -> None:
    manifest = synthesize(tiny(tmp_path / "dv", n_patients=1, formats={"dicom_syntax": "mixed"}))
    rows = rows_of(manifest)[:2]  # one JPEG Baseline, one Explicit VR Little Endian
    for row in rows:
        path = manifest.parent / row["path"]
        result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        report = result.stdout + result.stderr
        assert [line for line in report.splitlines() if line.startswith("Error")] == [], report
    syntaxes = {
        str(pydicom.dcmread(manifest.parent / r["path"]).file_meta.TransferSyntaxUID) for r in rows
    }
    assert syntaxes == {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.1"}


def test_mixed_levels_span_every_split_and_render_at_their_level(tmp_path: Path) -> None:
    levels = ["easy", "medium", "hard", "expert"]
    settings = tiny(tmp_path / "mixed", n_patients=28, levels=levels)
    manifest = synthesize(settings)
    rows = rows_of(manifest)
    per_split = Counter((r["split"], r["difficulty"]) for r in rows)
    patients = {(r["split"], r["difficulty"], r["patient"]) for r in rows}
    for split in ("train", "val", "test"):  # levels in turn within a split: none repeats
        in_split = [level for s, level, _ in patients if s == split]  # before all are used
        assert len(set(in_split)) == min(len(in_split), len(levels)), per_split
    # every clip is drawn from its own patient's level (the generator records the knobs)
    assert all(r["params"]["difficulty"]["level"] == r["difficulty"] for r in rows)
    summary = json.loads((manifest.parent / "dataset.json").read_text())
    assert summary["difficulty"] == "mixed"
    assert sum(summary["levels"].values()) == len(rows) and set(summary["levels"]) == set(levels)


HARD = load_difficulty("hard").to_json()


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"levels": ["easy", "impossible"]}, "levels="),
        ({"levels": "easy"}, "levels="),
        ({"levels": ["easy"], "difficulty": {**HARD, "lag": [0.1, 0.2]}}, "levels="),
    ],
)
def test_bad_levels_are_refused_by_name(tmp_path: Path, changes: dict, named: str) -> None:
    with pytest.raises(BadConfigError, match=named):
        tiny(tmp_path, **changes)
