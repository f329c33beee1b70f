"""Benchmark suites: versioned definitions in ``configs/suites/*.yaml`` or a user manifest.

A synthetic suite is generated deterministically (seeded) through the generator and the
DICOM writer, so scoring exercises the same reader path as real files. The result lands in
``<cache_dir>/<name>-<hash12>/`` where the hash covers the suite definition and the source
of the generator and writer modules (the "generator code version"): changing either makes a
new folder, never a silently stale one.

Patients are disjoint from training data by seed range: ``labral synth`` derives patient seeds
as 32-bit hashes (< 2**32), while a suite's patient seeds are ``2**32 + seed + 100_000 *
setting + patient``, which no 32-bit seed can equal; patient ids differ too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from tqdm import tqdm

from labral.datasets.synth.difficulty import default_level
from labral.datasets.synth.hips import draw_hip_truth
from labral.datasets.synth.scenarios import DEFAULT_NEGATIVE_MIX
from labral.errors import BadConfigError, BadManifestError

SUITES_DIR = Path(__file__).resolve().parent.parent / "configs" / "suites"
#: Modules whose source defines what a synthetic suite contains (hashed into the cache key).
GENERATOR_MODULES = (
    "labral.datasets.synth.types",
    "labral.datasets.synth.anatomy",
    "labral.datasets.synth.imaging",
    "labral.datasets.synth.motion",
    "labral.datasets.synth.scenarios",
    "labral.datasets.synth.difficulty",
    "labral.datasets.synth.params",
    "labral.datasets.synth.hips",
    "labral.datasets.synth.warp",
    "labral.datasets.synth.generate",
    "labral.datasets.synth.dicom_writer",
    "labral.bench.suites",  # the clip plan (patients, seeds, types) is drawn here
)
COMPLETE_MARKER = ".complete"
#: Suite patient seeds start here: above every 32-bit seed that ``labral synth`` can draw.
SEED_OFFSET = 2**32


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
    """Names of the suites shipped in configs/suites/."""
    return sorted(path.stem for path in SUITES_DIR.glob("*.yaml"))


def load_definition(name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read ``configs/suites/<name>.yaml`` and apply ``overrides`` (e.g. ``{"n_patients": 10}``).

    Raises:
        BadConfigError: unknown suite name (the message lists the known ones).
    """
    path = SUITES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise BadConfigError(
            f"suite={name!r}: unknown suite and not a manifest file; known suites: "
            f"{', '.join(known_suites())}; or pass the path of a JSONL/CSV manifest"
        )
    definition = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    assert isinstance(definition, dict)
    if definition.pop("inherit", None) == "synth":
        definition = {**training_defaults(), **definition}
    for key, value in (overrides or {}).items():
        if value is not None:
            definition[key] = value
    return definition


def training_defaults() -> dict[str, Any]:
    """The training distribution from ``configs/synth.yaml``: prevalence, negative mix, clip
    geometry and DICOM format (a suite with ``inherit: synth`` takes these unless it sets them;
    the resolved values enter the suite hash, so a new synth default makes a new suite)."""
    synth = OmegaConf.load(SUITES_DIR.parent / "synth.yaml")
    pick = {
        key: OmegaConf.to_container(synth[key]) if OmegaConf.is_config(synth[key]) else synth[key]
        for key in ("prevalence", "extrusion_threshold", "negative_mix", "clip")
    }
    pick["difficulty"] = default_level()
    if pick["negative_mix"] is None:  # null in synth.yaml means the generator's default mix
        pick["negative_mix"] = dict(DEFAULT_NEGATIVE_MIX)
    formats = synth["formats"]
    pick["dicom"] = {
        "syntax": "jpeg" if formats.dicom_syntax == "mixed" else formats.dicom_syntax,
        "jpeg_quality": formats.jpeg_quality,
        "burned_in_text": formats.burned_in_text,
    }
    return pick


def generator_code_version() -> str:
    """SHA-256 over the source of ``GENERATOR_MODULES`` that are installed (in order) and
    the difficulty levels' files (a suite names its level; the file holds its knobs)."""
    digest = hashlib.sha256()
    for module in GENERATOR_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin:
            digest.update(module.encode())
            digest.update(Path(spec.origin).read_bytes())
    for level in sorted((SUITES_DIR.parent / "difficulty").glob("*.yaml")):  # the knob ranges
        digest.update(level.name.encode())
        digest.update(level.read_bytes())
    return digest.hexdigest()


def definition_hash(definition: dict[str, Any]) -> str:
    """Content hash of a suite: canonical JSON of the definition + generator code version."""
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{canonical}|{generator_code_version()}".encode()).hexdigest()


def _clip_plan(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """Every clip to generate, in order: patient, hip truth, seeds, type, fps, frames, setting.

    Each patient has one or two hips (clips alternate sides); hips are detached or intact and
    clips show the extrusion by the generator's hip-level rule
    (:func:`labral.datasets.synth.hips.draw_hip_truth`), per setting.
    """
    prevalence = float(definition.get("prevalence", 0.5))
    mix = dict(definition.get("negative_mix") or DEFAULT_NEGATIVE_MIX)
    threshold = tuple(definition.get("extrusion_threshold") or (0.05, 0.55))
    base_clip = dict(definition.get("clip") or {})
    settings = definition.get("settings") or [{"name": "default"}]
    n_clips = int(definition.get("clips_per_patient", 2))
    plan: list[dict[str, Any]] = []
    for s_index, setting in enumerate(settings):
        clip_cfg = {**base_clip, **(setting.get("clip") or {})}
        n_patients = int(setting.get("n_patients", definition.get("n_patients", 10)))
        seeds = [
            SEED_OFFSET + int(definition["seed"]) + s_index * 100_000 + p for p in range(n_patients)
        ]
        sides = [("R", "L")[: min(2, n_clips)] for _ in seeds]
        per_hip = [[c for c in range(n_clips) if c % 2 == k] for k in range(2)]
        hips = [(p, side) for p in range(n_patients) for side in sides[p]]
        truth = draw_hip_truth(
            [len(per_hip[0 if side == "R" else 1]) for _, side in hips],
            prevalence,
            (float(threshold[0]), float(threshold[1])),
            mix,
            np.random.default_rng([int(definition["seed"]), s_index, 0x5017E]),
        )
        by_clip = {
            (p, per_hip[0 if side == "R" else 1][k]): (side, t)
            for (p, side), hip_truth in zip(hips, truth, strict=True)
            for k, t in enumerate(hip_truth)
        }
        for p_index, patient_seed in enumerate(seeds):
            rng = np.random.default_rng(patient_seed)
            for c_index in range(n_clips):
                side, clip_truth = by_clip[(p_index, c_index)]
                fps = clip_cfg.get("fps", 20.0)
                if isinstance(fps, list):  # integer fps in the range, as labral synth draws
                    fps = int(rng.integers(int(fps[0]), int(fps[1]) + 1))
                patient = f"B{s_index:02d}-{p_index:05d}"  # DICOM SH/LO-safe, unlike "P0007"
                plan.append(
                    {
                        "patient": patient,
                        "hip": f"{patient}_{side}",
                        "hip_label": clip_truth.hip_label,
                        "patient_seed": patient_seed,
                        "clip_seed": patient_seed * 100 + c_index + 1,
                        "clip": c_index,
                        "side": side,
                        "clip_type": clip_truth.clip_type,
                        "label": clip_truth.label,
                        "fps": round(float(fps), 3),
                        "frames": int(clip_cfg.get("frames", 32)),
                        "height": int(clip_cfg.get("height", 128)),
                        "width": int(clip_cfg.get("width", 128)),
                        "overrides": dict(setting.get("overrides") or {}),
                        "difficulty": setting.get("difficulty", definition.get("difficulty")),
                        "shift": str(setting["name"]),
                    }
                )
    return plan


def _generate_one(item: dict[str, Any], dicom: dict[str, Any], out: Path) -> dict[str, Any]:
    from labral.datasets.synth.dicom_writer import write_cine_dicom
    from labral.datasets.synth.generate import draw_patient, generate_clip

    anatomy = draw_patient(item["patient_seed"])
    clip = generate_clip(
        anatomy,
        item["clip_type"],
        item["clip_seed"],
        frames=item["frames"],
        height=item["height"],
        width=item["width"],
        fps=item["fps"],
        side=item["side"],
        overrides=item["overrides"] or None,
        difficulty=item["difficulty"],
    )
    rel = Path("clips") / f"{item['patient']}-{item['clip']}.dcm"
    write_cine_dicom(
        clip,
        out / rel,
        syntax=dicom.get("syntax", "jpeg"),
        jpeg_quality=int(dicom.get("jpeg_quality", 90)),
        burned_in_text=bool(dicom.get("burned_in_text", True)),
        patient={"patient": item["patient"], "side": item["side"], "clip": item["clip"]},
    )
    return {
        "path": rel.as_posix(),
        "label": int(clip.label),
        "hip_label": item["hip_label"],
        "patient": item["patient"],
        "hip": item["hip"],
        "side": item["side"],
        "clip": item["clip"],
        "split": "test",
        "clip_type": clip.clip_type,
        "fps": float(clip.fps),
        "extrusion_frames": [int(f) for f in clip.extrusion_frames],
        "shift": item["shift"],
        "difficulty": clip.params["difficulty"]["level"],
        "params": {"overrides": item["overrides"], "clip_seed": item["clip_seed"]},
    }


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
    plan = _clip_plan(definition)
    work = partial(_generate_one, dicom=dicom, out=out)
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
    """Load a manifest through ``labral.datasets.manifest.load_manifest`` and check every file.

    Raises:
        BadManifestError: invalid manifest, or files missing (all missing paths are listed).
    """
    from labral.datasets.manifest import load_manifest

    records = [dict(row) for row in load_manifest(manifest)]
    missing = []
    for row in records:
        path = Path(row["path"])
        if not path.is_absolute():
            path = manifest.parent / path
        row["path"] = str(path)
        if not path.is_file():
            missing.append(str(path))
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
