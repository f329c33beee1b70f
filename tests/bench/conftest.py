"""Fixtures for bench tests: two toy bundles and a small DICOM manifest suite.

The bundles' model is the toy blob scorer (:func:`tests.helpers.bundles.blob_scorer`, no
trained labral model): it scores a clip by how much one frame's mean brightness stands out
from the clip's mean, and its relevance is the per-frame mean, so positives (a bright blob
on their extrusion frames) score high and their relevance peaks on the true frames.
The suite is a JSONL manifest of DICOM cines written by
``labral.datasets.synth.dicom_writer`` (lossless, 10 frames/s) and read by ``read_cine``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from omegaconf import DictConfig, open_dict

from labral.datasets.synth.dicom_writer import write_cine_dicom
from labral.datasets.synth.types import SynthClip
from tests.helpers.bundles import blob_scorer, toy_bundle
from tests.helpers.configs import compose_config


def make_bundle(folder: Path, name: str = "blob-detector", scale: float = 200.0) -> Path:
    """Write a bundle of :func:`tests.helpers.bundles.blob_scorer` into ``folder``."""
    return toy_bundle(folder, blob_scorer(scale, 2.0), model_name=name, model_version="test")


def make_manifest(folder: Path, n_patients: int = 12, seed: int = 0) -> Path:
    """Write 2 clips per patient (uint8 (16, 48, 48) DICOM) and a JSONL manifest; returns it.

    Positives carry a blob of random strength on frames 6-9 (``extrusion_frames``);
    negatives are ``normal`` (speckle only) or ``sulcus`` (a weaker blob on one frame).
    """
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    for p in range(n_patients):
        for c in range(2):
            label = int((p + c) % 2 == 0)
            clip_type = "positive" if label else ("normal" if p % 3 else "sulcus")
            frames = rng.normal(90, 12, size=(16, 48, 48))
            if label:
                frames[6:10, 16:32, 16:32] += rng.uniform(5, 60)
            elif clip_type == "sulcus":
                frames[rng.integers(0, 16), 16:32, 16:32] += rng.uniform(0, 30)
            rel = Path("clips") / f"p{p}_c{c}.dcm"
            pixels = np.clip(frames, 0, 255).astype(np.uint8)
            clip = SynthClip(
                frames=pixels,
                label=label,
                clip_type=clip_type,
                fps=10.0,
                spacing_mm=(0.3, 0.3),
                extrusion_mask=np.zeros(pixels.shape, bool),
                extrusion_frames=[6, 7, 8, 9] if label else [],
            )
            write_cine_dicom(
                clip,
                folder / rel,
                syntax="explicit",
                burned_in_text=False,
                patient={"patient": f"P{p:03d}", "clip": c},
            )
            rows.append(
                {
                    "path": rel.as_posix(),
                    "label": label,
                    "patient": f"P{p:03d}",
                    "clip": c,
                    "clip_type": clip_type,
                    "extrusion_frames": [6, 7, 8, 9] if label else [],
                }
            )
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest


@pytest.fixture(scope="session")
def bench_assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two bundles (a sharp and a blunt scorer) and a 24-clip manifest, built once."""
    root = tmp_path_factory.mktemp("bench_assets")
    return {
        "bundle": make_bundle(root / "bundle_a"),
        "bundle_b": make_bundle(root / "bundle_b", name="blunt", scale=20.0),
        "manifest": make_manifest(root / "suite"),
    }


def _compose_bench(tmp_path: Path, overrides: list[str]) -> DictConfig:
    """Compose configs/bench.yaml with small settings, writing into ``tmp_path``."""
    cfg = compose_config(
        "bench",
        [
            f"paths.root_dir={tmp_path}",
            f"out={tmp_path / 'out'}",
            "bootstrap.n=60",
            "latency_clips=2",
            "progress=false",
            "batch_size=5",
            # a PDF takes Chromium seconds and failure cases a figure each: the tests of
            # those outputs ask for them
            "pdf=false",
            "failure_cases=0",
            *overrides,
        ],
    )
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
    return cfg


@pytest.fixture(scope="session")
def compose_bench() -> Any:
    """``compose_bench(tmp_path, overrides) -> DictConfig`` (see :func:`_compose_bench`)."""
    return _compose_bench
