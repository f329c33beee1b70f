"""The patient-seed registry: every shipped suite has its own patients, none of training's."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from labral.bench import seeds, suites
from labral.bench.suite_plan import clip_plan
from labral.datasets.synth.dataset import _child_seed
from labral.datasets.synth.difficulty import known_levels
from labral.errors import BadConfigError


def test_shipped_suites_never_share_a_patient_seed() -> None:
    definitions = {name: suites.load_definition(name) for name in suites.known_suites()}
    ranges = {name: seeds.suite_seed_ranges(d) for name, d in definitions.items()}
    for (a, ra), (b, rb) in itertools.combinations(ranges.items(), 2):
        for low_a, high_a in ra:
            for low_b, high_b in rb:
                assert high_a <= low_b or high_b <= low_a, (a, b)
    # the ranges are the plan's seeds: every planned patient lies in its setting's range
    for name, definition in definitions.items():
        small = {**definition, "n_patients": 3}
        planned = {item["patient_seed"] for item in clip_plan(small)}
        allowed = seeds.suite_seed_ranges(small)
        assert all(any(lo <= s < hi for lo, hi in allowed) for s in planned), name
        assert min(planned) >= seeds.TRAINING_RANGE[1], name


def test_training_seeds_lie_in_the_training_range() -> None:
    drawn = [_child_seed(seed, p) for seed in (0, 1, 2**31, 123456789) for p in range(50)]
    assert all(seeds.TRAINING_RANGE[0] <= s < seeds.TRAINING_RANGE[1] for s in drawn)
    assert max(drawn) > 2**31  # really 32-bit, so the range is the tight one


def test_shift_and_robustness_no_longer_draw_the_same_patients() -> None:
    # v0.1: synthetic-shift's noise_x4 (setting 8) began at 7,900,000, robustness's base
    shift = clip_plan(suites.load_definition("synthetic-shift", {"n_patients": 2}))
    robust = clip_plan(suites.load_definition("robustness", {"n_patients": 2}))
    assert not {i["patient_seed"] for i in shift} & {i["patient_seed"] for i in robust}


def test_a_suite_moved_onto_another_suites_patients_is_refused() -> None:
    with pytest.raises(BadConfigError, match="overlap suite"):
        suites.load_definition("synthetic-id", {"n_patients": 100_000, "seed": 7_099_999})
    with pytest.raises(BadConfigError, match="1 to 100000 patients"):
        suites.load_definition("synthetic-id", {"n_patients": 100_001})


def test_graded_suite_has_a_part_per_level_of_300_clips_and_100_hips() -> None:
    definition = suites.load_definition("synthetic-graded")
    plan = clip_plan(definition)
    for level in known_levels():
        part = [item for item in plan if item["shift"] == level]
        assert {item["difficulty"] for item in part} == {level}
        assert len(part) >= 300 and len({item["hip"] for item in part}) >= 100, level
        hip_labels = {item["hip"]: item["hip_label"] for item in part}
        assert 0.3 < np.mean(list(hip_labels.values())) < 0.7, level


def test_an_unknown_level_is_refused_before_anything_is_generated(tmp_path) -> None:
    with pytest.raises(BadConfigError, match="difficulty='impossible' is not a generator level"):
        suites.resolve_suite("synthetic-id", tmp_path, {"difficulty": "impossible"})
    assert not any(tmp_path.iterdir())  # nothing half-written
