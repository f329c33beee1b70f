"""Training must learn: tests that pass only when the optimizer really steps.

The tiny motion task (``motion_datasets``: a blob that moves or stays put, 64 training clips)
is learned in 6 epochs: test AUROC 0.98-1.0 and a train loss falling from ~0.6 to below 0.1
(5 seeds, measured). With ``optimizer.step`` made a no-op the same runs stay at a train loss
of 0.65-0.81 and a test AUROC of 0.36-0.82: a random net can rank these clips well by chance,
so the falling loss is what proves learning, and the AUROC that it generalises.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from labral.train import command
from labral.train.command import train
from labral.train.parts import build_model, seed_everything

from .conftest import TinyClips  # noqa: TID252 - importlib mode: conftest is a sibling module


def epoch_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """The per-epoch rows of a run's metrics.jsonl (start/end events left out)."""
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [row for row in map(json.loads, lines) if "epoch" in row]


def last_checkpoint(run_dir: str | Path) -> dict[str, Any]:
    return torch.load(Path(run_dir) / "checkpoints" / "last.pt", weights_only=True)


def test_a_few_epochs_learn_the_tiny_motion_task(train_cfg, motion_datasets):
    cfg = train_cfg(
        "trainer.max_epochs=6",
        "trainer.early_stopping_patience=0",
        "optim.lr=0.01",
        "logger.tensorboard=false",
    )
    result = train(cfg, datasets=motion_datasets)
    losses = [row["train_loss"] for row in epoch_rows(cfg.paths.output_dir)]
    assert len(losses) == 6
    assert losses[-1] < 0.5 * losses[0], losses  # measured: <= 0.16x learning, >= 0.9x not
    assert result["best_val_auroc"] >= 0.9, result
    assert result["test"]["auroc"] >= 0.9, result["test"]
    assert result["test"]["n"] == 32


def optimizer_steps(checkpoint: dict[str, Any]) -> set[int]:
    """AdamW's own step counter of every parameter in a checkpoint's optimizer state."""
    return {int(state["step"]) for state in checkpoint["optimizer"]["state"].values()}


@pytest.mark.parametrize(("accumulate", "steps_per_epoch"), [(1, 4), (2, 2), (3, 2)])
def test_gradient_accumulation_sets_the_optimizer_step_count(
    train_cfg, tiny_datasets, accumulate, steps_per_epoch
):
    # 16 train clips in batches of 4: 4 micro-batches per epoch, 2 epochs; a last partial
    # group (accumulate=3: 3 + 1) still steps
    cfg = train_cfg(f"trainer.accumulate_grad_batches={accumulate}", "logger.tensorboard=false")
    train(cfg, datasets=tiny_datasets())
    ckpt = last_checkpoint(cfg.paths.output_dir)
    assert ckpt["train_state"]["global_step"] == 2 * steps_per_epoch
    assert optimizer_steps(ckpt) == {2 * steps_per_epoch}
    assert ckpt["scheduler"]["last_epoch"] == 2 * steps_per_epoch


def test_accumulating_two_batches_of_2_equals_one_batch_of_4(train_cfg, tiny_datasets):
    # no batch norm, no dropout: the per-clip gradients do not depend on the batch, so the
    # mean loss over 2 x 2 clips must give the update of the mean over 4 (float rounding aside)
    common = ("model.norm=none", "logger.tensorboard=false")
    runs = {}
    for name, batch, accumulate in (("big", 4, 1), ("accumulated", 2, 2)):
        cfg = train_cfg(
            f"data.batch_size={batch}",
            f"trainer.accumulate_grad_batches={accumulate}",
            *common,
            run_name=name,
        )
        train(cfg, datasets=tiny_datasets())
        runs[name] = last_checkpoint(cfg.paths.output_dir)
    assert optimizer_steps(runs["big"]) == optimizer_steps(runs["accumulated"]) == {8}
    seed_everything(int(cfg.seed))  # the initial weights, as train() draws them
    start = build_model(cfg).state_dict()
    moved = 0.0
    for name, weight in runs["big"]["model"].items():
        torch.testing.assert_close(
            runs["accumulated"]["model"][name], weight, rtol=0, atol=1e-5, msg=name
        )
        moved = max(moved, float((weight - start[name]).abs().max()))
    assert moved > 1e-3  # the comparison is between trained weights, not two initial ones


def recorded_loss_fns(monkeypatch) -> list[Any]:
    """Patch the loop so every training epoch records the loss function it was given."""
    seen: list[Any] = []
    original = command.train_one_epoch

    def spy(model, loader, optimizer, scheduler, loss_fn, *args, **kwargs):
        seen.append(loss_fn)
        return original(model, loader, optimizer, scheduler, loss_fn, *args, **kwargs)

    monkeypatch.setattr(command, "train_one_epoch", spy)
    return seen


@pytest.mark.parametrize(("sampling", "pos_weight"), [("class_weight", 3.0), ("balanced", 1.0)])
def test_class_weighting_sets_the_positive_weight(train_cfg, monkeypatch, sampling, pos_weight):
    datasets = {
        "train": TinyClips([0, 0, 0, 1] * 4, seed=1),  # 12 negatives, 4 positives
        "val": TinyClips([0, 1] * 4, seed=2),
        "test": TinyClips([0, 1] * 4, seed=3),
    }
    seen = recorded_loss_fns(monkeypatch)
    cfg = train_cfg(f"data.sampling={sampling}", "trainer.max_epochs=1", "logger.tensorboard=false")
    train(cfg, datasets=datasets)
    (loss_fn,) = seen
    logit = torch.zeros(1)
    # BCE of logit 0 is log 2 for either label; a positive counts pos_weight times
    assert float(loss_fn(logit, torch.ones(1))) == pytest.approx(pos_weight * math.log(2))
    assert float(loss_fn(logit, torch.zeros(1))) == pytest.approx(math.log(2))
