"""A bundle against the shortcut study's strongest nulls on the same clips, with a paired CI.

    .venv/bin/python benchmarks/null_margin.py --bundle outputs/demo/bundles/cleft
    .venv/bin/python benchmarks/null_margin.py --bundle B --levels hard expert --patients 160
    .venv/bin/python benchmarks/null_margin.py --smoke   # a toy bundle, 12 patients of hard

Per level, the shortcut study's data set is planned and rendered exactly as
``python -m labral.datasets.synth.shortcuts`` does (:mod:`labral.datasets.synth.shortcuts`,
same seed, same patients). Its timing nulls get out-of-fold scores under the study's
patient-grouped 5-fold cross-validation: the timing probe and the direction-aware features
(logistic and boosting) given the generator's loading trace and the cleft's location and
axis (the oracle nulls), and the direction-aware features with the loading tracked from the
pixels. The strongest of each family (highest AUROC, chosen on these very clips, so
optimistic for the null) is compared with the bundle's score of the same clips
(:meth:`labral.scoring.ClipScorer.score`, the input check not applied): AUROC(model) -
AUROC(null) with a paired patient bootstrap (:func:`labral.bench.bootstrap.
paired_auroc_difference`, 1,000 replicates). The nulls see the study's view (10 frames/s, the
centre 16 frames, 96 x 96); the model sees its own eval transform of the same rendered clip.
The clips are the generator's frames, not JPEG-encoded as a suite's are.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labral.bench.bootstrap import paired_auroc_difference
from labral.bundle import load_bundle
from labral.datasets.io.clip import Clip
from labral.datasets.synth.dataset import plan_dataset
from labral.datasets.synth.jobs import render_job
from labral.datasets.synth.shortcuts import featurise_level, out_of_fold_scores, study_settings
from labral.demo_bundle import make_demo_bundle
from labral.metrics import ClusterBootstrap, auroc
from labral.scoring import ClipScorer

#: The null candidates: (name, design matrix of :func:`featurise_level`, classifier, family).
NULLS = (
    ("timing_probe", "timing", "logistic", "oracle"),
    ("direction_logistic", "direction", "logistic", "oracle"),
    ("direction_boosting", "direction", "boosting", "oracle"),
    ("direction_pixels_logistic", "direction_pixels", "logistic", "pixels"),
    ("direction_pixels_boosting", "direction_pixels", "boosting", "pixels"),
)


_SCORER: ClipScorer | None = None
_SETTINGS: Any = None


def _init(bundle_path: str, settings: Any) -> None:
    global _SCORER, _SETTINGS
    torch.set_num_threads(1)
    _SCORER = ClipScorer(load_bundle(bundle_path))
    _SETTINGS = settings


def _score(job: Any) -> float:
    assert _SCORER is not None
    clip = render_job(job, _SETTINGS)
    return float(_SCORER.score(Clip(frames=clip.frames, fps=clip.fps)).probability)


def model_scores(bundle: str, level: str, patients: int, seed: int, workers: int) -> np.ndarray:
    """float (N,) the bundle's probability of every clip of the study's data set, in order."""
    settings = study_settings(level, patients, seed)
    jobs = plan_dataset(settings)
    if workers == 1:
        _init(bundle, settings)
        return np.asarray([_score(job) for job in jobs])
    with mp.get_context("fork").Pool(workers, _init, (bundle, settings)) as pool:
        return np.asarray(pool.map(_score, jobs, chunksize=8))


def level_margins(
    bundle: str, level: str, patients: int, seed: int, workers: int
) -> dict[str, Any]:
    """The model's AUROC, each null's, and the paired differences against the strongest."""
    mats, y, groups, hips = featurise_level(level, patients, seed, workers)
    model = model_scores(bundle, level, patients, seed, workers)
    nulls = {
        name: out_of_fold_scores(mats[matrix], y, groups, classifier=classifier)
        for name, matrix, classifier, _ in NULLS
    }
    null_auroc = {name: auroc(y, s) for name, s in nulls.items()}
    plan = ClusterBootstrap(groups, 1000, seed)
    out: dict[str, Any] = {
        "level": level,
        "clips": int(len(y)),
        "hips": int(hips),
        "model_auroc": auroc(y, model),
        "null_auroc": null_auroc,
    }
    for family in ("oracle", "pixels"):
        names = [name for name, _, _, fam in NULLS if fam == family]
        strongest = max(names, key=null_auroc.__getitem__)
        out[f"strongest_{family}"] = strongest
        out[f"margin_{family}"] = paired_auroc_difference(y, model, nulls[strongest], plan)
    return out


def print_row(r: dict[str, Any]) -> None:
    """One level's lines: the model, the strongest null of each family, the paired margin."""
    for family in ("oracle", "pixels"):
        name, m = r[f"strongest_{family}"], r[f"margin_{family}"]
        ci = (
            f"[{m['ci_low']:+.3f}, {m['ci_high']:+.3f}]"
            if m["ci_low"] is not None
            else f"[{m['ci_note']}]"
        )
        print(
            f"{r['level']:<8}{r['clips']:>6}{r['model_auroc']:>8.3f}  {name:<28}"
            f"{r['null_auroc'][name]:>7.3f}  {m['value']:+.3f} {ci}",
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=None, help="a bundle folder (required unless --smoke)")
    parser.add_argument("--levels", nargs="+", default=["hard", "expert"])
    parser.add_argument("--patients", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="a toy bundle, 12 patients, hard")
    args = parser.parse_args(argv)
    if args.bundle is None and not args.smoke:
        parser.error("--bundle is required (or --smoke)")
    rows = []
    head = f"{'level':<8}{'clips':>6}{'model':>8}  {'strongest null':<28}{'null':>7}"
    print(f"{head}  margin [95% CI]")
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke:
            args.bundle = str(make_demo_bundle(Path(tmp) / "toy"))
            args.levels, args.patients, args.workers = ["hard"], 12, 1
        for level in args.levels:
            rows.append(level_margins(args.bundle, level, args.patients, args.seed, args.workers))
            print_row(rows[-1])
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
