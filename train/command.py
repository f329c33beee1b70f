"""``labral train``: a thin Hydra entry point over the plain, testable :func:`train`.

labral train                                 # defaults: compact model, synthetic data, CPU
labral train experiment=demo                 # the README's main job (2 CPU cores)
labral train resume=true hydra.run.dir=outputs/train/<run>   # continue a killed run
torchrun --nproc_per_node=2 -m labral.train.command trainer=ddp hydra.run.dir=<dir>
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import Dataset

from labral.cli import main as cli_main
from labral.datasets.manifests.manifest import SPLIT_NAMES
from labral.errors import BadConfigError
from labral.metrics import binary_metrics
from labral.scoring import calibrated_probability
from labral.threads import threads_per_rank
from labral.train.callbacks import EarlyStopping, ModelCheckpoint
from labral.train.checkpoint_files import load_checkpoint
from labral.train.cv import run_cv
from labral.train.data import (
    build_data_module,
    build_datasets,
    check_datasets,
    data_fingerprint,
    dataset_rows,
    positive_weight,
)
from labral.train.distributed import (
    DistInfo,
    broadcast_flag,
    init_distributed,
    shutdown_distributed,
)
from labral.train.finalize import calibrate_and_test
from labral.train.finetune import frozen_backbone
from labral.train.loop import evaluate, steps_per_epoch, train_one_epoch
from labral.train.parts import (
    TrainParts,
    build_optimization,
    place_model,
    seed_everything,
    select_device,
    training_batches,
)
from labral.train.run_log import RunLogger, build_logger
from labral.train.settings import TrainSettings, train_settings
from labral.train.train_state import (
    build_callbacks,
    checkpoint_dict,
    new_train_state,
    restore_checkpoint,
    resume_path,
)


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
    settings = train_settings(cfg)
    trainer = settings.trainer
    torch.set_num_threads(threads_per_rank(trainer.num_threads, "trainer.num_threads"))
    device = select_device(trainer)
    info = init_distributed(device.type) if trainer.strategy == "ddp" else DistInfo()
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    try:
        return _train(cfg, settings, datasets, device, info)
    finally:
        shutdown_distributed()


def setup(
    cfg: DictConfig, datasets: dict[str, Dataset] | None, device: torch.device, info: DistInfo
) -> TrainParts:
    """Seed, then build data, model, loaders, loss, optimizer and scheduler from ``cfg``.

    The order of construction is fixed (it draws from the seeded RNGs), so a run is
    reproducible from its config.

    Raises:
        BadConfigError, BadManifestError: for anything that cannot work.
    """
    settings = train_settings(cfg)
    trainer = settings.trainer
    seed_everything(settings.seed)
    data = build_data_module(cfg)  # configs/data/: checks its settings before any reading
    if datasets is None:
        datasets = build_datasets(cfg)
    else:
        check_datasets(datasets)
    rows = [row for name in SPLIT_NAMES for row in dataset_rows(datasets[name])]
    placed = place_model(cfg, trainer, datasets["train"][0]["image"], device, info)
    batches = training_batches(datasets["train"], data, settings.seed, device, info)
    pos_weight = (
        positive_weight(datasets["train"].labels) if batches.sampling == "class_weight" else 1.0
    )
    targets = getattr(datasets["train"], "targets", None)
    auxiliary = dict(targets.weights) if targets is not None else {}
    if auxiliary and (info.enabled or data.on_device):
        raise BadConfigError(
            "the auxiliary targets (labral.train.auxiliary) train on one process from the "
            "DataLoader: use trainer=cpu or gpu without DDP and data.on_device=false, or set "
            "auxiliary={}"
        )
    accum = max(1, trainer.accumulate_grad_batches)
    max_epochs = trainer.max_epochs
    optimizer, scheduler = build_optimization(
        cfg, placed.raw_model, steps_per_epoch(len(batches.loader), accum), max_epochs, info
    )
    return TrainParts(
        data=data,
        datasets=datasets,
        fingerprint=data_fingerprint(rows) if rows else None,
        raw_model=placed.raw_model,
        model=placed.model,
        summary=placed.summary,
        sampler=batches.sampler,
        train_loader=batches.loader,
        val_loader=data.loader(datasets["val"]),
        test_loader=data.loader(datasets["test"]),
        loss_fn=torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, device=device)),
        optimizer=optimizer,
        scheduler=scheduler,
        accum=accum,
        max_epochs=max_epochs,
        precision=trainer.precision,
        channels_last=placed.channels_last,
        auxiliary=auxiliary,
    )


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
    trainer = train_settings(cfg).trainer
    progress = trainer.progress and info.is_main

    def on_step(step: int, values: dict[str, float]) -> None:
        if logger.step_due(step):
            logger.scalars(step, values)

    epoch = state["epoch"] + 1
    while epoch < parts.max_epochs and not state["stopped"]:
        parts.sampler.set_epoch(epoch)
        if hasattr(parts.train_loader, "set_epoch"):
            parts.train_loader.set_epoch(epoch)
        _set_epoch(parts.datasets["train"], epoch)
        frozen = frozen_backbone(parts.raw_model, cfg, epoch)
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
            grad_clip_norm=trainer.gradient_clip_val,
            progress=progress,
            on_step=on_step if info.is_main else None,
            global_step=state["global_step"],
            frozen=frozen,
            auxiliary=parts.auxiliary,
        )
        state["global_step"] += stats["steps"]
        stop = False
        if info.is_main:
            stop = _validate_and_record(
                parts, state, stats, epoch, stopper, checkpointer, logger, config, device
            )
        else:
            state["epoch"] = epoch
        state["stopped"] = broadcast_flag(stop, info, device)
        epoch += 1
    return state


def _validate_and_record(
    parts: TrainParts,
    state: dict[str, Any],
    stats: dict[str, float],
    epoch: int,
    stopper: EarlyStopping,
    checkpointer: ModelCheckpoint,
    logger: RunLogger,
    config: dict[str, Any],
    device: torch.device,
) -> bool:
    """Rank 0 after an epoch: validate, update early stopping, checkpoint, log and print.
    Returns whether training stops here (``state`` is updated in place)."""
    logits, labels = evaluate(
        parts.raw_model,
        parts.val_loader,
        device,
        precision=parts.precision,
        channels_last=parts.channels_last,
    )
    val = binary_metrics(labels, calibrated_probability(logits, 1.0))
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
    return stop


def _train(
    cfg: DictConfig,
    settings: TrainSettings,
    datasets: dict[str, Dataset] | None,
    device: torch.device,
    info: DistInfo,
) -> dict[str, Any]:
    run_dir = Path(str(cfg.paths.output_dir))
    parts = setup(cfg, datasets, device, info)
    stopper, checkpointer = build_callbacks(cfg, run_dir)
    state = new_train_state()
    ckpt_path = resume_path(settings, checkpointer)
    if ckpt_path is not None:
        state = restore_checkpoint(load_checkpoint(ckpt_path, map_location=device), parts)
        if info.is_main:
            print(f"resumed from {ckpt_path} after epoch {state['epoch']}")

    logger = build_logger(cfg, run_dir, enabled=info.is_main)  # configs/logger/
    config = config_dict(cfg)  # resolved once; stored in every checkpoint
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(config))
        logger.record(
            {
                "event": "start",
                "task_name": settings.task_name,
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
    value of that metric is returned instead, as a float, for Hydra's sweeper. With
    ``cv.folds=K`` the run is a K-fold cross-validation (:mod:`labral.train.cv`) and its
    ``cv.json`` summary is returned.
    """
    settings = train_settings(cfg)
    if settings.cv.folds:
        return run_cv(cfg, train)
    result = train(cfg)
    metric = settings.optimized_metric
    if metric:
        if metric not in result:
            raise BadConfigError(f"optimized_metric={metric!r} is not one of {sorted(result)}")
        return float(result[metric])
    return result


def main() -> None:
    """``python -m labral.train.command ...`` (used with torchrun): same as ``labral train``."""
    sys.exit(cli_main(["train", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
