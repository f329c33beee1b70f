"""``labral train``: a thin Hydra entry point over the plain, testable :func:`train`.

labral train                                 # defaults: compact model, synthetic data, CPU
labral train experiment=demo                 # the README's main job (2 CPU cores)
labral train resume=true hydra.run.dir=outputs/train/<run>   # continue a killed run
torchrun --nproc_per_node=2 -m labral.train.command trainer=ddp hydra.run.dir=<dir>
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset

from labral.errors import BadConfigError
from labral.metrics import binary_metrics
from labral.train.callbacks import EarlyStopping, ModelCheckpoint
from labral.train.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
)
from labral.train.data import (
    build_datasets,
    check_datasets,
    data_fingerprint,
    dataset_rows,
    device_train_batches,
    positive_weight,
)
from labral.train.distributed import (
    DistInfo,
    EpochSampler,
    broadcast_flag,
    init_distributed,
    shutdown_distributed,
)
from labral.train.finalize import calibrate_and_test
from labral.train.loop import evaluate, sigmoid, steps_per_epoch, train_one_epoch
from labral.train.model_summary import summarize_model
from labral.train.run_log import RunLogger


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def config_dict(cfg: DictConfig) -> dict[str, Any]:
    """The config without the ``hydra`` node as a plain dict, resolved where possible."""
    keys = [key for key in cfg if key != "hydra"]
    try:
        return {
            key: OmegaConf.to_container(cfg[key], resolve=True)
            if OmegaConf.is_config(cfg[key])
            else cfg[key]
            for key in keys
        }
    except Exception:  # noqa: BLE001 - outside a Hydra run ${hydra:...} cannot resolve
        plain = OmegaConf.to_container(cfg, resolve=False)
        return {key: plain[key] for key in keys}  # type: ignore[index]


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
    from hydra.utils import instantiate

    from labral.models.weights import load_init_weights

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
    """A DataLoader with ``data.batch_size`` / ``data.num_workers``; fixed order if no sampler."""
    workers = int(cfg.data.get("num_workers", 0))
    return DataLoader(
        dataset,
        batch_size=int(cfg.data.batch_size),
        sampler=sampler,
        shuffle=False,
        num_workers=workers,
        pin_memory=bool(cfg.data.get("pin_memory", False)),
        persistent_workers=False,
        drop_last=False,
    )


def _set_epoch(dataset: Dataset, epoch: int) -> None:
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)


def train(cfg: DictConfig, datasets: dict[str, Dataset] | None = None) -> dict[str, Any]:
    """Train, select the best epoch on validation AUROC, calibrate, and score the test split.

    Args:
        cfg: the composed ``configs/train.yaml``.
        datasets: optional prebuilt ``{"train", "val", "test"}`` datasets (each with a
            ``labels`` list, items ``{"image": float32 (1, T, H, W), "label": int}``);
            by default they are built from ``cfg.data`` and ``cfg.transforms``.

    Returns:
        ``{"best_epoch", "best_val_auroc", "epochs_run", "temperature", "threshold",
        "test": {...test_metrics...}, "run_dir"}`` (on rank 0; other ranks get ``{}``
        for the calibration and test parts).

    Raises:
        BadConfigError, BadManifestError: before training, for anything that cannot work.
    """
    trainer = cfg.trainer
    torch.set_num_threads(int(trainer.get("num_threads", 2)))
    device = select_device(trainer)
    info = init_distributed(device.type) if trainer.get("strategy") == "ddp" else DistInfo()
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    try:
        return _train(cfg, datasets, device, info)
    finally:
        shutdown_distributed()


@dataclass
class TrainParts:
    """Everything :func:`setup` builds from the config, shared by :func:`fit` and the rest.

    ``raw_model`` is the unwrapped net (its state dict goes into checkpoints); ``model`` is
    what trains (DDP-wrapped and/or compiled when the trainer says so).
    """

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


def setup(
    cfg: DictConfig, datasets: dict[str, Dataset] | None, device: torch.device, info: DistInfo
) -> TrainParts:
    """Seed, then build data, model, loaders, loss, optimizer and scheduler from ``cfg``.

    The order of construction is fixed (it draws from the seeded RNGs), so a run is
    reproducible from its config.

    Raises:
        BadConfigError, BadManifestError: for anything that cannot work.
    """
    from hydra.utils import instantiate

    trainer = cfg.trainer
    seed = int(cfg.seed)
    seed_everything(seed)
    if datasets is None:
        datasets = build_datasets(cfg)
    else:
        check_datasets(datasets)
    rows = [row for name in ("train", "val", "test") for row in dataset_rows(datasets[name])]
    fingerprint = data_fingerprint(rows) if rows else None

    raw_model = build_model(cfg).to(device)
    channels_last = bool(trainer.get("channels_last_3d", False))
    if channels_last:
        raw_model = raw_model.to(memory_format=torch.channels_last_3d)
    sample = datasets["train"][0]["image"]
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
    if trainer.get("compile", False):
        model = torch.compile(model)

    sampling = str(cfg.data.get("sampling", "balanced"))
    if sampling not in ("balanced", "class_weight", "none"):
        raise BadConfigError(f"data.sampling={sampling!r}: use balanced, class_weight or none")
    sampler = EpochSampler(
        datasets["train"].labels,
        seed,
        balanced=sampling == "balanced",
        rank=info.rank,
        world_size=info.world_size,
    )
    train_loader: Any
    if cfg.data.get("on_device", False):
        if sampling == "balanced":
            sampling = "class_weight"  # on-device batches are a plain permutation
            if info.is_main:
                print("data.on_device=true: class-balanced sampling replaced by class weights")
        train_loader = device_train_batches(
            datasets["train"], cfg, device, rank=info.rank, world_size=info.world_size
        )
    else:
        train_loader = make_loader(datasets["train"], cfg, sampler)
    pos_weight = positive_weight(datasets["train"].labels) if sampling == "class_weight" else 1.0
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, device=device))

    accum = max(1, int(trainer.get("accumulate_grad_batches", 1)))
    max_epochs = int(trainer.max_epochs)
    per_epoch = steps_per_epoch(len(train_loader), accum)
    optimizer = instantiate(cfg.optim)(params=raw_model.parameters())
    scheduler = instantiate(cfg.scheduler)(
        optimizer, total_steps=per_epoch * max_epochs, steps_per_epoch=per_epoch
    )
    return TrainParts(
        datasets=datasets,
        fingerprint=fingerprint,
        raw_model=raw_model,
        model=model,
        summary=summary,
        sampler=sampler,
        train_loader=train_loader,
        val_loader=make_loader(datasets["val"], cfg),
        test_loader=make_loader(datasets["test"], cfg),
        loss_fn=loss_fn,
        optimizer=optimizer,
        scheduler=scheduler,
        accum=accum,
        max_epochs=max_epochs,
        precision=str(trainer.get("precision", "32")),
        channels_last=channels_last,
    )


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


def resume_path(cfg: DictConfig, checkpointer: ModelCheckpoint) -> Path | None:
    """``ckpt_path``, else ``checkpoints/last.pt`` when ``resume=true``, else None.

    Raises:
        BadConfigError: ``resume=true`` and the run folder has no ``last.pt``.
    """
    if cfg.get("ckpt_path"):
        return Path(str(cfg.ckpt_path))
    if not cfg.get("resume"):
        return None
    path = checkpointer.last_path
    if not path.is_file():
        raise BadConfigError(
            f"resume=true but {path} does not exist; set hydra.run.dir=<the folder of the "
            "run to continue> (or ckpt_path=<its checkpoints/last.pt>)"
        )
    return path


def fit(
    cfg: DictConfig,
    parts: TrainParts,
    state: dict[str, Any],
    *,
    stopper: EarlyStopping,
    checkpointer: ModelCheckpoint,
    logger: RunLogger,
    config: dict[str, Any],
    device: torch.device,
    info: DistInfo,
) -> dict[str, Any]:
    """The epoch loop from ``state["epoch"] + 1``: train, validate (rank 0), early-stop,
    checkpoint, log. Returns the final train state (``state`` is updated in place)."""
    trainer = cfg.trainer
    progress = bool(trainer.get("progress", True)) and info.is_main
    log_every = int(cfg.logger.get("log_every_n_steps", 10))

    def on_step(step: int, values: dict[str, float]) -> None:
        if step % log_every == 0:
            logger.scalars(step, values)

    epoch = state["epoch"] + 1
    while epoch < parts.max_epochs and not state["stopped"]:
        parts.sampler.set_epoch(epoch)
        if hasattr(parts.train_loader, "set_epoch"):
            parts.train_loader.set_epoch(epoch)
        _set_epoch(parts.datasets["train"], epoch)
        stats = train_one_epoch(
            parts.model,
            parts.train_loader,
            parts.optimizer,
            parts.scheduler,
            parts.loss_fn,
            device,
            epoch=epoch,
            accum_steps=parts.accum,
            precision=parts.precision,
            channels_last=parts.channels_last,
            grad_clip_norm=trainer.get("gradient_clip_val"),
            progress=progress,
            on_step=on_step if info.is_main else None,
            global_step=state["global_step"],
        )
        state["global_step"] += stats["steps"]
        stop = False
        if info.is_main:
            logits, labels = evaluate(
                parts.raw_model,
                parts.val_loader,
                device,
                precision=parts.precision,
                channels_last=parts.channels_last,
            )
            val = binary_metrics(labels, sigmoid(logits))
            improved, stop = stopper.update(state, val["auroc"], epoch)
            state.update(epoch=epoch, stopped=stop)
            checkpointer.save(checkpoint_dict(parts, state, config), improved)
            logger.record(
                {
                    "epoch": epoch,
                    "train_loss": stats["loss"],
                    "clips_per_s": stats["clips_per_s"],
                    "val_auroc": val["auroc"],
                    "val_nll": val["nll"],
                    "lr": parts.optimizer.param_groups[0]["lr"],
                    "best_val_auroc": state["best_metric"],
                },
                step=epoch,
            )
            print(
                f"epoch {epoch}: loss {stats['loss']:.4f}  val AUROC "
                f"{val['auroc']:.4f}  ({stats['clips_per_s']:.1f} clips/s)"
            )
        else:
            state["epoch"] = epoch
        state["stopped"] = broadcast_flag(stop, info, device)
        epoch += 1
    return state


def _train(
    cfg: DictConfig, datasets: dict[str, Dataset] | None, device: torch.device, info: DistInfo
) -> dict[str, Any]:
    run_dir = Path(str(cfg.paths.output_dir))
    parts = setup(cfg, datasets, device, info)
    stopper, checkpointer = build_callbacks(cfg, run_dir)
    state = new_train_state()
    ckpt_path = resume_path(cfg, checkpointer)
    if ckpt_path is not None:
        state = restore_checkpoint(load_checkpoint(ckpt_path, map_location=device), parts)
        if info.is_main:
            print(f"resumed from {ckpt_path} after epoch {state['epoch']}")

    logger = RunLogger(
        run_dir, tensorboard=bool(cfg.logger.get("tensorboard", True)), enabled=info.is_main
    )
    config = config_dict(cfg)  # resolved once; stored in every checkpoint
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(config))
        logger.record(
            {
                "event": "start",
                "task_name": str(cfg.get("task_name", "train")),
                **parts.summary,
                "resumed_from_epoch": state["epoch"],
            }
        )
    state = fit(
        cfg,
        parts,
        state,
        stopper=stopper,
        checkpointer=checkpointer,
        logger=logger,
        config=config,
        device=device,
        info=info,
    )
    result: dict[str, Any] = {
        "epochs_run": state["epoch"] + 1,
        "run_dir": str(run_dir),
        "best_epoch": state["best_epoch"],
        "best_val_auroc": state["best_metric"],
        "stopped_early": state["stopped"],
    }
    if info.is_main:
        result.update(
            calibrate_and_test(
                cfg,
                parts.raw_model,
                parts.val_loader,
                parts.test_loader,
                device,
                run_dir,
                parts.fingerprint,
                parts.precision,
                parts.channels_last,
            )
        )
        logger.record(
            {
                "event": "end",
                **{k: v for k, v in result.items() if k != "test"},
                "test_auroc": result["test"]["auroc"],
            }
        )
    logger.close()
    return result


def run(cfg: DictConfig) -> dict[str, Any] | float:
    """Hydra entry (``labral train``): train and return the metrics.

    When ``optimized_metric`` is set (``hparams_search=optuna`` sets ``best_val_auroc``), the
    value of that metric is returned instead, as a float, for Hydra's sweeper.
    """
    result = train(cfg)
    metric = cfg.get("optimized_metric")
    if metric:
        if metric not in result:
            raise BadConfigError(f"optimized_metric={metric!r} is not one of {sorted(result)}")
        return float(result[metric])
    return result


def main() -> None:
    """``python -m labral.train.command ...`` (used with torchrun): same as ``labral train``."""
    from labral.cli import main as cli_main

    sys.exit(cli_main(["train", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
