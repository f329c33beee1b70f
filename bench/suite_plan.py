"""What a synthetic suite contains: the clip plan (patients, hips, seeds, types) and the
generation of one planned clip with its ground truth.

Every clip is a DICOM file written by the generator's writer, so scoring exercises the
reader. Beside the label, each manifest row carries the truth the benchmark's localisation
metrics need: ``extrusion_frames`` (source frames with fluid in the cleft),
``loading_velocity`` (the femur's loading velocity on every source frame: the input of the
image-free timing null) and, for a positive, ``extrusion_mask``: a ``masks/<clip>.npz``
holding ``frames`` int (K,) and ``mask`` bool (K, H, W), the extrusion on those frames at
the decoded clip's size (the writer's tissue region is the generator's frame, and the
reader crops to it).

A setting with ``wrong_input: <kind>`` plans clips the product must refuse
(:mod:`labral.datasets.synth.wrong_inputs`): label 0, hip_label 0, clip type
``"wrong_input"``; their rows add ``wrong_input``, ``wrong_family`` and ``held_out`` (the
family the input check never trains on), and ``loading_velocity`` only where the clip holds
a movement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from labral.bench.seeds import setting_patients, suite_patient_seed
from labral.datasets.synth.dicom_writer import write_cine_dicom
from labral.datasets.synth.generate import draw_patient, generate_clip
from labral.datasets.synth.hips import draw_hip_truth
from labral.datasets.synth.scenarios import DEFAULT_NEGATIVE_MIX
from labral.datasets.synth.wrong_inputs import (
    HELD_OUT_FAMILY,
    WRONG_INPUT_CLIP_TYPE,
    family_of,
    generate_wrong_input,
)

#: Decimals of the loading-velocity trace in the manifest.
TRACE_DECIMALS = 5


def clip_plan(definition: dict[str, Any]) -> list[dict[str, Any]]:
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
        wrong = setting.get("wrong_input")
        if wrong is not None:
            family_of(wrong)  # refuses an unknown kind
        n_patients = setting_patients(definition, setting)
        seeds = [suite_patient_seed(int(definition["seed"]), s_index, p) for p in range(n_patients)]
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
                        "hip_label": 0 if wrong else clip_truth.hip_label,
                        "patient_seed": patient_seed,
                        "clip_seed": patient_seed * 100 + c_index + 1,
                        "clip": c_index,
                        "side": side,
                        "clip_type": WRONG_INPUT_CLIP_TYPE if wrong else clip_truth.clip_type,
                        "label": 0 if wrong else clip_truth.label,
                        "fps": round(float(fps), 3),
                        "frames": int(clip_cfg.get("frames", 32)),
                        "height": int(clip_cfg.get("height", 128)),
                        "width": int(clip_cfg.get("width", 128)),
                        "overrides": dict(setting.get("overrides") or {}),
                        "difficulty": setting.get("difficulty", definition.get("difficulty")),
                        "shift": str(setting["name"]),
                        "wrong_input": wrong,
                    }
                )
    return plan


def generate_one(item: dict[str, Any], dicom: dict[str, Any], out: Path) -> dict[str, Any]:
    """Generate one planned clip (an item of :func:`clip_plan`) into ``out``.

    Writes ``clips/<patient>-<clip>.dcm`` with the ``dicom`` options (``syntax``,
    ``jpeg_quality``, ``burned_in_text``) and, for a clip with extrusion, its truth
    ``masks/<patient>-<clip>.npz`` (``frames`` int (K,), ``mask`` bool (K, H, W)).

    Returns:
        The clip's manifest row (path relative to ``out``, label, truth, shift, level; a
        wrong input's kind, family and whether that family is held out).
    """
    kind = item.get("wrong_input")
    size = {k: item[k] for k in ("frames", "height", "width", "fps")}
    if kind:
        clip = generate_wrong_input(kind, item["clip_seed"], **size, difficulty=item["difficulty"])
    else:
        clip = generate_clip(
            draw_patient(item["patient_seed"]),
            item["clip_type"],
            item["clip_seed"],
            **size,
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
    truth: dict[str, Any] = {}
    if kind:
        family = family_of(kind)
        truth.update(wrong_input=kind, wrong_family=family, held_out=family == HELD_OUT_FAMILY)
    traces = clip.params.get("traces")
    if traces:  # a wrong input without a movement has none
        shown = np.asarray(traces["shown_frame"], dtype=np.int64)
        velocity = np.asarray(traces["loading_velocity"], dtype=np.float64)[shown]
        truth["loading_velocity"] = [round(float(v), TRACE_DECIMALS) for v in velocity]
    if clip.extrusion_frames:
        mask_rel = Path("masks") / f"{item['patient']}-{item['clip']}.npz"
        (out / mask_rel).parent.mkdir(parents=True, exist_ok=True)
        frames = np.asarray(clip.extrusion_frames, dtype=np.int64)
        np.savez_compressed(out / mask_rel, frames=frames, mask=clip.extrusion_mask[frames])
        truth["extrusion_mask"] = mask_rel.as_posix()
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
        **truth,
    }
