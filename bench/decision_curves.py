"""Decision curves: net benefit against the threshold probability (Vickers & Elkin 2006).

A strategy that treats (refers for arthroscopy, say) the patients it calls positive gains a
true positive's worth for each detached hip it finds and loses ``t / (1 - t)`` of one for
each intact hip it refers, where ``t`` is the threshold probability at which a clinician is
indifferent between referring and not. Per case, with ``p`` the prevalence::

    NB(t) = sensitivity(t) * p - (1 - specificity(t)) * (1 - p) * t / (1 - t)

(:func:`net_benefit`, the one statement of the formula). A model's sensitivity and
specificity at ``t`` are those of its decision ``probability >= t``
(:func:`labral.metrics.sensitivity`); "treat all" is sensitivity 1, specificity 0; "treat
none" is 0 everywhere. Writing NB from sensitivity and specificity (instead of counts over
the suite) lets the same curve be read at another prevalence than the suite's: the
``prevalence=[...]`` setting. A published test's operating point (sensitivity, specificity)
gives a curve of its own, with the same formula.

No decision-curve library is used: ``dcurves`` (Python) can be downloaded but needs pandas,
statsmodels and lifelines, none of them a labral dependency, and ``rmda``/``dcurves`` of R
are not installed here; the formula is one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from labral.metrics import sensitivity, specificity

#: The threshold probabilities of every curve: 0.01, 0.02, ..., 0.99.
THRESHOLDS = tuple(round(0.01 * k, 2) for k in range(1, 100))
#: The threshold probabilities of the tables (results.json, Markdown, report).
TABLE_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5)
#: Published operating points (domain.md section 1): name -> (sensitivity, specificity).
REFERENCE_TESTS = {
    "ultrasound (published readers)": (0.66, 0.82),
    "MR arthrography (Zhang 2022)": (0.89, 0.69),
}
TREAT_ALL, TREAT_NONE = "treat all", "treat none"
#: The levels of a decision curve: clips, and hips by the max rule (stats.HIP_RULES).
LEVELS = ("clip", "hip")


def net_benefit(
    sens: np.ndarray | float,
    spec: np.ndarray | float,
    prevalence: float,
    threshold: np.ndarray | float,
) -> np.ndarray:
    """Net benefit per case of a test with ``sens``/``spec`` at threshold probability ``threshold``.

    Args:
        sens, spec: float, scalar or (T,), the test's sensitivity and specificity (at each
            threshold). prevalence: the share of cases with the condition, in (0, 1).
        threshold: float, scalar or (T,), threshold probabilities in (0, 1).

    Returns:
        float64 (T,) (or 0-d) ``sens * p - (1 - spec) * (1 - p) * t / (1 - t)``.
    """
    t = np.asarray(threshold, dtype=np.float64)
    sens, spec = np.asarray(sens, dtype=np.float64), np.asarray(spec, dtype=np.float64)
    return sens * prevalence - (1 - spec) * (1 - prevalence) * t / (1 - t)


def operating_points(
    y_true: np.ndarray, probability: np.ndarray, thresholds: Sequence[float] = THRESHOLDS
) -> dict[str, Any]:
    """Sensitivity and specificity of ``probability >= t`` at each threshold.

    Args:
        y_true: int (N,) labels. probability: float (N,) calibrated probabilities.

    Returns:
        ``{"n", "n_positive", "prevalence", "sensitivity", "specificity"}``, the last two
        lists of len(thresholds) (NaN where a class is absent).
    """
    y = np.asarray(y_true)
    return {
        "n": int(y.size),
        "n_positive": int(y.sum()),
        "prevalence": float(y.mean()) if y.size else float("nan"),
        "sensitivity": [sensitivity(y, probability, t) for t in thresholds],
        "specificity": [specificity(y, probability, t) for t in thresholds],
    }


def model_block(
    clip: tuple[np.ndarray, np.ndarray], hip: tuple[np.ndarray, np.ndarray] | None
) -> dict[str, Any]:
    """A model's ``decision_curve`` block of results.json: its operating points per level.

    Args:
        clip: (int (N,) labels, float (N,) probabilities) of the clips.
        hip: (int (H,) hip truth, float (H,) hip probabilities by the max rule), or None
            where the suite carries no hip truth.
    """
    return {
        "thresholds": list(THRESHOLDS),
        "clip": operating_points(*clip),
        "hip": operating_points(*hip) if hip is not None else None,
    }


def curves(
    points: dict[str, Any], prevalence: float, thresholds: Sequence[float] = THRESHOLDS
) -> dict[str, np.ndarray]:
    """Treat all, treat none and the reference tests at ``prevalence``; the model's own curve
    from its operating ``points`` (:func:`operating_points`).

    Returns:
        strategy name -> float64 (T,) net benefit; the model's curve under ``"model"``.
    """
    t = np.asarray(thresholds, dtype=np.float64)
    out = {
        "model": net_benefit(points["sensitivity"], points["specificity"], prevalence, t),
        TREAT_ALL: net_benefit(1.0, 0.0, prevalence, t),
        TREAT_NONE: np.zeros_like(t),
    }
    for name, (sens, spec) in REFERENCE_TESTS.items():
        out[name] = net_benefit(sens, spec, prevalence, t)
    return out


def _prevalences(points: dict[str, Any], user: Sequence[float]) -> list[tuple[str, float]]:
    """``("suite", its prevalence)`` then ``("user", p)`` for each ``prevalence=[...]``."""
    return [("suite", points["prevalence"]), *(("user", float(p)) for p in user)]


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The top-level ``decision_curves`` block: net benefit at :data:`TABLE_THRESHOLDS`.

    Reads each model's ``decision_curve`` block and ``settings.prevalence``; one row per
    level, prevalence and strategy (every model, treat all, treat none, each reference test).

    Returns:
        ``{"thresholds", "reference_tests", "rows": [{"level", "prevalence",
        "prevalence_source", "strategy", "net_benefit": [...]}]}``.
    """
    names = [m["name"] for m in results["models"]]
    blocks = {n: results["results"][n].get("decision_curve") for n in names}
    user = results.get("settings", {}).get("prevalence", [])
    index = [THRESHOLDS.index(t) for t in TABLE_THRESHOLDS]
    rows = []
    for level in LEVELS:
        first = (blocks[names[0]] or {}).get(level)
        if not first or first["n_positive"] in (0, first["n"]):
            continue
        for source, prevalence in _prevalences(first, user):
            strategies = {}
            for name in names:
                strategies[name] = curves(blocks[name][level], prevalence)["model"]
            shared = curves(first, prevalence)
            strategies.update({k: v for k, v in shared.items() if k != "model"})
            rows += [
                {
                    "level": level,
                    "prevalence": prevalence,
                    "prevalence_source": source,
                    "strategy": strategy,
                    "net_benefit": [float(values[i]) for i in index],
                }
                for strategy, values in strategies.items()
            ]
    return {
        "thresholds": list(TABLE_THRESHOLDS),
        "reference_tests": {k: list(v) for k, v in REFERENCE_TESTS.items()},
        "rows": rows,
    }
