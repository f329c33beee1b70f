"""One rank of tests/bench/test_distributed.py, run as ``torchrun --nproc_per_node=2 <this>``.

Arguments: ``<out dir> <manifest> <bundle>...``. Every rank scores its shard of the manifest's
clips with :func:`labral.bench.distributed.score_pass_distributed` (batch 5, noise
perturbation, spatial maps) and pickles the merged result it got to ``<out>/rank<r>.pkl``.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import torch

from labral.bench.distributed import leave_scoring_group, score_pass_distributed
from labral.bench.suite_scoring import ClipSource, eval_transforms
from labral.bundle import load_bundle

BATCH, PERTURBATION = 5, ("noise", 0.5, 3)


def summary(result) -> list[dict]:
    """Per bundle: every per-clip output of a PassResult, in plain numpy/python values."""
    return [
        {
            "logits": scores.logits,
            "probability": scores.probability,
            "decision": scores.decision,
            "relevance": scores.relevance,
            "peaks": [clip.peak_frames for clip in scores.clips],
            "maps": [[m.values for m in clip.spatial_maps] for clip in scores.clips],
        }
        for scores in result.scores
    ]


def main(out: str, manifest: str, *bundle_paths: str) -> None:
    torch.set_num_threads(1)
    rows = [json.loads(line) for line in Path(manifest).read_text().splitlines()]
    paths = [str(Path(manifest).parent / row["path"]) for row in rows]
    bundles = [load_bundle(path) for path in bundle_paths]
    try:
        result = score_pass_distributed(
            ClipSource(paths), bundles, eval_transforms(bundles), batch_size=BATCH,
            perturbation=PERTURBATION, spatial=True, workers=0,
        )  # fmt: skip
        rank = torch.distributed.get_rank()
        with open(Path(out) / f"rank{rank}.pkl", "wb") as handle:
            pickle.dump(summary(result), handle)
    finally:
        leave_scoring_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
