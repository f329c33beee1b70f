"""The CI gate: ``fail_under.<metric>=<value>`` thresholds on the first model's point estimates.

``labral bench model=... suite=... fail_under.auroc=0.9 fail_under.sensitivity=0.8`` exits
non-zero (status 2, via labral's error handling) listing every metric that misses. For the
lower-is-better metrics (``brier``, ``ece``) the value is a ceiling: the gate fails above it.
Only the first model is gated (the candidate); the others are there for comparison.
"""

from __future__ import annotations

from typing import Any

from labral.bench.bootstrap import LOWER_IS_BETTER, metric_functions
from labral.errors import BadConfigError, LabralError


class GateFailedError(LabralError):
    """A ``fail_under`` threshold was not met; raised after results and report are written."""

    code = "gate_failed"
    http_status = 422

    def __init__(self, failures: list[str]) -> None:
        super().__init__("benchmark gate failed: " + "; ".join(failures))
        self.failures = failures


def validate_gate(thresholds: Any) -> dict[str, float]:
    """Keep the set thresholds (null = off) and check their names and values.

    Raises:
        BadConfigError: unknown metric name or a non-numeric threshold (names the setting).
    """
    if not isinstance(thresholds, dict):
        raise BadConfigError(f"fail_under={thresholds!r}: must be a mapping metric -> threshold")
    known = metric_functions()
    gate = {}
    for name, value in thresholds.items():
        if value is None:
            continue
        if name not in known:
            raise BadConfigError(
                f"fail_under.{name}: unknown metric; choose from {', '.join(known)}"
            )
        try:
            gate[name] = float(value)
        except (TypeError, ValueError) as exc:
            raise BadConfigError(f"fail_under.{name}={value!r}: must be a number") from exc
    return gate


def check_gate(gate: dict[str, float], overall: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Compare the first model's point estimates with the thresholds.

    Args:
        gate: metric -> threshold (from :func:`validate_gate`).
        overall: model name -> that model's ``overall`` metric block (insertion order kept).

    Returns:
        ``{"model", "thresholds", "failed": [messages], "passed": bool}``.
    """
    if not overall:
        return {"model": None, "thresholds": gate, "failed": [], "passed": True}
    model = next(iter(overall))
    failed = []
    for name, threshold in gate.items():
        value = overall[model][name]["value"]
        if name in LOWER_IS_BETTER:
            bad = not (value <= threshold)
            rule = "<="
        else:
            bad = not (value >= threshold)
            rule = ">="
        if bad:
            failed.append(f"{model} {name}={value:.4f} (needs {rule} {threshold})")
    return {"model": model, "thresholds": gate, "failed": failed, "passed": not failed}
