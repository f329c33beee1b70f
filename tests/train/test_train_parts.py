"""The parts of ``labral.train.command._train`` on their own: setup, the data module, logger
and callbacks built from ``configs/{data,logger,callbacks}/``, and the checkpoint dict and its
restore."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from labral.errors import BadConfigError
from labral.train.callbacks import EarlyStopping, ModelCheckpoint
from labral.train.command import (
    build_callbacks,
    checkpoint_dict,
    new_train_state,
    restore_checkpoint,
    setup,
)
from labral.train.data import ClipDataModule, build_data_module
from labral.train.distributed import DistInfo
from labral.train.run_log import build_logger


def test_early_stopping_tracks_best_and_stops_after_patience():
    stopper = EarlyStopping(patience=2, min_delta=0.01)
    state = new_train_state()
    assert stopper.update(state, 0.6, 0) == (True, False)
    assert stopper.update(state, 0.605, 1) == (False, False)  # within min_delta
    assert stopper.update(state, None, 2) == (False, True)  # undefined AUROC never improves
    assert (state["best_metric"], state["best_epoch"], state["bad_epochs"]) == (0.6, 0, 2)
    assert EarlyStopping(patience=0).update(new_train_state(), None, 0) == (False, False)


def test_callbacks_come_from_config(train_cfg, tmp_path):
    cfg = train_cfg("trainer.early_stopping_patience=7")
    stopper, checkpointer = build_callbacks(cfg, tmp_path / "run")
    assert isinstance(stopper, EarlyStopping) and stopper.patience == 7
    assert isinstance(checkpointer, ModelCheckpoint)
    assert checkpointer.last_path == tmp_path / "run" / "checkpoints" / "last.pt"


def test_checkpoint_dict_round_trips_through_restore(train_cfg, tiny_datasets, tmp_path):
    cfg = train_cfg()
    parts = setup(cfg, tiny_datasets(), torch.device("cpu"), DistInfo())
    state = {**new_train_state(), "epoch": 3, "best_metric": 0.75, "global_step": 12}
    ckpt = checkpoint_dict(parts, state, {"seed": 1})
    assert (ckpt["epoch"], ckpt["best_metric"], ckpt["config"]) == (3, 0.75, {"seed": 1})
    expected = torch.rand(3)
    other = setup(cfg, tiny_datasets(), torch.device("cpu"), DistInfo())
    with torch.no_grad():
        next(other.raw_model.parameters()).add_(1.0)  # differs until restored
    assert restore_checkpoint(ckpt, other) == state
    assert torch.equal(torch.rand(3), expected)  # RNG restored to the capture point
    for a, b in zip(ckpt["model"].values(), other.raw_model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_data_module_and_logger_come_from_config(train_cfg, tiny_datasets, tmp_path):
    cfg = train_cfg("data.batch_size=3", "logger.log_every_n_steps=5", "logger.tensorboard=false")
    data = build_data_module(cfg)
    assert isinstance(data, ClipDataModule) and data.batch_size == 3
    assert data.spec == OmegaConf.to_container(cfg.transforms.eval) and data.seed == cfg.seed
    assert setup(cfg, tiny_datasets(), torch.device("cpu"), DistInfo()).val_loader.batch_size == 3
    logger = build_logger(cfg, tmp_path / "run", enabled=True)
    assert logger.writer is None and logger.step_due(10) and not logger.step_due(11)
    # the groups' _target_ decides what is built: another target is refused, not ignored
    with pytest.raises(BadConfigError, match="not a RunLogger"):
        build_logger(train_cfg("logger._target_=builtins.dict"), tmp_path / "run", enabled=True)
    with pytest.raises(BadConfigError, match="data.sampling='often'"):
        build_data_module(train_cfg("data.sampling=often"))  # the module's own typed error
    with pytest.raises(BadConfigError, match="unexpected keyword argument 'bogus'"):
        build_data_module(train_cfg("+data.bogus=1"))
