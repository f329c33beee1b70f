"""Read and validate a data-set manifest (JSONL, one object a line, or CSV with a header).

Columns (docs/contracts.md): required ``path`` (relative to the manifest's folder, or
absolute), ``label`` (0/1: the sign is visible in this clip), ``patient``; optional ``hip``
(id of the hip the clip shows), ``hip_label`` (0/1: the hip's diagnosis), ``side``, ``clip``,
``split`` (train/val/test), ``site``, ``device``, ``clip_type``, ``fps``, ``extrusion_frames``
(list of source-frame indices), ``params`` (dict). A hip has one ``hip_label`` on all its
rows, and a clip with ``label`` 1 cannot come from a hip with ``hip_label`` 0. Every problem
found is reported at once, each with ``file:line``, in one
:class:`~labral.errors.BadManifestError`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from labral.errors import BadManifestError

REQUIRED_COLUMNS = ("path", "label", "patient")
SPLIT_NAMES = ("train", "val", "test")
MAX_REPORTED = 20


def _raw_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, raw row) pairs; blank lines are skipped."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        rows = []
        for row in reader:
            cleaned = {
                (k.strip() if k is not None else "_extra"): (v.strip() if isinstance(v, str) else v)
                for k, v in row.items()
            }
            rows.append(
                (reader.line_num, {k: v for k, v in cleaned.items() if v not in ("", None)})
            )
        return rows
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadManifestError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise BadManifestError(f"{path}:{number}: expected a JSON object, got {row!r:.60}")
        rows.append((number, row))
    return rows


def _parse_json_field(value: Any) -> Any:
    """CSV stores lists/dicts as JSON text; JSONL already has them parsed."""
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


def _record(row: dict[str, Any], base: Path, labelled: bool = True) -> dict[str, Any]:
    """Normalise one row; raises ValueError with a short reason. ``labelled=False``: the
    ``label`` column may be absent (``label`` None in the record)."""
    if "_extra" in row:
        raise ValueError(f"more values than header columns: {row['_extra']}")
    required = REQUIRED_COLUMNS if labelled else tuple(c for c in REQUIRED_COLUMNS if c != "label")
    missing = [c for c in required if c not in row or row[c] in ("", None)]
    if missing:
        raise ValueError(f"missing required column(s) {missing}")
    unlabelled = not labelled and row.get("label") in ("", None)
    label = 0 if unlabelled else row["label"]  # 0: passes the checks below, then set to None
    if isinstance(label, str) and label.strip() in ("0", "1"):
        label = int(label)
    if isinstance(label, bool) or label not in (0, 1):
        raise ValueError(f"label must be 0 or 1, got {row['label']!r}")
    hip_label = row.get("hip_label")
    if hip_label is not None:
        if isinstance(hip_label, str) and hip_label.strip() in ("0", "1"):
            hip_label = int(hip_label)
        if isinstance(hip_label, bool) or hip_label not in (0, 1):
            raise ValueError(f"hip_label must be 0 or 1, got {row['hip_label']!r}")
        if int(label) == 1 and hip_label == 0:
            raise ValueError("label 1 (sign visible) on a hip with hip_label 0 (intact)")
    split = row.get("split")
    if split is not None and split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; use one of {list(SPLIT_NAMES)}")
    record = dict(row)
    file_path = Path(str(row["path"])).expanduser()
    record["path"] = str(file_path if file_path.is_absolute() else (base / file_path).resolve())
    record["label"] = None if unlabelled else int(label)
    record["patient"] = str(row["patient"])
    if hip_label is not None:
        record["hip_label"] = int(hip_label)
    if "hip" in record:
        record["hip"] = str(record["hip"])
    if "fps" in record:
        record["fps"] = float(record["fps"])
    for key in ("extrusion_frames", "params"):
        if key in record:
            record[key] = _parse_json_field(record[key])
    if "extrusion_frames" in record:
        record["extrusion_frames"] = [int(v) for v in record["extrusion_frames"]]
    return record


def load_manifest(
    path: str | Path, *, check_files: bool = False, labelled: bool = True
) -> list[dict[str, Any]]:
    """Read a JSONL or CSV manifest and validate it.

    Args:
        path: the manifest file (``.csv`` is read as CSV, anything else as JSONL).
        check_files: also check that every clip file exists (all missing ones are listed).
        labelled: False for unlabelled clips (``labral pretrain``): a row may leave out
            ``label`` (its record's ``label`` is None); one that has it is still checked.

    Returns:
        One dict per clip in file order: ``path`` absolute str, ``label`` int 0/1, ``patient``
        str, plus the optional columns that are present (``fps`` float,
        ``extrusion_frames`` list[int], ``params`` dict; CSV JSON cells are parsed).

    Raises:
        BadManifestError: the file is missing or empty, a line is not valid JSON, or rows have
            missing columns, labels not in {0, 1}, unknown split names, duplicate paths or
            (with ``check_files``) missing files; the message names ``file:line`` for each.
    """
    path = Path(path)
    if not path.is_file():
        raise BadManifestError(f"{path}: manifest not found; pass the manifest written by synth")
    base = path.resolve().parent
    problems: list[str] = []
    records: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    hip_labels: dict[str, tuple[int, int]] = {}  # hip -> (hip_label, first line)
    for number, row in _raw_rows(path):
        try:
            record = _record(row, base, labelled)
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            problems.append(f"{path}:{number}: {exc}")
            continue
        if "hip" in record and "hip_label" in record:
            seen = hip_labels.setdefault(record["hip"], (record["hip_label"], number))
            if seen[0] != record["hip_label"]:
                problems.append(
                    f"{path}:{number}: hip {record['hip']!r} has hip_label "
                    f"{record['hip_label']} here but {seen[0]} on line {seen[1]}"
                )
                continue
        if record["path"] in first_line:
            problems.append(
                f"{path}:{number}: duplicate path {row['path']!r} "
                f"(first on line {first_line[record['path']]})"
            )
            continue
        first_line[record["path"]] = number
        record["_line"] = number
        records.append(record)
    if check_files:
        problems += [
            f"{path}:{r['_line']}: file not found: {r['path']}"
            for r in records
            if not Path(r["path"]).is_file()
        ]
    if problems:
        shown = problems[:MAX_REPORTED]
        more = (
            f"\n... and {len(problems) - MAX_REPORTED} more" if len(problems) > len(shown) else ""
        )
        raise BadManifestError(
            f"{len(problems)} problem(s) in manifest {path}:\n" + "\n".join(shown) + more
        )
    if not records:
        raise BadManifestError(f"{path}: manifest has no clips")
    for record in records:
        del record["_line"]
    return records
