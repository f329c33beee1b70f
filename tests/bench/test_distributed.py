"""Scoring a suite on 2 gloo ranks (torchrun, CPU) gives one process's predictions exactly."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from labral.bench.distributed import merge_shards, score_pass_distributed, shard_indices
from labral.bench.suite_scoring import ClipSource, eval_transforms, score_pass
from labral.bundle import load_bundle
from tests.bench.distributed_run import BATCH, PERTURBATION, summary  # what each rank runs

HERE = Path(__file__).parent


def _suite(manifest: Path) -> ClipSource:
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    return ClipSource([str(manifest.parent / row["path"]) for row in rows])


def test_shards_are_whole_batches_dealt_round_robin() -> None:
    assert shard_indices(12, 5, 0, 2) == [0, 1, 2, 3, 4, 10, 11]
    assert shard_indices(12, 5, 1, 2) == [5, 6, 7, 8, 9]
    shards = [shard_indices(24, 5, r, 3) for r in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(24))


def test_merge_refuses_shards_that_miss_a_clip(bench_assets) -> None:
    bundle = load_bundle(bench_assets["bundle"])
    source = _suite(bench_assets["manifest"])
    part = score_pass(ClipSource(source.paths[:2]), [bundle], eval_transforms([bundle]))
    with pytest.raises(ValueError, match="not each of 3 once"):
        merge_shards(3, [([0, 1], part)])


def test_one_process_is_score_pass_itself(bench_assets, monkeypatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    bundle = load_bundle(bench_assets["bundle"])
    source = _suite(bench_assets["manifest"])
    args = (source, [bundle], eval_transforms([bundle]))
    got = score_pass_distributed(*args, batch_size=BATCH, perturbation=PERTURBATION)
    want = score_pass(*args, batch_size=BATCH, perturbation=PERTURBATION)
    np.testing.assert_array_equal(got.scores[0].logits, want.scores[0].logits)


def test_two_gloo_ranks_merge_to_the_single_process_predictions(bench_assets, tmp_path) -> None:
    bundles = [bench_assets["bundle"], bench_assets["bundle_b"]]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--standalone", str(HERE / "distributed_run.py"),
        str(tmp_path), str(bench_assets["manifest"]), *map(str, bundles),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONSAFEPATH": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    loaded = [load_bundle(path) for path in bundles]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as on each rank: the same kernels, the same float results
    try:
        single = score_pass(
            _suite(bench_assets["manifest"]), loaded, eval_transforms(loaded),
            batch_size=BATCH, perturbation=PERTURBATION, spatial=True, workers=0,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    want = summary(single)
    assert len(want[0]["logits"]) == 24 and want[0]["decision"].any()
    assert sum(len(maps) for maps in want[0]["maps"]) > 0
    for rank in (0, 1):  # every rank holds the whole merged result
        with open(tmp_path / f"rank{rank}.pkl", "rb") as handle:
            got = pickle.load(handle)
        for b in range(2):
            for key in ("logits", "probability", "decision"):
                np.testing.assert_array_equal(got[b][key], want[b][key])
            assert got[b]["peaks"] == want[b]["peaks"]
            for g, w in zip(got[b]["relevance"], want[b]["relevance"], strict=True):
                np.testing.assert_array_equal(g, w)
            for g, w in zip(got[b]["maps"], want[b]["maps"], strict=True):
                assert len(g) == len(w)
                for gm, wm in zip(g, w, strict=True):
                    np.testing.assert_array_equal(gm, wm)


def test_labral_bench_under_torchrun_writes_the_single_process_predictions(
    bench_assets, tmp_path
) -> None:
    # the command itself: `torchrun -m labral.bench.command ...` shards every pass (clean and
    # order controls) and rank 0 writes the same predictions.csv as one process; failure
    # cases at their default (rank 0 computes their maps alone), no PDF (Chromium's seconds)
    common = [
        f"bundle=[{bench_assets['bundle']},{bench_assets['bundle_b']}]",
        f"suite={bench_assets['manifest']}", "overlap=ignore", "batch_size=5", "workers=0",
        "threads=1", "bootstrap.n=50", "latency_clips=0", "progress=false", "pdf=false",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONSAFEPATH": "1", "OMP_NUM_THREADS": "1"}
    runs = {
        "torchrun": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                     "--standalone", "-m", "labral.bench.command"],
        "single": [sys.executable, "-m", "labral.bench.command"],
    }  # fmt: skip
    for name, launcher in runs.items():
        out = tmp_path / name
        args = [*common, f"out={out}", f"hydra.run.dir={tmp_path / (name + '_h')}"]
        done = subprocess.run(
            [*launcher, *args], env=env, capture_output=True, text=True, timeout=400
        )
        assert done.returncode == 0, done.stderr[-3000:]
        # one summary: rank 1 scores its shard and leaves the evaluation to rank 0
        assert done.stdout.count("results: ") == 1, done.stdout[-3000:]
    want = (tmp_path / "single" / "predictions.csv").read_text()
    assert (tmp_path / "torchrun" / "predictions.csv").read_text() == want
    results = json.loads((tmp_path / "torchrun" / "results.json").read_text())
    single = json.loads((tmp_path / "single" / "results.json").read_text())
    assert results["results"] == single["results"]  # metrics, controls, localisation alike
    assert results["failure_cases"] == single["failure_cases"]
