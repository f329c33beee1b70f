"""``scripts/graded.sh``, run with a stand-in ``labral`` that records its calls: every stage
of the curriculum trains on data of its own seed (its own patients)."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "graded.sh"


def recorded_calls(tmp_path: Path) -> list[list[str]]:
    """Run the script with ``LABRAL`` a recorder and ``PYTHON`` a no-op; its calls, in order."""
    log = tmp_path / "calls.txt"
    recorder = tmp_path / "labral"
    recorder.write_text(f'#!/usr/bin/env bash\nprintf "%q " "$@" >> {log}\necho >> {log}\n')
    recorder.chmod(0o755)
    env = {
        **os.environ,
        "LABRAL": str(recorder),
        "PYTHON": "true",
        "GRADED_ROOT": str(tmp_path / "graded"),
        "GRADED_DATA": str(tmp_path / "data"),
    }
    subprocess.run(["bash", str(SCRIPT)], env=env, check=True, capture_output=True, timeout=60)
    return [shlex.split(line) for line in log.read_text().splitlines()]


def options(call: list[str]) -> dict[str, str]:
    return dict(arg.split("=", 1) for arg in call[1:] if "=" in arg)


def test_each_curriculum_stage_trains_on_data_of_its_own_seed(tmp_path: Path) -> None:
    calls = recorded_calls(tmp_path)
    synth = {
        options(c)["difficulty"]: options(c)
        for c in calls
        if c[0] == "synth" and "difficulty" in options(c)
    }
    assert set(synth) == {"easy", "medium", "hard"}
    seeds = {level: settings["seed"] for level, settings in synth.items()}
    assert len(set(seeds.values())) == 3, seeds
    assert seeds["medium"] == "11", "medium's data (and its figures) keep their seed"
    # each level's data goes to its own folder, which that stage trains on
    folders = {level: settings["out"] for level, settings in synth.items()}
    trained_on = {options(c).get("data.manifest") for c in calls if c[0] == "train"}
    assert {f"{folder}/manifest.jsonl" for folder in folders.values()} <= trained_on
    assert calls[-1][0] == "bench"


def test_the_full_cleft_recipe_trains_from_scratch_on_every_level_and_is_benchmarked(
    tmp_path: Path,
) -> None:
    calls = recorded_calls(tmp_path)
    mixed = [options(c) for c in calls if c[0] == "synth" and "levels" in options(c)]
    assert [m["levels"] for m in mixed] == ["[easy,medium,hard,expert]"]
    cleft = [options(c) for c in calls if c[0] == "train" and "experiment" in options(c)]
    cleft = [o for o in cleft if o["experiment"] == "cleft"]
    assert sorted(o["seed"] for o in cleft) == ["1", "2"]
    assert all(o["data.manifest"] == f"{mixed[0]['out']}/manifest.jsonl" for o in cleft)
    assert not any("model.init_weights" in o for o in cleft)  # from scratch, no curriculum
    bench = options(calls[-1])["bundle"]
    assert "cleft_s1" in bench and "cleft_s2" in bench
