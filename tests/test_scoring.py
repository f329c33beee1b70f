"""The scoring contract: one chain from a decoded clip to probability, decision, relevance, maps.

Every expected value here is computed by hand (numpy/scipy on the model's raw outputs), not by
labral.scoring itself; the last test checks that training-time evaluation gives the same
probability as the bundle's scorer on the same clip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import expit

from labral.bundle import load_bundle
from labral.datasets.clip_dataset import ClipDataset
from labral.datasets.io.clip import Clip
from labral.datasets.transforms.clip_transforms import build_eval_transform
from labral.demo_bundle import BrightnessScorer
from labral.scoring import (
    ClipScorer,
    calibrated_probability,
    clip_logits,
    score_windows,
    spatial_maps,
)
from labral.train.loop import evaluate
from tests.helpers.bundles import toy_bundle

EVAL = {"frames": 4, "fps": 10.0, "size": [16, 16], "windows": 3}


def region_scorer() -> BrightnessScorer:
    """logit = 40 * (peak - mean of the centre region's per-frame contrast) - 1.

    relevance (B, T) is that contrast (the region's mean - 0.5: it can be negative), and
    only the centre region (rows and columns 4-11) moves the logit, so the input gradient
    is zero elsewhere.
    """
    return BrightnessScorer(
        "peak-mean", 40.0, reference=0.0, offset=1.0, window=(4, 12), baseline=0.5
    )


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("region")
    metadata = {"model_name": "region-test", "temperature": 1.7, "threshold": 0.4}
    return load_bundle(toy_bundle(folder, region_scorer(), EVAL, **metadata))


def blob_clip(peak: int = 13, frames: int = 24, fps: float = 20.0) -> Clip:
    """uint8 (24, 32, 32) noise plus a bright centre square peaking at source frame ``peak``."""
    rng = np.random.default_rng(peak)
    pixels = rng.normal(100, 10, (frames, 32, 32))
    bump = np.exp(-0.5 * ((np.arange(frames) - peak) / 1.5) ** 2)
    pixels[:, 8:24, 8:24] += 120 * bump[:, None, None]
    return Clip(np.clip(pixels, 0, 255).astype(np.uint8), fps)


def test_probability_decision_and_relevance_follow_the_chain(bundle) -> None:
    clip = blob_clip()
    data = build_eval_transform(EVAL)({"clip": clip})
    with torch.inference_mode():
        logits, relevance = bundle.module(data["image"])
    logits, relevance = logits.double().numpy(), relevance.double().numpy()
    want_p = expit(logits.mean() / 1.7)  # mean of the 3 windows, then the temperature
    score = ClipScorer(bundle).score(clip)
    assert score.logit == pytest.approx(logits.mean(), abs=1e-6)
    assert score.probability == pytest.approx(want_p, abs=1e-7)
    assert score.decision == (want_p >= 0.4)
    # relevance: max over windows on each sampled source frame, nearest elsewhere, then
    # scaled to [0, 1] over the clip
    index = data["frame_index"].numpy()
    on_source = np.full(clip.num_frames, -np.inf)
    np.maximum.at(on_source, index.ravel(), relevance.ravel())
    sampled = np.flatnonzero(np.isfinite(on_source))
    nearest = sampled[np.abs(np.arange(clip.num_frames)[:, None] - sampled).argmin(axis=1)]
    filled = on_source[nearest]
    want_rel = (filled - filled.min()) / (filled.max() - filled.min())
    np.testing.assert_allclose(score.relevance, want_rel, atol=1e-6)
    assert score.relevance.min() == 0.0 and score.relevance.max() == 1.0
    assert abs(score.peak_frames[0] - 13) <= 1
    assert score.spatial_maps == []


def test_decision_at_the_threshold_is_positive_and_logits_saturate_at_60() -> None:
    relevance, index = np.zeros((1, 2)), np.array([[0, 1]])
    at = score_windows(np.array([0.0]), relevance, index, 2, 1.0, threshold=0.5)
    assert at.probability == 0.5 and at.decision is True
    below = score_windows(np.array([-1e-9]), relevance, index, 2, 1.0, threshold=0.5)
    assert below.decision is False
    # scaled logits are clipped to [-60, 60], the same in training, bench and serve
    far = score_windows(np.array([-1000.0]), relevance, index, 2, 2.0, threshold=0.5)
    assert far.probability == expit(-60.0)
    assert clip_logits(np.array([[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]])).tolist() == [3.0, 1.0]


def test_spatial_map_marks_the_region_the_logit_reads(bundle) -> None:
    clip = blob_clip()
    scorer = ClipScorer(bundle)
    score = scorer.score(clip, spatial=True)
    assert [m.frame for m in score.spatial_maps] == score.peak_frames
    first = score.spatial_maps[0]
    assert first.values.shape == (16, 16) and first.values.dtype == np.float32
    assert first.values.max() == 1.0
    inside = np.zeros((16, 16), bool)
    inside[4:12, 4:12] = True
    assert np.all(first.values[~inside] == 0.0)  # the logit never reads those pixels
    assert np.all(first.values[inside] > 0.0)
    # a source frame the transform did not sample (20 -> 10 fps keeps even frames) uses the
    # nearest sampled one, the earlier on a tie, as relevance does
    prepared = scorer.prepare(clip)
    (odd,) = spatial_maps(bundle.module, prepared.image, prepared.frame_index, [13])
    assert odd.frame == 13 and odd.model_frame == 12


def test_batched_finish_equals_one_clip_score(bundle) -> None:
    scorer = ClipScorer(bundle)
    clips = [blob_clip(peak) for peak in (5, 13, 18)]
    prepared = [scorer.prepare(c) for c in clips]
    out = scorer.forward(torch.cat([p.image for p in prepared]))
    for k, (clip, p) in enumerate(zip(clips, prepared, strict=True)):
        rows = slice(3 * k, 3 * k + 3)
        batched = scorer.finish(p, out["logits"][rows], out["relevance"][rows])
        alone = scorer.score(clip)
        assert batched.probability == pytest.approx(alone.probability, abs=1e-6)
        np.testing.assert_allclose(batched.relevance, alone.relevance, atol=1e-6)


def test_training_evaluation_scores_like_the_bundle(bundle, tmp_path: Path) -> None:
    records = []
    for i, peak in enumerate((5, 13, 18)):
        np.save(tmp_path / f"c{i}.npy", blob_clip(peak).frames)
        records.append({"path": str(tmp_path / f"c{i}.npy"), "label": i % 2, "patient": f"p{i}"})

    def reader(source: str) -> Clip:
        return Clip(np.load(source), 20.0)

    class LogitsOnly(torch.nn.Module):  # what the training loop calls: logits (B,) only
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return bundle.module(x)[0]

    data = ClipDataset(records, EVAL, reader=reader)
    loader = torch.utils.data.DataLoader(data, batch_size=2)
    logits, _ = evaluate(LogitsOnly(), loader, torch.device("cpu"))
    probability = calibrated_probability(logits, bundle.temperature)
    scorer = ClipScorer(bundle)
    for record, p in zip(records, probability, strict=True):
        assert p == pytest.approx(scorer.score(reader(record["path"])).probability, abs=1e-6)
