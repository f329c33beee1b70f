"""End-to-end training on tiny in-memory clips: outputs, resume equivalence, early stopping."""

from __future__ import annotations

import json

import pytest
import torch

from labral.train.command import train


def test_train_writes_checkpoints_metrics_and_calibration(train_cfg, tiny_datasets):
    cfg = train_cfg()
    result = train(cfg, datasets=tiny_datasets())
    run = cfg.paths.output_dir
    from pathlib import Path

    run = Path(run)
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    for key in (
        "model",
        "optimizer",
        "scheduler",
        "scaler",
        "rng",
        "epoch",
        "best_metric",
        "config",
    ):
        assert key in last
    assert last["epoch"] == 1 and best["epoch"] == result["best_epoch"]
    assert last["config"]["model"]["_target_"] == cfg.model._target_
    assert "hydra" not in last["config"]
    epochs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in epochs if "epoch" in r] == [0, 1]
    assert all(0.0 <= r["val_auroc"] <= 1.0 for r in epochs if "epoch" in r)
    calibration = json.loads((run / "calibration.json").read_text())
    assert calibration["temperature"] > 0
    assert calibration["threshold_rule"] == "sensitivity>=0.90"
    assert calibration["val_metrics"]["sensitivity"] >= 0.9
    assert len(calibration["data_fingerprint"]) == 64
    test = json.loads((run / "test_metrics.json").read_text())
    assert 0.0 <= test["auroc"] <= 1.0 and test["n"] == 8
    assert test == pytest.approx(result["test"])
    assert any((run / "tensorboard").iterdir())
    assert (run / "config.yaml").is_file()


def test_killed_run_resumes_to_the_same_result(train_cfg, tiny_datasets):
    straight_cfg = train_cfg("trainer.max_epochs=3", run_name="straight")
    straight = train(straight_cfg, datasets=tiny_datasets())

    killed_cfg = train_cfg("trainer.max_epochs=3", run_name="killed")
    # 16 train reads + nothing else per epoch before the val pass reads its own dataset:
    # die in the middle of the second epoch, after last.pt of epoch 0 was written
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(killed_cfg, datasets=tiny_datasets(fail_after=16 + 6))
    resumed_cfg = train_cfg("trainer.max_epochs=3", "resume=true", run_name="killed")
    resumed = train(resumed_cfg, datasets=tiny_datasets())

    assert resumed["test"] == pytest.approx(straight["test"], abs=1e-6)
    assert resumed["best_val_auroc"] == pytest.approx(straight["best_val_auroc"])
    from pathlib import Path

    a = torch.load(Path(straight_cfg.paths.output_dir) / "checkpoints/last.pt", weights_only=True)
    b = torch.load(Path(resumed_cfg.paths.output_dir) / "checkpoints/last.pt", weights_only=True)
    for name, tensor in a["model"].items():
        torch.testing.assert_close(b["model"][name], tensor, rtol=0, atol=1e-6, msg=name)


def test_early_stopping_stops_when_val_auroc_stalls(train_cfg, tiny_datasets):
    # lr=0 and no batch norm: outputs never change, so val AUROC never improves after epoch 0
    cfg = train_cfg(
        "trainer.max_epochs=6",
        "trainer.early_stopping_patience=2",
        "optim.lr=0.0",
        "model.norm=none",
    )
    result = train(cfg, datasets=tiny_datasets())
    assert result["stopped_early"] is True
    assert result["epochs_run"] == 3
    assert result["best_epoch"] == 0


def test_class_weight_and_accumulation_options_train(train_cfg, tiny_datasets):
    cfg = train_cfg(
        "data.sampling=class_weight",
        "trainer.accumulate_grad_batches=2",
        "trainer.max_epochs=1",
        "logger.tensorboard=false",
    )
    result = train(cfg, datasets=tiny_datasets())
    assert result["epochs_run"] == 1
    assert 0.0 <= result["test"]["auroc"] <= 1.0


def test_resume_without_a_checkpoint_names_the_run_dir(train_cfg, tiny_datasets):
    from labral.errors import BadConfigError

    with pytest.raises(BadConfigError, match="hydra.run.dir"):
        train(train_cfg("resume=true"), datasets=tiny_datasets())
