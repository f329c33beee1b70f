"""The test split is scored as the calibration says: probabilities sigmoid(logit / T) with the
fitted temperature T, decisions at the fitted threshold. Checked against an independent
computation from best.pt and calibration.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import expit

from labral.train.command import train
from labral.train.loop import evaluate
from labral.train.parts import build_model, make_loader


def test_test_metrics_apply_the_fitted_temperature_and_threshold(train_cfg, motion_datasets):
    # 2 epochs of the learnable task: a half-trained net, so T is far from 1 (measured 4.9)
    # and the threshold far enough from 0.5 (0.44) to change decisions; both are checked
    cfg = train_cfg("trainer.max_epochs=2", "optim.lr=0.01", "logger.tensorboard=false")
    train(cfg, datasets=motion_datasets)
    run = Path(cfg.paths.output_dir)
    calibration = json.loads((run / "calibration.json").read_text())
    reported = json.loads((run / "test_metrics.json").read_text())
    model = build_model(cfg)
    model.load_state_dict(torch.load(run / "checkpoints" / "best.pt", weights_only=True)["model"])
    logits, labels = evaluate(model, make_loader(motion_datasets["test"], cfg), torch.device("cpu"))

    temperature, threshold = calibration["temperature"], calibration["threshold"]
    probs = expit(logits / temperature)
    decision = probs >= threshold
    assert abs(np.log(temperature)) > 0.1, "T ~ 1: this run cannot tell whether T is applied"
    assert (decision != (probs >= 0.5)).any(), "this run cannot tell which threshold is used"
    clipped = np.clip(probs, 1e-7, 1 - 1e-7)
    nll = -np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))
    assert reported["nll"] == pytest.approx(nll, rel=1e-6)
    assert reported["brier"] == pytest.approx(np.mean((probs - labels) ** 2), rel=1e-6)
    assert reported["threshold"] == threshold
    assert reported["sensitivity"] == pytest.approx(decision[labels == 1].mean())
    assert reported["specificity"] == pytest.approx((~decision[labels == 0]).mean())
    assert reported["accuracy"] == pytest.approx((decision == labels.astype(bool)).mean())
