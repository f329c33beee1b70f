"""What the input check adds to scoring one clip, same process, same clips (issue 22's
target: at most 10%).

    .venv/bin/python benchmarks/input_check_speed.py --bundle outputs/demo/bundles/cleft
    .venv/bin/python benchmarks/input_check_speed.py --bundle B --clips 40 --repeats 5
    .venv/bin/python benchmarks/input_check_speed.py --smoke   # a toy bundle, 4 clips

Clips are the generator's valid clips (32 x 128 x 128, every level), decoded in memory. Each
repeat scores every clip with :meth:`labral.scoring.ClipScorer.score`, interleaved: once
with the bundle's input check and once with it removed (the bundle as exported before the
check). Printed: the medians over repeats of ms per clip for each, the check alone, and the
median over repeats of the ratio with / without (the figure the README quotes).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labral.bundle import load_bundle
from labral.datasets.io.clip import Clip
from labral.datasets.synth.generate import draw_patient, generate_clip
from labral.demo_bundle import make_demo_bundle
from labral.input_check.check import OOD_EXTRA_DIMS, InputCheck, Thresholds
from labral.models.view_net import ViewNet
from labral.scoring import ClipScorer

LEVELS = ("easy", "medium", "hard", "expert")


def valid_clips(n: int, seed: int = 3_990_000) -> list[Clip]:
    """``n`` generated valid clips (32 x 128 x 128), levels in turn, decoded in memory."""
    clips = []
    for i in range(n):
        made = generate_clip(
            draw_patient(seed + i), "positive", seed + i, difficulty=LEVELS[i % len(LEVELS)]
        )
        clips.append(Clip(frames=made.frames, fps=made.fps))
    return clips


def _smoke_check() -> InputCheck:
    """An untrained check of the real shape (its cost does not depend on its weights)."""
    net = ViewNet().eval()
    dim = net.feature_dim + OOD_EXTRA_DIMS
    rules = Thresholds(0.8, 0.02, 0.2, 0.3, 0.5, 0.3, 1e9, 1e9)
    return InputCheck(net, rules, np.zeros(dim), np.eye(dim))


def _time_each(scorer: ClipScorer, clips: list[Clip]) -> float:
    """Milliseconds per clip of ``scorer.score`` over ``clips``."""
    start = time.perf_counter()
    for clip in clips:
        scorer.score(clip)
    return (time.perf_counter() - start) * 1000.0 / len(clips)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, help="a bundle with an input check")
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--smoke", action="store_true", help="a toy bundle, 4 clips, 2 repeats")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke or args.bundle is None:
            folder = make_demo_bundle(Path(tmp) / "toy", input_check=_smoke_check())
            args.clips, args.repeats = (4, 2) if args.smoke else (args.clips, args.repeats)
        else:
            folder = args.bundle
        bundle = load_bundle(folder)
        if bundle.input_check is None:
            raise SystemExit(f"{folder}: this bundle has no input check; re-export it")
        clips = valid_clips(args.clips)
        with_check = ClipScorer(bundle)
        without = ClipScorer(load_bundle(folder))
        without.bundle.input_check = None
        with_check.score(clips[0])  # warm-up: first calls allocate
        without.score(clips[0])
        timings: dict[str, list[float]] = {"with": [], "without": [], "check": []}
        for _ in range(args.repeats):
            timings["with"].append(_time_each(with_check, clips))
            timings["without"].append(_time_each(without, clips))
            start = time.perf_counter()
            for clip in clips:
                bundle.input_check.assess(clip)
            timings["check"].append((time.perf_counter() - start) * 1000.0 / len(clips))
    medians = {key: statistics.median(values) for key, values in timings.items()}
    # each repeat times both scorers back to back: the median of its ratios is the least
    # swayed by a load that changes between repeats (this machine is shared)
    pairs = zip(timings["with"], timings["without"], strict=True)
    ratios = [checked / bare for checked, bare in pairs]
    ratio = statistics.median(ratios)
    print(
        f"bundle {bundle.name} ({folder}), {args.clips} clips, {args.repeats} repeats, "
        f"{args.threads} torch threads; medians:"
    )
    print(f"  score without the check  {medians['without']:8.2f} ms/clip")
    print(f"  score with the check     {medians['with']:8.2f} ms/clip")
    print(f"  the check alone          {medians['check']:8.2f} ms/clip")
    print(f"  ratio with / without     {ratio:8.3f}  (median of the repeats'; target <= 1.10)")
    return {**medians, "ratio": ratio, "ratios": ratios}


if __name__ == "__main__":
    main()
