"""``/v1/stream/watch``: the clinician page's view of the live sessions.

The page opens this WebSocket and sends ``{"type": "watch", "api_key": ...}`` (a browser
cannot set an ``Authorization`` header on a WebSocket); it then receives every session's
``opened``, ``update`` (with ``preview``: the latest frame as a small base64 PNG) and
``result`` messages. Each watcher has a bounded queue: a slow page misses updates, it
never holds up a session.
"""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
from fastapi import APIRouter, WebSocket

from labral.serve.http.page_preview import png_b64
from labral.serve.stream.hub import StreamHub, check_key, close_with, receive_json
from labral.serve.stream.limits import BadStreamMessageError, StreamError

router = APIRouter()
#: Messages a watcher may fall behind by before new ones are dropped for it.
WATCH_QUEUE = 64
#: Width of the frame previews sent to watchers.
PREVIEW_WIDTH = 256


def preview_png(frame: np.ndarray, width: int = PREVIEW_WIDTH) -> str:
    """A frame uint8 (H, W) as a base64 PNG at most ``width`` pixels wide (the page's own)."""
    return png_b64(frame, width)


async def _forward(websocket: WebSocket, queue: asyncio.Queue) -> None:
    while True:
        await websocket.send_json(await queue.get())


@router.websocket("/v1/stream/watch")
async def watch(websocket: WebSocket) -> None:
    """Send every live session's messages to a watching page until it goes away."""
    hub: StreamHub = websocket.app.state.stream_hub
    await websocket.accept()
    try:
        message = await receive_json(websocket, hub.limits.idle_timeout_s)
        check_key(websocket, message.get("api_key"))
        if message["type"] != "watch":
            raise BadStreamMessageError('the first message must be {"type": "watch"}')
    except StreamError as error:
        await close_with(websocket, error)
        return
    queue: asyncio.Queue = asyncio.Queue(WATCH_QUEUE)
    hub.watchers.add(queue)
    sender = asyncio.create_task(_forward(websocket, queue))
    try:
        await websocket.send_json({"type": "watching", "open_sessions": hub.open_sessions})
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # the page sends nothing more; wait for it to leave
    finally:
        hub.watchers.discard(queue)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
