"""Benchmark suites: versioned definitions in ``configs/suites/*.yaml`` or a user manifest.

A shipped suite is a data file: it takes the training distribution of ``labral synth``
(:func:`training_defaults`: prevalence, negative mix, clip geometry, difficulty level, DICOM
format, from :class:`labral.datasets.synth.settings.SynthSettings`) and sets only the keys
that differ, so a new synth default reaches every suite and its hash.

A synthetic suite is generated deterministically (seeded) through the generator and the
DICOM writer, so scoring exercises the same reader path as real files. The result lands in
``<cache_dir>/<name>-<hash12>/`` where the hash covers the suite definition and the source
of the generator and writer modules (the "generator code version"): changing either makes a
new folder, never a silently stale one.

Patients are disjoint from training data and from every other suite by seed range: the one
registry of ranges is :mod:`labral.bench.seeds`, and a suite whose range meets another's is
refused when it is loaded. What a suite contains (the clip plan, the truth written beside
each clip) is :mod:`labral.bench.suite_plan`.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from tqdm import tqdm

import labral.configs
from labral.bench.seeds import check_suite_seeds
from labral.bench.suite_plan import clip_plan, generate_one
from labral.datasets.manifests.manifest import load_manifest
from labral.datasets.synth.difficulty import LEVELS_DIR, known_levels
from labral.datasets.synth.settings import default_settings
from labral.datasets.synth.wrong_inputs import WRONG_INPUT_KINDS
from labral.errors import BadConfigError, BadManifestError

SUITES_DIR = Path(labral.configs.__file__).resolve().parent / "suites"
#: Modules whose source defines what a synthetic suite contains (hashed into the cache key).
GENERATOR_MODULES = (
    "labral.datasets.synth.types",
    "labral.datasets.synth.validation",
    "labral.datasets.synth.anatomy",
    "labral.datasets.synth.imaging",
    "labral.datasets.synth.motion",
    "labral.datasets.synth.scenarios",
    "labral.datasets.synth.difficulty",
    "labral.datasets.synth.params",
    "labral.datasets.synth.hips",
    "labral.datasets.synth.warp",
    "labral.datasets.synth.speckle",
    "labral.datasets.synth.generate",
    "labral.datasets.synth.other_views",  # wrong inputs: other anatomy
    "labral.datasets.synth.wrong_inputs",
    "labral.datasets.synth.dicom_writer",
    "labral.bench.seeds",  # patient seed ranges
    "labral.bench.suite_plan",  # the clip plan (patients, seeds, types) and its truth
)
COMPLETE_MARKER = ".complete"


@dataclass
class Suite:
    """A resolved suite: its manifest records and identity.

    Attributes:
        name: suite name (or the manifest's file name).
        content_hash: SHA-256 hex of the definition + generator code (or of the manifest bytes).
        manifest: path of the JSONL/CSV manifest.
        records: manifest rows with ``path`` made absolute.
        definition: the suite definition (empty for user manifests).
        perturbations: robustness sweep ``[{"name", "levels"}]`` (empty if none).
    """

    name: str
    content_hash: str
    manifest: Path
    records: list[dict[str, Any]]
    definition: dict[str, Any] = field(default_factory=dict)
    perturbations: list[dict[str, Any]] = field(default_factory=list)


def known_suites() -> list[str]:
    """Names of the suites shipped in configs/suites/ (not the shared nodes under ``_base/``)."""
    return sorted(path.stem for path in SUITES_DIR.glob("*.yaml"))


def load_definition(
    name: str, overrides: dict[str, Any] | None = None, check_seeds: bool = True
) -> dict[str, Any]:
    """``configs/suites/<name>.yaml`` on top of :func:`training_defaults`, with ``overrides``
    applied (e.g. ``{"n_patients": 10}``: a key's whole value is replaced; ``None`` keeps the
    suite's).

    Args:
        check_seeds: refuse a suite whose patient seeds meet another shipped suite's or
            training's (:func:`labral.bench.seeds.check_suite_seeds`).

    Raises:
        BadConfigError: unknown suite name (the message lists the known ones), or patient
            seeds shared with another suite or with training.
    """
    if name not in known_suites():
        raise BadConfigError(
            f"suite={name!r}: unknown suite and not a manifest file; known suites: "
            f"{', '.join(known_suites())}; or pass the path of a JSONL/CSV manifest"
        )
    definition = {**training_defaults(), **copy.deepcopy(_suite_file(name))}
    for key, value in (overrides or {}).items():
        if value is not None:
            definition[key] = value
    _check_levels(definition)
    if check_seeds:
        others = {other: load_definition(other, check_seeds=False) for other in known_suites()}
        check_suite_seeds(definition, others)
    return definition


@functools.cache
def _suite_file(name: str) -> dict[str, Any]:
    """The keys a shipped suite's file sets (read once)."""
    data = OmegaConf.to_container(OmegaConf.load(SUITES_DIR / f"{name}.yaml"), resolve=True)
    assert isinstance(data, dict)
    return data


def _check_levels(definition: dict[str, Any]) -> None:
    """Every generator level a suite names (its own, each setting's) and every wrong-input
    kind a setting names must exist.

    Raises:
        BadConfigError: naming the key and the known levels or kinds.
    """
    for i, setting in enumerate(definition.get("settings") or []):
        kind = setting.get("wrong_input")
        if kind is not None and kind not in WRONG_INPUT_KINDS:
            raise BadConfigError(
                f"suite {definition.get('name')}: settings[{i}].wrong_input={kind!r} is not a "
                f"wrong-input kind; known kinds: {', '.join(WRONG_INPUT_KINDS)}"
            )
    levels = known_levels()
    named = [("difficulty", definition.get("difficulty"))] + [
        (f"settings[{i}].difficulty", setting.get("difficulty"))
        for i, setting in enumerate(definition.get("settings") or [])
    ]
    for key, level in named:
        if level is not None and level not in levels:
            raise BadConfigError(
                f"suite {definition.get('name')}: {key}={level!r} is not a generator level; "
                f"known levels: {', '.join(levels)} (configs/difficulty/)"
            )


def training_defaults() -> dict[str, Any]:
    """The training distribution a suite draws from unless it says otherwise: ``labral
    synth``'s defaults (prevalence, extrusion threshold, negative mix, clip geometry,
    difficulty level and DICOM format). The values enter the suite hash, so a new synth
    default makes a new suite. A suite's clips share one transfer syntax: synth's
    ``mixed`` (alternate per clip) becomes ``jpeg``.
    """
    synth = default_settings()
    syntax = synth.formats.dicom_syntax
    return {
        "prevalence": synth.prevalence,
        "extrusion_threshold": list(synth.extrusion_threshold),
        "negative_mix": dict(synth.negative_mix),
        "clip": synth.clip.model_dump(mode="json"),
        "difficulty": synth.difficulty.level,
        "dicom": {
            "syntax": "jpeg" if syntax == "mixed" else syntax,
            "jpeg_quality": synth.formats.jpeg_quality,
            "burned_in_text": synth.formats.burned_in_text,
        },
    }


def generator_code_version() -> str:
    """SHA-256 over the source of ``GENERATOR_MODULES`` that are installed (in order) and
    the difficulty levels' files (a suite names its level; the file holds its knobs)."""
    digest = hashlib.sha256()
    for module in GENERATOR_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin:
            digest.update(module.encode())
            digest.update(Path(spec.origin).read_bytes())
    for level in sorted(LEVELS_DIR.glob("*.yaml")):  # the knob ranges
        digest.update(level.name.encode())
        digest.update(level.read_bytes())
    return digest.hexdigest()


def definition_hash(definition: dict[str, Any]) -> str:
    """Content hash of a suite: canonical JSON of the definition + generator code version."""
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{canonical}|{generator_code_version()}".encode()).hexdigest()


def generate_suite(
    definition: dict[str, Any], cache_dir: str | Path, show_progress: bool = True, workers: int = 1
) -> Path:
    """Generate (or reuse) a synthetic suite in the cache; returns its manifest path.

    The folder is ``<cache_dir>/<name>-<hash12>``; a ``.complete`` marker makes reuse safe
    after an interrupted run (an incomplete folder is regenerated). Every clip is seeded on
    its own, so ``workers`` > 1 (processes) gives the same files as one.
    """
    content_hash = definition_hash(definition)
    out = Path(cache_dir) / f"{definition['name']}-{content_hash[:12]}"
    manifest = out / "manifest.jsonl"
    if (out / COMPLETE_MARKER).is_file() and manifest.is_file():
        return manifest
    out.mkdir(parents=True, exist_ok=True)
    dicom = dict(definition.get("dicom") or {})
    plan = clip_plan(definition)
    work = partial(generate_one, dicom=dicom, out=out)
    desc = f"generating suite {definition['name']}"
    with tqdm(total=len(plan), desc=desc, disable=not show_progress) as bar:
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                rows = []
                for row in pool.map(work, plan, chunksize=4):
                    rows.append(row)
                    bar.update()
        else:
            rows = []
            for item in plan:
                rows.append(work(item))
                bar.update()
    with open(manifest, "w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    (out / "suite.json").write_text(
        json.dumps({"definition": definition, "hash": content_hash}, indent=2)
    )
    (out / COMPLETE_MARKER).write_text(content_hash)
    return manifest


def load_records(manifest: Path) -> list[dict[str, Any]]:
    """Load a manifest through ``labral.datasets.manifests.manifest.load_manifest`` and check
    every file.

    Raises:
        BadManifestError: invalid manifest, or files missing (all missing paths are listed).
    """
    records = [dict(row) for row in load_manifest(manifest)]
    missing = []
    for row in records:
        path = Path(row["path"])
        if not path.is_absolute():
            path = manifest.parent / path
        row["path"] = str(path)
        if not path.is_file():
            missing.append(str(path))
        if row.get("extrusion_mask"):  # a synthetic suite's truth file (bench.suite_plan)
            mask = Path(row["extrusion_mask"])
            row["extrusion_mask"] = str(mask if mask.is_absolute() else manifest.parent / mask)
    if missing:
        listed = "\n  ".join(missing)
        raise BadManifestError(
            f"{manifest}: {len(missing)} of {len(records)} listed files are missing; fix the "
            f"paths (relative to the manifest's folder) or remove the rows:\n  {listed}"
        )
    if not records:
        raise BadManifestError(f"{manifest}: no clips listed; a suite needs at least one clip")
    return records


def resolve_suite(
    suite: str,
    cache_dir: str | Path,
    overrides: dict[str, Any] | None = None,
    show_progress: bool = True,
    workers: int = 1,
) -> Suite:
    """A suite name from configs/suites/ or a manifest path -> a :class:`Suite` ready to score.

    Raises:
        BadConfigError: neither a known suite nor an existing manifest file.
        BadManifestError: the manifest is invalid or lists missing files.
    """
    as_path = Path(suite).expanduser()
    if as_path.suffix.lower() in (".jsonl", ".csv", ".json") or as_path.is_file():
        if not as_path.is_file():
            raise BadManifestError(f"suite={suite!r}: manifest file does not exist")
        manifest = as_path.resolve()
        digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
        return Suite(manifest.stem, digest, manifest, load_records(manifest))
    definition = load_definition(suite, overrides)
    manifest = generate_suite(definition, cache_dir, show_progress, workers)
    return Suite(
        name=str(definition["name"]),
        content_hash=definition_hash(definition),
        manifest=manifest,
        records=load_records(manifest),
        definition=definition,
        perturbations=list(definition.get("perturbations") or []),
    )
