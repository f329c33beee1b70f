"""The client of ``/v1/stream`` (``labral stream``, serve/stream/command.py; the benchmark).

A recorded cine is read by labral's own reader (DICOM, MP4, AVI, MOV, .npy) and sent as raw
8-bit frames, at its frame rate with ``--realtime``, else as fast as the server answers. A
device is anything FFmpeg opens through PyAV: a capture card (``/dev/video0`` with
``--format v4l2``), a network stream (``udp://``, ``tcp://``, ``rtsp://``, ``srt://``), a
file. Each update is printed as one line; the final result as JSON (exit status 0), or the
server's error (exit status 2).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
import pydicom
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from labral.errors import NotDicomError

Frames = Iterable[np.ndarray]


@dataclass
class StreamRun:
    """What one session returned: its messages, the result, and each update's latency.

    Attributes:
        opened: the server's ``opened`` message.
        updates: every ``update`` message, each with ``latency_ms`` added: the time from
            sending its frame to receiving the update, on this client's clock.
        result: the ``result`` message (None when the server ended with an error first).
        error: the server's ``error`` message, if any.
    """

    opened: dict[str, Any] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


def ws_url(server: str) -> str:
    """The WebSocket URL of ``/v1/stream`` on an ``http(s)://`` (or ``ws(s)://``) server."""
    base = server.rstrip("/")
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if base.startswith(http):
            base = ws + base[len(http) :]
    return base + "/v1/stream"


async def _send_frames(
    socket: Any, frames: Frames, fps: float, realtime: bool, sent: dict[int, float]
) -> None:
    start = time.perf_counter()
    for index, frame in enumerate(frames):
        if realtime:
            await asyncio.sleep(max(0.0, start + index / fps - time.perf_counter()))
        sent[index] = time.perf_counter()
        await socket.send(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
    await socket.send(json.dumps({"type": "close"}))


async def _receive(
    socket: Any, run: StreamRun, sent: dict[int, float], on_message: Callable[[dict], None]
) -> None:
    async for raw in socket:
        message = json.loads(raw)
        kind = message.get("type")
        if kind == "update":
            message["latency_ms"] = (time.perf_counter() - sent[message["frame"]]) * 1000
            run.updates.append(message)
        elif kind == "result":
            run.result = message
        elif kind == "error":
            run.error = message
        on_message(message)


async def stream_frames(
    server: str,
    frames: Frames,
    *,
    fps: float,
    height: int,
    width: int,
    spacing_mm: tuple[float, float] | None = None,
    realtime: bool = False,
    update_every: int = 1,
    api_key: str | None = None,
    dicom_header: bytes | None = None,
    on_message: Callable[[dict], None] = lambda message: None,
) -> StreamRun:
    """Run one session: open, send ``frames`` (uint8 (H, W) each), close, collect replies.

    Args:
        server: ``http://host:port`` of a ``labral serve``.
        frames: the frames, in order (a list or a live iterator).
        fps, height, width, spacing_mm: what the open message declares.
        realtime: pace the frames at ``fps`` (else send as fast as the socket takes them).
        update_every: k, frames between updates.
        api_key: sent as ``Authorization: Bearer``.
        dicom_header: the source's DICOM header: asks for an SR that references it.
        on_message: called with every message from the server, as it arrives.
    """
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    opening = {"type": "open", "fps": fps, "height": height, "width": width}
    opening |= {"update_every": update_every}
    if spacing_mm is not None:
        opening["spacing_mm"] = list(spacing_mm)
    if dicom_header is not None:
        opening |= {"sr": True, "dicom_header": base64.b64encode(dicom_header).decode("ascii")}
    run = StreamRun()
    sent: dict[int, float] = {}
    async with connect(ws_url(server), additional_headers=headers, max_size=None) as socket:
        await socket.send(json.dumps(opening))
        run.opened = json.loads(await socket.recv())
        on_message(run.opened)
        if run.opened.get("type") != "opened":
            run.error = run.opened
            return run
        receiver = asyncio.create_task(_receive(socket, run, sent, on_message))
        try:
            await _send_frames(socket, frames, fps, realtime, sent)
        except ConnectionClosed:
            pass  # the server ended the session (a limit): its messages tell why
        await receiver
    return run


def device_frames(
    spec: str, fmt: str | None = None, seconds: float | None = None
) -> tuple[Iterator[np.ndarray], float, tuple[int, int]]:
    """Open a capture device or network stream with PyAV (FFmpeg).

    Args:
        spec: what FFmpeg opens (``/dev/video0``, ``udp://...``, ``tcp://host:port``, ...).
        fmt: FFmpeg's input format (``v4l2``, ``mpegts``...), None to let it probe.
        seconds: stop after this many seconds of video (None: until the source ends).

    Returns:
        (an iterator of uint8 (H, W) grey frames, the stream's frame rate, (H, W)).
    """
    container = _open_retrying(spec, fmt)
    stream = container.streams.video[0]
    rate = float(stream.average_rate or stream.guessed_rate or 30)
    decoded = container.decode(stream)
    first = next(decoded).to_ndarray(format="gray")
    limit = None if seconds is None else max(1, round(seconds * rate))

    def frames() -> Iterator[np.ndarray]:
        try:
            yield first
            for count, frame in enumerate(decoded, start=2):
                if limit is not None and count > limit:
                    break
                yield frame.to_ndarray(format="gray")
        finally:
            container.close()

    return frames(), rate, (int(first.shape[0]), int(first.shape[1]))


def dicom_header(path: str) -> bytes:
    """A DICOM file's header without its pixel data (what an SR references).

    Raises:
        NotDicomError: the file is not DICOM (an SR needs a DICOM source).
    """
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:
        raise NotDicomError(f"--sr needs a DICOM clip to reference ({exc})") from exc
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _open_retrying(spec: str, fmt: str | None, wait_s: float = 10.0) -> Any:
    """``av.open``, retried for ``wait_s`` while the source refuses (a sender starting up)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return av.open(spec, format=fmt, timeout=10.0)
        except (av.error.ConnectionRefusedError, av.error.FileNotFoundError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def update_line(message: dict[str, Any]) -> str:
    """One printed line per server message (the final result is printed as JSON)."""
    kind = message.get("type")
    if kind == "update":
        p = message["probability"]
        shown = "-" if p is None else f"{p:.3f}"
        decision = {True: "positive", False: "negative", None: "-"}[message["decision"]]
        recent = message["relevance"][-8:]
        strip = "".join(" .:-=+*#%@"[min(9, int(r["value"] * 9.999))] for r in recent)
        return (
            f"frame {message['frame']:5d}  {message['input_check']['state']:<22} "
            f"p={shown:<6} {decision:<8} relevance |{strip:<8}|"
        )
    if kind == "opened":
        return f"opened session {message['session']} (engine {message['engine']})"
    if kind == "error":
        return f"server error [{message['code']}]: {message['message']}"
    return ""
