"""``labral bench predictions=<run>/oof_predictions.csv``: metrics of saved predictions.

No model is loaded and no clip decoded. Each CSV (``predictions=[a.csv,b.csv]`` for several)
is one "model", named by its ``name`` column or else its parent folder (the ``labral train
cv.folds=K`` run dir), and goes through a bundle run's metric code
(:func:`labral.bench.evaluate.evaluate_model`: patient-bootstrap CIs, hip level by the max
and mean rules), plus the per-setting metrics per ``fold`` and, for several CSVs of the same
clips (matched by ``path``), :func:`labral.bench.evaluate.compare_models`. results.json keeps
a bundle run's keys (``python -m labral.bench.markdown`` reads it). Decisions: each CSV's
``threshold`` column (the median where rows differ, and ``at_row_thresholds`` at each row's
own), 0.5 without one. Optional ``status``, ``reasons`` (:func:`~labral.bench.refusals.
read_verdict`), ``wrong_input``, ``wrong_family`` and ``held_out`` give the ``input_check``
block; without ``status`` every clip counts as scored, by no check.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labral.bench import bootstrap as metrics
from labral.bench import evaluate, refusals
from labral.bench.failure_cases import failure_block
from labral.bench.gate import GateFailedError, check_gate, validate_gate
from labral.bench.outputs import statistics_settings, versions, write_results
from labral.bench.pdf import bench_pdf, check_pdf_setting
from labral.bench.report.saved_predictions_report import (
    THRESHOLD_METRICS,
    failure_table,
    render,
)
from labral.bench.results import RESULTS_SCHEMA_VERSION, unique_names
from labral.bench.settings import BenchSettings
from labral.bench.subgroups import GROUPING_COLUMNS
from labral.bench.suite_scoring import ModelScores
from labral.errors import BadConfigError, BadManifestError
from labral.input_check.verdict import NOT_ASSESSABLE, SCORED

_ci = metrics.format_with_ci

REQUIRED = ("path", "patient", "label", "probability")
#: Columns copied into each clip's suite record when present (the subgroups' among them).
RECORD_COLUMNS = tuple(
    dict.fromkeys(
        ("fold", "clip_type", "shift", "wrong_input", "wrong_family", "held_out", *GROUPING_COLUMNS)
    )
)
OPTIONAL = ("hip", "hip_label", "threshold", "name", *RECORD_COLUMNS, "status", "reasons")
DEFAULT_THRESHOLD = 0.5


@dataclass
class SavedModel:
    """One predictions CSV: its rows as suite records, probabilities and row thresholds."""

    name: str
    path: Path
    sha256: str
    records: list[dict[str, Any]]
    probability: np.ndarray  # float64 (N,)
    thresholds: np.ndarray  # float64 (N,) each row's threshold
    assessable: np.ndarray  # bool (N,) the row's status is not not_assessable
    reasons: list[list[str]]  # N lists of reason codes
    checked: bool  # the CSV has a status column (an input check ran)

    @property
    def threshold(self) -> float:
        """The single decision threshold: the rows' common one, else their median."""
        return float(np.median(self.thresholds))


def _number(raw: str, column: str, where: str, unit: bool = True) -> float:
    """``raw`` as a float (in [0, 1] when ``unit``), or BadManifestError naming the line."""
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or (unit and not 0.0 <= value <= 1.0):
        need = "a number in [0, 1]" if unit else "a number"
        raise BadManifestError(f"{where}: {column}={raw!r} is not {need}; fix or drop that row")
    return value


def _binary(raw: str, column: str, where: str) -> int:
    """``raw`` as 0 or 1, or BadManifestError naming the line."""
    value = _number(raw, column, where, unit=False)
    if value not in (0.0, 1.0):
        raise BadManifestError(f"{where}: {column}={raw!r} must be 0 or 1")
    return int(value)


def load_predictions(path: Path) -> SavedModel:
    """Read and check one predictions CSV (line numbers count the header as line 1).

    Raises:
        BadConfigError: no such file. BadManifestError: missing columns (all listed), an empty
            file, a bad label/probability/threshold (naming the line), one class only.
    """
    if not path.is_file():
        raise BadConfigError(
            f"predictions={path}: no such file; give the oof_predictions.csv that "
            "`labral train cv.folds=K` wrote in its run dir (or a CSV with its columns)"
        )
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise BadManifestError(
                f"{path}: missing column(s) {', '.join(missing)}; a predictions CSV needs "
                f"{', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)})"
            )
        rows = list(reader)
    records, probability, thresholds, names, verdicts = [], [], [], set(), []
    for line, row in enumerate(rows, start=2):
        where = f"{path}, line {line}"
        for column in ("path", "patient"):
            if not (row.get(column) or "").strip():
                raise BadManifestError(f"{where}: empty {column}")
        record: dict[str, Any] = {c: row[c] for c in ("path", "patient")}
        record["label"] = _binary(row["label"], "label", where)
        record["hip"] = row.get("hip") or None
        hip_label = row.get("hip_label") or ""
        record["hip_label"] = _binary(hip_label, "hip_label", where) if hip_label else None
        record.update({c: row[c] for c in RECORD_COLUMNS if row.get(c)})
        verdicts.append(refusals.read_verdict(row, where))
        records.append(record)
        probability.append(_number(row["probability"], "probability", where))
        raw = row.get("threshold") or ""
        thresholds.append(_number(raw, "threshold", where) if raw else DEFAULT_THRESHOLD)
        names.add(row.get("name") or "")
    if not records:
        raise BadManifestError(f"{path}: no rows under the header")
    labels = {r["label"] for r in records}
    if len(labels) < 2:
        raise BadManifestError(
            f"{path}: every one of the {len(records)} clips has label {labels.pop()}; AUROC and "
            "the other metrics need clips of both classes (predictions of a whole cohort)"
        )
    if len(names) > 1:
        raise BadManifestError(
            f"{path}: name column holds {sorted(names)}; give one CSV per model (one name each)"
        )
    return SavedModel(
        name=names.pop() or path.resolve().parent.name,
        path=path,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        records=records,
        probability=np.array(probability, dtype=np.float64),
        thresholds=np.array(thresholds, dtype=np.float64),
        assessable=np.array([ok for ok, _ in verdicts], dtype=bool),
        reasons=[reasons for _, reasons in verdicts],
        checked="status" in header,
    )


def _index(model: SavedModel) -> dict[str, int]:
    """Clip path -> row; BadConfigError on a path given twice (rows are matched by path)."""
    paths = [r["path"] for r in model.records]
    twice = [p for p, count in Counter(paths).items() if count > 1]
    if twice:
        raise BadConfigError(f"{model.path}: clip {twice[0]!r} appears twice; one row per clip")
    return {p: i for i, p in enumerate(paths)}


def align(base: SavedModel, other: SavedModel) -> SavedModel:
    """``other`` with its rows in ``base``'s order; BadConfigError naming the first clip
    that one CSV lacks or on whose label, patient or hip the two disagree."""
    mine, theirs = _index(base), _index(other)
    lacking = [(p, other.path) for p in mine if p not in theirs]
    lacking += [(p, base.path) for p in theirs if p not in mine]
    if lacking:
        clip, where = lacking[0]
        raise BadConfigError(
            f"predictions: {where} has no row for clip {clip!r}; a comparison needs the same "
            f"clips in every CSV ({base.path}: {len(mine)}, {other.path}: {len(theirs)} clips)"
        )
    order = np.array([theirs[r["path"]] for r in base.records])
    for record, j in zip(base.records, order, strict=True):
        for key in ("label", "patient", "hip", "hip_label"):
            if record.get(key) != other.records[j].get(key):
                raise BadConfigError(
                    f"predictions: clip {record['path']!r} has {key} {record.get(key)!r} in "
                    f"{base.path} but {other.records[j].get(key)!r} in {other.path}"
                )
    other.records = base.records
    other.probability, other.thresholds = other.probability[order], other.thresholds[order]
    other.assessable, other.reasons = other.assessable[order], [other.reasons[j] for j in order]
    return other


def _scores(model: SavedModel) -> ModelScores:
    """Scores as a bundle pass gives them: no logits (NaN), no relevance (empty), the CSV's
    verdicts (no check scores: a CSV holds none)."""
    p, n = model.probability, model.probability.size
    return ModelScores(
        np.full(n, np.nan),
        p,
        p >= model.threshold,
        [np.zeros(0)] * n,
        [None] * n,
        assessable=model.assessable,
        reasons=model.reasons,
        checked=np.full(n, model.checked),
    )


def _fold_order(fold: str) -> tuple[bool, int, str]:
    """Numbered folds first, in numeric order."""
    return (not fold.isdigit(), int(fold) if fold.isdigit() else 0, fold)


def per_fold(
    model: SavedModel, plan: metrics.ClusterBootstrap, ece_bins: int, level: float
) -> dict[str, Any]:
    """Fold -> ``{"n", "n_positive", "threshold", metric blocks, "hip_level"}`` at the fold's
    threshold; {} without a ``fold`` on every row."""
    folds = np.array([str(r.get("fold", "")) for r in model.records], dtype=object)
    if (folds == "").any():
        return {}
    y, p = evaluate.suite_arrays(model.records)["y"], model.probability
    functions = {m: metrics.metric_functions(ece_bins)[m] for m in evaluate.PER_SETTING_METRICS}
    out = {}
    for fold in sorted(set(folds), key=_fold_order):
        mask = folds == fold
        t = float(np.median(model.thresholds[mask]))
        out[fold] = {
            "n": int(mask.sum()),
            "n_positive": int(y[mask].sum()),
            "threshold": t,
            **metrics.metrics_with_ci(y, p, t, plan, functions, mask, level),
            "hip_level": evaluate.hip_level(model.records, p, t, plan, level, mask),
        }
    return out


def _paths(settings: BenchSettings) -> list[Path]:
    """The CSVs to read; BadConfigError with bundles as well, or an empty entry."""
    if settings.bundle:
        raise BadConfigError("give bundle=... (score models) or predictions=... (saved), not both")
    if any(value == "" for value in settings.predictions):
        raise BadConfigError("predictions: give a CSV (predictions=path) or a list ([a,b])")
    return [Path(value) for value in settings.predictions]


def evaluate_saved(
    settings: BenchSettings,
    models: list[SavedModel],
    names: list[str],
    plan: metrics.ClusterBootstrap,
) -> dict[str, Any]:
    """Model name -> its metric blocks, per fold, and at each row's threshold where they differ.

    Args:
        models: the CSVs, every one aligned to the first's N rows.
        plan: the patient bootstrap over those N rows.
    """
    records, level, bins = models[0].records, settings.bootstrap.level, settings.ece_bins
    y = evaluate.suite_arrays(records)["y"]
    per_model = {}
    for name, model in zip(names, models, strict=True):
        block = evaluate.evaluate_model(
            records,
            _scores(model),
            model.threshold,
            plan,
            ece_bins=bins,
            tolerance=settings.localisation_tolerance,
            subgroup_min_n=settings.subgroup_min_n,
            level=level,
        )
        block["localisation"]["note"] = "saved predictions carry no relevance"
        block["per_fold"] = per_fold(model, plan, bins, level)
        if np.unique(model.thresholds).size > 1:
            decided = (model.probability >= model.thresholds).astype(np.float64)
            functions = {k: metrics.metric_functions()[k] for k in THRESHOLD_METRICS}
            own = metrics.metrics_with_ci(y, decided, 0.5, plan, functions, None, level)
            block["at_row_thresholds"] = own
        per_model[name] = block
    return per_model


def saved_results(
    settings: BenchSettings,
    paths: list[Path],
    models: list[SavedModel],
    names: list[str],
) -> dict[str, Any]:
    """The whole ``results.json`` of a saved predictions run (without its ``gate`` block)."""
    records, boot = models[0].records, settings.bootstrap
    plan = boot.plan(records)
    per_model = evaluate_saved(settings, models, names, plan)
    identity = [[r[k] for k in ("path", "patient", "label", "hip", "hip_label")] for r in records]
    scores = [_scores(m) for m in models]
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "source": "saved_predictions",
        "suite": {
            "name": f"saved predictions {paths[0]}",
            "content_hash": hashlib.sha256(json.dumps(identity).encode()).hexdigest(),
            "manifest": str(paths[0]),
            "n_clips": len(records),
            "n_patients": int(np.unique(plan.patients).size),
            "definition": None,
        },
        "models": [
            dict(name=n, path=str(m.path), sha256=m.sha256, threshold=m.threshold, temperature=None)
            | {"thresholds": sorted(set(m.thresholds.tolist()))}
            for n, m in zip(names, models, strict=True)
        ],
        "settings": {
            **statistics_settings(settings),
            "threshold_rule": "decisions at each CSV's threshold column (its median where rows "
            "differ; at_row_thresholds uses each row's own), 0.5 without one",
        },
        "versions": versions(),
        "results": per_model,
        "replicates": {},
        "robustness": {},
        "comparisons": evaluate.compare_models(records, names, scores, plan, boot.level),
        "created_unix": time.time(),
    }


def _failure_rows(name: str, model: SavedModel) -> list[dict[str, str]]:
    """The CSV's clips as predictions.csv rows of model ``name`` (what
    :func:`labral.bench.failure_cases.failures` reads): decisions at the single threshold."""
    return [
        {
            "label": str(record["label"]),
            "patient": str(record["patient"]),
            **{key: str(record.get(key, "")) for key in ("fold", "clip_type", "shift")},
            f"p_{name}": f"{p:.9f}",
            f"decision_{name}": str(int(p >= model.threshold)),
            f"status_{name}": SCORED if ok else NOT_ASSESSABLE,
        }
        for record, p, ok in zip(model.records, model.probability, model.assessable, strict=True)
    ]


def _print_summary(results: dict[str, Any], out: Path) -> None:
    """Each model's AUROC and hip-level AUROC, each paired difference, and the output files."""
    for name, block in results["results"].items():
        hip = ((block["hip_level"] or {}).get("rules") or {}).get("max") or {}
        auroc, hip_auroc = block["overall"]["auroc"], hip.get("auroc")
        print(f"{name}: AUROC {_ci(auroc)}, hip-level AUROC (max rule) {_ci(hip_auroc)}")
    for c in results["comparisons"]:
        print(f"AUROC {c['a']} - {c['b']}: {_ci(c)}")
    print(f"results: {out / 'results.json'}\nreport:  {out / 'report.html'}")


def run_saved_predictions(settings: BenchSettings, out: Path) -> dict[str, Any]:
    """Evaluate the CSV(s) in ``settings.predictions``; writes results.json and report.html.

    Raises:
        BadConfigError: bad settings, a missing file, CSVs of different clips.
        BadManifestError: a CSV that cannot be read as predictions (see :func:`load_predictions`).
        GateFailedError: a ``fail_under`` threshold is missed (after the outputs are written).
    """
    paths = _paths(settings)
    gate = validate_gate(settings.fail_under)
    check_pdf_setting(settings.pdf)
    models = [load_predictions(p) for p in paths]
    models = [models[0], *(align(models[0], m) for m in models[1:])]
    names = unique_names(models)
    results = saved_results(settings, paths, models, names)
    results["gate"] = check_gate(gate, {n: results["results"][n]["overall"] for n in names})
    out.mkdir(parents=True, exist_ok=True)
    rows = _failure_rows(names[0], models[0])
    if settings.failure_cases:
        results["failure_cases"] = failure_block(results, rows, settings.failure_cases)
    write_results(out, results)
    y = evaluate.suite_arrays(models[0].records)["y"]
    probabilities = {n: m.probability for n, m in zip(names, models, strict=True)}
    failures = failure_table(results, rows, settings.failure_cases)
    (out / "report.html").write_text(render(results, y, probabilities, failures))
    written = bench_pdf(out / "report.html", settings.pdf)
    _print_summary(results, out)
    if written is not None:
        print(f"pdf:     {written}")
    if results["gate"]["failed"]:
        raise GateFailedError(results["gate"]["failed"])
    return results
