"""Data-path throughput: decode + preprocess against bare pydicom, cached against uncached.

    .venv/bin/python benchmarks/data_speed.py                # defaults
    .venv/bin/python benchmarks/data_speed.py --clips 24 --repeats 5 --syntax explicit
    .venv/bin/python benchmarks/data_speed.py --smoke        # 2 short clips: checks it runs

Writes ``--clips`` synthetic cine DICOMs (labral's generator and DICOM writer; 32 frames,
128x128 tissue region, JPEG Baseline by default) to a temporary folder, then, interleaved in
one process so machine load hits all of them alike, times ``--repeats`` passes of:

- bare: ``pydicom.dcmread(path).pixel_array`` (decode only, nothing else);
- read: ``labral.datasets.io.reader.read_cine(path)`` (decode, grayscale, crop, timing);
- full: ``build_eval_transform(spec)({"clip": path})`` (read + resample + resize + tensor);
- epochs of :class:`ClipDataset` with the disk cache: uncached (fresh cache folder: decode,
  preprocess, store, then one pass), disk-cached (a new data set on the warm folder, then one
  pass) and memory-cached (a second pass).

Prints medians, clips/s and frames/s (source frames), and the ratios against the targets of
issue 3: full path >= 0.8x the bare decode rate; a cached epoch >= 10x faster than an uncached
one. Single-threaded torch; numbers depend on what else the machine runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pydicom
import torch

from labral.datasets.clip_dataset import ClipDataset
from labral.datasets.io.reader import read_cine
from labral.datasets.synth.dicom_writer import write_cine_dicom
from labral.datasets.synth.generate import draw_patient, generate_clip
from labral.datasets.transforms.clip_transforms import build_eval_transform

TARGET_FULL_VS_BARE = 0.8
TARGET_CACHED_SPEEDUP = 10.0
SPEC = {"frames": 16, "fps": 10.0, "size": [96, 96], "windows": 1}


def write_clips(folder: Path, count: int, frames: int, syntax: str) -> list[Path]:
    """``count`` generated clips as DICOM files (alternating clip types); returns the paths."""
    paths = []
    for i in range(count):
        clip_type = "positive" if i % 2 else "normal"
        clip = generate_clip(draw_patient(i), clip_type, seed=i, frames=frames, fps=20.0)
        paths.append(write_cine_dicom(clip, folder / f"clip{i:03d}.dcm", syntax=syntax))
    return paths


def timed(action: Callable[[], object]) -> float:
    """Seconds one call of ``action`` takes."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def passes(data: ClipDataset) -> None:
    """Fetch every item once, dropping each (as a training loop does with its batches)."""
    for index in range(len(data)):
        data[index]


def epoch(records: list[dict], cache_dir: Path) -> tuple[float, ClipDataset]:
    """Seconds to build a ClipDataset on ``cache_dir`` and fetch every item once."""
    start = time.perf_counter()
    data = ClipDataset(records, SPEC, cache_dir=cache_dir)
    passes(data)
    return time.perf_counter() - start, data


def main(argv: list[str] | None = None) -> None:
    """Write the clips, time the passes interleaved, print medians and the target checks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--syntax", choices=["jpeg", "explicit"], default="jpeg")
    parser.add_argument("--smoke", action="store_true", help="2 clips of 8 frames, 1 repeat")
    args = parser.parse_args(argv)
    if args.smoke:
        args.clips, args.frames, args.repeats = 2, 8, 1
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_clips(folder / "clips", args.clips, args.frames, args.syntax)
        records = [{"path": str(p), "label": 0, "patient": p.stem} for p in paths]
        transform = build_eval_transform(SPEC)
        source_frames = sum(read_cine(p).num_frames for p in paths)  # also warms up imports

        def bare() -> None:
            for p in paths:
                _ = pydicom.dcmread(p).pixel_array

        def read() -> None:
            for p in paths:
                read_cine(p)

        def full() -> None:
            for p in paths:
                transform({"clip": str(p)})["image"]

        times: dict[str, list[float]] = {
            k: [] for k in ("bare", "read", "full", "un", "disk", "mem")
        }
        for run in range(args.repeats):
            times["bare"].append(timed(bare))
            times["read"].append(timed(read))
            times["full"].append(timed(full))
            uncached, _ = epoch(records, folder / f"cache{run}")
            cached, data = epoch(records, folder / f"cache{run}")
            times["un"].append(uncached)
            times["disk"].append(cached)
            times["mem"].append(timed(lambda data=data: passes(data)))

    med = {k: statistics.median(v) for k, v in times.items()}
    n = len(paths)
    print(
        f"{n} clips x {args.frames} frames, {args.syntax} DICOM, spec {SPEC}, "
        f"median of {args.repeats} runs, torch threads 1"
    )
    labels = {
        "bare": "bare pydicom decode",
        "read": "read_cine",
        "full": "full eval path",
        "un": "uncached epoch",
        "disk": "disk-cached epoch",
        "mem": "memory-cached epoch",
    }
    for key, label in labels.items():
        print(
            f"  {label:<22} {med[key]:8.3f} s  {n / med[key]:9.1f} clips/s  "
            f"{source_frames / med[key]:10.0f} frames/s"
        )
    full_ratio = med["bare"] / med["full"]
    disk_speedup, mem_speedup = med["un"] / med["disk"], med["un"] / med["mem"]
    verdict = "meets" if full_ratio >= TARGET_FULL_VS_BARE else "MISSES"
    print(f"full path / bare decode rate: {full_ratio:.2f}x ({verdict} >= {TARGET_FULL_VS_BARE}x)")
    verdict = "meets" if disk_speedup >= TARGET_CACHED_SPEEDUP else "MISSES"
    print(
        f"cached epoch speed-up: {disk_speedup:.1f}x from disk ({verdict} >= "
        f"{TARGET_CACHED_SPEEDUP}x), {mem_speedup:.1f}x from memory"
    )


if __name__ == "__main__":
    main()
