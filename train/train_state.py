"""Checkpointing for :func:`labral.train.command.train`: the callbacks, the train state, the
one checkpoint dict and its restore, and which checkpoint (if any) a run resumes from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from labral.errors import BadConfigError
from labral.train.callbacks import EarlyStopping, ModelCheckpoint
from labral.train.checkpoint_files import capture_rng_state, restore_rng_state
from labral.train.parts import TrainParts
from labral.train.settings import TrainSettings


def new_train_state() -> dict[str, Any]:
    """The train state of a fresh run (stored as ``train_state`` in every checkpoint)."""
    return {
        "epoch": -1,
        "best_metric": -1.0,
        "best_epoch": -1,
        "bad_epochs": 0,
        "global_step": 0,
        "stopped": False,
    }


def build_callbacks(cfg: DictConfig, run_dir: Path) -> tuple[EarlyStopping, ModelCheckpoint]:
    """``cfg.callbacks`` (configs/callbacks/) instantiated with ``hydra.utils.instantiate``;
    ``model_checkpoint.dirpath: null`` means ``<run_dir>/checkpoints``."""
    from hydra.utils import instantiate

    callbacks = cfg.callbacks
    dirpath = callbacks.model_checkpoint.get("dirpath") or run_dir / "checkpoints"
    stopper = instantiate(callbacks.early_stopping)
    checkpointer = instantiate(callbacks.model_checkpoint, dirpath=str(dirpath))
    return stopper, checkpointer


def checkpoint_dict(
    parts: TrainParts,
    state: dict[str, Any],
    config: dict[str, Any],
) -> dict[str, Any]:
    """The one checkpoint dict (docs/contracts.md, TRAIN): weights, optimizer, scheduler,
    scaler, RNG states (captured now), train state, epoch, best metric, config, model summary.
    """
    return {
        "model": parts.raw_model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "scaler": {},
        "rng": capture_rng_state(),
        "train_state": dict(state),
        "epoch": state["epoch"],
        "best_metric": state["best_metric"],
        "config": config,
        "model_summary": parts.summary,
    }


def restore_checkpoint(ckpt: dict[str, Any], parts: TrainParts) -> dict[str, Any]:
    """Inverse of :func:`checkpoint_dict`: load weights, optimizer and scheduler state into
    ``parts``, restore the RNG states, and return the train state to continue from."""
    parts.raw_model.load_state_dict(ckpt["model"])
    parts.optimizer.load_state_dict(ckpt["optimizer"])
    parts.scheduler.load_state_dict(ckpt["scheduler"])
    state = new_train_state()
    state.update(ckpt["train_state"])
    restore_rng_state(ckpt["rng"])
    return state


def resume_path(settings: TrainSettings, checkpointer: ModelCheckpoint) -> Path | None:
    """``ckpt_path``, else ``checkpoints/last.pt`` when ``resume=true``, else None.

    Raises:
        BadConfigError: ``resume=true`` and the run folder has no ``last.pt``.
    """
    if settings.ckpt_path:
        return Path(settings.ckpt_path)
    if not settings.resume:
        return None
    path = checkpointer.last_path
    if not path.is_file():
        raise BadConfigError(
            f"resume=true but {path} does not exist; set hydra.run.dir=<the folder of the "
            "run to continue> (or ckpt_path=<its checkpoints/last.pt>)"
        )
    return path
