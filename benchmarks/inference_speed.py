"""Inference latency of every runtime at batch 1 and 8, in one process.

    .venv/bin/python benchmarks/inference_speed.py            # compact + still_frame, 32 frames
    .venv/bin/python benchmarks/inference_speed.py --models compact --repeats 50 --json out.json
    .venv/bin/python benchmarks/inference_speed.py --smoke    # compact, 16 frames, 2 rounds

Each model is built from ``configs/model/<name>.yaml`` (random weights: latency does not
depend on them), wrapped as the bundle runs it (``forward -> (logits, relevance)``),
converted with the same exporters as ``labral export`` and loaded back from ``model.ts``,
``model.pt2`` and ``model.onnx`` with the loaders ``labral.bundle.load_bundle`` uses
(:mod:`labral.runtimes`); ``eager`` is the wrapped module itself. For each batch size the
runtimes are timed in interleaved rounds (one call each per round) after a warm-up, so a busy
shared machine slows them alike; the figures are medians in ms per clip, and the ratios
against TorchScript come from the same rounds.
Targets: the default runtime (``labral.runtimes.DEFAULT_RUNTIME``) <= 20 ms per 32-frame clip
at batch 1 on 2 threads, and no slower than TorchScript.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from labral.models.describe import describe_model
from labral.runtimes import (
    DEFAULT_RUNTIME,
    Forward,
    load_exported,
    load_onnxruntime,
    load_torchscript,
)
from labral.train.export_formats import (
    OnnxExporter,
    RelevanceModule,
    TorchExportExporter,
    TorchScriptExporter,
)

DEFAULT_SIZE = (96, 96)
BATCHES = (1, 8)


def default_size() -> tuple[int, int]:
    """The eval size [H, W] from configs/transforms/default.yaml, else 96x96."""
    path = resources.files("labral.configs") / "transforms" / "default.yaml"
    try:
        size = OmegaConf.load(str(path)).eval.size
        return int(size[0]), int(size[1])
    except (FileNotFoundError, AttributeError, TypeError, IndexError):
        return DEFAULT_SIZE


def build_runtimes(name: str, example: torch.Tensor, folder: Path) -> dict[str, Forward]:
    """One forward callable per runtime, each loaded from its bundle file as a bundle would.

    Args:
        name: a config in configs/model/.
        example: float32 (2, 1, T, H, W), the export example (batch 2: batch axis dynamic).
        folder: where ``model.ts``, ``model.pt2`` and ``model.onnx`` are written and loaded.

    Returns:
        ``{"eager", "torchscript", "export", "onnxruntime"}`` -> forward(x (B, 1, T, H, W)).
        ONNX Runtime takes torch's intra-op thread count, as in the service.
    """
    cfg = OmegaConf.load(str(resources.files("labral.configs") / "model" / f"{name}.yaml"))
    module = RelevanceModule(instantiate(cfg).eval()).eval()
    torch.jit.save(TorchScriptExporter().convert(module, example), str(folder / "model.ts"))
    TorchExportExporter().save(TorchExportExporter().convert(module, example), folder)
    OnnxExporter().save(OnnxExporter().convert(module, example), folder)
    return {
        "eager": module,
        "torchscript": load_torchscript(folder / "model.ts", "cpu", {}),
        "export": load_exported(folder / "model.pt2", "cpu"),
        "onnxruntime": load_onnxruntime(folder / "model.onnx", "cpu"),
    }


def time_interleaved(
    runtimes: dict[str, Forward], x: torch.Tensor, repeats: int, warmup: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and process-CPU milliseconds per call of each runtime on ``x``, one call per round.

    Args:
        x: float32 (B, 1, T, H, W), the batch every runtime scores.

    Returns:
        (wall, cpu): runtime -> list of ``repeats`` times in ms per call. CPU time sums all
        threads of this process, so other jobs on the machine disturb it less than wall time.
    """
    with torch.inference_mode():
        for _ in range(warmup):
            for call in runtimes.values():
                call(x)
        wall: dict[str, list[float]] = {key: [] for key in runtimes}
        cpu: dict[str, list[float]] = {key: [] for key in runtimes}
        for _ in range(repeats):
            for key, call in runtimes.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                call(x)
                wall[key].append((time.perf_counter() - start) * 1000.0)
                cpu[key].append((time.process_time() - start_cpu) * 1000.0)
    return wall, cpu


def measure(name: str, frames: int, size: tuple[int, int], repeats: int,
            warmup: int) -> dict[str, Any]:  # fmt: skip
    """Median ms per clip of every runtime at each batch size, and ratios against TorchScript.

    Returns:
        ``{"model", "gflops_per_clip", "params", "batches": {"1": {"median_ms", "min_ms",
        "median_cpu_ms", "ratio_vs_torchscript"}, "8": {...}}}``; every time is per clip.
    """
    gen = torch.Generator().manual_seed(0)
    row: dict[str, Any] = {"model": name, "batches": {}}
    with tempfile.TemporaryDirectory() as tmp:
        runtimes = build_runtimes(name, torch.rand(2, 1, frames, *size, generator=gen), Path(tmp))
        for batch in BATCHES:
            x = torch.rand(batch, 1, frames, *size, generator=gen)
            wall, cpu = time_interleaved(runtimes, x, repeats, warmup)
            medians = {key: statistics.median(v) / batch for key, v in wall.items()}
            row["batches"][str(batch)] = {
                "median_ms": {key: round(value, 2) for key, value in medians.items()},
                "min_ms": {key: round(min(v) / batch, 2) for key, v in wall.items()},
                "median_cpu_ms": {
                    key: round(statistics.median(v) / batch, 2) for key, v in cpu.items()
                },
                "ratio_vs_torchscript": {
                    key: round(value / medians["torchscript"], 3) for key, value in medians.items()
                },
            }
    cfg = OmegaConf.load(str(resources.files("labral.configs") / "model" / f"{name}.yaml"))
    described = describe_model(instantiate(cfg), (1, frames, *size))
    row["gflops_per_clip"], row["params"] = described["gflops_per_clip"], described["params"]
    return row


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse arguments, measure each model, print a table; returns the result rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["compact", "still_frame"])
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, nargs=2, default=None, help="H W (default: eval size)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument(
        "--smoke", action="store_true", help="compact only, 16 frames, 2 rounds, 1 warm-up"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        # the eval size stays: below 96 x 96 the compact net runs several times slower on
        # CPU (measured 0.8 s eager at 8 x 32 x 32 against 0.15 s at 16 x 96 x 96)
        args.models, args.frames, args.repeats, args.warmup = ["compact"], 16, 2, 1
    torch.set_num_threads(args.threads)
    size = tuple(args.size) if args.size else default_size()
    print(
        f"batch {' and '.join(map(str, BATCHES))}, {args.frames}x{size[0]}x{size[1]} clip, "
        f"torch {torch.__version__}, {args.threads} threads, {args.repeats} interleaved rounds "
        f"after {args.warmup} warm-up, load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs (shared machine); default runtime {DEFAULT_RUNTIME}"
    )
    rows = []
    for name in args.models:
        row = measure(name, args.frames, size, args.repeats, args.warmup)
        rows.append(row)
        print(f"{name} ({row['gflops_per_clip']:.2f} GFLOPs per clip)")
        for batch, figures in row["batches"].items():
            ms, low, cpu, ratio = (
                figures[k] for k in ("median_ms", "min_ms", "median_cpu_ms", "ratio_vs_torchscript")
            )
            for k in ms:
                print(
                    f"  batch {batch} {k:<12} median {ms[k]:8.2f} ms/clip  min {low[k]:8.2f} ms  "
                    f"cpu {cpu[k]:8.2f} ms  x{ratio[k]:.2f} of torchscript"
                )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)
    return rows


if __name__ == "__main__":
    main()
