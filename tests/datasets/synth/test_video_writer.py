"""MP4 export: PyAV reads back the frame count, the frame rate and the picture."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from labral.datasets.synth.video_writer import pick_codec, write_mp4
from labral.errors import BadConfigError


def _read(path: Path) -> tuple[list[np.ndarray], float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="gray") for f in container.decode(stream)]
        return frames, float(stream.average_rate)


@pytest.mark.parametrize("fps", [17.5, 30.0])
def test_mp4_round_trip(tmp_path: Path, fake_clip, fps: float) -> None:
    frames = fake_clip.frames[:, :47, :39]  # odd sides get padded to even
    path = write_mp4(frames, fps, tmp_path / "sub" / "c.mp4")
    decoded, rate = _read(path)
    assert len(decoded) == frames.shape[0]
    assert rate == pytest.approx(fps, rel=1e-3)
    assert decoded[0].shape == (48, 40)
    error = np.abs(np.stack(decoded)[:, :47, :39].astype(int) - frames.astype(int)).mean()
    assert error < 12.0  # lossy, yet the same picture (noise sigma is 12 grey levels)


def test_prefers_h264_when_available() -> None:
    assert pick_codec() in ("libx264", "h264", "mpeg4")
    if "libx264" in av.codecs_available:
        assert pick_codec() == "libx264"


@pytest.mark.parametrize(
    ("frames", "fps"),
    [
        (np.zeros((4, 8, 8), np.float32), 20.0),
        (np.zeros((8, 8), np.uint8), 20.0),
        (np.zeros((4, 8, 8), np.uint8), 0.0),
    ],
)
def test_bad_input_is_a_typed_error(tmp_path: Path, frames, fps) -> None:
    with pytest.raises(BadConfigError):
        write_mp4(frames, fps, tmp_path / "x.mp4")


@pytest.mark.parametrize("frames", [20, 40])
def test_longer_clips_of_changing_frames_round_trip(tmp_path: Path, frames: int) -> None:
    # the muxer rewrites the stream's time base after the header; frames stamped with it
    # used to collide and fail with "Invalid argument" once a clip had ~20 changing frames
    rng = np.random.default_rng(frames)
    video = rng.integers(0, 256, (frames, 64, 64), dtype=np.uint8)
    path = write_mp4(video, 20.0, tmp_path / "clip.mp4")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = sum(1 for _ in container.decode(stream))
        assert float(stream.average_rate) == pytest.approx(20.0)
    assert decoded == frames
