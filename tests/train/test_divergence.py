"""A diverged run stops: a non-finite loss, logit or weight raises TrainingDivergedError naming
the epoch and the optimizer step, instead of being scored as if it were a number."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from labral.errors import TrainingDivergedError
from labral.train.command import train
from labral.train.loop import evaluate, train_one_epoch

from .conftest import TinyClips  # noqa: TID252 - importlib mode: conftest is a sibling module


class NanAtCall(torch.nn.Module):
    """logits (B,) = w * mean pixel + b; the ``nan_at``-th forward call (1-based) gives NaN."""

    def __init__(self, nan_at: int | None = None) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor(1.0))
        self.bias = torch.nn.Parameter(torch.tensor(0.0))
        self.nan_at = nan_at
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        logits = self.weight * x.flatten(1).mean(1) + self.bias
        if self.calls == self.nan_at:
            logits = logits * float("nan")
        return logits


def batches(n: int) -> list[dict[str, torch.Tensor]]:
    """``n`` batches of two clips (B=2, 1, 2, 4, 4), labels 0 and 1."""
    gen = torch.Generator().manual_seed(0)
    return [
        {"image": torch.rand(2, 1, 2, 4, 4, generator=gen), "label": torch.tensor([0, 1])}
        for _ in range(n)
    ]


def run_epoch(model: torch.nn.Module, loader: list, optimizer: torch.optim.Optimizer) -> dict:
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return train_one_epoch(
        model,
        loader,
        optimizer,
        scheduler,
        torch.nn.BCEWithLogitsLoss(),
        torch.device("cpu"),
        epoch=3,
        global_step=10,
        progress=False,
    )


def test_a_nan_logit_stops_the_epoch_naming_epoch_and_step() -> None:
    model = NanAtCall(nan_at=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrainingDivergedError) as caught:
        run_epoch(model, batches(5), optimizer)
    message = str(caught.value)
    assert "epoch 3 at optimizer step 13 (batch 3 of the epoch" in message
    assert "lower learning rate" in message and caught.value.code == "training_diverged"
    # stopped before the NaN reached the weights, and before the fourth batch
    assert model.calls == 3
    assert torch.isfinite(model.weight) and torch.isfinite(model.bias)


def test_nan_weights_after_the_last_step_stop_the_epoch() -> None:
    model = NanAtCall()
    optimizer = torch.optim.SGD(model.parameters(), lr=float("nan"))  # the step makes NaNs
    with pytest.raises(TrainingDivergedError, match="epoch 3 at optimizer step 11 .*weights"):
        run_epoch(model, batches(1), optimizer)


def test_evaluation_refuses_non_finite_logits() -> None:
    with pytest.raises(TrainingDivergedError, match="non-finite logits for 2 of 4 clips"):
        evaluate(NanAtCall(nan_at=1), batches(2), torch.device("cpu"))


class NanImages(TinyClips):
    """TinyClips whose images are all NaN (what a diverged net sees, from the first step)."""

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        return {**item, "image": torch.full_like(item["image"], float("nan"))}


def test_a_diverged_run_stops_without_test_metrics(train_cfg, tiny_datasets) -> None:
    datasets = {**tiny_datasets(), "train": NanImages([0, 1] * 8, seed=1)}
    cfg = train_cfg("trainer.max_epochs=2", "logger.tensorboard=false")
    with pytest.raises(TrainingDivergedError, match="epoch 0 at optimizer step 1 "):
        train(cfg, datasets=datasets)
    assert not (Path(cfg.paths.output_dir) / "test_metrics.json").exists()
