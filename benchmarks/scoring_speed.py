"""Scoring throughput of `labral bench` against bare decoding + bundle calls, same process.

    .venv/bin/python benchmarks/scoring_speed.py                 # 1,000 clips
    .venv/bin/python benchmarks/scoring_speed.py --clips 200 --repeats 3
    .venv/bin/python benchmarks/scoring_speed.py --bundle path/to/bundle
    .venv/bin/python benchmarks/scoring_speed.py --smoke         # 6 clips in a temporary cache

The suite is ``synthetic-id`` resized to ``--clips`` clips (generated once into the bench
cache, DICOM JPEG, read through ``read_cine``). Without ``--bundle`` the default network
(``labral.models.compact.CompactVideoNet``, random weights; the cost does not depend on the
weights) is scripted into a temporary bundle with the contract's eval spec.

Each repeat times, interleaved: (a) *bare*: decode + eval transform every clip inline, one
bundle call per batch, nothing overlapped, once with ``--threads`` torch threads and once with
one; (b) *pipeline*: ``scoring.score_pass`` (prefetch thread + batches, torch threads =
cores - decode threads) exactly as `labral bench` runs it. Printed: medians of the repeats,
clips/s and the ratio pipeline / the faster bare loop of each repeat (target <= 1.20).

``--controls`` also times, in each repeat, the order controls as `labral bench` runs them
(every positive reversed, shuffled and motionless,
:func:`labral.bench.controls.score_controls`) and prints (pipeline + controls) / pipeline
(issue 10's target: <= 2.5).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from labral.bench import controls
from labral.bench import suite_scoring as scoring
from labral.bench.outputs import hardware
from labral.bench.suites import resolve_suite
from labral.bundle import Bundle, input_spec_from, load_bundle, write_bundle
from labral.datasets.io.reader import read_cine
from labral.models.compact import CompactVideoNet
from labral.train.export_formats import RelevanceModule

EVAL_SPEC = {"frames": 16, "fps": 10.0, "size": [96, 96], "windows": 1}


def default_bundle(folder: Path) -> Bundle:
    """Script the default compact network (random weights) into a bundle in ``folder``."""
    model = RelevanceModule(CompactVideoNet()).eval()
    spec = {
        "model_name": "compact-random",
        "class_names": ["intact", "detachment"],
        "eval_transform": EVAL_SPEC,
        "input_spec": input_spec_from(EVAL_SPEC),
        "temperature": 1.0,
        "threshold": 0.5,
    }
    return load_bundle(write_bundle(folder, torch.jit.script(model), spec))


def bare_pass(
    source: scoring.ClipSource,
    bundle: Bundle,
    transform: Callable[[dict[str, Any]], dict[str, Any]],
    batch_size: int,
) -> float:
    """Seconds to decode + transform every clip inline and call the bundle once per batch."""
    started = time.perf_counter()
    batch: list[torch.Tensor] = []
    for index in range(len(source)):
        batch.append(torch.as_tensor(transform({"clip": read_cine(source.paths[index])})["image"]))
        if len(batch) == batch_size or index == len(source) - 1:
            with torch.inference_mode():
                bundle.module(torch.cat(batch))
            batch = []
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Time the bare loops and the pipeline; print the figures and return the medians (s)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=1000, help="suite size (default 1000)")
    parser.add_argument(
        "--bundle", type=Path, default=None, help="bundle folder (default: compact)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="decode threads of the pipeline")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the bare loop")
    parser.add_argument("--cache-dir", type=Path, default=Path("data/bench_suites"))
    parser.add_argument(
        "--generate-workers", type=int, default=2, help="suite generation processes"
    )
    parser.add_argument(
        "--controls", action="store_true", help="also time the order controls (ratio <= 2.5)"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="6 clips, 1 repeat, batch 4, suite generated into a temporary folder",
    )
    args = parser.parse_args(argv)
    tmp_cache = tempfile.TemporaryDirectory() if args.smoke else None
    if tmp_cache is not None:
        args.clips, args.repeats, args.batch_size = 6, 1, 4
        args.cache_dir, args.generate_workers = Path(tmp_cache.name), 1
    torch.set_num_threads(args.threads)

    clips_per_patient = 3
    overrides = {
        "n_patients": -(-args.clips // clips_per_patient),
        "clips_per_patient": clips_per_patient,
    }
    started = time.perf_counter()
    suite = resolve_suite("synthetic-id", args.cache_dir, overrides, workers=args.generate_workers)
    paths = [r["path"] for r in suite.records][: args.clips]
    positives = [r["path"] for r in suite.records[: args.clips] if int(r["label"]) == 1]
    ready = time.perf_counter() - started
    print(f"suite: {len(paths)} clips ({suite.manifest.parent}), ready in {ready:.1f} s")

    with tempfile.TemporaryDirectory() as tmp:
        bundle = load_bundle(args.bundle) if args.bundle else default_bundle(Path(tmp))
        transform = scoring.eval_transforms([bundle])[0]
        source = scoring.ClipSource(paths)
        bare_pass(
            scoring.ClipSource(paths[: args.batch_size]), bundle, transform, args.batch_size
        )  # warm-up
        pipe_threads = scoring.model_threads(args.workers)
        times: dict[str, list[float]] = {"bare_1": [], "bare_n": [], "pipeline": []}
        if args.controls:
            times["controls"] = []
        for repeat in range(args.repeats):
            torch.set_num_threads(args.threads)
            times["bare_n"].append(bare_pass(source, bundle, transform, args.batch_size))
            torch.set_num_threads(1)
            times["bare_1"].append(bare_pass(source, bundle, transform, args.batch_size))
            torch.set_num_threads(pipe_threads)
            times["pipeline"].append(
                scoring.score_pass(
                    source, [bundle], [transform], batch_size=args.batch_size, workers=args.workers
                ).seconds
            )
            if args.controls:
                started = time.perf_counter()
                controls.score_controls(
                    scoring.ClipSource(positives, keep=True),
                    [bundle],
                    [transform],
                    0,
                    batch_size=args.batch_size,
                    workers=args.workers,
                )
                times["controls"].append(time.perf_counter() - started)
            print(
                f"repeat {repeat + 1}: bare ({args.threads} threads) {times['bare_n'][-1]:.2f} s, "
                f"bare (1 thread) {times['bare_1'][-1]:.2f} s, "
                f"pipeline {times['pipeline'][-1]:.2f} s"
            )

    hw = hardware()
    n = len(paths)
    print(f"hardware: {hw['cpu_model']}, {hw['cpu_count']} cores, torch {hw['torch']}")
    print(
        f"bundle: {bundle.name}, eval spec {bundle.spec['eval_transform']}, "
        f"batch {args.batch_size}; pipeline: {args.workers} decode thread(s) + "
        f"{pipe_threads} torch thread(s)"
    )
    medians = {key: statistics.median(value) for key, value in times.items()}
    print(
        f"bare decode + bundle call, {args.threads} torch threads: {medians['bare_n']:.2f} s "
        f"({n / medians['bare_n']:.2f} clips/s)"
    )
    print(
        f"bare decode + bundle call, 1 torch thread:  {medians['bare_1']:.2f} s "
        f"({n / medians['bare_1']:.2f} clips/s)"
    )
    print(
        f"labral bench pipeline:                      {medians['pipeline']:.2f} s "
        f"({n / medians['pipeline']:.2f} clips/s)"
    )
    # against the faster bare loop of the same repeat (per repeat, then the median)
    ratios = [
        p / min(a, b)
        for p, a, b in zip(times["pipeline"], times["bare_n"], times["bare_1"], strict=True)
    ]
    print(
        f"ratio pipeline / faster bare: per repeat {', '.join(f'{r:.3f}' for r in ratios)}; "
        f"median {statistics.median(ratios):.3f} (target <= 1.20)"
    )
    out = {**medians, "ratio": statistics.median(ratios)}
    if args.controls:
        with_controls = [
            (p + c) / p for p, c in zip(times["pipeline"], times["controls"], strict=True)
        ]
        print(
            f"order controls: {len(positives)} positives x {len(controls.CONTROLS)} controls, "
            f"median {medians['controls']:.2f} s; (pipeline + controls) / pipeline: per repeat "
            f"{', '.join(f'{r:.3f}' for r in with_controls)}; median "
            f"{statistics.median(with_controls):.3f} (target <= 2.5)"
        )
        out["controls_ratio"] = statistics.median(with_controls)
    if tmp_cache is not None:
        tmp_cache.cleanup()
    return out


if __name__ == "__main__":
    main()
