"""What live sessions share: the hub (limits, count, worker pool, watchers) and the helpers
both WebSockets use (the API-key check, receiving JSON, closing with an error)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import WebSocket

from labral.serve.http.deps import key_matches
from labral.serve.settings import StreamSettings
from labral.serve.stream.limits import (
    BadStreamMessageError,
    IdleTimeoutError,
    StreamError,
    StreamUnauthorizedError,
)
from labral.serve.stream.protocol import parse_json


@dataclass
class StreamHub:
    """The app's live sessions: limits, the open count, the worker pools (frames; the running
    input checks), the page's watchers, the results being stored."""

    limits: StreamSettings
    open_sessions: int = 0
    executor: ThreadPoolExecutor = field(init=False)
    checker: ThreadPoolExecutor = field(init=False)
    spool_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    watchers: set[asyncio.Queue] = field(default_factory=set)
    finishing: set[asyncio.Future] = field(default_factory=set)
    warmed: bool = False

    def __post_init__(self) -> None:
        self.start()

    def start(self) -> None:
        """Fresh worker pools (a pool starts its threads on its first task) and a warm-up to
        do: the lifespan calls it, as an app may start again after :meth:`stop` (with a
        newly loaded bundle)."""
        self.executor = ThreadPoolExecutor(2, thread_name_prefix="labral-stream")
        self.checker = ThreadPoolExecutor(1, thread_name_prefix="labral-stream-check")
        self.warmed = False

    async def drain(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for the sessions whose result rows are being stored (a
        client dropped at shutdown still gets its partial row before the store closes)."""
        if self.finishing:
            await asyncio.wait(set(self.finishing), timeout=timeout_s)

    def stop(self) -> None:
        """Shut the worker pools down; queued frame work is cancelled, none is waited for."""
        for pool in (self.executor, self.checker):
            pool.shutdown(wait=False, cancel_futures=True)

    def publish(self, message: dict[str, Any]) -> None:
        """Hand a message to every watching page (a full queue drops it: pages lag, never
        the session)."""
        for queue in list(self.watchers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(message)


def check_key(websocket: WebSocket, api_key: str | None) -> None:
    """The HTTP routes' bearer check: the ``Authorization`` header, else ``api_key``.

    Raises:
        StreamUnauthorizedError: a key is configured and neither matches it.
    """
    settings = websocket.app.state.settings
    if not settings.auth_required:
        return
    header = websocket.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    given = token.strip() if scheme.lower() == "bearer" else (api_key or "")
    if not given:
        raise StreamUnauthorizedError(
            "missing API key; send 'Authorization: Bearer <api key>' or api_key in the open message"
        )
    if not key_matches(settings, given):
        raise StreamUnauthorizedError("wrong API key")


async def close_with(websocket: WebSocket, error: StreamError) -> None:
    """Send the error message, then close with its code (reason: ``{"code": ...}``)."""
    with contextlib.suppress(Exception):
        await websocket.send_json({"type": "error", **error.to_dict()})
        await websocket.close(error.close_code, json.dumps({"code": error.code}))


async def receive_json(websocket: WebSocket, timeout: float) -> dict[str, Any]:
    """The next message, which must be JSON text.

    Raises:
        IdleTimeoutError: nothing came within ``timeout`` seconds.
        BadStreamMessageError: binary, or not a JSON object with a type.
    """
    try:
        message = await asyncio.wait_for(websocket.receive(), timeout)
    except TimeoutError as exc:
        raise IdleTimeoutError(f"no message for {timeout:g} s") from exc
    if message.get("text") is None:
        raise BadStreamMessageError('expected a JSON text message {"type": "open", ...}')
    return parse_json(message["text"])
