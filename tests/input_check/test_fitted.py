"""A fitted input check (view network, OOD statistics, calibrated thresholds): each reason
fires on the generator's wrong inputs it was made for, stays silent on valid clips at every
level, travels in the bundle, and refuses the real non-hip cine in pydicom's test files.

The check is :func:`tests.helpers.input_check.fitted_check` (small: 10 valid clips per level,
6 wrong inputs per kind); the clips here use seeds it never saw.
"""

from __future__ import annotations

import json

import pytest
from pydicom.data import get_testdata_file

from labral.bundle import load_bundle
from labral.datasets.io.clip import Clip
from labral.datasets.io.reader import read_cine
from labral.datasets.synth.generate import draw_patient, generate_clip
from labral.datasets.synth.wrong_inputs import (
    HELD_OUT_FAMILY,
    WRONG_INPUT_FAMILIES,
    generate_wrong_input,
)
from labral.errors import BadConfigError, IncompatibleBundleError
from labral.input_check.verdict import NOT_ASSESSABLE
from labral.settings import settings_from_config
from labral.train.export import EXPORT_SCHEMA  # registers the export schema
from labral.train.settings import ExportSettings
from tests.helpers.bundles import toy_bundle
from tests.helpers.configs import compose_config
from tests.helpers.input_check import fitted_check

#: The reasons that may refuse each family's clips (the view and OOD detectors overlap).
EXPECTED = {
    "image_fault": {"image_quality"},
    "no_manoeuvre": {"no_manoeuvre"},
    "other_view": {"not_hip_view", "out_of_distribution"},
    "probe_contact": {"not_hip_view", "out_of_distribution", "image_quality"},
    "orientation": {"not_hip_view", "out_of_distribution"},
}
#: Noise with a depth profile (gain) keeps some coarse structure: the image rule catches only
#: part of it, the view network and the OOD distance the rest.
EXPECTED_KIND = {"noise_only": {"image_quality", "not_hip_view", "out_of_distribution"}}
SEEDS = (3_950_001, 3_950_002, 3_950_003)


@pytest.mark.parametrize(
    "kind", [k for f, kinds in WRONG_INPUT_FAMILIES.items() if f in EXPECTED for k in kinds]
)
def test_each_training_kind_is_refused_for_its_reason(kind) -> None:
    family = next(f for f, kinds in WRONG_INPUT_FAMILIES.items() if kind in kinds)
    check = fitted_check()
    verdicts = [
        check.assess(Clip(frames=(c := generate_wrong_input(kind, s)).frames, fps=c.fps))
        for s in SEEDS
    ]
    assert sum(v.status == NOT_ASSESSABLE for v in verdicts) >= 2, [v.reasons for v in verdicts]
    expected = EXPECTED_KIND.get(kind, EXPECTED[family])
    for_its_reason = [v for v in verdicts if set(v.reasons) & expected]
    assert len(for_its_reason) >= 2, [v.reasons for v in verdicts]


def test_the_held_out_family_is_mostly_refused_though_never_trained_on() -> None:
    check = fitted_check()
    kinds = WRONG_INPUT_FAMILIES[HELD_OUT_FAMILY]
    verdicts = [
        check.assess(Clip(frames=(c := generate_wrong_input(k, s)).frames, fps=c.fps))
        for k in kinds
        for s in SEEDS
    ]
    assert sum(not v.assessable for v in verdicts) >= len(verdicts) // 2 + 1


def test_the_ood_distance_puts_the_held_out_joints_beyond_valid_clips() -> None:
    """The out-of-distribution score on its own (not the verdict, which the view network may
    decide): the knee and shoulder it never trained on lie further from the valid clips than
    valid clips of any level do, on average."""
    check = fitted_check()
    held_out = [
        check.assess(Clip(frames=(c := generate_wrong_input(k, s)).frames, fps=c.fps))
        for k in WRONG_INPUT_FAMILIES[HELD_OUT_FAMILY]
        for s in SEEDS
    ]
    valid = []
    for i, level in enumerate(("easy", "medium", "hard", "expert")):
        seed = 3_970_000 + i
        made = generate_clip(draw_patient(seed), "positive", seed, difficulty=level)
        valid.append(check.assess(Clip(frames=made.frames, fps=made.fps)))
    distance = [v.scores["out_of_distribution"] for v in held_out]
    valid_distance = [v.scores["out_of_distribution"] for v in valid]
    assert sum(distance) / len(distance) > 1.5 * sum(valid_distance) / len(valid_distance)


def test_valid_clips_pass_at_every_level() -> None:
    check = fitted_check()
    refused = []
    for level in ("easy", "medium", "hard", "expert"):
        for i, clip_type in enumerate(("positive", "incoherent_twin", "probe_motion", "normal")):
            seed = 3_960_000 + 10 * i + len(level)
            made = generate_clip(draw_patient(seed), clip_type, seed, difficulty=level)
            verdict = check.assess(Clip(frames=made.frames, fps=made.fps))
            if not verdict.assessable:
                refused.append((level, clip_type, verdict.reasons))
    assert len(refused) <= 1, refused


def test_the_check_travels_in_the_bundle_and_a_modified_one_is_refused(tmp_path) -> None:
    check = fitted_check()
    folder = toy_bundle(tmp_path / "b", input_check=check)
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["input_check"]["thresholds"]["max_view_logit"] == pytest.approx(
        check.thresholds.max_view_logit
    )
    assert {"input_check/view_net.onnx", "input_check/check.json"} <= set(metadata["files"])
    loaded = load_bundle(folder).input_check
    made = generate_wrong_input("lateral_view", SEEDS[0])
    clip = Clip(frames=made.frames, fps=made.fps)
    # the loaded check runs its view network in ONNX Runtime: the same verdict, scores to 1e-4
    after, before = loaded.assess(clip), check.assess(clip)
    assert after.reasons == before.reasons
    assert after.scores == pytest.approx(before.scores, abs=1e-4)
    assert after.thresholds == before.thresholds
    saved = folder / "input_check" / "check.json"
    saved.write_text(saved.read_text() + " ")  # one byte more: the SHA-256 no longer matches
    with pytest.raises(IncompatibleBundleError, match="modified"):
        load_bundle(folder)


def test_the_real_sonosite_cine_is_not_a_hip_and_is_refused() -> None:
    """pydicom's examples_ybr_color.dcm: a real SonoSite ultrasound cine, not of a hip. It
    is refused because it is not the anterior hip view (the view network) or unlike every
    training clip (OOD); its image rules pass (it is a readable ultrasound image)."""
    verdict = fitted_check().assess(read_cine(get_testdata_file("examples_ybr_color.dcm")))
    assert verdict.status == NOT_ASSESSABLE
    assert set(verdict.reasons) & {"not_hip_view", "out_of_distribution", "no_manoeuvre"}


@pytest.mark.parametrize(
    "override",
    (
        "input_check.max_saturated_fraction=2",
        "input_check.min_duration_s=0",
        "input_check.false_refusal=0.5",
    ),
)
def test_a_threshold_out_of_range_fails_at_once_naming_its_key(override) -> None:
    assert EXPORT_SCHEMA == "export_schema"
    key = override.split("=")[0]
    with pytest.raises(BadConfigError, match=key.replace(".", r"\.")):
        settings_from_config(
            ExportSettings, compose_config("export", [override]), ignore=("paths",)
        )
