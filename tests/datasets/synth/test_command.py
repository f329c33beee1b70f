"""``labral synth``: bad settings fail at once naming the setting; the real CLI end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

import labral.configs
from labral.datasets.synth.command import run
from labral.datasets.synth.scenarios import DEFAULT_NEGATIVE_MIX
from labral.datasets.synth.settings import RUN_SETTINGS, SCHEMA_NAME, SynthSettings
from labral.errors import BadConfigError


def _set(cfg: DictConfig, dotted: str, value) -> None:
    OmegaConf.update(cfg, dotted, value, merge=False, force_add=True)


BAD_SETTINGS = [
    ("n_patients", -3, "n_patients"),
    ("n_patients", 2.5, "n_patients"),
    ("clips_per_hip", [0, 2], "clips_per_hip"),
    ("hips_per_patient", [1, 3], "hips_per_patient"),
    ("clip.frames", 2, "clip.frames"),
    ("clip.height", 16, "clip.height"),
    ("clip.width", 2048, "clip.width"),
    ("clip.fps", [30, 15], "clip.fps"),
    ("prevalence", 1.5, "prevalence"),
    ("prevalence", -0.1, "prevalence"),
    ("negative_mix.sulcus", -1.0, "negative_mix.sulcus"),
    ("negative_mix.cyst", 1.0, "negative_mix.cyst"),
    ("splits.val", 0.5, "splits"),
    ("formats.dicom_syntax", "rle", "formats.dicom_syntax"),
    ("formats.jpeg_quality", 120, "formats.jpeg_quality"),
    ("workers", -1, "workers"),
]


@pytest.mark.parametrize(("setting", "value", "named"), BAD_SETTINGS)
def test_bad_setting_fails_at_once_naming_it(synth_cfg, setting, value, named) -> None:
    _set(synth_cfg, setting, value)
    with pytest.raises(BadConfigError) as caught:
        run(synth_cfg)
    assert caught.value.message.startswith(named)  # e.g. "clip.frames=2: must be ..."
    assert not Path(synth_cfg.out).exists()  # nothing was done


def test_all_negative_weights_zero_is_refused(synth_cfg) -> None:
    _set(synth_cfg, "negative_mix", {"sulcus": 0.0, "normal": 0.0})
    with pytest.raises(BadConfigError, match="negative_mix"):
        run(synth_cfg)
    _set(synth_cfg, "prevalence", 1.0)  # all positive: no negative weights needed
    assert SynthSettings.from_config(synth_cfg, check_out=False).prevalence == 1.0


def test_unwritable_output_folder_is_named(synth_cfg, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    _set(synth_cfg, "out", str(blocker / "synth"))
    with pytest.raises(BadConfigError, match=r"^out=.*not writable"):
        run(synth_cfg)


def test_run_prints_where_and_counts(synth_cfg, capsys) -> None:
    manifest = run(synth_cfg)
    printed = capsys.readouterr().out
    rows = manifest.read_text().splitlines()
    assert manifest == Path(synth_cfg.out) / "manifest.jsonl"
    assert f"{len(rows)} clips from 6 synthetic patients" in printed
    assert str(manifest) in printed and "by split" in printed


def _cli(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONSAFEPATH": "1", "LABRAL_ROOT": str(tmp_path)}
    command = [sys.executable, "-m", "labral.cli", "synth", f"hydra.run.dir={tmp_path}/run"]
    return subprocess.run(
        [*command, *overrides], capture_output=True, text=True, env=env, timeout=240
    )


def test_cli_bad_setting_exits_2_naming_it(tmp_path: Path) -> None:
    result = _cli(tmp_path, f"out={tmp_path}/synth", "clip.frames=2")
    assert result.returncode == 2
    assert "clip.frames=2" in result.stderr and "bad_config" in result.stderr


def test_cli_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    result = _cli(
        tmp_path,
        f"out={out}",
        "n_patients=5",
        "clip.frames=8",
        "clip.height=48",
        "clip.width=48",
        "workers=2",
        "progress=false",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "dataset.json").read_text())
    rows = (out / "manifest.jsonl").read_text().splitlines()
    assert summary["clips"] == len(rows) > 0 and summary["patients"] == 5
    assert f"data set : {out}" in result.stdout
    assert (out / "preview" / "contact_sheet.png").exists()
    assert str(out / "preview" / "contact_sheet.png") in result.stdout


def test_negative_mix_null_means_the_generator_default(synth_cfg) -> None:
    assert synth_cfg.negative_mix is None  # configs/synth.yaml defers to the generator
    settings = SynthSettings.from_config(synth_cfg, check_out=False)
    assert settings.negative_mix == DEFAULT_NEGATIVE_MIX


def test_own_negative_mix_leaves_other_types_out(synth_cfg) -> None:
    _set(synth_cfg, "negative_mix", {"sulcus": 1.0, "frozen_twin": 3.0})
    _set(synth_cfg, "prevalence", 0.2)
    manifest = run(synth_cfg)
    types = {json.loads(line)["clip_type"] for line in manifest.read_text().splitlines()}
    assert types == {"positive", "sulcus", "frozen_twin"}


def test_generator_refusal_surfaces_before_any_file(synth_cfg) -> None:
    _set(synth_cfg, "overrides.bogus_knob", 1.0)  # only the generator knows its knobs
    with pytest.raises(BadConfigError, match="overrides"):
        run(synth_cfg)
    assert not (Path(synth_cfg.out) / "manifest.jsonl").exists()
    assert not (Path(synth_cfg.out) / "clips").exists()


def test_synth_yaml_holds_only_groups_and_what_differs() -> None:
    # one statement of each key: SynthSettings states every key and default; the YAML lists
    # the schema first and then only groups and the values the model cannot know (`out`)
    raw = OmegaConf.load(Path(labral.configs.__file__).parent / "synth.yaml")
    assert set(raw) == {"defaults", "hydra", "out"}
    assert raw.defaults[0] == SCHEMA_NAME
    assert "difficulty" not in str(raw.defaults)  # the schema selects DEFAULT_LEVEL


def test_recorded_settings_are_the_model_dump(tmp_path: Path) -> None:
    settings = SynthSettings.from_config({"out": str(tmp_path), "workers": 3})
    recorded = settings.to_json()
    assert set(recorded) == set(SynthSettings.model_fields) - RUN_SETTINGS
    assert recorded["clip"] == {"frames": 32, "height": 128, "width": 128, "fps": [15, 30]}
    assert recorded["difficulty"] == settings.difficulty.to_json()
    assert recorded["negative_mix"] == DEFAULT_NEGATIVE_MIX
