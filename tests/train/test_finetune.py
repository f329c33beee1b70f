"""Fine-tuning (experiment=finetune): the backbone really freezes, the LR groups are right."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from labral.errors import BadConfigError
from labral.train.command import setup, train
from labral.train.distributed import DistInfo
from labral.train.parts import build_model


def _pretrained(train_cfg, tmp_path: Path) -> Path:
    """A state dict of the debug model with every tensor moved off its fresh init."""
    model = build_model(train_cfg(run_name="pre"))
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.01)
    path = tmp_path / "pretrained.pt"
    torch.save(model.state_dict(), path)
    return path


def _backbone_and_head(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    backbone = {k: v for k, v in state.items() if not k.startswith("head.")}
    head = {k: v for k, v in state.items() if k.startswith("head.")}
    assert backbone and head
    return backbone, head


def test_param_groups_scale_the_backbone_learning_rate(train_cfg, tiny_datasets, tmp_path):
    weights = _pretrained(train_cfg, tmp_path)
    cfg = train_cfg("experiment=finetune", f"model.init_weights={weights}", "optim.lr=0.004")
    parts = setup(cfg, tiny_datasets(), torch.device("cpu"), DistInfo())
    groups = {g["name"]: g for g in parts.optimizer.param_groups}
    assert set(groups) == {"head", "backbone"}
    assert groups["head"]["initial_lr"] == pytest.approx(0.004)
    assert groups["backbone"]["initial_lr"] == pytest.approx(0.004 * 0.1)
    head_ids = {id(p) for p in parts.raw_model.head.parameters()}
    assert {id(p) for p in groups["head"]["params"]} == head_ids
    assert {id(p) for p in groups["backbone"]["params"]} == {
        id(p) for p in parts.raw_model.parameters() if id(p) not in head_ids
    }
    # the init weights were loaded, not a fresh init
    loaded = torch.load(weights, weights_only=True)
    for key, value in parts.raw_model.state_dict().items():
        assert torch.equal(value, loaded[key]), key


def test_plain_run_keeps_one_group(train_cfg, tiny_datasets):
    parts = setup(train_cfg(), tiny_datasets(), torch.device("cpu"), DistInfo())
    assert len(parts.optimizer.param_groups) == 1


@pytest.mark.parametrize("epochs", [1, 2])
def test_frozen_backbone_is_unchanged_while_the_head_trains(
    train_cfg, tiny_datasets, tmp_path, epochs
):
    weights = _pretrained(train_cfg, tmp_path)
    cfg = train_cfg(
        "experiment=finetune",
        f"model.init_weights={weights}",
        "finetune.freeze_backbone_epochs=1",
        f"trainer.max_epochs={epochs}",
        "trainer.early_stopping_patience=0",
        "logger.tensorboard=false",
        run_name=f"ft{epochs}",
    )
    train(cfg, datasets=tiny_datasets())
    last = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.pt", weights_only=True)
    before_backbone, before_head = _backbone_and_head(torch.load(weights, weights_only=True))
    after_backbone, after_head = _backbone_and_head(last["model"])
    assert any(not torch.equal(after_head[k], v) for k, v in before_head.items())
    unchanged = [torch.equal(after_backbone[k], v) for k, v in before_backbone.items()]
    if epochs == 1:  # only the frozen epoch ran: weights and BatchNorm statistics as loaded
        assert all(unchanged)
    else:  # the second epoch trains the backbone too
        assert not all(unchanged)


def test_bad_finetune_settings_are_named(train_cfg, tiny_datasets):
    with pytest.raises(BadConfigError, match="finetune.backbone_lr_scale"):
        setup(
            train_cfg("finetune.backbone_lr_scale=2"),
            tiny_datasets(),
            torch.device("cpu"),
            DistInfo(),
        )
