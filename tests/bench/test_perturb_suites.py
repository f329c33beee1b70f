"""Perturbations of decoded clips and suite definitions (hash, plan, seeds, errors)."""

from __future__ import annotations

import copy
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from labral.bench import perturb, suites
from labral.bench.suite_plan import clip_plan
from labral.datasets.io.clip import Clip
from labral.datasets.io.reader import read_cine
from labral.datasets.synth import generate
from labral.datasets.synth.difficulty import DEFAULT_LEVEL
from labral.datasets.synth.scenarios import DEFAULT_NEGATIVE_MIX
from labral.datasets.synth.settings import SynthSettings
from labral.errors import BadConfigError


@pytest.fixture
def clip() -> Clip:
    rng = np.random.default_rng(0)
    return Clip(frames=rng.integers(40, 200, (20, 24, 24), dtype=np.uint8), fps=20.0)


def test_perturbations_do_what_they_say(clip: Clip) -> None:
    brighter = perturb.apply(clip, "gain", 6.0, 0)
    assert brighter.frames.mean() == pytest.approx(min(255, clip.frames.mean() * 2), rel=0.15)
    noisy = perturb.apply(clip, "noise", 10.0, 0)
    assert 8 < np.std(noisy.frames.astype(float) - clip.frames) < 12
    assert not np.array_equal(perturb.apply(clip, "jpeg_quality", 10, 0).frames, clip.frames)
    half = perturb.apply(clip, "fps_resample", 0.5, 0)
    assert half.num_frames == 10 and half.fps == 10.0
    assert np.array_equal(half.frames, clip.frames[::2])
    dropped = perturb.apply(clip, "frame_drop", 0.25, 0)
    assert dropped.num_frames == 15 and dropped.fps == 20.0
    short = perturb.apply(clip, "shorter", 0.5, 0)
    assert np.array_equal(short.frames, clip.frames[5:15])
    still = perturb.apply(clip, "motionless", 0.0, 0)
    assert still.num_frames == 20 and (still.frames == clip.frames[10]).all()
    assert np.array_equal(
        perturb.apply(clip, "noise", 10.0, 3).frames, perturb.apply(clip, "noise", 10.0, 3).frames
    )
    assert clip.frames.shape == (20, 24, 24)  # the input is never modified


def test_sweep_check_names_the_setting() -> None:
    with pytest.raises(BadConfigError, match=r"perturbations\[1\].name"):
        perturb.check_sweep([{"name": "gain", "levels": [1]}, {"name": "blur", "levels": [1]}])
    with pytest.raises(BadConfigError, match=r"perturbations\[0\].levels"):
        perturb.check_sweep([{"name": "gain", "levels": []}])
    perturb.check_sweep(suites.load_definition("robustness")["perturbations"])


def test_shipped_suites_hash_and_plan() -> None:
    assert {"synthetic-id", "synthetic-shift", "robustness", "synthetic-graded"} <= set(
        suites.known_suites()
    )
    definition = suites.load_definition("synthetic-id")
    changed = copy.deepcopy(definition)
    changed["clip"]["frames"] = 24
    assert suites.definition_hash(definition) == suites.definition_hash(copy.deepcopy(definition))
    assert suites.definition_hash(definition) != suites.definition_hash(changed)
    plan = clip_plan(definition)
    assert len(plan) == definition["n_patients"] * definition["clips_per_patient"]
    assert plan == clip_plan(definition)  # deterministic
    assert min(item["patient_seed"] for item in plan) >= 2**32  # above every labral synth seed
    labels = [item["label"] for item in plan]
    assert 0.35 < np.mean(labels) < 0.65
    shift = clip_plan(suites.load_definition("synthetic-shift", {"n_patients": 2}))
    tags = {item["shift"] for item in shift}
    assert len(tags) == 10 and {"fps_8", "freq_4mhz"} <= tags
    assert {item["fps"] for item in shift if item["shift"] == "fps_8"} == {8.0}
    assert len({item["patient"] for item in shift}) == 20  # patients never shared across settings


def test_unknown_suite_name() -> None:
    with pytest.raises(BadConfigError, match="known suites: .*synthetic-id"):
        suites.resolve_suite("no-such-suite", "/nonexistent")


def test_generate_tiny_suite_through_generator_and_reader(tmp_path) -> None:
    overrides = {
        "n_patients": 2,
        "clips_per_patient": 2,
        "clip": {"frames": 8, "height": 48, "width": 48, "fps": [15, 20]},
    }
    first = suites.resolve_suite("synthetic-id", tmp_path, overrides, show_progress=False)
    assert len(first.records) == 4 and first.manifest.parent.name.startswith("synthetic-id-")
    stamp = first.manifest.stat().st_mtime_ns
    again = suites.resolve_suite("synthetic-id", tmp_path, overrides, show_progress=False)
    assert again.content_hash == first.content_hash
    assert again.manifest.stat().st_mtime_ns == stamp  # reused from the cache
    decoded = read_cine(first.records[0]["path"])
    assert decoded.num_frames == 8


def test_generation_in_processes_matches_inline(tmp_path) -> None:
    overrides = {
        "n_patients": 2,
        "clips_per_patient": 1,
        "clip": {"frames": 6, "height": 48, "width": 48, "fps": [15, 20]},
    }
    inline = suites.resolve_suite("synthetic-id", tmp_path / "a", overrides, False, workers=1)
    pooled = suites.resolve_suite("synthetic-id", tmp_path / "b", overrides, False, workers=2)
    assert inline.manifest.read_text() == pooled.manifest.read_text()
    for a, b in zip(inline.records, pooled.records, strict=True):
        assert np.array_equal(read_cine(a["path"]).frames, read_cine(b["path"]).frames)


def test_csv_manifest_is_a_suite(bench_assets, tmp_path) -> None:
    jsonl = bench_assets["manifest"]
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    target = jsonl.parent / "manifest_copy.csv"
    with open(target, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "extrusion_frames": json.dumps(row["extrusion_frames"])})
    suite = suites.resolve_suite(str(target), tmp_path)
    assert suite.name == "manifest_copy" and len(suite.records) == 24
    assert suite.records[0]["extrusion_frames"] == rows[0]["extrusion_frames"]
    assert len(suite.content_hash) == 64 and suite.perturbations == []


def test_suites_inherit_the_generators_negative_mix() -> None:
    # labral synth's default is `negative_mix: null` (the generator's default); the suites
    # must resolve it to every hard-negative type, not fall back to one type
    mix = suites.training_defaults()["negative_mix"]
    assert mix == DEFAULT_NEGATIVE_MIX
    plan = clip_plan({**suites.training_defaults(), "seed": 1, "n_patients": 60})
    types = {item["clip_type"] for item in plan}
    assert {"incoherent_twin", "anisotropy", "probe_motion"} <= types


def test_suites_do_not_restate_the_training_defaults() -> None:
    # one source per default: every shipped suite takes these keys from labral synth's
    # settings (so a new synth default reaches every suite and its hash); a suite may only
    # set them to differ
    inherited = suites.training_defaults()
    assert set(inherited) == {
        "prevalence", "extrusion_threshold", "negative_mix", "clip", "difficulty", "dicom"
    }  # fmt: skip
    for name in suites.known_suites():
        raw = OmegaConf.to_container(OmegaConf.load(suites.SUITES_DIR / f"{name}.yaml"))
        assert "defaults" not in raw, f"{name}: a suite is data, not a Hydra config"
        restated = [key for key in inherited if key in raw and raw[key] == inherited[key]]
        assert restated == [], f"{name} restates {restated}"
        definition = suites.load_definition(name)
        assert all(definition[key] == inherited[key] for key in inherited if key not in raw)


def test_training_defaults_follow_the_synth_settings() -> None:
    # the suites read labral synth's settings model, not a copy: its values are synth's own
    synth = SynthSettings.from_config({"out": "unused"}, check_out=False)
    inherited = suites.training_defaults()
    assert inherited["prevalence"] == synth.prevalence
    assert inherited["extrusion_threshold"] == list(synth.extrusion_threshold)
    assert inherited["negative_mix"] == synth.negative_mix
    assert inherited["clip"] == {**synth.clip.model_dump(), "fps": list(synth.clip.fps)}
    assert inherited["difficulty"] == synth.difficulty.level == DEFAULT_LEVEL
    assert inherited["dicom"] == {
        "syntax": synth.formats.dicom_syntax,
        "jpeg_quality": synth.formats.jpeg_quality,
        "burned_in_text": synth.formats.burned_in_text,
    }


def test_suite_hash_covers_every_module_the_generator_reads() -> None:
    # a suite is cached by the hash of the generator's code: a module generate_clip reads
    # but the hash leaves out would serve stale clips after it changes
    source = Path(generate.__file__).read_text()
    used = set(re.findall(r"from (labral\.datasets\.synth\.\w+) import", source))
    for name in list(used):
        module_source = Path(__import__(name, fromlist=["x"]).__file__).read_text()
        used |= set(re.findall(r"from (labral\.datasets\.synth\.\w+) import", module_source))
    assert used and used <= set(suites.GENERATOR_MODULES), used - set(suites.GENERATOR_MODULES)


def test_suites_load_inside_a_running_hydra_app() -> None:
    # `labral bench` loads its suite while its own Hydra app holds Hydra's global state: a
    # suite is read as data, so loading it leaves that state alone
    GlobalHydra.instance().clear()
    with initialize_config_module("labral.configs", version_base="1.3"):
        assert suites.load_definition("synthetic-id")["seed"] == 7_000_000
        assert GlobalHydra.instance().is_initialized()
        assert compose("synth").difficulty.level == DEFAULT_LEVEL  # the app's tree composes
