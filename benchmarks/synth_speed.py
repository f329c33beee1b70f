"""How fast ``labral synth`` makes data: clips/s on one core and on all cores.

    .venv/bin/python benchmarks/synth_speed.py              # + 2,000-clip run
    .venv/bin/python benchmarks/synth_speed.py --skip-large # quick figures only
    .venv/bin/python benchmarks/synth_speed.py --smoke      # a few clips: checks it runs
    .venv/bin/python benchmarks/synth_speed.py --levels hard expert  # per-level split only

The per-clip split is printed for every difficulty level (``--levels``, default all); the
whole-run throughput uses the default level.

The default clip (32 frames, 128x128, JPEG DICOM written, no preview). Each figure is the
median of ``--repeats`` runs; the per-stage split (generate vs DICOM write) shows where a
clip's time goes. CPU time (process + finished workers) is printed beside wall time: on
a shared machine it is the fairer per-core figure. Targets (issue 2): >= 20 clips/s per
core; 2,000 clips in < 120 s on 2 cores. Numbers depend on what else the machine runs:
say so when you report them.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from labral.datasets.synth.dataset import plan_dataset, render_job, synthesize
from labral.datasets.synth.dicom_writer import encode_cine_dicom
from labral.datasets.synth.difficulty import known_levels
from labral.datasets.synth.settings import SynthSettings

TARGET_PER_CORE = 20.0
TARGET_LARGE_S = 120.0


def settings_for(
    out: Path, n_clips: int, workers: int, difficulty: str | None = None
) -> SynthSettings:
    """Default-clip settings giving about ``n_clips`` clips (3 clips per hip, 1 hip)."""
    return SynthSettings.from_config(
        {
            "difficulty": difficulty,
            "out": str(out),
            "n_patients": max(1, n_clips // 3),
            "hips_per_patient": [1, 1],
            "clips_per_hip": [3, 3],
            "workers": workers,
            "preview": False,
            "progress": False,
        },
        check_out=False,
    )


def _cpu_seconds() -> float:
    """CPU time of this process plus its finished children (user + system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def stage_times(repeats: int, clips: int = 10, level: str | None = None) -> dict[str, float]:
    """Median wall and CPU seconds per clip spent generating and encoding JPEG DICOM."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(Path(tmp), clips, 1, level)
        jobs = plan_dataset(settings)[:clips]
        runs: dict[str, list[float]] = {"gen": [], "gen_cpu": [], "dicom": [], "dicom_cpu": []}
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            made = [render_job(job, settings) for job in jobs]
            runs["gen"].append((time.perf_counter() - wall) / len(jobs))
            runs["gen_cpu"].append((time.process_time() - cpu) / len(jobs))
            wall, cpu = time.perf_counter(), time.process_time()
            for clip in made:
                encode_cine_dicom(clip, syntax="jpeg")
            runs["dicom"].append((time.perf_counter() - wall) / len(jobs))
            runs["dicom_cpu"].append((time.process_time() - cpu) / len(jobs))
    return {k: statistics.median(v) for k, v in runs.items()}


def clips_per_second(n_clips: int, workers: int, repeats: int) -> tuple[float, float, int]:
    """Median clips per wall second and per CPU second of a whole ``synthesize`` run.

    Returns:
        (clips/s wall, clips per CPU-second, clips in the run).
    """
    rates, cpu_rates, size = [], [], 0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            settings = settings_for(Path(tmp), n_clips, workers)
            wall, cpu = time.perf_counter(), _cpu_seconds()
            manifest = synthesize(settings)
            elapsed, cpu_used = time.perf_counter() - wall, _cpu_seconds() - cpu
            size = len(manifest.read_text().splitlines())
            rates.append(size / elapsed)
            cpu_rates.append(size / max(cpu_used, 1e-9))
    return statistics.median(rates), statistics.median(cpu_rates), size


def main(argv: list[str] | None = None) -> None:
    """Print the figures (medians) and whether the targets are met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=60, help="clips per throughput run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--large-clips", type=int, default=2000, help="size of the large run")
    parser.add_argument("--skip-large", action="store_true", help="skip the large run")
    parser.add_argument("--smoke", action="store_true", help="3 clips, 1 repeat, no large run")
    parser.add_argument("--levels", nargs="*", default=None, help="difficulty levels (all)")
    args = parser.parse_args(argv)
    stage_clips = 10
    if args.smoke:
        args.clips, args.repeats, args.skip_large, stage_clips = 3, 1, True, 2
    cores = settings_for(Path("."), 3, 0).resolved_workers

    print(
        f"labral synth speed: 32x128x128 clips, JPEG DICOM, {cores} cores, "
        f"load average {os.getloadavg()[0]:.1f} (shared machine)"
    )
    for level in args.levels or known_levels():
        st = stage_times(args.repeats, stage_clips, level)
        rate = 1 / (st["gen_cpu"] + st["dicom_cpu"])
        print(
            f"  per clip, one process, {level:>6}: generate {st['gen'] * 1e3:.1f} ms "
            f"(CPU {st['gen_cpu'] * 1e3:.1f}) + encode DICOM {st['dicom'] * 1e3:.1f} ms "
            f"(CPU {st['dicom_cpu'] * 1e3:.1f}) -> {rate:.1f} clips per CPU-second "
            f"({'met' if rate >= TARGET_PER_CORE else 'NOT met'})"
        )
    one, one_cpu, size = clips_per_second(args.clips, 1, args.repeats)
    verdict = "met" if one_cpu >= TARGET_PER_CORE else "NOT met"
    print(
        f"  synthesize, 1 worker  : {one:.1f} clips/s wall, {one_cpu:.1f} clips per "
        f"CPU-second ({size} clips, median of {args.repeats}); target >= "
        f"{TARGET_PER_CORE:.0f}/core (CPU time): {verdict}"
    )
    if cores > 1:
        many, many_cpu, size = clips_per_second(args.clips * cores, cores, args.repeats)
        print(
            f"  synthesize, {cores} workers : {many:.1f} clips/s wall ({size} clips) = "
            f"{many / one:.2f}x one worker; {many_cpu:.1f} clips per CPU-second"
        )
    if not args.skip_large:
        with tempfile.TemporaryDirectory() as tmp:
            settings = settings_for(Path(tmp), args.large_clips, 0)
            start, cpu = time.perf_counter(), _cpu_seconds()
            manifest = synthesize(settings)
            elapsed, cpu_used = time.perf_counter() - start, _cpu_seconds() - cpu
            size = len(manifest.read_text().splitlines())
        print(
            f"  large run, {cores} workers: {size} clips in {elapsed:.1f} s wall "
            f"({size / elapsed:.1f} clips/s), {cpu_used:.1f} CPU-s = {cpu_used / cores:.1f} s "
            f"if the {cores} cores were ours; target < {TARGET_LARGE_S:.0f} s wall: "
            f"{'met' if elapsed < TARGET_LARGE_S else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
