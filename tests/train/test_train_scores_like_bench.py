"""Training scores its test split as ``labral bench`` scores the exported bundle.

A tiny run on a manifest of MP4 clips is exported to a bundle and benched on the same
manifest with ``overlap=exclude`` (which leaves exactly the test split): the AUROC training
reports in ``test_metrics.json`` is the bench's, and so is every clip's probability. The
fast test pins the piece both share: training's evaluation goes through
:mod:`labral.scoring` and gives ``ClipScorer``'s probabilities on the same batch.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import open_dict

from labral import scoring
from labral.bench import command as bench_command
from labral.bundle import load_bundle
from labral.datasets.clip_dataset import ClipDataset
from labral.datasets.io.clip import Clip
from labral.demo_bundle import BrightnessScorer
from labral.scoring import ClipScorer
from labral.train import export as export_mod
from labral.train.command import train
from labral.train.loop import evaluate
from tests.helpers.bundles import toy_bundle
from tests.helpers.configs import NO_CHECK, compose_config

from .test_train_data import write_manifest  # noqa: TID252

#: Enough test clips for an AUROC that is neither 0.5 nor 1 after one short run.
SPLITS = {"train": [0, 1] * 12, "val": [0, 1] * 3, "test": [0, 1, 1, 0] * 3}


def test_test_auroc_of_a_run_is_labral_bench_auroc_of_its_bundle(train_cfg, tmp_path) -> None:
    manifest = write_manifest(tmp_path / "data", SPLITS)
    cfg = train_cfg(
        f"data.manifest={manifest}",
        "data.cache_dir=null",
        "transforms.eval.windows=3",  # a clip's logit is the mean of 3 windows' (bench's rule)
        "trainer.max_epochs=3",
        "optim.lr=0.01",
        "logger.tensorboard=false",
    )
    result = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    reported = json.loads((run_dir / "test_metrics.json").read_text())
    assert reported["n"] == len(SPLITS["test"])

    export_cfg = compose_config(
        "export",
        [f"run_dir={run_dir}", f"out={tmp_path / 'bundle'}", "formats=[torchscript]", *NO_CHECK],
    )
    bundle_dir = export_mod.run(export_cfg)
    bench_cfg = compose_config(
        "bench",
        [
            f"paths.root_dir={tmp_path}",
            f"bundle={bundle_dir}",
            f"suite={manifest}",
            "overlap=exclude",
            "runtime=torchscript",
            f"out={tmp_path / 'bench'}",
            "bootstrap.n=20",
            "latency_clips=0",
            "controls=false",
            "pdf=false",
            "failure_cases=0",
            "progress=false",
        ],
    )
    with open_dict(bench_cfg):
        bench_cfg.paths.output_dir = str(tmp_path / "bench_run")
    benched = bench_command.run(bench_cfg)

    (scores,) = benched["models"]
    bench_auroc = benched["results"][scores["name"]]["overall"]["auroc"]["value"]
    assert reported["auroc"] is not None and 0.0 < reported["auroc"] < 1.0
    assert reported["auroc"] == pytest.approx(bench_auroc, abs=1e-6)
    assert result["test"]["auroc"] == reported["auroc"]
    # the same calibrated probabilities (Brier) and decisions at the same threshold
    overall = benched["results"][scores["name"]]["overall"]
    for metric in ("brier", "sensitivity", "specificity"):
        assert reported[metric] == pytest.approx(overall[metric]["value"], abs=1e-6), metric
    with (tmp_path / "bench" / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(Path(row["path"]).name for row in rows) == sorted(
        f"test_{i}.mp4" for i in range(len(SPLITS["test"]))
    )


#: Three eval windows per clip, so a clip's logit is a mean (the scoring contract's rule).
EVAL = {"frames": 4, "fps": 10.0, "size": [16, 16], "windows": 3}


class LogitsOnly(torch.nn.Module):
    """What training evaluates: a net returning logits (B,) only (the bundle's module also
    returns relevance)."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)[0]


def test_training_evaluation_scores_through_labral_scoring_like_clip_scorer(
    tmp_path, monkeypatch
) -> None:
    module = BrightnessScorer("peak-mean", 40.0, reference=0.0, offset=1.0)
    metadata = {"model_name": "eval-test", "temperature": 1.7, "threshold": 0.4}
    bundle = load_bundle(toy_bundle(tmp_path / "bundle", module, EVAL, **metadata))
    rng = np.random.default_rng(0)
    records = []
    for i in range(5):
        frames = rng.normal(100, 10, (24, 32, 32))
        frames[8 + i : 12 + i, 8:24, 8:24] += 25 * i
        np.save(tmp_path / f"c{i}.npy", np.clip(frames, 0, 255).astype(np.uint8))
        records.append({"path": str(tmp_path / f"c{i}.npy"), "label": i % 2, "patient": f"p{i}"})

    def reader(source: str) -> Clip:
        return Clip(np.load(source), 20.0)

    calls = {"window_logits_of": 0, "clip_logits": 0}

    def counted(name: str):
        shared = getattr(scoring, name)

        def spy(*args, **kwargs):
            calls[name] += 1
            return shared(*args, **kwargs)

        return spy

    for name in calls:
        monkeypatch.setattr(scoring, name, counted(name))
    loader = torch.utils.data.DataLoader(ClipDataset(records, EVAL, reader=reader), batch_size=2)
    logits, labels = evaluate(LogitsOnly(bundle.module), loader, torch.device("cpu"))
    assert calls == {"window_logits_of": 3, "clip_logits": 3}  # once per batch (2 + 2 + 1)
    monkeypatch.undo()

    probability = scoring.calibrated_probability(logits, bundle.temperature)
    scorer = ClipScorer(bundle)
    scores = [scorer.score(reader(record["path"])) for record in records]
    np.testing.assert_allclose(logits, [score.logit for score in scores], atol=1e-6)
    np.testing.assert_allclose(probability, [score.probability for score in scores], atol=1e-6)
    decided = scoring.decide(probability, bundle.threshold)
    assert decided.tolist() == [score.decision for score in scores]
    assert 0 < decided.sum() < len(records), "every clip on one side cannot show the threshold"
    assert labels.tolist() == [record["label"] for record in records]
