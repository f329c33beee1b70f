"""The bench runs each bundle's input check once per clip: in the clean pass, and on each of
the order controls' altered copies, so a copy a route would refuse (a motionless clip) is
counted as refused, not as a detached finding."""

from __future__ import annotations

import numpy as np

from labral.bench import suite_scoring as scoring
from labral.bench.controls import score_controls
from labral.bundle import load_bundle
from labral.demo_bundle import demo_frames
from tests.helpers.bundles import toy_bundle
from tests.helpers.input_check import rule_check


def test_the_clean_pass_and_every_control_check_each_clip_once(tmp_path) -> None:
    bundle = load_bundle(toy_bundle(tmp_path / "b", input_check=rule_check()))
    calls: list[int] = []
    assess = bundle.input_check.assess
    bundle.input_check.assess = lambda clip: calls.append(1) or assess(clip)
    paths = []
    for i in range(3):
        path = tmp_path / f"clip{i}.npy"
        np.save(path, demo_frames(frames=24 + i))
        paths.append(str(path))
    source = scoring.ClipSource(paths, keep=True)
    transforms = scoring.eval_transforms([bundle])
    clean = scoring.score_pass(source, [bundle], transforms, batch_size=2, workers=0)
    assert len(calls) == 3 and clean.scores[0].checked.all()
    assert clean.scores[0].assessable.all()
    controls = score_controls(source, [bundle], transforms, seed=0, batch_size=2, workers=0)
    assert len(calls) == 3 + 3 * len(controls)  # once per copy
    assert all(result.scores[0].checked.all() for result in controls.values())
    # the repeated middle frame breaks the image rule on missing frames; reversal does not
    motionless, reversed_ = controls["motionless"].scores[0], controls["reversed"].scores[0]
    assert not motionless.assessable.any()
    assert all("image_quality" in reasons for reasons in motionless.reasons)
    assert reversed_.assessable.all()
