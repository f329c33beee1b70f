"""Write a cine clip as an MP4 (for people who work with video exports), using PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from labral.errors import BadConfigError

#: Codecs tried in order: H.264 where the FFmpeg build has an encoder, else MPEG-4 Part 2.
CODEC_PREFERENCE = ("libx264", "h264", "mpeg4")


def pick_codec() -> str:
    """The first video encoder in :data:`CODEC_PREFERENCE` that this PyAV build can open.

    Returns:
        The codec name (e.g. ``"libx264"``).

    Raises:
        BadConfigError: no usable encoder (install an FFmpeg build of PyAV with H.264/MPEG-4).
    """
    for name in CODEC_PREFERENCE:
        try:
            codec = av.codec.Codec(name, "w")
        except (av.error.FFmpegError, ValueError):
            continue
        if codec.is_encoder:
            return name
    raise BadConfigError(
        "formats.mp4=true but PyAV has no H.264 or MPEG-4 encoder; install `av` wheels "
        "from PyPI (they bundle FFmpeg) or set formats.mp4=false"
    )


def write_mp4(frames: np.ndarray, fps: float, path: str | Path, *, crf: int = 18) -> Path:
    """Encode grayscale frames as an MP4 (yuv420p, H.264 if available, else MPEG-4).

    Odd sizes are padded by one black row/column at the bottom/right (yuv420p needs even
    sides). The frame rate is stored as an exact fraction so readers get ``fps`` back.

    Args:
        frames: uint8 (T, H, W) grayscale frames, T >= 1.
        fps: frames per second, > 0.
        path: destination ``.mp4`` (parent folders are created).
        crf: H.264 constant rate factor (lower = better; ignored for MPEG-4).

    Returns:
        The written path.

    Raises:
        BadConfigError: frames not uint8 (T, H, W), fps not positive, or no encoder.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 3 or frames.shape[0] < 1:
        raise BadConfigError(
            f"write_mp4 needs uint8 frames (T, H, W) with T >= 1; got {frames.dtype} {frames.shape}"
        )
    if not fps > 0:
        raise BadConfigError(f"clip.fps={fps}: the frame rate must be positive")
    t, h, w = frames.shape
    padded = np.zeros((t, h + h % 2, w + w % 2), dtype=np.uint8)
    padded[:, :h, :w] = frames
    codec = pick_codec()
    rate = Fraction(float(fps)).limit_denominator(1001)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = padded.shape[2], padded.shape[1]
        stream.pix_fmt = "yuv420p"
        # one tick per frame; kept in a local, because the muxer rewrites stream.time_base
        # once the header is written (stamping later frames with that would break the pts)
        frame_time_base = Fraction(1, 1) / rate
        stream.time_base = frame_time_base
        if codec != "mpeg4":
            stream.options = {"crf": str(crf), "preset": "veryfast"}
        else:
            stream.bit_rate = 2_000_000
        for index, image in enumerate(padded):
            frame = av.VideoFrame.from_ndarray(image, format="gray").reformat(format="yuv420p")
            frame.pts = index
            frame.time_base = frame_time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
