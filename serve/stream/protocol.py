"""The messages of ``/v1/stream`` (docs/streaming.md, docs/asyncapi-stream.yaml).

Client to server: one ``open`` text message, then binary frames, then ``{"type": "close"}``.
Server to client: ``opened``, ``update`` every k frames, ``result`` at the end, or ``error``
before a close code of :mod:`labral.serve.stream.limits`.
"""

from __future__ import annotations

import io
import json
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from labral.serve.settings import StreamSettings
from labral.serve.stream.limits import (
    BadFrameError,
    BadStreamMessageError,
    StreamOverLimitError,
)
from labral.serve.stream.session import SessionSpec


class OpenMessage(BaseModel):
    """The first message of a session.

    Attributes:
        fps: frames per second of the source.
        height, width: frame size in pixels (every frame must have it).
        encoding: ``raw`` (each binary message is H*W bytes of 8-bit grey, row-major) or
            ``jpeg`` (each binary message is one JPEG, decoded to grey).
        spacing_mm: (row, column) pixel spacing in millimetres, if known.
        update_every: k: an update after every k-th frame.
        api_key: the service's API key, for clients (browsers) that cannot send an
            ``Authorization`` header on a WebSocket.
        sr: also send a DICOM SR at the end (needs ``dicom_header``).
        dicom_header: base64 of the source instance's DICOM header, which the SR references.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["open"]
    fps: float = Field(gt=0)
    height: int = Field(ge=8)
    width: int = Field(ge=8)
    encoding: Literal["raw", "jpeg"] = "raw"
    spacing_mm: tuple[float, float] | None = None
    update_every: int = Field(default=1, ge=1)
    api_key: str | None = None
    sr: bool = False
    dicom_header: str | None = None


def parse_json(text: str) -> dict[str, Any]:
    """A text message as a JSON object with a ``type``.

    Raises:
        BadStreamMessageError: not JSON, or not an object with a string ``type``.
    """
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadStreamMessageError(f"a text message must be JSON ({exc})") from exc
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise BadStreamMessageError('a text message must be a JSON object with a "type"')
    return message


def parse_open(message: dict[str, Any], limits: StreamSettings) -> OpenMessage:
    """Validate the ``open`` message against the protocol and the limits.

    Raises:
        BadStreamMessageError: not an open message, a bad field, or over a limit.
    """
    try:
        opened = OpenMessage.model_validate(message)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise BadStreamMessageError(
            'the first message must be {"type": "open", "fps", "height", "width", ...} '
            f"({problems})"
        ) from exc
    if not limits.min_fps <= opened.fps <= limits.max_fps:
        raise BadStreamMessageError(
            f"fps {opened.fps:g} is outside this server's {limits.min_fps:g}-{limits.max_fps:g}"
        )
    side = max(opened.height, opened.width)
    if side > limits.max_side or opened.height * opened.width > limits.max_pixels:
        raise BadStreamMessageError(
            f"frames of {opened.height}x{opened.width} exceed this server's limits "
            f"({limits.max_side} px a side, {limits.max_pixels} pixels); send smaller frames"
        )
    if opened.update_every > limits.update_every_max:
        raise BadStreamMessageError(
            f"update_every {opened.update_every} > this server's {limits.update_every_max}"
        )
    return opened


def session_spec(opened: OpenMessage) -> SessionSpec:
    """The session's :class:`SessionSpec` from its open message."""
    return SessionSpec(
        fps=opened.fps,
        height=opened.height,
        width=opened.width,
        encoding=opened.encoding,
        spacing_mm=opened.spacing_mm,
        update_every=opened.update_every,
    )


def decode_frame(data: bytes, spec: SessionSpec, limits: StreamSettings) -> np.ndarray:
    """One binary message as a frame.

    Args:
        data: H*W raw bytes, or one JPEG.
        spec: the session (declared size and encoding).

    Returns:
        uint8 (H, W).

    Raises:
        StreamOverLimitError: the message is larger than ``max_frame_bytes``.
        BadFrameError: wrong size, or a JPEG that does not decode to the declared size.
    """
    if len(data) > limits.max_frame_bytes:
        raise StreamOverLimitError(
            f"a frame message of {len(data)} bytes > {limits.max_frame_bytes} bytes"
        )
    shape = (spec.height, spec.width)
    if spec.encoding == "raw":
        if len(data) != spec.height * spec.width:
            raise BadFrameError(
                f"a raw frame must be {spec.height}*{spec.width} = {spec.height * spec.width} "
                f"bytes (8-bit grey, row-major); got {len(data)}"
            )
        return np.frombuffer(data, dtype=np.uint8).reshape(shape)
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                raise BadFrameError(f"expected a JPEG frame, got {image.format}")
            frame = np.asarray(image.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise BadFrameError(f"the frame is not a decodable JPEG ({exc})") from exc
    if frame.shape != shape:
        raise BadFrameError(f"a JPEG frame of {frame.shape} is not the declared {shape}")
    return frame
