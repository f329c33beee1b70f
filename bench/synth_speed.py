"""How fast ``labral synth`` makes data: clips/s on one core and on all cores.

    PYTHONSAFEPATH=1 .venv/bin/python bench/synth_speed.py              # + 2,000-clip run
    PYTHONSAFEPATH=1 .venv/bin/python bench/synth_speed.py --skip-large  # quick figures only

The default clip (32 frames, 128x128, JPEG DICOM written, no preview). Each figure is the
median of ``--repeats`` runs; the per-stage split (generate vs DICOM write) shows where a
clip's time goes. Targets (issue 2): >= 20 clips/s per core; 2,000 clips in < 120 s on 2
cores. Numbers depend on what else the machine runs: say so when you report them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from labral.datasets.synth.dataset import plan_dataset, render_job, synthesize
from labral.datasets.synth.dicom_writer import write_cine_dicom
from labral.datasets.synth.settings import SynthSettings

TARGET_PER_CORE = 20.0
TARGET_LARGE_S = 120.0


def settings_for(out: Path, n_clips: int, workers: int) -> SynthSettings:
    """Default-clip settings giving about ``n_clips`` clips (3 clips per hip, 1 hip)."""
    return SynthSettings(
        out=out,
        n_patients=max(1, n_clips // 3),
        hips_per_patient=(1, 1),
        clips_per_hip=(3, 3),
        workers=workers,
        preview=False,
        progress=False,
    )


def stage_times(repeats: int, clips: int = 10) -> tuple[float, float]:
    """Median seconds per clip spent generating and writing JPEG DICOM (one process)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(Path(tmp), clips, 1)
        jobs = plan_dataset(settings)[:clips]
        gen, write = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            made = [render_job(job, settings) for job in jobs]
            gen.append((time.perf_counter() - start) / len(jobs))
            start = time.perf_counter()
            for job, clip in zip(jobs, made, strict=True):
                write_cine_dicom(clip, Path(tmp) / job.relpath, syntax="jpeg")
            write.append((time.perf_counter() - start) / len(jobs))
    return statistics.median(gen), statistics.median(write)


def clips_per_second(n_clips: int, workers: int, repeats: int) -> tuple[float, int]:
    """Median clips/s of a whole ``synthesize`` run (manifest, DICOM files) and its size."""
    rates, size = [], 0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            settings = settings_for(Path(tmp), n_clips, workers)
            start = time.perf_counter()
            manifest = synthesize(settings)
            elapsed = time.perf_counter() - start
            size = len(manifest.read_text().splitlines())
            rates.append(size / elapsed)
    return statistics.median(rates), size


def main() -> None:
    """Print the figures (medians) and whether the targets are met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=60, help="clips per throughput run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--large-clips", type=int, default=2000, help="size of the large run")
    parser.add_argument("--skip-large", action="store_true", help="skip the large run")
    args = parser.parse_args()
    cores = SynthSettings(out=Path(".")).resolved_workers

    print(
        f"labral synth speed: 32x128x128 clips, JPEG DICOM, {cores} cores, "
        f"load average {os.getloadavg()[0]:.1f} (shared machine)"
    )
    gen, write = stage_times(args.repeats)
    print(
        f"  per clip, one process : generate {gen * 1e3:.1f} ms + write DICOM "
        f"{write * 1e3:.1f} ms = {1 / (gen + write):.1f} clips/s"
    )
    one, size = clips_per_second(args.clips, 1, args.repeats)
    print(
        f"  synthesize, 1 worker  : {one:.1f} clips/s ({size} clips, median of "
        f"{args.repeats})  target >= {TARGET_PER_CORE:.0f}: "
        f"{'met' if one >= TARGET_PER_CORE else 'NOT met'}"
    )
    if cores > 1:
        many, size = clips_per_second(args.clips * cores, cores, args.repeats)
        print(
            f"  synthesize, {cores} workers : {many:.1f} clips/s ({size} clips) = "
            f"{many / one:.2f}x one worker, {many / cores:.1f} clips/s per core"
        )
    if not args.skip_large:
        with tempfile.TemporaryDirectory() as tmp:
            settings = settings_for(Path(tmp), args.large_clips, 0)
            start = time.perf_counter()
            manifest = synthesize(settings)
            elapsed = time.perf_counter() - start
            size = len(manifest.read_text().splitlines())
        print(
            f"  large run, {cores} workers: {size} clips in {elapsed:.1f} s "
            f"({size / elapsed:.1f} clips/s)  target < {TARGET_LARGE_S:.0f} s: "
            f"{'met' if elapsed < TARGET_LARGE_S else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
