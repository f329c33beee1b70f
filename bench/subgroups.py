"""Subgroups: AUROC and ECE per value of each grouping column the manifest carries, with
patient-bootstrap CIs, and a heterogeneity test across each column's groups.

Columns (:data:`GROUPING_COLUMNS`) are read from the rows: a column no row carries is left
out, a row without a value falls in the group ``"missing"``. A numeric column with more than
:data:`MAX_LEVELS` distinct values is binned into tertiles (bounds from its quantiles 1/3 and
2/3; a clip on a bound goes to the lower bin); other columns group by value. A group with
fewer than :data:`MIN_N` clips or without both classes is "not estimable" (no metrics).
The metric blocks come from :func:`labral.bench.bootstrap.metrics_with_ci` on the group's
rows with the run's resampling plan (the same intervals, and the same patient minimum, as
every other block of results.json).

Heterogeneity: Cochran's Q over the estimable groups' AUROCs, each weighted by one over its
bootstrap variance (the SD of its AUROC over the plan's replicates restricted to the group),
``Q = sum w_i (a_i - a_w)^2`` with ``a_w`` the weighted mean, p from chi-square with k - 1
degrees of freedom, and ``I^2 = max(0, (Q - df) / Q)``. Q assumes independent groups: groups
that share patients (both sides of one patient) make it anti-conservative.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import chi2

from labral.bench import bootstrap as M
from labral.metrics import auroc

#: Manifest columns a subgroup can be formed from (whichever the rows carry).
GROUPING_COLUMNS = (
    "site",
    "device",
    "probe_frequency",
    "center_freq_mhz",
    "depth",
    "side",
    "fps",
    "frame_rate",
    "difficulty",
    "shift",
)
#: Clips a group needs (and both classes) to be estimable.
MIN_N = 20
#: A numeric column with more distinct values than this is binned into tertiles.
MAX_LEVELS = 3
MISSING = "missing"
SUBGROUP_METRICS = ("auroc", "ece")


def _number(value: Any) -> float | None:
    """``value`` as a float, or None (text, bool, missing)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def group_labels(values: Sequence[Any]) -> tuple[np.ndarray, str]:
    """The group of every row and how groups were formed (``"value"`` or ``"tertile"``).

    Args:
        values: (N,) the column's cells (None or "" = missing).

    Returns:
        object (N,) group names and the grouping rule.
    """
    present = [v for v in values if v not in (None, "")]
    numbers = [_number(v) for v in present]
    numeric = bool(present) and all(n is not None for n in numbers)
    if numeric and len(set(numbers)) > MAX_LEVELS:
        low, high = np.quantile(np.asarray(numbers, dtype=np.float64), [1 / 3, 2 / 3])
        names = (f"low (<= {low:g})", f"middle ({low:g}, {high:g}]", f"high (> {high:g})")

        def tertile(v: Any) -> str:
            if v in (None, ""):
                return MISSING
            x = float(v)
            return names[0] if x <= low else names[1] if x <= high else names[2]

        return np.array([tertile(v) for v in values], dtype=object), "tertile"
    return np.array([MISSING if v in (None, "") else str(v) for v in values], dtype=object), "value"


def _auroc_se(
    y: np.ndarray, p: np.ndarray, bootstrap: M.ClusterBootstrap, mask: np.ndarray
) -> float:
    """SD of the group's AUROC over the plan's replicates restricted to ``mask``."""
    samples = np.array(
        [auroc(y[i], p[i]) if i.size else np.nan for i in bootstrap.replicates(mask)]
    )
    finite = samples[np.isfinite(samples)]
    return float(np.std(finite, ddof=1)) if finite.size > 1 else float("nan")


def cochran_q(values: Sequence[float], ses: Sequence[float]) -> dict[str, Any]:
    """Cochran's Q of estimates with standard errors.

    Args:
        values, ses: float (k,) the groups' estimates and standard errors.

    Returns:
        ``{"q", "df", "p_value", "i2", "k"}``; None values (with ``note``) for k < 2 or a
        non-positive SE.
    """
    a, se = np.asarray(values, dtype=np.float64), np.asarray(ses, dtype=np.float64)
    k = int(a.size)
    if k < 2 or not np.all(np.isfinite(se)) or np.any(se <= 0):
        note = "fewer than 2 estimable groups" if k < 2 else "a group's AUROC has no spread"
        return {"q": None, "df": max(k - 1, 0), "p_value": None, "i2": None, "k": k, "note": note}
    w = 1 / se**2
    mean = float(np.sum(w * a) / np.sum(w))
    q = float(np.sum(w * (a - mean) ** 2))
    df = k - 1
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    return {"q": q, "df": df, "p_value": float(chi2.sf(q, df)), "i2": i2, "k": k}


def subgroups_block(
    records: Sequence[dict[str, Any]],
    y: np.ndarray,
    probability: np.ndarray,
    threshold: float,
    bootstrap: M.ClusterBootstrap,
    *,
    ece_bins: int,
    level: float = 0.95,
    min_n: int = MIN_N,
) -> dict[str, Any]:
    """A model's ``subgroups`` block of results.json.

    Args:
        records: the suite's rows (N). y: int (N,) labels. probability: float (N,) the
            model's calibrated probabilities. bootstrap: the run's plan over the N rows.

    Returns:
        ``{"min_n", "columns": {column: {"rule", "groups": {group: {"n", "n_positive",
        "n_patients", "estimable", ["note"], ["auroc", "ece", "auroc_se"]}},
        "heterogeneity": {...}}}}``; columns with a single group are left out.
    """
    functions = {k: M.metric_functions(ece_bins)[k] for k in SUBGROUP_METRICS}
    columns: dict[str, Any] = {}
    for column in GROUPING_COLUMNS:
        if not any(r.get(column) not in (None, "") for r in records):
            continue
        labels, rule = group_labels([r.get(column) for r in records])
        names = sorted(set(labels))
        if len(names) < 2:
            continue
        groups, values, ses = {}, [], []
        for name in names:
            mask = labels == name
            n, n_pos = int(mask.sum()), int(y[mask].sum())
            entry: dict[str, Any] = {
                "n": n,
                "n_positive": n_pos,
                "n_patients": int(np.unique(bootstrap.patients[mask]).size),
            }
            if n < min_n or n_pos in (0, n):
                entry["estimable"] = False
                entry["note"] = f"not estimable: {n} clips, {n_pos} positive (needs >= {min_n} "
                entry["note"] += "clips and both classes)"
            else:
                block = M.metrics_with_ci(
                    y, probability, threshold, bootstrap, functions, mask, level
                )
                se = _auroc_se(y, probability, bootstrap, mask)
                entry.update(estimable=True, **block, auroc_se=se)
                values.append(block["auroc"]["value"])
                ses.append(se)
            groups[name] = entry
        heterogeneity = cochran_q(values, ses)
        columns[column] = {"rule": rule, "groups": groups, "heterogeneity": heterogeneity}
    return {"min_n": min_n, "columns": columns}
