"""GPU training throughput: labral's loop + on-device data pipeline vs the bare model.

    .venv/bin/python benchmarks/gpu_train_speed.py              # r2plus1d_18, GPU
    .venv/bin/python benchmarks/gpu_train_speed.py --variants default cl3d cl3d+compile
    .venv/bin/python benchmarks/gpu_train_speed.py --smoke      # tiny, runs on CPU

Same process, same card, for each memory-format/compile variant:
- bare: forward + backward + AdamW step of the model on one random float32 batch already on
  the device (bf16 autocast on CUDA), synchronised only at the end of the timing;
- labral: ``labral.train.loop.train_one_epoch`` over ``DeviceClipBatches``: cached uint8 clips
  on the device, a random temporal window, shift and gain per batch drawn on the device
  (clips from ``--manifest`` through ClipDataset, else random uint8 clips).
Prints clips/s of both and the ratio labral / bare (target >= 0.9).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate

from labral.train.gpu_batches import DeviceClipBatches
from labral.train.loop import autocast_context, train_one_epoch


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA only), so timings cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_model(
    name: str, device: torch.device, channels_last: bool, use_compile: bool
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(module to train, raw module) for configs/model/<name>.yaml; the first is compiled when
    ``use_compile``, both map float32 (B, 1, T, H, W) to logits (B,)."""
    with initialize_config_module(config_module="labral.configs", version_base="1.3"):
        cfg = compose("train", overrides=[f"model={name}"])
    raw = instantiate(cfg.model).to(device)
    if channels_last:
        raw = raw.to(memory_format=torch.channels_last_3d)
    return (torch.compile(raw) if use_compile else raw), raw


def bare_speed(
    model: torch.nn.Module,
    raw: torch.nn.Module,
    shape: tuple[int, ...],
    batch: int,
    steps: int,
    repeats: int,
    device: torch.device,
    precision: str,
    channels_last: bool,
) -> float:
    """Median clips/s of the bare training step on a random batch already on the device.

    Args:
        model: the module stepped (maybe compiled). raw: its parameters go to AdamW.
        shape: (C, T, H, W) of one clip; the batch is float32 (batch, C, T, H, W).
    """
    x = torch.rand(batch, *shape, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    y = (torch.arange(batch, device=device) % 2).float()
    optimizer = torch.optim.AdamW(raw.parameters(), lr=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast_context(device, precision):
            logits = model(x)
        loss_fn(logits.float(), y).backward()
        optimizer.step()

    for _ in range(2):  # warm-up (and compilation)
        step()
    sync(device)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync(device)
        rates.append(batch * steps / (time.perf_counter() - start))
    return statistics.median(rates)


def cached_clips(
    args: argparse.Namespace, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, T0, H, W) clips and (N,) labels, T0 = frames + 8."""
    frames = args.frames + 8
    if args.manifest:
        from labral.datasets.clip_dataset import ClipDataset
        from labral.datasets.manifests.manifest import load_manifest

        rows = [r for r in load_manifest(args.manifest) if r.get("split") == "train"]
        spec = {"frames": frames, "fps": 10.0, "size": [args.size, args.size], "windows": 1}
        dataset = ClipDataset(rows[: args.clips], spec, cache_dir=None)
        images = torch.stack([dataset[i]["image"][0, 0] for i in range(len(dataset))])
        clips = (images * 255).round().to(torch.uint8)
        labels = torch.as_tensor(dataset.labels)
    else:
        generator = torch.Generator().manual_seed(0)
        clips = torch.randint(
            0,
            256,
            (args.clips, frames, args.size, args.size),
            dtype=torch.uint8,
            generator=generator,
        )
        labels = torch.arange(args.clips) % 2
    return clips.to(device), labels.to(device)


def labral_speed(
    model: torch.nn.Module,
    raw: torch.nn.Module,
    clips: torch.Tensor,
    labels: torch.Tensor,
    args: argparse.Namespace,
    device: torch.device,
    precision: str,
    channels_last: bool,
    repeats: int,
) -> float:
    """Median clips/s of train_one_epoch over on-device batches (one warm-up pass first).

    Args:
        clips: uint8 (N, T0, H, W) on ``device``. labels: int (N,) on ``device``.
    """
    batches = DeviceClipBatches(clips, labels, args.frames, args.batch, device, seed=0)
    optimizer = torch.optim.AdamW(raw.parameters(), lr=1e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rates = []
    for epoch in range(repeats + 1):
        batches.set_epoch(epoch)
        sync(device)
        start = time.perf_counter()
        train_one_epoch(
            model,
            batches,
            optimizer,
            scheduler,
            loss_fn,
            device,
            epoch=epoch,
            precision=precision,
            channels_last=channels_last,
            progress=False,
        )
        sync(device)
        if epoch:  # the first pass warms up (and compiles)
            rates.append(len(clips) / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Time bare and labral training for each variant; print and return clips/s and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="r2plus1d_18")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps (bare)")
    parser.add_argument("--clips", type=int, default=640, help="cached clips (labral pass)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--manifest", default=None)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["default", "cl3d", "cl3d+compile"],
        choices=["default", "cl3d", "compile", "cl3d+compile"],
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; fine on CPU")
    args = parser.parse_args(argv)
    if args.smoke:
        args.frames, args.size, args.batch, args.steps, args.clips = 4, 32, 4, 2, 8
        args.repeats, args.variants = 1, [v for v in args.variants if "compile" not in v]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(2)
    precision = "bf16" if device.type == "cuda" else "32"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"{args.model} {args.frames}x{args.size}x{args.size} batch {args.batch} on {name} "
        f"({precision})"
    )
    clips, labels = cached_clips(args, device)
    shape = (1, args.frames, args.size, args.size)
    results = {}
    for variant in args.variants:
        channels_last, use_compile = "cl3d" in variant, "compile" in variant
        torch.manual_seed(0)
        model, raw = build_model(args.model, device, channels_last, use_compile)
        bare = bare_speed(
            model,
            raw,
            shape,
            args.batch,
            args.steps,
            args.repeats,
            device,
            precision,
            channels_last,
        )
        ours = labral_speed(
            model, raw, clips, labels, args, device, precision, channels_last, args.repeats
        )
        results[variant] = {"bare": bare, "labral": ours, "ratio": ours / bare}
        print(
            f"  {variant:<13} bare {bare:9.1f} clips/s   labral loop+data {ours:9.1f} clips/s"
            f"   ratio {ours / bare:.2f}"
        )
    best = max(results, key=lambda v: results[v]["labral"])
    print(f"fastest variant through labral's loop: {best}")
    return results


if __name__ == "__main__":
    main()
