"""Toy bundles for tests: every test bundle is labral's one toy model, written here.

The model is :class:`labral.demo_bundle.BrightnessScorer`; a test that asserts on a
behaviour builds the scorer with that behaviour in its own file (so the formula sits beside
the assertion), or takes a named one from here when several test folders share it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labral.demo_bundle import DEMO_CARD, BrightnessScorer, make_demo_bundle
from labral.input_check.check import InputCheck


def toy_bundle(
    folder: Path,
    scorer: BrightnessScorer | None = None,
    eval_transform: dict[str, Any] | None = None,
    card: str = DEMO_CARD,
    input_check: InputCheck | None = None,
    **metadata: Any,
) -> Path:
    """Write a toy bundle of ``scorer`` to ``folder`` and return the folder.

    Args:
        folder: the bundle folder to write.
        scorer: the model; None is the demo's (logit = 30 * (peak frame mean - 0.25)).
        eval_transform: the eval transform spec; None is the demo's (8 frames, 10 fps,
            32x32, one window).
        card: the model card (README.md).
        input_check: an input check for the bundle (:mod:`tests.helpers.input_check`);
            None writes a bundle without one (scored with a warning).
        metadata: bundle spec keys that replace the demo's (``model_name``, ``temperature``,
            ``threshold``, ``split_patients``, ``schema_version``, ...).
    """
    return make_demo_bundle(folder, scorer, eval_transform, card, input_check, **metadata)


def blob_scorer(scale: float = 200.0, offset: float = 2.0) -> BrightnessScorer:
    """A scorer of bright blobs: (logits (B,), relevance (B, T)) for x (B, 1, T, H, W).

    logit = scale * (brightest frame's mean - the clip's mean) - offset; relevance is the
    per-frame mean, so a clip with a blob on a few frames scores high and its relevance
    peaks on those frames.
    """
    return BrightnessScorer("peak-mean", scale=scale, reference=0.0, offset=offset)
