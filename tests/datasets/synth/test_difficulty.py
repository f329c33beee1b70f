"""Difficulty levels: shipped files, validation, the Hydra group and the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from labral.datasets.synth.difficulty import (
    DEFAULT_LEVEL,
    KNOB_BOUNDS,
    known_levels,
    load_difficulty,
)
from labral.datasets.synth.settings import SynthSettings
from labral.errors import BadConfigError

#: Knobs whose upper bound falls (or lower bound rises) as the levels get harder.
EASIER_IS_HIGHER = (
    "extent_max",
    "width_scale",
    "fluid_contrast",
    "burst_fraction",
    "femur_rot_deg",
)
EASIER_IS_LOWER = ("flow_rho", "jitter", "noise_level", "probe_motion")


def test_four_levels_every_knob_inside_its_bounds() -> None:
    assert known_levels() == ["easy", "medium", "hard", "expert"]
    assert DEFAULT_LEVEL == "medium"
    for level in known_levels():
        d = load_difficulty(level)
        assert d.level == level and set(d.ranges) == set(KNOB_BOUNDS)
        for knob, (low, high) in d.ranges.items():
            assert KNOB_BOUNDS[knob][0] <= low <= high <= KNOB_BOUNDS[knob][1], (level, knob)


def test_levels_get_harder_knob_by_knob() -> None:
    levels = [load_difficulty(name).ranges for name in known_levels()]
    for easier, harder in zip(levels, levels[1:], strict=False):
        for knob in EASIER_IS_HIGHER:
            assert harder[knob][1] <= easier[knob][1] and harder[knob][0] <= easier[knob][0]
        for knob in EASIER_IS_LOWER:
            assert harder[knob][0] >= easier[knob][0] and harder[knob][1] >= easier[knob][1]
    # the backward pocket's timing spreads until it covers the whole cycle
    assert levels[0]["pocket_onset"][1] - levels[0]["pocket_onset"][0] < 0.1
    assert levels[-1]["pocket_onset"] == (0.0, 2.0)


@pytest.mark.parametrize(
    ("level", "overrides", "named"),
    [
        ("impossible", None, "difficulty='impossible'"),
        ("hard", {"lag": [0.4, 0.2]}, "difficulty.lag"),
        ("hard", {"extent_max": [0.5, 1.5]}, "difficulty.extent_max"),
        ("hard", {"colour": [0, 1]}, "difficulty.colour"),
        ("hard", {"jitter": "much"}, "difficulty.jitter"),
        ("easy", {"lag": [0.5, 0.5], "burst_fraction": [0.5, 1.0]}, "difficulty.lag"),
    ],
)
def test_bad_levels_and_knobs_name_the_key(level, overrides, named) -> None:
    with pytest.raises(BadConfigError, match=named.replace("[", r"\[")):
        load_difficulty(level, overrides)


def test_hydra_group_selects_the_level_and_overrides_one_knob() -> None:
    with initialize_config_module(config_module="labral.configs", version_base="1.3"):
        cfg = compose("synth", overrides=["difficulty=hard", "difficulty.lag=[0.1,0.3]"])
    settings = SynthSettings.from_config({**cfg, "out": "unused"}, check_out=False)
    assert settings.difficulty.level == "hard"
    assert settings.difficulty.ranges["lag"] == (0.1, 0.3)
    assert settings.difficulty.ranges["jitter"] == load_difficulty("hard").ranges["jitter"]
    default = SynthSettings.from_config({"out": "unused"}, check_out=False)
    assert default.difficulty == load_difficulty("medium")


def test_composed_default_level_is_the_one_default() -> None:
    # DEFAULT_LEVEL is stated once: the schema's defaults list selects it for the command
    with initialize_config_module(config_module="labral.configs", version_base="1.3"):
        cfg = compose("synth")
    assert cfg.difficulty.level == DEFAULT_LEVEL
    composed = SynthSettings.from_config({**cfg, "out": "unused"}, check_out=False)
    assert composed.difficulty == load_difficulty(None)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["difficulty=impossible"], "difficulty='impossible'"),
        (["difficulty.lag=[0.4,0.2]"], "difficulty.lag"),
    ],
)
def test_command_line_refuses_a_bad_level_with_exit_2(tmp_path: Path, args, named) -> None:
    out = tmp_path / "never"
    result = subprocess.run(
        [sys.executable, "-m", "labral.cli", "synth", f"out={out}", "n_patients=1", *args],
        capture_output=True,
        text=True,
        env={"PYTHONSAFEPATH": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2, result.stderr
    assert named in result.stderr and "labral: error [bad_config]" in result.stderr
    assert not out.exists() or not any(out.iterdir())  # nothing half-written
