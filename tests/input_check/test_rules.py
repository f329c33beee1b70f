"""The input check's image and manoeuvre rules, its verdict and its failure mode.

The rules are measured on the decoded clip (:mod:`labral.input_check.features`); these
tests use :func:`tests.helpers.input_check.rule_check` (real rules, view and OOD detectors
out of reach), so each reason is seen to fire on its wrong input and on nothing else.
"""

from __future__ import annotations

import numpy as np
import pytest

from labral.bundle import load_bundle
from labral.datasets.io.clip import Clip
from labral.datasets.synth.generate import draw_patient, generate_clip
from labral.demo_bundle import demo_frames
from labral.input_check.check import InputCheck
from labral.input_check.verdict import ADVICE, NOT_ASSESSABLE, REASON_TITLES, REASONS, SCORED
from labral.scoring import ClipScorer
from tests.helpers.bundles import toy_bundle
from tests.helpers.input_check import blank_frames, rule_check, still_frames

LEVELS = ("easy", "medium", "hard", "expert")


def _hip(level: str, seed: int = 3_900_000, manoeuvre: float = 1.0) -> Clip:
    made = generate_clip(
        draw_patient(seed), "positive", seed, difficulty=level, overrides={"manoeuvre": manoeuvre}
    )
    return Clip(frames=made.frames, fps=made.fps)


@pytest.mark.parametrize("level", LEVELS)
def test_a_valid_clip_passes_every_rule_at_every_level_and_mirrored(level) -> None:
    check = rule_check(min_motion=0.35, min_structure=0.3)
    clip = _hip(level)
    assert check.assess(clip).status == SCORED
    mirrored = Clip(frames=np.ascontiguousarray(clip.frames[:, :, ::-1]), fps=clip.fps)
    assert check.assess(mirrored).status == SCORED  # a left hip is not an error


@pytest.mark.parametrize("level", ("easy", "expert"))
def test_a_still_hip_is_refused_for_no_manoeuvre(level) -> None:
    verdict = rule_check(min_motion=0.35).assess(_hip(level, manoeuvre=0.0))
    assert verdict.status == NOT_ASSESSABLE
    assert verdict.reasons == ["no_manoeuvre"]
    assert "did not move" in verdict.advice


def _frames_of(name: str) -> tuple[np.ndarray, float]:
    hip = _hip("medium")
    rng = np.random.default_rng(5)
    if name == "blank":
        return blank_frames(), 20.0
    if name == "saturated":
        return np.clip(hip.frames.astype(np.int32) * 4, 0, 255).astype(np.uint8), hip.fps
    if name == "too_short":
        return hip.frames[:6], 20.0
    if name == "frames_missing":
        frames = hip.frames.copy()
        frames[1::2] = frames[0::2][: frames[1::2].shape[0]]  # every other frame repeated
        return frames, hip.fps
    noise = rng.rayleigh(40.0, hip.frames.shape)  # fresh speckle-like noise every frame
    return np.clip(noise, 0, 255).astype(np.uint8), hip.fps


@pytest.mark.parametrize(
    "detail", ("blank", "saturated", "too_short", "frames_missing", "noise_only")
)
def test_each_image_rule_fires_on_its_fault(detail) -> None:
    frames, fps = _frames_of(detail)
    verdict = rule_check(min_structure=0.3).assess(Clip(frames=frames, fps=fps))
    assert verdict.reasons[0] == "image_quality"
    assert verdict.details["image_quality"] == detail
    assert verdict.scores["image_quality"] > 0
    assert verdict.advice.startswith("The image cannot be read")


def test_a_still_copy_of_a_clip_is_refused_however_bright() -> None:
    verdict = rule_check().assess(Clip(frames=still_frames(demo_frames()), fps=10.0))
    assert not verdict.assessable
    assert {"image_quality", "no_manoeuvre"} <= set(verdict.reasons)


def test_every_reason_has_a_sentence_that_says_what_to_do() -> None:
    assert set(REASONS) == set(ADVICE)
    for text in ADVICE.values():
        assert text.endswith(".") and len(text.split()) >= 8


class _Broken:
    def __call__(self, images):
        raise RuntimeError("view network exploded")


def test_a_check_that_fails_refuses_the_clip_and_never_scores_silently(tmp_path) -> None:
    working = rule_check()
    broken = InputCheck(_Broken(), working.thresholds, working.ood_mean, working.ood_precision)
    verdict = broken.assess(Clip(frames=demo_frames(), fps=10.0))
    assert verdict.reasons == ["check_failed"]
    assert verdict.details == {"check_failed": "RuntimeError"}
    bundle = load_bundle(toy_bundle(tmp_path / "b", input_check=working))
    bundle.input_check = broken
    score = ClipScorer(bundle).score(Clip(frames=demo_frames(), fps=10.0))
    assert score.status == NOT_ASSESSABLE and score.reported_decision is None


def test_a_bundle_without_a_check_scores_with_a_warning(tmp_path) -> None:
    bundle = load_bundle(toy_bundle(tmp_path / "old"))
    assert bundle.input_check is None
    score = ClipScorer(bundle).score(Clip(frames=blank_frames(), fps=10.0))
    assert score.status == SCORED and score.reported_decision is not None
    assert not score.verdict.checked and "no input check" in score.verdict.warning


def test_every_reason_has_a_title_short_enough_for_an_sr_code_meaning() -> None:
    assert set(REASON_TITLES) == set(REASONS)
    assert all(0 < len(title) <= 64 for title in REASON_TITLES.values())
