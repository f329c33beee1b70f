"""A preview a person can look at: a contact sheet and one short GIF per clip type.

The first planned clip of each type (positive first, then the hard negatives in
``NEGATIVE_TYPES`` order) is regenerated from its seeds, so the preview shows exactly what
was written. Extrusion frames get a red border and the extrusion mask a red outline.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy.ndimage import binary_erosion

from labral.datasets.synth.difficulty import known_levels
from labral.datasets.synth.generate import draw_patient, generate_clip
from labral.datasets.synth.jobs import ClipJob, render_job
from labral.datasets.synth.settings import SynthSettings
from labral.datasets.synth.types import NEGATIVE_TYPES, POSITIVE_TYPE, SynthClip

RED = (230, 40, 40)
LABEL_WIDTH = 150
BORDER = 2
TYPE_ORDER = (POSITIVE_TYPE, *NEGATIVE_TYPES)


def mark_frames(clip: SynthClip) -> np.ndarray:
    """RGB frames with the extrusion marked: red border on extrusion frames, mask outline.

    Args:
        clip: ``frames`` uint8 (T, H, W), ``extrusion_mask`` bool (T, H, W).

    Returns:
        uint8 (T, H, W, 3).
    """
    rgb = np.repeat(clip.frames[..., None], 3, axis=-1)
    mask = np.asarray(clip.extrusion_mask, dtype=bool)
    if mask.shape == clip.frames.shape and mask.any():
        edge = mask & ~binary_erosion(mask, structure=np.ones((1, 3, 3), dtype=bool))
        rgb[edge] = RED
    for t in clip.extrusion_frames:
        if 0 <= t < rgb.shape[0]:
            rgb[t, :BORDER], rgb[t, -BORDER:] = RED, RED
            rgb[t, :, :BORDER], rgb[t, :, -BORDER:] = RED, RED
    return rgb


def pick_frames(num_frames: int, extrusion_frames: Sequence[int], count: int) -> list[int]:
    """``count`` evenly spaced frame indices, including the middle extrusion frame if any."""
    picks = {int(round(x)) for x in np.linspace(0, num_frames - 1, min(count, num_frames))}
    if extrusion_frames and not picks & set(extrusion_frames):
        middle = sorted(extrusion_frames)[len(extrusion_frames) // 2]
        picks.discard(min(picks, key=lambda p: abs(p - middle)))
        picks.add(int(middle))
    return sorted(picks)


def contact_sheet(examples: dict[str, SynthClip], path: Path, frames_per_row: int = 6) -> Path:
    """Write a PNG with one row per clip type and a few frames each.

    Args:
        examples: clip type -> an example clip (frames uint8 (T, H, W)).
        path: destination PNG.
        frames_per_row: frames shown per type.

    Returns:
        The written path.
    """
    font = ImageFont.load_default()
    h, w = next(iter(examples.values())).frames.shape[1:]
    gap = 4
    sheet = Image.new(
        "RGB",
        (LABEL_WIDTH + frames_per_row * (w + gap), len(examples) * (h + gap) + 14),
        (0, 0, 0),
    )
    draw = ImageDraw.Draw(sheet)
    legend = "red border = extrusion frame, red outline = extrusion mask"
    draw.text((4, 2), legend, (200, 200, 200), font)
    for row, (clip_type, clip) in enumerate(examples.items()):
        top = 14 + row * (h + gap)
        marked = mark_frames(clip)
        draw.text((4, top + h // 2 - 10), clip_type, (255, 255, 255), font)
        draw.text((4, top + h // 2 + 2), f"label {clip.label}", (180, 180, 180), font)
        picks = pick_frames(len(marked), clip.extrusion_frames, frames_per_row)
        for col, t in enumerate(picks):
            left = LABEL_WIDTH + col * (w + gap)
            sheet.paste(Image.fromarray(marked[t]), (left, top))
            draw.text((left + 3, top + 2), str(t), (255, 255, 0), font)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def animation(clip: SynthClip, path: Path) -> Path:
    """Write a looping GIF of the clip at its own frame rate, extrusion frames marked."""
    marked = mark_frames(clip)
    images = [Image.fromarray(f) for f in marked]
    duration = max(20, int(round(1000.0 / clip.fps)))
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0)
    return path


def write_preview(jobs: Sequence[ClipJob], settings: SynthSettings, folder: Path) -> list[Path]:
    """Regenerate one example per clip type and write the contact sheet and the GIFs.

    Args:
        jobs: the data set plan (:func:`labral.datasets.synth.dataset.plan_dataset`).
        settings: the data set settings.
        folder: output folder (``<out>/preview``).

    Returns:
        Paths written: ``contact_sheet.png`` first, then ``<type>.gif`` per type present.
    """
    first: dict[str, ClipJob] = {}
    for job in jobs:
        first.setdefault(job.clip_type, job)
    rendered = [render_job(first[t], settings) for t in TYPE_ORDER if t in first]
    by_type: dict[str, SynthClip] = {}
    for clip in rendered:  # a positive whose burst missed its clip renders as "normal"
        by_type.setdefault(clip.clip_type, clip)
    examples = {t: by_type[t] for t in TYPE_ORDER if t in by_type}
    if not examples:
        return []
    paths = [contact_sheet(examples, folder / "contact_sheet.png")]
    paths += [animation(clip, folder / f"{t}.gif") for t, clip in examples.items()]
    return paths


def level_sheet(path: Path, patient_seed: int = 3, seed: int = 5) -> Path:
    """A contact sheet of one hip at every difficulty level: a positive and its look-alike.

    The positive (fluid joint -> capsule while loading) and the backward-pocket twin of the
    same patient and seed, per level, 32 frames at 20 fps.

    Returns:
        The written PNG.
    """
    examples: dict[str, SynthClip] = {}
    for level in known_levels():
        for clip_type in (POSITIVE_TYPE, "incoherent_twin"):
            clip = generate_clip(draw_patient(patient_seed), clip_type, seed, difficulty=level)
            examples[f"{level}: {clip_type}"] = clip
    contact_sheet(examples, path, frames_per_row=6)
    Image.open(path).quantize(64).save(path, optimize=True)  # small enough to keep in docs/
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m labral.datasets.synth.preview OUT.png``: write :func:`level_sheet`."""
    parser = argparse.ArgumentParser(description="one hip at every difficulty level")
    parser.add_argument("out", type=Path)
    parser.add_argument("--patient", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    print(level_sheet(args.out, args.patient, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
