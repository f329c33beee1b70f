"""Read a video export (MP4, MOV, AVI, MKV/WebM) of an ultrasound cine through PyAV."""

from __future__ import annotations

from fractions import Fraction
from typing import BinaryIO

import av
import numpy as np

from labral.datasets.io.clip import Clip
from labral.datasets.io.limits import ReadLimits
from labral.datasets.io.regions import detect_image_area
from labral.errors import CorruptPixelDataError, OverLimitError, UnsupportedMediaError


def _stream_fps(
    stream: av.video.stream.VideoStream, container: av.container.InputContainer
) -> float | None:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if rate and float(rate) > 0:
        return float(rate)
    if stream.frames and stream.duration and stream.time_base:
        seconds = float(stream.duration * Fraction(stream.time_base))
        return stream.frames / seconds if seconds > 0 else None
    if stream.frames and container.duration:
        return stream.frames / (container.duration / av.time_base)
    return None


def decode_gray_video(
    fileobj: BinaryIO, *, limits: ReadLimits, media: str = "video"
) -> tuple[np.ndarray, float | None, str, list[str]]:
    """Decode the first video stream of a container or elementary stream to grey frames.

    Grey is the decoder's luma plane (``to_ndarray(format="gray")``, range-expanded to
    0-255 when the stream is limited range). Limits are checked from the stream metadata
    before decoding, and decoding stops as soon as ``limits.max_frames`` is passed, so a
    video that hides its frame count cannot exhaust memory.

    Args:
        fileobj: seekable binary stream (a container, or e.g. a raw H.264 stream).
        limits: frame, size and byte limits.
        media: name used in messages (``mp4``, ``avi``, ``matroska``, ``DICOM MPEG``).

    Returns:
        ``(frames uint8 (T, H, W), fps or None, codec name, warnings)``.

    Raises:
        UnsupportedMediaError: no video stream, or the data cannot be opened.
        OverLimitError: frames or size beyond ``limits``.
        CorruptPixelDataError: decoding fails part-way, or far fewer frames than declared.
    """
    fileobj.seek(0)
    try:
        container = av.open(fileobj, mode="r")
    except (av.FFmpegError, ValueError, OSError) as error:
        raise UnsupportedMediaError(
            f"the {media} container could not be opened ({error}); re-export the cine as "
            "H.264 MP4 or as DICOM"
        ) from error
    warnings: list[str] = []
    with container:
        if not container.streams.video:
            raise UnsupportedMediaError(
                f"the {media} file has no video stream; send a cine clip export"
            )
        stream = container.streams.video[0]
        rows, cols = int(stream.codec_context.height), int(stream.codec_context.width)
        declared = int(stream.frames or 0)
        limits.check_shape(declared, rows, cols)
        fps = _stream_fps(stream, container)
        frames: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                if len(frames) >= limits.max_frames:
                    raise OverLimitError(
                        f"the video has more than {limits.max_frames} frames "
                        "(ReadLimits.max_frames); trim the clip or raise the limit"
                    )
                gray = frame.to_ndarray(format="gray")
                if gray.shape[0] > limits.max_rows or gray.shape[1] > limits.max_cols:
                    limits.check_shape(1, gray.shape[0], gray.shape[1])
                frames.append(gray)
        except av.FFmpegError as error:
            raise CorruptPixelDataError(
                f"decoding the {media} video failed after {len(frames)} frames ({error}); "
                "the file is truncated or corrupt: export it again"
            ) from error
        codec = stream.codec_context.name
    if not frames:
        raise CorruptPixelDataError(f"the {media} video decoded to no frames; export it again")
    if declared and len(frames) < declared:
        if len(frames) < 0.9 * declared - 1:
            raise CorruptPixelDataError(
                f"the {media} video declares {declared} frames but only {len(frames)} decoded; "
                "the file is truncated or corrupt: export it again"
            )
        warnings.append(f"the video declares {declared} frames but {len(frames)} decoded")
    return np.stack(frames), fps, codec, warnings


def read_video(
    fileobj: BinaryIO, *, limits: ReadLimits, default_fps: float, media: str = "video"
) -> Clip:
    """Read a video export: grey frames (see :func:`decode_gray_video`), black margins cropped.

    Args:
        fileobj: seekable binary stream of the container.
        limits: frame, size and byte limits.
        default_fps: used with a warning when the stream states no frame rate.
        media: container family sniffed by the caller (``mp4``, ``avi``, ``matroska``).

    Returns:
        A Clip with uint8 (T, H, W) frames; ``spacing_mm`` None (videos carry no calibration).

    Raises:
        UnsupportedMediaError, OverLimitError, CorruptPixelDataError: as decode_gray_video.
    """
    clip, fps, codec, warnings = decode_gray_video(fileobj, limits=limits, media=media)
    fps_source = "stream"
    if fps is None:
        fps, fps_source = float(default_fps), "default"
        warnings.append(f"the video states no frame rate; assumed {default_fps} frames/s")
    _, rows, cols = clip.shape
    y0, y1, x0, x1 = detect_image_area(clip)
    region = {"origin": "detected", "bounds_yx": [y0, y1, x0, x1]}
    if (y1 - y0, x1 - x0) != (rows, cols):
        warnings.append(
            f"cropped the video to the detected image area rows {y0}-{y1}, columns {x0}-{x1}"
        )
    source = {
        "format": media,
        "codec": codec,
        "modality": None,
        "sop_class_uid": None,
        "transfer_syntax_uid": None,
        "photometric": "luma",
        "manufacturer": None,
        "model": None,
        "original": [int(clip.shape[0]), rows, cols],
        "instance_hash": None,
        "fps_source": fps_source,
        "region": region,
    }
    return Clip(
        frames=np.ascontiguousarray(clip[:, y0:y1, x0:x1]),
        fps=float(fps),
        spacing_mm=None,
        source=source,
        warnings=warnings,
    )
