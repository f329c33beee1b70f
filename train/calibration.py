"""Temperature scaling and operating-threshold rules, fitted on validation.

The metrics of a split (``binary_metrics``) live in :mod:`labral.metrics`, shared with bench.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.special import expit, logit

from labral.errors import BadConfigError
from labral.metrics import sensitivity, specificity


def fit_temperature(
    logits: np.ndarray,
    labels: np.ndarray,
    max_iter: int = 100,
    min_temperature: float = 0.05,
    max_temperature: float = 100.0,
) -> float:
    """Fit one temperature T > 0 minimising the NLL of ``sigmoid(logits / T)``.

    Args:
        logits: float array (N,), uncalibrated log-odds.
        labels: int array (N,) of 0/1.
        max_iter: LBFGS iterations.
        min_temperature: lower bound of the result.
        max_temperature: upper bound (logits that carry no information would otherwise
            drive T to infinity).

    Returns:
        The temperature in [min_temperature, max_temperature] (1.0 when fitting fails to
        improve on it).
    """
    x = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    y = torch.as_tensor(np.asarray(labels, dtype=np.float64))
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(x / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = float(log_t.detach().exp().clamp(min_temperature, max_temperature))
    with torch.no_grad():
        before = float(loss_fn(x, y))
        after = float(loss_fn(x / temperature, y))
    if not math.isfinite(temperature) or after > before:
        return 1.0
    return temperature


def choose_threshold(probs: np.ndarray, labels: np.ndarray, rule: dict[str, Any]) -> float:
    """Pick the operating threshold on validation probabilities (decision: prob >= threshold).

    Rules:
        ``{"name": "sensitivity", "target": 0.9}``: the highest specificity that keeps
        sensitivity >= target; among the thresholds giving it, the log-odds midpoint
        between the largest such threshold and the negative score just below it.
        ``{"name": "youden"}``: maximise sensitivity + specificity - 1.
        ``{"name": "fixed", "value": 0.5}``: a given threshold.

    Args:
        probs: float array (N,) calibrated probabilities.
        labels: int array (N,) of 0/1.
        rule: one of the dicts above.

    Returns:
        The threshold, a float in [0, 1].

    Raises:
        BadConfigError: unknown rule name or a target outside (0, 1].
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    name = rule.get("name")
    if name == "fixed":
        return float(rule["value"])
    if name == "sensitivity":
        target = float(rule.get("target", 0.9))
        if not 0.0 < target <= 1.0:
            raise BadConfigError(f"calibration.threshold_rule.target={target} must be in (0, 1]")
        positives = np.sort(probs[labels == 1])[::-1]
        if positives.size == 0:
            return 0.5
        needed = max(1, math.ceil(target * positives.size - 1e-9))
        highest = float(positives[needed - 1])  # the largest threshold meeting the target
        # Every threshold in (largest negative below `highest`, highest] has the same
        # specificity and at least the target sensitivity: take the middle of that interval
        # (in log-odds) rather than its edge, so the rule does not sit on a positive's score.
        below = probs[(labels == 0) & (probs < highest)]
        lowest = float(below.max()) if below.size else float(positives[-1])
        if lowest >= highest:
            return highest
        eps = 1e-7
        lo_logit, hi_logit = logit(np.clip([lowest, highest], eps, 1 - eps))
        middle = float(expit((lo_logit + hi_logit) / 2))
        return float(min(max(middle, np.nextafter(lowest, 1.0)), highest))
    if name == "youden":
        candidates = np.unique(probs)
        best, best_value = 0.5, -np.inf
        for threshold in candidates:
            # an absent class counts as 0 (NaN from the shared metrics would never win)
            sens = np.nan_to_num(sensitivity(labels, probs, threshold))
            spec = np.nan_to_num(specificity(labels, probs, threshold))
            if sens + spec - 1 > best_value:
                best, best_value = float(threshold), sens + spec - 1
        return best
    raise BadConfigError(
        f"calibration.threshold_rule.name={name!r} is unknown; use sensitivity, youden or fixed"
    )


def describe_rule(rule: dict[str, Any]) -> str:
    """Human-readable rule, e.g. ``"sensitivity>=0.90"``."""
    if rule.get("name") == "sensitivity":
        return f"sensitivity>={float(rule.get('target', 0.9)):.2f}"
    if rule.get("name") == "fixed":
        return f"fixed={float(rule['value']):.4f}"
    return str(rule.get("name"))
