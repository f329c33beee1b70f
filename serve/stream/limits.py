"""Limits of live sessions, and the errors that end one (each with a WebSocket close code).

A session is refused at opening (``unauthorized``, ``not_ready``, ``too_many_sessions``,
``bad_message`` for a bad open message or a frame rate or size over the limits) or ended
while it runs (``bad_frame``, ``over_limit`` at the maximum length, ``idle_timeout``).
Before closing, the server sends ``{"type": "error", "code", "message"}``; the close
frame's reason is ``{"code": ...}`` (a close reason holds at most 123 bytes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from labral.errors import LabralError


@dataclass(frozen=True)
class StreamLimits:
    """What one server accepts from live sessions.

    Attributes:
        max_sessions: sessions open at once; one more is refused (``too_many_sessions``).
        max_seconds: longest session in seconds of video (frames / fps); at the limit the
            session ends with its result (``over_limit``). 600 s is 18,000 frames at 30 fps.
        max_fps: highest frame rate a session may declare (``min_fps``: the lowest).
        max_side: largest frame height or width in pixels.
        max_pixels: largest frame area (height * width).
        max_frame_bytes: largest binary message (a raw frame is H*W bytes; a JPEG less).
        idle_timeout_s: a session with no message for this long ends with a partial result.
        update_every_max: the most frames a client may ask between two updates.
        check_every_s: how often (seconds of video) the running input check runs.
        check_seconds: how many recent seconds of video the running input check reads.
        check_in_background: run the running check beside the frames (an update reports
            the latest finished verdict) rather than inline, where it would delay the update
            of the frame that starts it by the check's time.
        relevance_frames: how many recent source frames each update's relevance covers.
        running_without_lag: complete the compact net's running value with the steps a
            window ending at the newest frame computes (one ``peek`` per model frame, about
            2.5 frames' work); False saves that work and lets the value lag 9 model frames.
    """

    max_sessions: int = 4
    max_seconds: float = 600.0
    min_fps: float = 1.0
    max_fps: float = 120.0
    max_side: int = 2048
    max_pixels: int = 1024 * 1024
    max_frame_bytes: int = 2 * 1024 * 1024
    idle_timeout_s: float = 30.0
    update_every_max: int = 60
    check_every_s: float = 1.0
    check_seconds: float = 3.0
    check_in_background: bool = True
    relevance_frames: int = 32
    running_without_lag: bool = True

    def to_json(self) -> dict[str, Any]:
        """The limits as the ``opened`` message states them."""
        return asdict(self)


class StreamError(LabralError):
    """A live session was refused or ended; ``close_code`` is its WebSocket close code."""

    code = "stream_error"
    close_code = 4400


class StreamUnauthorizedError(StreamError):
    """Missing or wrong API key (same key as the HTTP routes)."""

    code = "unauthorized"
    close_code = 4401


class StreamNotReadyError(StreamError):
    """The model is still loading."""

    code = "not_ready"
    close_code = 4503


class TooManySessionsError(StreamError):
    """``max_sessions`` sessions are already open."""

    code = "too_many_sessions"
    close_code = 4429


class BadStreamMessageError(StreamError):
    """A message that does not follow the protocol (docs/streaming.md)."""

    code = "bad_message"
    close_code = 4400


class BadFrameError(StreamError):
    """A frame that is not the declared size, or a JPEG that does not decode."""

    code = "bad_frame"
    close_code = 4422


class StreamOverLimitError(StreamError):
    """The session reached ``max_seconds``, or a message is larger than allowed."""

    code = "over_limit"
    close_code = 4413


class IdleTimeoutError(StreamError):
    """No message for ``idle_timeout_s``."""

    code = "idle_timeout"
    close_code = 4408


class StreamInternalError(StreamError):
    """The server failed while handling a frame (logged); the session ends with its row."""

    code = "internal_error"
    close_code = 1011


#: Every error a session can end with (documented in docs/streaming.md and the AsyncAPI file).
STREAM_ERRORS: tuple[type[StreamError], ...] = (
    StreamUnauthorizedError,
    StreamNotReadyError,
    TooManySessionsError,
    BadStreamMessageError,
    BadFrameError,
    StreamOverLimitError,
    IdleTimeoutError,
    StreamInternalError,
)
