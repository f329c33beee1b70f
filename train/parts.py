"""What :func:`labral.train.command.setup` builds from a config: the :class:`TrainParts`
bundle and the pieces it is made of (seeding, device, model, batches, optimizer)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset

from labral.errors import BadConfigError
from labral.models.weights import load_init_weights
from labral.train.data import ClipDataModule, build_data_module, device_train_batches
from labral.train.distributed import DistInfo, EpochSampler
from labral.train.finetune import finetune_settings, param_groups
from labral.train.model_summary import summarize_model
from labral.train.settings import TrainerSettings


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def select_device(trainer: TrainerSettings) -> torch.device:
    """``trainer.accelerator``: cpu, gpu/cuda, or auto (cuda when available)."""
    accelerator = trainer.accelerator
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
    what trains (DDP-wrapped and/or compiled when the trainer says so); ``auxiliary`` the
    weights of the auxiliary losses when the training split carries their targets.
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
    auxiliary: dict[str, float] = field(default_factory=dict)


@dataclass
class PlacedModel:
    """The net on its device: ``raw_model`` unwrapped, ``model`` what trains (DDP-wrapped
    and/or compiled), ``summary`` its parameters and GFLOPs per clip."""

    raw_model: torch.nn.Module
    model: torch.nn.Module
    summary: dict[str, Any]
    channels_last: bool


def place_model(
    cfg: DictConfig,
    trainer: TrainerSettings,
    sample: torch.Tensor,
    device: torch.device,
    info: DistInfo,
) -> PlacedModel:
    """Build ``cfg.model`` on ``device`` (channels_last_3d, DDP and ``torch.compile`` as
    the trainer says) and print its size on rank 0.

    Args:
        cfg: the composed train config (its ``model`` group is built).
        trainer: the run's trainer settings.
        sample: one training clip, float32 (1, T, H, W), for the GFLOPs count.
        device: where the model trains.
        info: this process's place in a DDP run.
    """
    raw_model = build_model(cfg).to(device)
    channels_last = trainer.channels_last_3d
    if channels_last:
        raw_model = raw_model.to(memory_format=torch.channels_last_3d)
    summary = summarize_model(raw_model, tuple(sample.shape))
    if info.is_main:
        print(
            f"model {cfg.model.get('_target_')}: {summary['params']:,} parameters, "
            f"{summary['gflops']:.3f} GFLOPs per clip {tuple(sample.shape)}"
        )
    model: torch.nn.Module = raw_model
    if info.enabled:
        ids = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(raw_model, device_ids=ids)
    if trainer.compile:
        model = torch.compile(model)
    return PlacedModel(raw_model, model, summary, channels_last)


@dataclass
class TrainingBatches:
    """Where training batches come from: the epoch ``sampler``, the ``loader`` (a DataLoader
    or on-device batches) and the ``sampling`` in effect (``data.sampling``, except that
    on-device batches replace ``balanced`` by ``class_weight``)."""

    sampler: EpochSampler
    loader: Any
    sampling: str


def training_batches(
    dataset: Dataset, data: ClipDataModule, seed: int, device: torch.device, info: DistInfo
) -> TrainingBatches:
    """The training split's sampler and loader (:func:`device_train_batches` when
    ``data.on_device``)."""
    sampling = data.sampling
    sampler = EpochSampler(
        dataset.labels,
        seed,
        balanced=sampling == "balanced",
        rank=info.rank,
        world_size=info.world_size,
    )
    if not data.on_device:
        return TrainingBatches(sampler, data.loader(dataset, sampler), sampling)
    if sampling == "balanced":
        sampling = "class_weight"  # on-device batches are a plain permutation
        if info.is_main:
            print("data.on_device=true: class-balanced sampling replaced by class weights")
    loader = device_train_batches(dataset, data, device, rank=info.rank, world_size=info.world_size)
    return TrainingBatches(sampler, loader, sampling)


def build_optimization(
    cfg: DictConfig,
    raw_model: torch.nn.Module,
    steps_per_epoch: int,
    max_epochs: int,
    info: DistInfo,
) -> tuple[torch.optim.Optimizer, Any]:
    """``cfg.optim`` over the model's parameter groups (:func:`labral.train.finetune.
    param_groups`) and ``cfg.scheduler`` over ``steps_per_epoch * max_epochs`` steps.

    Raises:
        BadConfigError: a frozen-backbone phase under DDP.
    """
    if info.enabled and finetune_settings(cfg)[1] > 0:
        raise BadConfigError(
            "finetune.freeze_backbone_epochs>0 with trainer=ddp: DDP cannot change which "
            "parameters train mid-run; freeze on one process or set it to 0"
        )
    params = param_groups(raw_model, cfg, float(cfg.optim.lr))
    optimizer = instantiate(cfg.optim)(params=params)
    scheduler = instantiate(cfg.scheduler)(
        optimizer, total_steps=steps_per_epoch * max_epochs, steps_per_epoch=steps_per_epoch
    )
    return optimizer, scheduler
