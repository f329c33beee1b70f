"""Round trip through the synthetic data set's own DICOM and MP4 writers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labral.datasets.io.reader import read_cine
from labral.datasets.synth import dicom_writer as writer
from labral.datasets.synth import types
from labral.datasets.synth import video_writer as video


@pytest.fixture
def synth_clip(frames):
    tissue = frames[:, 8:56, 12:68].copy()  # (8, 48, 56)
    return types.SynthClip(
        frames=tissue,
        label=0,
        clip_type="normal",
        fps=18.0,
        spacing_mm=(0.2, 0.25),
        extrusion_mask=np.zeros(tissue.shape, bool),
        extrusion_frames=[],
        params={},
    )


@pytest.mark.parametrize(("syntax", "tolerance"), [("explicit", 0.0), ("jpeg", 2.5)])
def test_synth_dicom_round_trip(tmp_path, synth_clip, syntax, tolerance):
    patient = {"patient": "P0042", "side": "L", "clip": 3}
    path = writer.write_cine_dicom(synth_clip, tmp_path / "c.dcm", syntax=syntax, patient=patient)
    clip = read_cine(path)
    assert clip.frames.shape == synth_clip.frames.shape  # header band and margins cropped
    error = np.abs(clip.frames.astype(float) - synth_clip.frames).mean()
    assert error <= tolerance
    assert clip.fps == pytest.approx(18.0)
    assert clip.spacing_mm == pytest.approx((0.2, 0.25))
    assert clip.warnings == []
    text = json.dumps(clip.source) + json.dumps(clip.warnings)
    assert "P0042" not in text and "SYNTHETIC^HIP" not in text


def test_synth_mp4_round_trip(tmp_path, synth_clip):
    path = video.write_mp4(synth_clip.frames, 18.0, tmp_path / "c.mp4")
    clip = read_cine(path)
    assert clip.frames.shape == synth_clip.frames.shape  # no margin: nothing cropped
    assert clip.fps == pytest.approx(18.0, rel=1e-3)
    assert np.abs(clip.frames.astype(float).mean() - synth_clip.frames.mean()) < 3.0
