"""``labral manifest``: a training manifest from a folder of the user's own cine files.

Every file under the folder is sniffed by content (the reader's :func:`sniff_format`), never
by its name. DICOM files are checked from the header alone (``stop_before_pixels``) with the
reader's own checks, in the reader's order: parsable DICOM, ultrasound, a cine (more than
one frame), within :class:`ReadLimits`, a decoder installed for the transfer syntax. Video
exports and ``.npy`` arrays carry no header to check, so they are read in full with
:func:`read_cine`, as is every file with ``decode=true`` (which also catches damaged pixel
data, at the cost of decoding everything).

Kept clips are joined to the labels CSV (:mod:`labral.datasets.manifests.folder_labels`) and written
as ``manifest.jsonl`` (the columns of :mod:`labral.datasets.manifests.manifest`). Beside it:
``skipped.csv`` (``path,code,reason``: one row per file left out), ``unmatched_labels.csv``
(``line,reason,detail``: label rows that no kept clip joined) and ``summary.json``.

Skip codes: the reader's error codes (``not_dicom``, ``unsupported_media``,
``not_ultrasound``, ``not_a_cine``, ``unsupported_transfer_syntax``, ``corrupt_pixel_data``,
``over_limit``), ``unreadable`` (the file cannot be opened or parsed at all), and the join's
``duplicate`` (the same SOP Instance UID as an earlier file), ``no_label``, ``no_side``,
``side_conflict``, ``no_patient_id`` and ``patient_conflict``.

Identity: the manifest's ``patient``, ``hip`` and ``clip`` are keyed hashes
(:mod:`labral.datasets.manifests.pseudonyms`). No header value that names or identifies a person
(PatientName, PatientID, BirthDate, accession numbers, UIDs) reaches any output, message or
log; pydicom's own warnings are silenced during the scan because they can quote values.
Paths are written relative to the scanned folder (in the manifest: relative to the
manifest, as :func:`load_manifest` reads them), so folder and file names are the only text
that comes from the user's archive: naming them without identities is the user's part.
Hidden files and folders (names starting with ``.``) are not scanned, only counted.
The listing and per-file checks live in :mod:`labral.datasets.manifests.folder_scan`.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from labral.datasets.io.limits import ReadLimits
from labral.datasets.manifests.folder_labels import LabelRow, LabelTable, read_labels
from labral.datasets.manifests.folder_scan import ScannedFile, _quiet_pydicom, list_files, scan_file
from labral.datasets.manifests.manifest import load_manifest
from labral.datasets.manifests.pseudonyms import Pseudonymizer
from labral.errors import BadConfigError, BadManifestError

SUMMARY_VERSION = 1


def _candidate_rows(found: ScannedFile, table: LabelTable, names: Counter) -> list[LabelRow]:
    if table.kind == "file":
        rows = table.by_key.get(found.rel, [])
        name = found.rel.rsplit("/", 1)[-1]
        if not rows and names[name] == 1:
            rows = table.by_key.get(name, [])
        return rows
    value = found.keys.get(table.kind)
    return table.by_key.get(value, []) if value else []


def _pick_row(found: ScannedFile, rows: list[LabelRow], kind: str) -> LabelRow | None:
    """The label row of a readable clip, or None after recording why there is none."""
    if not rows:
        what = "names this file" if kind == "file" else f"has this file's {kind}"
        found.skip("no_label", f"no row of the labels CSV {what}")
        return None
    if len(rows) == 1 and (rows[0].side is None or (kind == "file" and found.side is None)):
        return rows[0]
    if found.side is None:
        found.skip(
            "no_side",
            f"the labels give one row per side for this {kind}, but the header states no "
            "laterality; add a row keyed by file (with its side) for it",
        )
        return None
    for row in rows:
        if row.side == found.side:
            return row
    if kind == "file":
        found.skip(
            "side_conflict",
            f"the labels row says side {rows[0].side}, the header says {found.side}",
        )
    else:
        found.skip(
            "no_label", f"the labels have rows for this {kind} but none for side {found.side}"
        )
    return None


def _manifest_row(
    found: ScannedFile, row: LabelRow, names: Pseudonymizer, out_dir: Path
) -> dict[str, Any] | None:
    header_id = found.keys.get("PatientID")
    if header_id and row.patient_id and header_id != row.patient_id:
        found.skip("patient_conflict", "the labels row gives another PatientID than the header")
        return None
    patient_id = header_id or row.patient_id
    if not patient_id:
        found.skip(
            "no_patient_id",
            "the file states no PatientID; add a PatientID column to the labels CSV so the "
            "clips of one patient stay in one split",
        )
        return None
    side = found.side or row.side
    patient = names.patient(patient_id)
    record: dict[str, Any] = {
        "path": Path(os.path.relpath(found.path.resolve(), out_dir)).as_posix(),
        "label": row.label,
        "patient": patient,
    }
    if side:
        record["hip"] = names.hip(patient, side)
        record["side"] = side
    if row.hip_label is not None:
        record["hip_label"] = row.hip_label
    record["clip"] = names.clip(found.instance or found.rel)
    for key, value in (("device", found.device), ("split", row.split), ("site", row.site)):
        if value:
            record[key] = value
    row.used_by += 1
    return record


def _check_hip_labels(records: list[tuple[dict[str, Any], LabelRow]], labels: Path) -> None:
    seen: dict[str, tuple[int, int]] = {}
    problems = []
    for record, row in records:
        if "hip" not in record or "hip_label" not in record:
            continue
        first = seen.setdefault(record["hip"], (record["hip_label"], row.line))
        if first[0] != record["hip_label"]:
            problems.append(
                f"{labels}:{row.line}: hip_label {record['hip_label']} for a hip that line "
                f"{first[1]} gives hip_label {first[0]}"
            )
    if problems:
        raise BadManifestError("labels disagree on a hip's diagnosis:\n" + "\n".join(problems))


def _unmatched(table: LabelTable, scanned: list[ScannedFile], names: Counter) -> list[dict]:
    near: Counter = Counter()
    for found in scanned:
        for row in _candidate_rows(found, table, names):
            near[row.line] += 1
    rows = []
    for row in table.rows:
        if row.used_by:
            continue
        if table.kind == "file" and "/" not in row.key and names[row.key] > 1:
            reason = "ambiguous"
            detail = f"the file name matches {names[row.key]} files; give the path relative to dir"
        elif near[row.line]:
            reason, detail = "only_skipped", f"matches {near[row.line]} file(s), all skipped"
        else:
            what = "name" if table.kind == "file" else table.kind
            reason, detail = "no_file", f"no scanned file has this {what}"
        rows.append({"line": row.line, "reason": reason, "detail": detail})
    return rows


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def build_manifest(
    root: str | Path,
    labels: str | Path,
    out_dir: str | Path,
    names: Pseudonymizer,
    *,
    label_key: str | None = None,
    decode: bool = False,
    limits: ReadLimits | None = None,
    progress: bool = True,
    exclude: tuple[str | Path, ...] = (),
) -> dict[str, Any]:
    """Scan ``root``, join the labels, and write the manifest and its reports into ``out_dir``.

    Args:
        root: the folder tree to scan.
        labels: the labels CSV (:func:`read_labels`).
        out_dir: where ``manifest.jsonl``, ``skipped.csv``, ``unmatched_labels.csv`` and
            ``summary.json`` go (created; never scanned).
        names: the keyed pseudonymizer.
        label_key: the key kind to join on (None: the labels CSV's most specific key column).
        decode: read every clip in full too (slower; catches damaged pixel data).
        limits: the reader's limits (default :class:`ReadLimits`).
        progress: show a tqdm bar.
        exclude: further files never scanned (the key file, say).

    Returns:
        The summary (also written as ``summary.json``): counts only, no identities.

    Raises:
        BadConfigError: ``root`` is not a folder, or a bad labels setting.
        BadManifestError: a bad labels CSV, or no clip was kept (the reports are written).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise BadConfigError(f"dir={root}: not a folder; give the folder of DICOM/video exports")
    table = read_labels(labels, label_key)
    out_dir = Path(out_dir).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    skip = {out_dir, table.path.resolve(), *(Path(p).expanduser().resolve() for p in exclude)}
    files, hidden = list_files(root, skip)
    limits = limits or ReadLimits()
    scanned = []
    with _quiet_pydicom():
        for path, rel in tqdm(files, desc="labral manifest", unit="file", disable=not progress):
            scanned.append(scan_file(path, rel, limits=limits, decode=decode))
    base_names = Counter(found.rel.rsplit("/", 1)[-1] for found in scanned)
    records = _join_labels(scanned, table, base_names, names, out_dir)
    _check_hip_labels(records, table.path)
    unmatched = _unmatched(table, scanned, base_names)
    skipped = [{"path": f.rel, "code": f.code, "reason": f.reason} for f in scanned if f.code]
    manifest = out_dir / "manifest.jsonl"
    if records:
        manifest.write_text("".join(json.dumps(r) + "\n" for r, _ in records), encoding="utf-8")
    _write_csv(out_dir / "skipped.csv", ["path", "code", "reason"], skipped)
    _write_csv(out_dir / "unmatched_labels.csv", ["line", "reason", "detail"], unmatched)
    scan = {
        "files_scanned": len(scanned),
        "hidden_not_scanned": hidden,
        "check": "decode" if decode else "header",
    }
    kept = [r for r, _ in records]
    summary = _summary(scan, kept, skipped, unmatched, table, names)
    summary["files"]["manifest"] = manifest.name if records else None
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if not records:
        raise BadManifestError(
            f"no clip was kept out of {len(scanned)} file(s); see {out_dir / 'skipped.csv'} "
            f"and {out_dir / 'unmatched_labels.csv'} for why"
        )
    load_manifest(manifest)  # what train reads must load: fail here, not there
    return summary


def _join_labels(
    scanned: list[ScannedFile],
    table: LabelTable,
    base_names: Counter,
    names: Pseudonymizer,
    out_dir: Path,
) -> list[tuple[dict[str, Any], LabelRow]]:
    """The manifest rows of the kept, labelled clips, each with the label row it joined.

    A clip that cannot join (a duplicate instance, no or conflicting label row, no patient)
    is skipped on its :class:`ScannedFile` with the reason.
    """
    first_of: dict[str, str] = {}
    records: list[tuple[dict[str, Any], LabelRow]] = []
    for found in scanned:
        if not found.kept:
            continue
        if found.instance and found.instance in first_of:
            found.skip("duplicate", f"the same SOP Instance UID as {first_of[found.instance]}")
            continue
        if found.instance:
            first_of[found.instance] = found.rel
        row = _pick_row(found, _candidate_rows(found, table, base_names), table.kind)
        record = _manifest_row(found, row, names, out_dir) if row else None
        if record is not None:
            records.append((record, row))
    return records


def _summary(
    scan: dict[str, Any],
    kept: list[dict[str, Any]],
    skipped: list[dict[str, str]],
    unmatched: list[dict[str, Any]],
    table: LabelTable,
    names: Pseudonymizer,
) -> dict[str, Any]:
    """summary.json: the scan's counts (``scan``), then those of the kept clips, the skipped
    files and the unmatched label rows; ``files.manifest`` is filled in by the caller."""
    return {
        "schema_version": SUMMARY_VERSION,
        **scan,
        "kept": len(kept),
        "patients": len({r["patient"] for r in kept}),
        "hips": len({r["hip"] for r in kept if "hip" in r}),
        "labels": {str(k): v for k, v in sorted(Counter(r["label"] for r in kept).items())},
        "sides": dict(sorted(Counter(r.get("side", "unknown") for r in kept).items())),
        "skipped": len(skipped),
        "skipped_by_code": dict(sorted(Counter(s["code"] for s in skipped).items())),
        "files_without_label": sum(s["code"] == "no_label" for s in skipped),
        "label_key": table.kind,
        "label_rows": len(table.rows),
        "label_rows_unmatched": len(unmatched),
        "label_rows_unmatched_by_reason": dict(
            sorted(Counter(u["reason"] for u in unmatched).items())
        ),
        "pseudonym_key_id": names.key_id,
        "files": {
            "manifest": None,
            "skipped": "skipped.csv",
            "unmatched_labels": "unmatched_labels.csv",
        },
    }


def format_summary(summary: dict[str, Any], out_dir: Path) -> str:
    """The lines ``labral manifest`` prints (counts only, like ``summary.json``)."""
    by_code = ", ".join(f"{k} {v}" for k, v in summary["skipped_by_code"].items()) or "none"
    by_reason = ", ".join(f"{k} {v}" for k, v in summary["label_rows_unmatched_by_reason"].items())
    labels = ", ".join(f"label {k}: {v}" for k, v in summary["labels"].items())
    lines = [
        f"labral manifest: {summary['files_scanned']} file(s) scanned ({summary['check']} "
        f"check), {summary['kept']} clip(s) kept from {summary['patients']} patient(s) and "
        f"{summary['hips']} hip(s) ({labels})",
        f"  skipped {summary['skipped']}: {by_code}",
        f"  label rows: {summary['label_rows']} joined on {summary['label_key']}, "
        f"{summary['label_rows_unmatched']} unmatched" + (f" ({by_reason})" if by_reason else ""),
        f"  pseudonym key id {summary['pseudonym_key_id']}",
        f"  wrote {out_dir}: "
        + ", ".join(f for f in summary["files"].values() if f)
        + ", summary.json",
    ]
    if summary["files"]["manifest"]:
        lines.append(f"next: labral train data=manifest data.manifest={out_dir / 'manifest.jsonl'}")
    return "\n".join(lines)
