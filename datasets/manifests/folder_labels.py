"""The labels CSV of ``labral manifest``: one row per patient, study, accession or file.

Columns (names matched case-insensitively, ``_`` and spaces ignored):

- one key column: ``PatientID``, ``AccessionNumber``, ``StudyInstanceUID`` or ``file``
  (a file name, or a path relative to the scanned folder). With several present the most
  specific wins (file, then StudyInstanceUID, AccessionNumber, PatientID) unless
  ``label_key=`` names one;
- ``label`` (required, 0/1: the sign is visible in the clip);
- optional ``hip_label`` (0/1), ``side`` (L/R: the row applies to that hip only),
  ``split`` (train/val/test), ``site``, and ``PatientID`` beside another key (used for files
  whose header states none, such as MP4 exports).

Rows hold identifiers, so no message here quotes a cell of a key column: problems are named
by ``file:line`` only.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from labral.datasets.manifests.manifest import MAX_REPORTED, SPLIT_NAMES
from labral.errors import BadConfigError, BadManifestError

#: key kind -> the column names (normalised) that hold it, most specific kind first.
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "file": ("file", "filename", "path", "filepath"),
    "StudyInstanceUID": ("studyinstanceuid", "studyuid"),
    "AccessionNumber": ("accessionnumber", "accession"),
    "PatientID": ("patientid",),
}
SIDES = ("L", "R")


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "").replace(" ", "")


def key_kind(name: str) -> str:
    """The key kind that ``label_key=<name>`` names (any spelling of a key column).

    Raises:
        BadConfigError: not a key kind.
    """
    wanted = _normalise(name)
    for kind, columns in KEY_COLUMNS.items():
        if wanted == _normalise(kind) or wanted in columns:
            return kind
    raise BadConfigError(
        f"label_key={name!r} is not a key; use one of {list(KEY_COLUMNS)} (or leave it "
        "null to pick the key column the labels CSV has)"
    )


@dataclass
class LabelRow:
    """One row of the labels CSV (``key`` and ``patient_id`` are identifiers: never log them)."""

    line: int
    key: str
    label: int
    side: str | None = None
    hip_label: int | None = None
    patient_id: str | None = None
    split: str | None = None
    site: str | None = None
    used_by: int = 0  # kept files joined to this row


@dataclass
class LabelTable:
    """The rows of a labels CSV indexed by key value."""

    path: Path
    kind: str
    rows: list[LabelRow]
    by_key: dict[str, list[LabelRow]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for row in self.rows:
            self.by_key.setdefault(row.key, []).append(row)


def _binary(value: str, column: str) -> int:
    if value not in ("0", "1"):
        raise ValueError(f"{column} must be 0 or 1, got {value[:8]!r}")
    return int(value)


def _parse_row(line: int, cells: dict[str, str], key_column: str, kind: str) -> LabelRow:
    key = cells.get(key_column, "")
    if not key:
        raise ValueError(f"the {kind} cell is empty")
    if kind == "file":
        key = key.replace("\\", "/").removeprefix("./")
    if "label" not in cells or cells["label"] == "":
        raise ValueError("the label cell is empty")
    label = _binary(cells["label"], "label")
    hip_label = _binary(cells["hiplabel"], "hip_label") if cells.get("hiplabel") else None
    if label == 1 and hip_label == 0:
        raise ValueError("label 1 (sign visible) on a hip with hip_label 0 (intact)")
    side = cells.get("side", "").upper() or None
    if side is not None and side not in SIDES:
        raise ValueError(f"side must be L or R (or empty), got {side[:8]!r}")
    split = cells.get("split") or None
    if split is not None and split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split[:8]!r}; use one of {list(SPLIT_NAMES)}")
    patient_id = cells.get("patientid") or None
    return LabelRow(
        line=line,
        key=key,
        label=label,
        side=side,
        hip_label=hip_label,
        patient_id=patient_id if kind != "PatientID" else key,
        split=split,
        site=cells.get("site") or None,
    )


def _check_rows(path: Path, rows: list[LabelRow]) -> list[str]:
    """Per key: one row for all hips, or one row per side; never both, never twice."""
    problems = []
    seen: dict[tuple[str, str | None], int] = {}
    for row in rows:
        first = seen.get((row.key, row.side))
        other = (
            seen.get((row.key, None))
            if row.side
            else next((seen[(row.key, s)] for s in SIDES if (row.key, s) in seen), None)
        )
        if first is not None:
            problems.append(f"{path}:{row.line}: the same key and side as line {first}")
        elif other is not None:
            problems.append(
                f"{path}:{row.line}: line {other} has the same key with "
                f"{'no side' if row.side else 'a side'}; give one row for all hips or one "
                "row per side"
            )
        else:
            seen[(row.key, row.side)] = row.line
    return problems


def read_labels(path: str | Path, label_key: str | None = None) -> LabelTable:
    """Read and check the labels CSV.

    Args:
        path: the CSV file (UTF-8, a header row).
        label_key: the key kind or column to join on; None picks the most specific key
            column present.

    Returns:
        The rows, indexed by key value.

    Raises:
        BadConfigError: the file is missing, or ``label_key`` names no column of it.
        BadManifestError: no key or label column, or bad rows (each named by ``file:line``).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise BadConfigError(
            f"labels={path}: no such file; give a CSV with a key column ({', '.join(KEY_COLUMNS)})"
            " and a label column (0/1)"
        )
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = {_normalise(name): name for name in (reader.fieldnames or []) if name}
        found = {
            kind: next(c for c in columns if c in header)
            for kind, columns in KEY_COLUMNS.items()
            if any(c in header for c in columns)
        }
        if label_key:
            kind = key_kind(label_key)
            if kind not in found:
                raise BadConfigError(
                    f"label_key={label_key}: {path} has no {kind} column (its key columns: "
                    f"{[header[c] for c in found.values()] or 'none'})"
                )
        elif found:
            kind = next(iter(found))
        else:
            raise BadManifestError(
                f"{path}: no key column; name one of PatientID, AccessionNumber, "
                "StudyInstanceUID or file"
            )
        if "label" not in header:
            raise BadManifestError(f"{path}: no label column (0/1)")
        rows, problems = [], []
        for raw in reader:
            cells = {
                _normalise(k): (v or "").strip()
                for k, v in raw.items()
                if k is not None and isinstance(v, str)
            }
            if not any(cells.values()):
                continue
            try:
                rows.append(_parse_row(reader.line_num, cells, found[kind], kind))
            except ValueError as error:
                problems.append(f"{path}:{reader.line_num}: {error}")
    problems += _check_rows(path, rows)
    if problems:
        extra = len(problems) - MAX_REPORTED
        more = f"\n... and {extra} more" if extra > 0 else ""
        raise BadManifestError(
            f"{len(problems)} problem(s) in labels {path}:\n"
            + "\n".join(problems[:MAX_REPORTED])
            + more
        )
    if not rows:
        raise BadManifestError(f"{path}: the labels CSV has no rows")
    return LabelTable(path=path, kind=kind, rows=rows)
