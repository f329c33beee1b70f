"""Batch-1 inference latency: eager vs TorchScript vs ONNX Runtime, in one process.

    .venv/bin/python benchmarks/inference_speed.py            # compact + still_frame, 32 frames
    .venv/bin/python benchmarks/inference_speed.py --models compact --repeats 50 --json out.json
    .venv/bin/python benchmarks/inference_speed.py --smoke    # compact, 16 frames, 2 rounds

Each model is built from ``configs/model/<name>.yaml`` (random weights: latency does not
depend on them), wrapped as the bundle runs it (``forward -> (logits, relevance)``) and
converted with the same exporters as ``labral export``; the TorchScript module goes through
a save/load round trip, as in a bundle. The backends are timed in interleaved rounds (one
call each per round) after a warm-up, so a busy shared machine slows them alike; the figures
are medians, and the ratios against eager come from the same rounds.
Targets: compact <= 50 ms per 32-frame clip on 2 threads; TorchScript no slower than eager.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from labral.models.describe import describe_model
from labral.train.exporters import OnnxExporter, RelevanceModule, TorchScriptExporter

DEFAULT_SIZE = (96, 96)


def default_size() -> tuple[int, int]:
    """The eval size [H, W] from configs/transforms/default.yaml, else 96x96."""
    path = resources.files("labral.configs") / "transforms" / "default.yaml"
    try:
        size = OmegaConf.load(str(path)).eval.size
        return int(size[0]), int(size[1])
    except (FileNotFoundError, AttributeError, TypeError, IndexError):
        return DEFAULT_SIZE


def build_backends(name: str, example: torch.Tensor, threads: int) -> dict[str, Callable[[], Any]]:
    """Callables running one forward each: ``eager``, ``torchscript``, ``onnxruntime``.

    Args:
        name: a config in configs/model/.
        example: float32 (1, 1, T, H, W), the clip every backend scores.
        threads: intra-op threads for ONNX Runtime (torch's are set by the caller).
    """
    import onnxruntime

    cfg = OmegaConf.load(str(resources.files("labral.configs") / "model" / f"{name}.yaml"))
    module = RelevanceModule(instantiate(cfg).eval()).eval()
    buffer = io.BytesIO()
    torch.jit.save(TorchScriptExporter().convert(module, example), buffer)
    buffer.seek(0)
    scripted = torch.jit.load(buffer)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        OnnxExporter().convert(module, example), options, providers=["CPUExecutionProvider"]
    )
    feed = {"clip": example.numpy()}

    def eager() -> Any:
        with torch.inference_mode():
            return module(example)

    def torchscript() -> Any:
        with torch.inference_mode():
            return scripted(example)

    return {
        "eager": eager,
        "torchscript": torchscript,
        "onnxruntime": lambda: session.run(None, feed),
    }


def time_interleaved(
    backends: dict[str, Callable[[], Any]], repeats: int, warmup: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and process-CPU milliseconds per call for each backend, one call each per round.

    Returns:
        (wall, cpu): backend -> list of ``repeats`` times in ms. CPU time sums all threads
        of this process, so it is less disturbed than wall time by other jobs on the machine.
    """
    for _ in range(warmup):
        for call in backends.values():
            call()
    wall: dict[str, list[float]] = {key: [] for key in backends}
    cpu: dict[str, list[float]] = {key: [] for key in backends}
    for _ in range(repeats):
        for key, call in backends.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            call()
            wall[key].append((time.perf_counter() - start) * 1000.0)
            cpu[key].append((time.process_time() - start_cpu) * 1000.0)
    return wall, cpu


def measure(name: str, frames: int, size: tuple[int, int], threads: int, repeats: int,
            warmup: int) -> dict[str, Any]:  # fmt: skip
    """Median latency (ms) per backend and the ratios against eager for one model."""
    example = torch.rand(1, 1, frames, *size, generator=torch.Generator().manual_seed(0))
    backends = build_backends(name, example, threads)
    wall, cpu = time_interleaved(backends, repeats, warmup)
    medians = {key: statistics.median(values) for key, values in wall.items()}
    cfg = OmegaConf.load(str(resources.files("labral.configs") / "model" / f"{name}.yaml"))
    described = describe_model(instantiate(cfg), (1, frames, *size))
    return {
        "model": name,
        "gflops_per_clip": described["gflops_per_clip"],
        "params": described["params"],
        "median_ms": {key: round(value, 2) for key, value in medians.items()},
        "min_ms": {key: round(min(values), 2) for key, values in wall.items()},
        "median_cpu_ms": {key: round(statistics.median(v), 2) for key, v in cpu.items()},
        "ratio_vs_eager": {
            key: round(value / medians["eager"], 3) for key, value in medians.items()
        },
    }


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
        f"batch 1, {args.frames}x{size[0]}x{size[1]} clip, torch {torch.__version__}, "
        f"{args.threads} threads, {args.repeats} interleaved rounds after {args.warmup} warm-up, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (shared machine)"
    )
    rows = []
    for name in args.models:
        row = measure(name, args.frames, size, args.threads, args.repeats, args.warmup)
        rows.append(row)
        ms, low, cpu, ratio = (
            row[k] for k in ("median_ms", "min_ms", "median_cpu_ms", "ratio_vs_eager")
        )
        print(f"{name} ({row['gflops_per_clip']:.2f} GFLOPs per clip)")
        for k in ms:
            print(
                f"  {k:<12} median {ms[k]:8.2f} ms  min {low[k]:8.2f} ms  "
                f"cpu {cpu[k]:8.2f} ms  x{ratio[k]:.2f} of eager"
            )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)
    return rows


if __name__ == "__main__":
    main()
