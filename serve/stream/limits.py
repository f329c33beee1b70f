"""The errors that refuse or end a live session, each with a WebSocket close code.

The limits themselves are settings (``serve/settings.py``'s :class:`StreamSettings`, the
``stream`` section of ``labral serve``).

A session is refused at opening (``unauthorized``, ``not_ready``, ``too_many_sessions``,
``bad_message`` for a bad open message or a frame rate or size over the limits) or ended
while it runs (``bad_frame``, ``over_limit`` at the maximum length, ``idle_timeout``).
Before closing, the server sends ``{"type": "error", "code", "message"}``; the close
frame's reason is ``{"code": ...}`` (a close reason holds at most 123 bytes).
"""

from __future__ import annotations

from labral.errors import LabralError


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
