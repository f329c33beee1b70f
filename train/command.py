"""``labral train``: a thin Hydra entry point over the plain, testable :func:`train`.

labral train                                 # defaults: compact model, synthetic data, CPU
labral train experiment=demo                 # the README's main job (2 CPU cores)
labral train resume=true hydra.run.dir=outputs/train/<run>   # continue a killed run
torchrun --nproc_per_node=2 -m labral.train.command trainer=ddp hydra.run.dir=<dir>
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset

from labral.errors import BadConfigError
from labral.metrics import binary_metrics
from labral.train.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
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


def _train(
    cfg: DictConfig, datasets: dict[str, Dataset] | None, device: torch.device, info: DistInfo
) -> dict[str, Any]:
    trainer = cfg.trainer
    seed = int(cfg.seed)
    seed_everything(seed)
    run_dir = Path(str(cfg.paths.output_dir))
    ckpt_dir = run_dir / "checkpoints"
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
    val_loader = make_loader(datasets["val"], cfg)
    test_loader = make_loader(datasets["test"], cfg)
    pos_weight = positive_weight(datasets["train"].labels) if sampling == "class_weight" else 1.0
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, device=device))

    from hydra.utils import instantiate

    accum = max(1, int(trainer.get("accumulate_grad_batches", 1)))
    max_epochs = int(trainer.max_epochs)
    per_epoch = steps_per_epoch(len(train_loader), accum)
    optimizer = instantiate(cfg.optim)(params=raw_model.parameters())
    scheduler = instantiate(cfg.scheduler)(
        optimizer, total_steps=per_epoch * max_epochs, steps_per_epoch=per_epoch
    )
    precision = str(trainer.get("precision", "32"))
    state = {
        "epoch": -1,
        "best_metric": -1.0,
        "best_epoch": -1,
        "bad_epochs": 0,
        "global_step": 0,
        "stopped": False,
    }
    ckpt_path = cfg.get("ckpt_path") or (ckpt_dir / "last.pt" if cfg.get("resume") else None)
    if ckpt_path is not None and not cfg.get("ckpt_path") and not Path(ckpt_path).is_file():
        raise BadConfigError(
            f"resume=true but {ckpt_path} does not exist; set hydra.run.dir=<the folder of the "
            "run to continue> (or ckpt_path=<its checkpoints/last.pt>)"
        )
    if ckpt_path is not None:
        ckpt = load_checkpoint(ckpt_path, map_location=device)
        raw_model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        state.update(ckpt["train_state"])
        restore_rng_state(ckpt["rng"])
        if info.is_main:
            print(f"resumed from {ckpt_path} after epoch {state['epoch']}")

    logger = RunLogger(
        run_dir, tensorboard=bool(cfg.logger.get("tensorboard", True)), enabled=info.is_main
    )
    config = config_dict(cfg)  # resolved once; stored in every checkpoint
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(config))
        logger.record({"event": "start", **summary, "resumed_from_epoch": state["epoch"]})
    patience = int(trainer.get("early_stopping_patience", 0) or 0)
    min_delta = float(trainer.get("early_stopping_min_delta", 0.0))
    progress = bool(trainer.get("progress", True)) and info.is_main

    def on_step(step: int, values: dict[str, float]) -> None:
        if step % int(cfg.logger.get("log_every_n_steps", 10)) == 0:
            logger.scalars(step, values)

    epoch = state["epoch"] + 1
    while epoch < max_epochs and not state["stopped"]:
        sampler.set_epoch(epoch)
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(epoch)
        _set_epoch(datasets["train"], epoch)
        stats = train_one_epoch(
            model,
            train_loader,
            optimizer,
            scheduler,
            loss_fn,
            device,
            epoch=epoch,
            accum_steps=accum,
            precision=precision,
            channels_last=channels_last,
            grad_clip_norm=trainer.get("gradient_clip_val"),
            progress=progress,
            on_step=on_step if info.is_main else None,
            global_step=state["global_step"],
        )
        state["global_step"] += stats["steps"]
        stop = False
        if info.is_main:
            logits, labels = evaluate(
                raw_model, val_loader, device, precision=precision, channels_last=channels_last
            )
            val = binary_metrics(labels, sigmoid(logits))
            improved = val["auroc"] is not None and val["auroc"] > state["best_metric"] + min_delta
            if improved:
                state.update(best_metric=val["auroc"], best_epoch=epoch, bad_epochs=0)
            else:
                state["bad_epochs"] += 1
            stop = bool(patience) and state["bad_epochs"] >= patience
            state.update(epoch=epoch, stopped=stop)
            ckpt = {
                "model": raw_model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": {},
                "rng": capture_rng_state(),
                "train_state": dict(state),
                "epoch": epoch,
                "best_metric": state["best_metric"],
                "config": config,
                "model_summary": summary,
            }
            if improved:
                save_checkpoint(ckpt, ckpt_dir / "best.pt")
            save_checkpoint(ckpt, ckpt_dir / "last.pt")
            logger.record(
                {
                    "epoch": epoch,
                    "train_loss": stats["loss"],
                    "clips_per_s": stats["clips_per_s"],
                    "val_auroc": val["auroc"],
                    "val_nll": val["nll"],
                    "lr": optimizer.param_groups[0]["lr"],
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
                raw_model,
                val_loader,
                test_loader,
                device,
                run_dir,
                fingerprint,
                precision,
                channels_last,
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
