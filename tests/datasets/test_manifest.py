"""Manifest loading: JSONL and CSV, path resolution, and every validation error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labral.datasets.manifests.manifest import load_manifest
from labral.errors import BadManifestError


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def rows(n: int = 3) -> list[dict]:
    return [{"path": f"clips/c{i}.dcm", "label": i % 2, "patient": f"p{i}"} for i in range(n)]


def test_jsonl_paths_resolved_relative_to_manifest(tmp_path):
    extra = {"split": "val", "fps": 20, "extrusion_frames": [3, 4], "params": {"gain_db": 1.5}}
    data = rows()
    data[1].update(extra)
    records = load_manifest(write_jsonl(tmp_path / "m.jsonl", data))
    assert [r["path"] for r in records] == [str(tmp_path / f"clips/c{i}.dcm") for i in range(3)]
    assert [r["label"] for r in records] == [0, 1, 0]
    assert records[1]["split"] == "val" and records[1]["fps"] == 20.0
    assert records[1]["extrusion_frames"] == [3, 4] and records[1]["params"]["gain_db"] == 1.5
    assert "split" not in records[0]


def test_csv_with_json_cells_and_absolute_paths(tmp_path):
    absolute = tmp_path / "elsewhere" / "a.dcm"
    (tmp_path / "m.csv").write_text(
        "path,label,patient,split,extrusion_frames\n"
        f'{absolute},1,p1,train,"[1, 2, 5]"\n'
        "b.dcm,0,p2,,\n"
    )
    records = load_manifest(tmp_path / "m.csv")
    assert records[0]["path"] == str(absolute) and records[0]["label"] == 1
    assert records[0]["extrusion_frames"] == [1, 2, 5]
    assert records[1]["path"] == str(tmp_path / "b.dcm") and "split" not in records[1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"label": 2}, r"m\.jsonl:2: label must be 0 or 1"),
        ({"label": True}, r"m\.jsonl:2: label must be 0 or 1"),
        ({"patient": None}, r"m\.jsonl:2: missing required column\(s\) \['patient'\]"),
        ({"split": "holdout"}, r"m\.jsonl:2: unknown split 'holdout'"),
        (
            {"path": "clips/c0.dcm"},
            r"m\.jsonl:2: duplicate path 'clips/c0.dcm' \(first on line 1\)",
        ),
    ],
)
def test_each_validation_error_names_file_and_line(tmp_path, change, message):
    data = rows()
    data[1].update(change)
    with pytest.raises(BadManifestError, match=message):
        load_manifest(write_jsonl(tmp_path / "m.jsonl", data))


def test_all_problems_reported_at_once(tmp_path):
    data = rows(4)
    data[0]["label"] = "yes"
    del data[2]["path"]
    with pytest.raises(BadManifestError) as info:
        load_manifest(write_jsonl(tmp_path / "m.jsonl", data))
    assert "2 problem(s)" in str(info.value)
    assert "m.jsonl:1:" in str(info.value) and "m.jsonl:3:" in str(info.value)


def test_csv_bad_label_names_line(tmp_path):
    (tmp_path / "m.csv").write_text("path,label,patient\na.dcm,1,p1\nb.dcm,maybe,p2\n")
    with pytest.raises(BadManifestError, match=r"m\.csv:3: label must be 0 or 1"):
        load_manifest(tmp_path / "m.csv")
    (tmp_path / "n.csv").write_text("path,label\na.dcm,1\n")
    with pytest.raises(BadManifestError, match=r"n\.csv:2: missing required column"):
        load_manifest(tmp_path / "n.csv")


def test_check_files_lists_every_missing_file(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "c1.dcm").write_bytes(b"x")
    manifest = write_jsonl(tmp_path / "m.jsonl", rows(3))
    assert len(load_manifest(manifest)) == 3  # not checked by default
    with pytest.raises(BadManifestError) as info:
        load_manifest(manifest, check_files=True)
    text = str(info.value)
    assert "c0.dcm" in text and "c2.dcm" in text and "c1.dcm" not in text
    assert "m.jsonl:1: file not found" in text and "m.jsonl:3: file not found" in text


def test_bad_json_missing_file_and_empty_manifest(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"path": "a", "label": 1, "patient": "p"}\n{oops\n')
    with pytest.raises(BadManifestError, match=r"m\.jsonl:2: not valid JSON"):
        load_manifest(tmp_path / "m.jsonl")
    with pytest.raises(BadManifestError, match="not found"):
        load_manifest(tmp_path / "absent.jsonl")
    (tmp_path / "e.jsonl").write_text("\n\n")
    with pytest.raises(BadManifestError, match="no clips"):
        load_manifest(tmp_path / "e.jsonl")
