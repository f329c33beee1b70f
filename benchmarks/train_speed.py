"""Training throughput (clips/s) on CPU for every model, plus the real data pipeline.

    .venv/bin/python benchmarks/train_speed.py               # all models, 2 threads
    .venv/bin/python benchmarks/train_speed.py --models compact --steps 3
    .venv/bin/python benchmarks/train_speed.py --manifest data/synth/manifest.jsonl
    .venv/bin/python benchmarks/train_speed.py --smoke       # compact, batch 2, one step

For each model: forward + backward + AdamW step on random tensors of the default eval size
(configs/transforms/default.yaml), median of ``--repeats`` timings of ``--steps`` steps after
one warm-up step. With a manifest, the default model is also trained through labral's own
loop (ClipDataset, train transform with augmentation, DataLoader) for one pass over
``--pipeline-clips`` clips, and the ratio to the random-tensor figure is printed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import labral.train  # noqa: F401 - registers train_schema, which configs/train.yaml lists first

MODELS = ("compact", "still_frame", "r2plus1d_18", "r3d_18", "mc3_18")


def compose_train(*overrides: str) -> DictConfig:
    """The real train config (no Hydra run needed for the parts used here)."""
    with initialize_config_module(config_module="labral.configs", version_base="1.3"):
        return compose("train", overrides=list(overrides))


def random_tensor_speed(
    model: torch.nn.Module, shape: tuple[int, ...], batch: int, steps: int, repeats: int
) -> float:
    """Median clips/s of ``steps`` training steps on random (batch, *shape) tensors."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(batch, *shape)
    y = (torch.arange(batch) % 2).float()
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x).float(), y).backward()
        optimizer.step()

    step()  # warm-up
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(batch * steps / (time.perf_counter() - start))
    return statistics.median(rates)


def pipeline_speed(manifest: Path, clips: int, batch: int) -> float:
    """clips/s of one pass of labral's loop over ``clips`` training clips (decoded clips cached
    in memory first, so reading files is not timed; augmentation and batching are)."""
    from labral.datasets.clip_dataset import ClipDataset
    from labral.datasets.manifests.manifest import load_manifest
    from labral.train.loop import train_one_epoch

    cfg = compose_train(f"data.manifest={manifest}")
    spec = OmegaConf.to_container(cfg.transforms.eval, resolve=True)
    augment = OmegaConf.to_container(cfg.transforms.augment, resolve=True)
    rows = [r for r in load_manifest(manifest) if r.get("split") == "train"][:clips]
    dataset = ClipDataset(rows, spec, train=True, augment=augment, cache_dir=None, seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True)
    model = instantiate(cfg.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    stats = train_one_epoch(
        model,
        loader,
        optimizer,
        scheduler,
        torch.nn.BCEWithLogitsLoss(),
        torch.device("cpu"),
        epoch=0,
        progress=False,
    )
    return stats["clips_per_s"]


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Time every model (and the pipeline, given a manifest); print and return clips/s."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--manifest", type=Path, default=None)
    parser.add_argument("--pipeline-clips", type=int, default=48)
    parser.add_argument(
        "--smoke", action="store_true", help="compact only, batch 2, 1 x 1 step, 4 pipeline clips"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.models, args.batch, args.steps, args.repeats = ["compact"], 2, 1, 1
        args.pipeline_clips = 4
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = compose_train()
    spec = base.transforms.eval
    shape = (1, int(spec.frames), int(spec.size[0]), int(spec.size[1]))
    print(
        f"training clips/s on CPU ({args.threads} threads), input {shape}, batch {args.batch}, "
        f"median of {args.repeats} x {args.steps} steps"
    )
    rates = {}
    for name in args.models:
        model = instantiate(compose_train(f"model={name}").model)
        rates[name] = random_tensor_speed(model, shape, args.batch, args.steps, args.repeats)
        ratio = rates[name] / rates[args.models[0]]
        print(f"  {name:<12} {rates[name]:8.2f} clips/s   x{ratio:.2f} vs {args.models[0]}")
    if args.manifest is not None:
        if not args.manifest.is_file():
            raise SystemExit(f"{args.manifest} not found: run `labral synth` first")
        rate = pipeline_speed(args.manifest, args.pipeline_clips, args.batch)
        reference = rates.get("compact")
        extra = f"   x{rate / reference:.2f} vs random tensors" if reference else ""
        print(f"  compact through labral's loop + data pipeline: {rate:.2f} clips/s{extra}")
        rates["pipeline"] = rate
    return rates


if __name__ == "__main__":
    main()
