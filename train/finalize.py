"""After training: temperature and threshold fitted on validation, then the test split scored.

Both splits are scored by the scoring contract (:mod:`labral.scoring`, as ``labral bench``
scores the exported bundle): :func:`~labral.train.loop.evaluate` gives each clip's logit,
:func:`~labral.scoring.calibrated_probability` its probability at the fitted temperature, and
the split's metrics decide at the fitted threshold with :func:`labral.metrics.decision`, the
rule of :func:`labral.scoring.decide`.

Writes ``calibration.json`` and ``test_metrics.json`` into the run dir (see docs/contracts.md);
``labral export`` reads ``checkpoints/best.pt`` and ``calibration.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from labral.metrics import binary_metrics
from labral.scoring import calibrated_probability
from labral.train import calibration as cal
from labral.train.checkpoint_files import load_checkpoint
from labral.train.loop import evaluate


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float))
    tmp.replace(path)


def calibrate_and_test(
    cfg: DictConfig,
    model: torch.nn.Module,
    val_loader: DataLoader,
    test_loader: DataLoader,
    device: torch.device,
    run_dir: Path,
    fingerprint: str | None,
    precision: str,
    channels_last: bool,
) -> dict[str, Any]:
    """Load best.pt, fit temperature and threshold on val, score test; write the JSON files.

    Returns:
        ``{"temperature", "threshold", "val": {...}, "test": {...}}``.
    """
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt", map_location=device)
    model.load_state_dict(best["model"])
    val_logits, val_labels = evaluate(
        model, val_loader, device, precision=precision, channels_last=channels_last
    )
    temperature = cal.fit_temperature(val_logits, val_labels)
    rule = OmegaConf.to_container(cfg.calibration.threshold_rule, resolve=True)
    val_probs = calibrated_probability(val_logits, temperature)
    threshold = cal.choose_threshold(val_probs, val_labels, rule)
    val_metrics = binary_metrics(val_labels, val_probs, threshold)
    _write_json(
        run_dir / "calibration.json",
        {
            "temperature": temperature,
            "threshold": threshold,
            "threshold_rule": cal.describe_rule(rule),
            "threshold_rule_config": rule,
            "val_metrics": val_metrics,
            "data_fingerprint": fingerprint,
            "best_epoch": int(best["epoch"]),
        },
    )
    test_logits, test_labels = evaluate(
        model, test_loader, device, precision=precision, channels_last=channels_last
    )
    test = binary_metrics(test_labels, calibrated_probability(test_logits, temperature), threshold)
    test["best_epoch"] = int(best["epoch"])
    _write_json(run_dir / "test_metrics.json", test)
    auroc = "n/a" if test["auroc"] is None else f"{test['auroc']:.4f}"
    print(
        f"test AUROC {auroc} (n={test['n']}); calibration T={temperature:.3f}, "
        f"threshold {threshold:.3f} [{cal.describe_rule(rule)}]; run dir {run_dir}"
    )
    return {"temperature": temperature, "threshold": threshold, "val": val_metrics, "test": test}
