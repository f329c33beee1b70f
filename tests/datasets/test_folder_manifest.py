"""``labral manifest``: a folder of mixed files -> kept cines, skipped files with reasons,
labels joined by each key kind, unmatched rows and files listed, keyed pseudonyms, and no
identity anywhere in what it writes.

The folder mixes labral's synthetic cines (distinctive identities, so a leak is found by
grep) with files pydicom ships: a real US multi-frame (SonoSite, JPEG Baseline), a real
single-frame US and a CT.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
import yaml
from pydicom.data import get_testdata_file

from labral.datasets.manifests import command as manifest_command
from labral.datasets.manifests.command import ManifestSettings
from labral.datasets.manifests.from_folder import build_manifest
from labral.datasets.manifests.manifest import load_manifest
from labral.datasets.manifests.pseudonyms import KEY_ENV, Pseudonymizer, load_key
from labral.datasets.synth.dicom_writer import write_cine_dicom
from labral.datasets.synth.generate import draw_patient, generate_clip
from labral.datasets.synth.video_writer import write_mp4
from labral.errors import BadConfigError, BadManifestError
from labral.settings import settings_from_config
from labral.train.data import build_datasets
from tests.helpers.configs import compose_config

KEY = b"0123456789abcdef0123456789abcdef"
#: Text that identifies the synthetic patients (names, ids, birth dates, accessions) and the
#: real test files (their PatientName/PatientID); none of it may appear in any output.
IDENTITIES = (
    "ZQX000",
    "SYNTHETIC^HIP",
    "SYN-",
    "19870412",
    "SYN0001",
    "SYN0002",
    "CompressedSamples",
    "13US1",
)
#: Synthetic cines: file -> (patient, side written as Laterality, ImageLaterality).
CINES = {
    "a/clip1.dcm": ("ZQX0001", "R", None),
    "a/clip2.dcm": ("ZQX0001", "L", None),
    "b/clip3.dcm": ("ZQX0002", "L", "R"),  # ImageLaterality wins over Laterality
    "b/clip4.dcm": ("ZQX0003", None, None),  # no laterality at all
    "b/clip5.dcm": ("ZQX0004", "R", None),  # no label row names it
}


def _cine(path: Path, patient: str, side: str | None, image_side: str | None, frames=8):
    clip = generate_clip(draw_patient(len(patient)), "normal", 3, frames=8, height=48, width=48)
    clip = dataclasses.replace(clip, frames=clip.frames[:frames])  # frames=1: a still
    write_cine_dicom(
        clip, path, syntax="explicit", patient={"patient": patient, "side": side or "R"}
    )
    ds = pydicom.dcmread(path)
    ds.PatientBirthDate = "19870412"
    if side is None:
        del ds.Laterality
    if image_side:
        ds.ImageLaterality = image_side
    ds.save_as(path)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scanned folder: 5 synthetic cines, 1 copy, 1 single-frame, 1 MP4, 3 real pydicom
    files (US cine, US single frame, CT), a text file named .dcm, and a hidden file."""
    root = tmp_path_factory.mktemp("archive")
    for rel, (patient, side, image_side) in CINES.items():
        _cine(root / rel, patient, side, image_side)
    shutil.copy(root / "a/clip1.dcm", root / "a/clip1_copy.dcm")  # same SOP Instance UID
    _cine(root / "c/still.dcm", "ZQX0001", "R", None, frames=1)
    clip = generate_clip(draw_patient(9), "normal", 4, frames=8, height=48, width=48)
    write_mp4(clip.frames, 20.0, root / "v/export.mp4")
    (root / "real").mkdir()
    shutil.copy(get_testdata_file("examples_ybr_color.dcm"), root / "real/us_cine.dcm")
    shutil.copy(get_testdata_file("examples_rgb_color.dcm"), root / "real/us_single.dcm")
    shutil.copy(get_testdata_file("CT_small.dcm"), root / "real/ct.dcm")
    (root / "notes.dcm").write_text("not DICOM at all\n")
    (root / ".DS_Store").write_bytes(b"\x00\x01")
    return root


def _labels(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _build(archive: Path, labels: Path, out: Path, key: bytes = KEY, **options):
    summary = build_manifest(archive, labels, out, Pseudonymizer(key), progress=False, **options)
    rows = {
        Path(r["path"]).relative_to(archive).as_posix(): r
        for r in load_manifest(out / "manifest.jsonl")
    }
    with (out / "skipped.csv").open() as handle:
        skipped = {r["path"]: r for r in csv.DictReader(handle)}
    with (out / "unmatched_labels.csv").open() as handle:
        unmatched = {int(r["line"]): r["reason"] for r in csv.DictReader(handle)}
    return summary, rows, skipped, unmatched


def _file_labels(tmp_path: Path) -> Path:
    return _labels(
        tmp_path / "labels.csv",
        ["file", "label", "hip_label", "PatientID", "split"],
        [
            ["a/clip1.dcm", "1", "1", "", "train"],  # line 2
            ["clip2.dcm", "0", "", "", "train"],  # a bare file name, unique in the tree
            ["b/clip3.dcm", "1", "", "", "val"],
            ["clip4.dcm", "0", "", "", "val"],
            ["export.mp4", "1", "", "MP4PATIENT", "test"],  # video: PatientID from the CSV
            ["real/us_cine.dcm", "0", "", "", "test"],
            ["gone.dcm", "1", "", "", ""],  # line 8: no such file
            ["real/us_single.dcm", "0", "", "", ""],  # line 9: a file, but not a cine
        ],
    )


def test_kept_and_skipped_with_reasons(archive: Path, tmp_path: Path) -> None:
    summary, rows, skipped, unmatched = _build(archive, _file_labels(tmp_path), tmp_path / "o")
    kept = {
        "a/clip1.dcm",
        "a/clip2.dcm",
        "b/clip3.dcm",
        "b/clip4.dcm",
        "v/export.mp4",
        "real/us_cine.dcm",
    }
    assert set(rows) == kept
    codes = {path: row["code"] for path, row in skipped.items()}
    assert codes == {
        "a/clip1_copy.dcm": "duplicate",
        "b/clip5.dcm": "no_label",  # a cine no label row names: listed, not dropped silently
        "c/still.dcm": "not_a_cine",
        "notes.dcm": "not_dicom",
        "real/ct.dcm": "not_ultrasound",
        "real/us_single.dcm": "not_a_cine",
    }
    assert all(row["reason"] for row in skipped.values())
    assert unmatched == {8: "no_file", 9: "only_skipped"}
    assert summary["kept"] == 6 and summary["skipped"] == 6 and summary["files_scanned"] == 12
    assert summary["skipped_by_code"]["not_a_cine"] == 2 and summary["files_without_label"] == 1
    assert summary["hidden_not_scanned"] == 1 and summary["label_key"] == "file"
    assert rows["a/clip1.dcm"]["hip_label"] == 1 and rows["v/export.mp4"]["split"] == "test"
    assert rows["real/us_cine.dcm"]["device"] == "SonoSite, Inc. Turbo"


def test_laterality_from_the_header(archive: Path, tmp_path: Path) -> None:
    _, rows, _, _ = _build(archive, _file_labels(tmp_path), tmp_path / "o")
    sides = {path: row.get("side") for path, row in rows.items()}
    assert sides == {
        "a/clip1.dcm": "R",
        "a/clip2.dcm": "L",
        "b/clip3.dcm": "R",
        "b/clip4.dcm": None,
        "v/export.mp4": None,
        "real/us_cine.dcm": None,
    }
    one = rows["a/clip1.dcm"]["patient"]
    assert rows["a/clip1.dcm"]["hip"] == f"{one}_R" and rows["a/clip2.dcm"]["hip"] == f"{one}_L"
    assert rows["a/clip2.dcm"]["patient"] == one != rows["b/clip3.dcm"]["patient"]
    assert "hip" not in rows["b/clip4.dcm"]


def test_join_by_patient_id_per_side(archive: Path, tmp_path: Path) -> None:
    labels = _labels(
        tmp_path / "labels.csv",
        ["PatientID", "side", "label"],
        [
            ["SYN-ZQX0001", "R", "1"],
            ["SYN-ZQX0001", "L", "0"],
            ["SYN-ZQX0002", "", "1"],
            ["SYN-ZQX0003", "L", "1"],  # line 5: clip4 states no laterality
            ["SYN-NOBODY", "", "0"],  # line 6
        ],
    )
    summary, rows, skipped, unmatched = _build(archive, labels, tmp_path / "o")
    assert summary["label_key"] == "PatientID"
    assert {p: r["label"] for p, r in rows.items()} == {
        "a/clip1.dcm": 1,
        "a/clip2.dcm": 0,
        "b/clip3.dcm": 1,
    }
    assert skipped["b/clip4.dcm"]["code"] == "no_side"
    assert skipped["v/export.mp4"]["code"] == "no_label"  # an MP4 has no PatientID to join
    assert skipped["real/us_cine.dcm"]["code"] == "no_label"
    assert unmatched == {5: "only_skipped", 6: "no_file"}


@pytest.mark.parametrize("column", ["AccessionNumber", "StudyInstanceUID"])
def test_join_by_study_keys(archive: Path, tmp_path: Path, column: str) -> None:
    one = pydicom.dcmread(archive / "a/clip1.dcm", stop_before_pixels=True)
    two = pydicom.dcmread(archive / "b/clip3.dcm", stop_before_pixels=True)
    labels = _labels(
        tmp_path / "labels.csv",
        [column, "label", "PatientID"],  # PatientID beside another key: not the key
        [[str(one.get(column)), "1", ""], [str(two.get(column)), "0", ""], ["X-404", "1", ""]],
    )
    summary, rows, skipped, unmatched = _build(archive, labels, tmp_path / "o")
    assert summary["label_key"] == column
    assert {p: r["label"] for p, r in rows.items()} == {
        "a/clip1.dcm": 1,
        "a/clip2.dcm": 1,
        "b/clip3.dcm": 0,
    }
    assert unmatched == {4: "no_file"} and skipped["b/clip4.dcm"]["code"] == "no_label"


def test_label_key_must_name_a_column(archive: Path, tmp_path: Path) -> None:
    labels = _labels(tmp_path / "labels.csv", ["file", "label"], [["a/clip1.dcm", "1"]])
    with pytest.raises(BadConfigError, match="label_key=PatientID: .* no PatientID column"):
        build_manifest(
            archive,
            labels,
            tmp_path / "o",
            Pseudonymizer(KEY),
            label_key="PatientID",
            progress=False,
        )


def test_bad_label_rows_are_named_by_line_without_their_key(tmp_path: Path) -> None:
    labels = _labels(
        tmp_path / "labels.csv",
        ["PatientID", "label", "hip_label", "side"],
        [
            ["SECRET-1", "2", "", ""],
            ["SECRET-2", "1", "0", ""],
            ["SECRET-3", "1", "", "L"],
            ["SECRET-3", "0", "", ""],
        ],
    )
    with pytest.raises(BadManifestError) as caught:
        build_manifest(tmp_path, labels, tmp_path / "o", Pseudonymizer(KEY), progress=False)
    message = caught.value.message
    assert "labels.csv:2: label must be 0 or 1" in message and "labels.csv:3:" in message
    assert "labels.csv:5: line 4 has the same key" in message
    assert "SECRET" not in message


def test_pseudonyms_stable_with_a_key_and_different_with_another(archive, tmp_path) -> None:
    labels = _file_labels(tmp_path)
    first = _build(archive, labels, tmp_path / "a")
    again = _build(archive, labels, tmp_path / "b")
    other = _build(archive, labels, tmp_path / "c", key=b"another key of 32 bytes, secret!")
    ids = [
        {p: (r["patient"], r.get("hip"), r["clip"]) for p, r in run[1].items()}
        for run in (first, again, other)
    ]
    assert ids[0] == ids[1]
    assert all(ids[0][p][0] != ids[2][p][0] and ids[0][p][2] != ids[2][p][2] for p in ids[0])
    assert first[0]["pseudonym_key_id"] == again[0]["pseudonym_key_id"]
    assert first[0]["pseudonym_key_id"] != other[0]["pseudonym_key_id"]


def test_no_identity_in_any_output(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    _build(archive, _file_labels(tmp_path), out)
    text = "\n".join(p.read_text() for p in sorted(out.rglob("*")) if p.is_file())
    assert [s for s in IDENTITIES if s in text] == []
    assert KEY.decode() not in text
    source = (archive / "a/clip1.dcm").read_bytes()  # the identities are there to leak
    assert all(s.encode() in source for s in ("SYN-ZQX0001", "SYNTHETIC^HIP", "19870412"))
    uids = [pydicom.dcmread(archive / rel, stop_before_pixels=True) for rel in CINES]
    assert not any(
        str(ds.SOPInstanceUID) in text or str(ds.StudyInstanceUID) in text for ds in uids
    )


def test_manifest_trains(archive: Path, tmp_path: Path) -> None:
    """The manifest goes through ``labral train``'s data path: splits, then clip datasets."""
    _build(archive, _file_labels(tmp_path), tmp_path / "o")
    cfg = compose_config(
        "train",
        [
            "data=manifest",
            f"data.manifest={tmp_path / 'o' / 'manifest.jsonl'}",
            "data.cache_dir=null",
            f"paths.root_dir={tmp_path}",
        ],
    )
    datasets = build_datasets(cfg)
    assert {name: len(d) for name, d in datasets.items()} == {"train": 2, "val": 2, "test": 2}
    assert not any(d.skipped for d in datasets.values())


def test_key_is_required_and_checked(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(BadConfigError, match=r"(?s)no pseudonym key.*secrets.token_hex"):
        load_key(None)
    (tmp_path / "short.key").write_text("abc\n")
    with pytest.raises(BadConfigError, match="fewer than 16") as caught:
        load_key(tmp_path / "short.key")
    assert "abc" not in caught.value.message
    monkeypatch.setenv(KEY_ENV, KEY.decode())
    assert load_key(None) == KEY
    (tmp_path / "good.key").write_bytes(KEY + b"\n")
    assert load_key(tmp_path / "good.key") == KEY


def _cli(tmp_path: Path, *overrides: str, key: str | None = None, folder: Path | None = None):
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    env.update({"PYTHONSAFEPATH": "1", "LABRAL_ROOT": str(tmp_path)})
    if key:
        env[KEY_ENV] = key
    command = [sys.executable, "-m", "labral.cli", "manifest"]
    command += [str(folder)] if folder else []  # `labral manifest DIR ...`
    command += [f"hydra.run.dir={tmp_path}/run"]
    return subprocess.run(
        [*command, *overrides], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_refuses_to_run_without_a_key(archive: Path, tmp_path: Path) -> None:
    result = _cli(tmp_path, f"dir={archive}", f"labels={_file_labels(tmp_path)}")
    assert result.returncode == 2
    assert "bad_config" in result.stderr and "key_file=" in result.stderr
    assert not (tmp_path / "run" / "manifest.jsonl").exists()


def test_cli_end_to_end_leaves_no_identity_in_its_logs(archive: Path, tmp_path: Path) -> None:
    result = _cli(
        tmp_path,
        f"labels={_file_labels(tmp_path)}",
        "progress=false",
        key=KEY.decode(),
        folder=archive,
    )
    assert result.returncode == 0, result.stderr
    run = tmp_path / "run"
    assert "6 clip(s) kept" in result.stdout and f"data.manifest={run}" in result.stdout
    assert len(load_manifest(run / "manifest.jsonl")) == 6
    text = "\n".join(p.read_text() for p in sorted(run.rglob("*")) if p.is_file())
    text += result.stdout + result.stderr
    assert [s for s in IDENTITIES if s in text] == [] and KEY.decode() not in text


def test_manifest_settings_are_one_typed_model(tmp_path: Path) -> None:
    """configs/manifest.yaml holds only groups; every key and default is ManifestSettings'."""
    yaml_file = Path(manifest_command.__file__).resolve().parents[2] / "configs" / "manifest.yaml"
    loaded = yaml.safe_load(yaml_file.read_text())
    assert set(loaded) == {"defaults", "hydra"} and loaded["defaults"][0] == "manifest_schema"
    cfg = compose_config("manifest", ["dir=2024", "decode=true"])
    bad = compose_config("manifest", ["decode=maybe"])
    settings = settings_from_config(ManifestSettings, cfg, ignore=("paths",))
    assert settings.dir == "2024" and settings.decode  # a folder named 2024 stays a path
    assert settings.progress and settings.labels is None and settings.key_file is None
    with pytest.raises(BadConfigError, match="decode"):
        settings_from_config(ManifestSettings, bad, ignore=("paths",))
