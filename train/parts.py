"""What :func:`labral.train.command.setup` builds from a config: the :class:`TrainParts`
bundle and the pieces it is made of (seeding, device, model, loaders)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset

from labral.errors import BadConfigError
from labral.models.weights import load_init_weights
from labral.train.data import ClipDataModule, build_data_module
from labral.train.distributed import EpochSampler


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def select_device(trainer: DictConfig) -> torch.device:
    """``trainer.accelerator``: cpu, gpu/cuda, or auto (cuda when available)."""
    accelerator = str(trainer.get("accelerator", "cpu"))
    if accelerator == "auto":
        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    if accelerator in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise BadConfigError(
                "trainer.accelerator=gpu but no CUDA device is visible; use trainer=cpu"
            )
        return torch.device("cuda")
    if accelerator != "cpu":
        raise BadConfigError(f"trainer.accelerator={accelerator!r}: use cpu, gpu or auto")
    return torch.device("cpu")


def build_model(cfg: DictConfig) -> torch.nn.Module:
    """Instantiate ``cfg.model``; a wrong ``_target_`` or argument becomes a BadConfigError."""
    target = cfg.model.get("_target_", "<missing>")
    try:
        model = instantiate(cfg.model)
    except Exception as exc:  # noqa: BLE001 - Hydra wraps import and argument errors alike
        raise BadConfigError(
            f"model._target_={target} cannot be built ({str(exc).splitlines()[0]}); choose one "
            "of the configs in configs/model/ (e.g. model=compact) or fix its arguments"
        ) from exc
    if not isinstance(model, torch.nn.Module):
        raise BadConfigError(f"model._target_={target} did not build a torch.nn.Module")
    if cfg.model.get("init_weights"):  # start from a local state dict (labral.models.weights)
        print(load_init_weights(model, str(cfg.model.init_weights)), flush=True)
    return model


def make_loader(dataset: Dataset, cfg: DictConfig, sampler: Any = None) -> DataLoader:
    """:meth:`labral.train.data.ClipDataModule.loader` of ``cfg.data``: batches of
    ``data.batch_size`` from ``data.num_workers`` workers; fixed order if no sampler."""
    return build_data_module(cfg).loader(dataset, sampler)


@dataclass
class TrainParts:
    """Everything :func:`setup` builds from the config, shared by :func:`fit` and the rest.

    ``raw_model`` is the unwrapped net (its state dict goes into checkpoints); ``model`` is
    what trains (DDP-wrapped and/or compiled when the trainer says so).
    """

    data: ClipDataModule
    datasets: dict[str, Dataset]
    fingerprint: str | None
    raw_model: torch.nn.Module
    model: torch.nn.Module
    summary: dict[str, Any]
    sampler: EpochSampler
    train_loader: Any
    val_loader: DataLoader
    test_loader: DataLoader
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    accum: int
    max_epochs: int
    precision: str
    channels_last: bool
