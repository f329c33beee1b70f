"""Generate a synthetic cine data set: patients, hips, clips -> DICOM files + a manifest.

The plan (who, which hip, which clip type, which split, which seed) is drawn up front from
the data set seed alone, so every clip is an independent job whose pixels depend only on
its own seeds: the result is the same for any worker count. Jobs stream through a process
pool (``imap``, chunked, in order); each worker writes its files and returns one small
manifest row, so memory stays bounded however many clips are made.

Output under ``out``::

    manifest.jsonl        one row per clip (path relative to the manifest)
    dataset.json          counts by split/type/label, seed, settings, content fingerprint
    clips/P0007/P0007_R_c01.dcm  (+ .mp4 beside it with formats.mp4=true)
    preview/              contact sheet + one GIF per type (see preview.py)
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import shutil
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from tqdm.auto import tqdm

from labral.datasets.manifests.manifest import SPLIT_NAMES
from labral.datasets.synth.dicom_writer import encode_cine_dicom
from labral.datasets.synth.hips import allocate_counts, draw_hip_truth
from labral.datasets.synth.jobs import ClipJob, render_job
from labral.datasets.synth.preview import write_preview
from labral.datasets.synth.settings import SynthSettings
from labral.datasets.synth.video_writer import write_mp4

MANIFEST_NAME = "manifest.jsonl"
SUMMARY_NAME = "dataset.json"
#: The keys of each manifest row that :func:`summarize` counts (kept in memory per clip).
SUMMARY_KEYS = ("patient", "hip", "side", "split", "label", "hip_label", "clip_type", "difficulty")


def _child_seed(*key: int) -> int:
    """A 32-bit seed derived from integer key parts (stable across runs and platforms)."""
    return int(np.random.SeedSequence(list(key)).generate_state(1)[0])


def assign_splits(
    n_patients: int, fractions: Mapping[str, float], rng: np.random.Generator
) -> list[str]:
    """Assign each patient to one split, every split with a fraction > 0 non-empty if possible.

    Args:
        n_patients: number of patients.
        fractions: split name -> fraction (summing to 1).
        rng: random generator used to shuffle patients.

    Returns:
        Split name per patient index.
    """
    wanted = [s for s in SPLIT_NAMES if fractions.get(s, 0.0) > 0]
    counts = allocate_counts(n_patients, {s: fractions.get(s, 0.0) for s in wanted})
    if n_patients >= len(wanted):  # take one from the largest split for each empty one
        for split in wanted:
            if counts[split] == 0:
                donor = max(wanted, key=lambda s: counts[s])
                counts[donor] -= 1
                counts[split] += 1
    labels = [s for s in wanted for _ in range(counts[s])]
    order = rng.permutation(n_patients)
    result = [""] * n_patients
    for slot, patient in enumerate(order):
        result[int(patient)] = labels[slot]
    return result


def spread_levels(splits: list[str], settings: SynthSettings) -> list[str]:
    """The difficulty level of each patient: ``settings.levels`` in turn within each split,
    so every split spans them evenly (every patient at ``difficulty`` when ``levels`` is
    empty)."""
    if not settings.levels:
        return [settings.difficulty.level] * len(splits)
    seen: Counter[str] = Counter()
    result = []
    for split in splits:
        result.append(settings.levels[seen[split] % len(settings.levels)])
        seen[split] += 1
    return result


def plan_dataset(settings: SynthSettings) -> list[ClipJob]:
    """Draw the whole data set's structure (no pixels) from ``settings.seed``.

    Patients get 1-2 hips and several clips per hip; ``prevalence`` of the hips are
    detached, and a clip shows the extrusion when its provocation reaches its hip's
    threshold (:func:`labral.datasets.synth.hips.draw_hip_truth`); the other clips get
    negative types shared out exactly by ``negative_mix``; splits are by patient, and so are
    the levels of a mixed set (:func:`spread_levels`).

    Returns:
        One job per clip, in manifest order.
    """
    rng = np.random.default_rng([settings.seed, 1])
    hips: list[tuple[int, str, int]] = []  # (patient index, side, clips)
    for p in range(settings.n_patients):
        n_hips = int(rng.integers(settings.hips_per_patient[0], settings.hips_per_patient[1] + 1))
        sides = ["R", "L"] if n_hips == 2 else [str(rng.choice(["R", "L"]))]
        for side in sides:
            lo, hi = settings.clips_per_hip
            hips.append((p, side, int(rng.integers(lo, hi + 1))))
    total = sum(n for _, _, n in hips)
    truth = draw_hip_truth(
        [n for _, _, n in hips],
        settings.prevalence,
        settings.extrusion_threshold,
        settings.negative_mix,
        rng,
    )
    splits = assign_splits(settings.n_patients, settings.splits, rng)
    levels = spread_levels(splits, settings)
    fps = rng.integers(settings.clip.fps[0], settings.clip.fps[1] + 1, size=total)

    jobs: list[ClipJob] = []
    for (p, side, n_clips), hip_truth in zip(hips, truth, strict=True):
        patient = f"P{p:04d}"
        for k in range(n_clips):
            clip_truth = hip_truth[k]
            index = len(jobs)
            syntax = settings.formats.dicom_syntax
            if syntax == "mixed":
                syntax = "jpeg" if index % 2 == 0 else "explicit"
            jobs.append(
                ClipJob(
                    index=index,
                    patient=patient,
                    patient_seed=_child_seed(settings.seed, p),
                    side=side,
                    hip=f"{patient}_{side}",
                    hip_label=clip_truth.hip_label,
                    provocation=round(clip_truth.provocation, 4),
                    extrusion_threshold=round(clip_truth.extrusion_threshold, 4),
                    clip=k,
                    clip_type=clip_truth.clip_type,
                    seed=_child_seed(settings.seed, p, 1 if side == "R" else 2, k),
                    fps=float(fps[index]),
                    split=splits[p],
                    syntax=syntax,
                    relpath=f"clips/{patient}/{patient}_{side}_c{k:02d}.dcm",
                    difficulty=levels[p],
                )
            )
    return jobs


def _json_ready(value: Any) -> Any:
    """Convert NumPy scalars/arrays and tuples inside ``value`` to plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def make_clip_files(job: ClipJob, settings: SynthSettings) -> tuple[dict[str, Any], str]:
    """Generate one clip, write its DICOM (and MP4), and return its manifest row.

    Returns:
        (row, SHA-256 hex of the written DICOM bytes).
    """
    clip = render_job(job, settings)
    path = settings.out / job.relpath
    identity = {"patient": job.patient, "side": job.side, "clip": job.clip}
    identity["dataset_seed"] = settings.seed
    data = encode_cine_dicom(
        clip,
        syntax=job.syntax,
        jpeg_quality=settings.formats.jpeg_quality,
        burned_in_text=settings.formats.burned_in_text,
        patient=identity,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    row: dict[str, Any] = {
        "path": job.relpath,
        "label": int(clip.label),
        "hip_label": job.hip_label,
        "patient": job.patient,
        "hip": job.hip,
        "side": job.side,
        "clip": job.clip,
        "clip_type": clip.clip_type,
        "split": job.split,
        "fps": float(clip.fps),
        "frames": int(clip.frames.shape[0]),
        "extrusion_frames": [int(i) for i in clip.extrusion_frames],
        "seed": job.seed,
        "provocation": job.provocation,
        "extrusion_threshold": job.extrusion_threshold,
        "difficulty": job.difficulty,
        "params": _json_ready(clip.params),
    }
    if settings.formats.mp4:
        mp4_rel = str(Path(job.relpath).with_suffix(".mp4"))
        write_mp4(clip.frames, clip.fps, settings.out / mp4_rel)
        row["mp4"] = mp4_rel
    return row, hashlib.sha256(data).hexdigest()


_WORKER_SETTINGS: SynthSettings | None = None


def _init_worker(settings: SynthSettings) -> None:
    global _WORKER_SETTINGS
    _WORKER_SETTINGS = settings


def _worker(job: ClipJob) -> tuple[dict[str, Any], str]:
    assert _WORKER_SETTINGS is not None, "worker used before _init_worker"
    return make_clip_files(job, _WORKER_SETTINGS)


def iter_clip_rows(
    jobs: list[ClipJob], settings: SynthSettings
) -> Iterator[tuple[dict[str, Any], str]]:
    """Run the jobs (in this process for one worker, else a pool) and yield rows in order."""
    workers = min(settings.resolved_workers, max(1, len(jobs)))
    if workers == 1:
        for job in jobs:
            yield make_clip_files(job, settings)
        return
    methods = mp.get_all_start_methods()
    context = mp.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(settings,)) as pool:
        yield from pool.imap(_worker, jobs, chunksize=settings.chunksize)


def summarize(rows: list[dict[str, Any]], settings: SynthSettings, fingerprint: str) -> dict:
    """The ``dataset.json`` content: counts by split, type and label, seed, settings."""
    by_split: dict[str, dict[str, int]] = {}
    for split in SPLIT_NAMES:
        in_split = [r for r in rows if r["split"] == split]
        by_split[split] = {
            "clips": len(in_split),
            "patients": len({r["patient"] for r in in_split}),
            "positive": sum(r["label"] for r in in_split),
            "negative": sum(1 - r["label"] for r in in_split),
            "detached_hips": len({r["hip"] for r in in_split if r["hip_label"]}),
            "intact_hips": len({r["hip"] for r in in_split if not r["hip_label"]}),
        }
    hip_labels = {r["hip"]: r["hip_label"] for r in rows}
    return {
        "name": "labral-synth",
        "manifest": MANIFEST_NAME,
        "seed": settings.seed,
        "clips": len(rows),
        "patients": len({r["patient"] for r in rows}),
        "hips": len(hip_labels),
        "difficulty": "mixed" if settings.levels else settings.difficulty.level,
        "levels": dict(sorted(Counter(r["difficulty"] for r in rows).items())),
        "by_hip_label": {
            "detached": sum(hip_labels.values()),
            "intact": len(hip_labels) - sum(hip_labels.values()),
            "detached_clips_without_extrusion": sum(
                1 for r in rows if r["hip_label"] and not r["label"]
            ),
        },
        "by_split": by_split,
        "by_type": dict(sorted(Counter(r["clip_type"] for r in rows).items())),
        "by_label": {str(k): v for k, v in sorted(Counter(r["label"] for r in rows).items())},
        "fingerprint": fingerprint,
        "settings": settings.to_json(),
    }


def remove_previous_run(out: Path) -> None:
    """Delete the clips and preview of an earlier ``labral synth`` run in ``out``.

    Only a folder whose ``dataset.json`` says ``"name": "labral-synth"`` is cleaned, so the
    new manifest and the files on disk match one to one; anything else is left alone.
    """
    summary = out / SUMMARY_NAME
    try:
        ours = json.loads(summary.read_text()).get("name") == "labral-synth"
    except (OSError, ValueError, AttributeError):
        return
    if ours:
        for name in ("clips", "preview"):
            shutil.rmtree(out / name, ignore_errors=True)
        (out / MANIFEST_NAME).unlink(missing_ok=True)  # never point at deleted files
        summary.unlink(missing_ok=True)


def synthesize(cfg: DictConfig | Mapping[str, Any] | SynthSettings) -> Path:
    """Generate a data set: DICOM clips, ``manifest.jsonl``, ``dataset.json``, a preview.

    Args:
        cfg: a ``synth`` config (``configs/synth.yaml``) or already-checked settings.

    Returns:
        Path of ``manifest.jsonl`` under ``out``.

    Raises:
        BadConfigError: a bad setting (named), before any file is written; settings the
            generator refuses (e.g. an unknown ``overrides`` key) surface from a preflight
            render of the first clip.
    """
    settings = cfg if isinstance(cfg, SynthSettings) else SynthSettings.from_config(cfg)
    jobs = plan_dataset(settings)
    if jobs:  # preflight: the generator checks sizes/overrides before any file is written
        render_job(jobs[0], settings)
    settings.out.mkdir(parents=True, exist_ok=True)
    remove_previous_run(settings.out)
    manifest = settings.out / MANIFEST_NAME
    partial = manifest.with_suffix(".jsonl.partial")
    digest = hashlib.sha256()
    rows: list[dict[str, Any]] = []  # small dicts only; pixels never stay in memory
    started = time.perf_counter()
    bar = tqdm(total=len(jobs), unit="clip", desc="labral synth", disable=not settings.progress)
    with partial.open("w", encoding="utf-8") as handle, bar:
        for row, file_hash in iter_clip_rows(jobs, settings):
            line = json.dumps(row, sort_keys=True)
            handle.write(line + "\n")
            digest.update(line.encode() + file_hash.encode())
            rows.append({k: row[k] for k in SUMMARY_KEYS})
            bar.update(1)
    partial.replace(manifest)
    summary = summarize(rows, settings, digest.hexdigest())
    seconds = time.perf_counter() - started
    # "run" is the only part of dataset.json that differs between identical runs.
    summary["run"] = {
        "seconds": round(seconds, 3),
        "clips_per_s": round(len(rows) / max(seconds, 1e-9), 2),
        "workers": min(settings.resolved_workers, max(1, len(jobs))),
    }
    if settings.preview:
        paths = write_preview(jobs, settings, settings.out / "preview")
        summary["preview"] = [str(p.relative_to(settings.out)) for p in paths]
    (settings.out / SUMMARY_NAME).write_text(json.dumps(summary, indent=2) + "\n")
    return manifest
