"""``/v1/stream``: live scoring over a WebSocket (protocol: docs/streaming.md).

The event loop only moves messages. Frame work (decoding a JPEG, the spool, resizing, the
running engine, the running input check) runs in the stream worker pool, one call at a
time per session, and the final scoring goes through the service's batcher, as uploads do.
A session that cannot keep up (a slow client, a slow network) waits in its own coroutine;
other sessions and the HTTP routes are not held up by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from labral.serve.settings import StreamSettings
from labral.serve.stream import watch
from labral.serve.stream.engines import warm_up
from labral.serve.stream.finish import finish_session
from labral.serve.stream.hub import StreamHub, check_key, close_with, receive_json
from labral.serve.stream.limits import (
    BadStreamMessageError,
    IdleTimeoutError,
    StreamError,
    StreamInternalError,
    StreamNotReadyError,
    TooManySessionsError,
)
from labral.serve.stream.protocol import (
    OpenMessage,
    decode_frame,
    parse_json,
    parse_open,
    session_spec,
)
from labral.serve.stream.session import StreamSession
from labral.serve.stream.watch import preview_png

log = logging.getLogger("labral.serve")
router = APIRouter()
#: Close code of a session that ended normally after ``{"type": "close"}``.
NORMAL_CLOSE = 1000
DISCONNECTED = "client_disconnected"


#: What the OpenAPI document says of the WebSockets (OpenAPI cannot describe one).
OPENAPI_TEXT = """

**Live scoring** (WebSocket, not listed below; the protocol is docs/streaming.md and the
AsyncAPI document docs/asyncapi-stream.yaml): open `/v1/stream`, send
`{"type": "open", "fps", "height", "width", "encoding": "raw"|"jpeg", "update_every"}`,
then one binary message per frame and `{"type": "close"}`. The server sends `opened`, an
`update` every k frames (frame index, input-check state, running probability and decision
once assessable, relevance of recent frames) and a `result` equal to `POST /v1/predictions`
on the same frames, stored with source `stream`. Same bearer key as these routes (or
`api_key` in the open message); errors close with codes 4400-4503 and a JSON reason.
`/v1/stream/watch` feeds the clinician page's live view."""


def install_stream(app: FastAPI, limits: StreamSettings) -> None:
    """Register ``/v1/stream`` (and the page's ``/v1/stream/watch``) on ``app``; state the
    protocol in the app's OpenAPI description."""
    app.description = (app.description or "") + OPENAPI_TEXT
    app.state.stream_hub = StreamHub(limits=limits)
    app.include_router(router)
    app.include_router(watch.router)


async def open_session(websocket: WebSocket, hub: StreamHub) -> OpenMessage:
    """Read and check the ``open`` message: auth first, then readiness, room and fields."""
    message = await receive_json(websocket, hub.limits.idle_timeout_s)
    check_key(websocket, message.get("api_key"))
    service = websocket.app.state.service
    if not service.ready.is_set():
        raise StreamNotReadyError("the model is still loading; retry when /readyz answers 200")
    if message.get("type") != "open":
        raise BadStreamMessageError(f'the first message must be "open", not {message["type"]!r}')
    opened = parse_open(message, hub.limits)
    if hub.open_sessions >= hub.limits.max_sessions:
        raise TooManySessionsError(
            f"{hub.open_sessions} live sessions are open (limit {hub.limits.max_sessions}); "
            "close one or retry later"
        )
    return opened


def frame_step(
    session: StreamSession, data: bytes, limits: StreamSettings
) -> tuple[np.ndarray, dict[str, Any] | None]:
    """One frame's work, in one worker call: decode, record, run; the update when due.

    Returns:
        (the frame uint8 (H, W), the ``update`` message or None).
    """
    frame = decode_frame(data, session.spec, limits)
    session.add(frame)
    return frame, session.update() if session.due() else None


async def run_frames(websocket: WebSocket, hub: StreamHub, session: StreamSession) -> None:
    """Receive frames until ``close``; send an update every k frames.

    Raises:
        StreamError: a bad message, a bad frame, a limit, an idle client.
        ConnectionError: the client went away.
    """
    loop = asyncio.get_running_loop()
    while True:
        try:
            message = await asyncio.wait_for(websocket.receive(), hub.limits.idle_timeout_s)
        except TimeoutError as exc:
            raise IdleTimeoutError(f"no frame for {hub.limits.idle_timeout_s:g} s") from exc
        if message["type"] == "websocket.disconnect":
            raise ConnectionError(DISCONNECTED)
        if message.get("bytes") is not None:
            frame, update = await loop.run_in_executor(
                hub.executor, frame_step, session, message["bytes"], hub.limits
            )
            if update is not None:
                await websocket.send_json(update)
                if hub.watchers:
                    preview = await loop.run_in_executor(hub.executor, preview_png, frame)
                    hub.publish({**update, "session": id(session), "preview": preview})
            continue
        request = parse_json(message.get("text") or "")
        if request["type"] == "close":
            return
        raise BadStreamMessageError(f'unknown message type {request["type"]!r} (frames or "close")')


async def warm_once(websocket: WebSocket, hub: StreamHub) -> None:
    """Warm the running engine up before the process's first session (engines.warm_up)."""
    if hub.warmed:
        return
    hub.warmed = True
    bundle = websocket.app.state.service.bundle
    await asyncio.get_running_loop().run_in_executor(
        hub.executor,
        warm_up,
        bundle.module,
        bundle.spec["eval_transform"],
        hub.limits.running_without_lag,
    )


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket) -> None:
    """Live scoring of one session (docs/streaming.md)."""
    hub: StreamHub = websocket.app.state.stream_hub
    await websocket.accept()
    try:
        opened = await open_session(websocket, hub)
    except StreamError as error:
        await close_with(websocket, error)
        return
    hub.open_sessions += 1
    try:
        await warm_once(websocket, hub)
        session = StreamSession(
            websocket.app.state.service.scorer,
            session_spec(opened),
            hub.limits,
            hub.spool_dir,
            hub.checker if hub.limits.check_in_background else None,
        )
    except BaseException:
        hub.open_sessions -= 1
        raise
    try:
        ended, gone = await _receive_session(websocket, hub, session, opened)
    except BaseException:
        hub.open_sessions -= 1
        session.discard()
        raise
    # the result is made in a task of its own: a dropped client (whose handler may be
    # cancelled) still gets its partial row, and the session is released when it is stored
    finishing = asyncio.ensure_future(_finish(websocket, hub, session, opened, ended, gone))
    hub.finishing.add(finishing)
    finishing.add_done_callback(hub.finishing.discard)
    if gone:
        return
    result = await asyncio.shield(finishing)
    if websocket.client_state != WebSocketState.CONNECTED:
        return
    with contextlib.suppress(Exception):
        if ended is not None:
            await websocket.send_json({"type": "error", **ended.to_dict()})
        await websocket.send_json(result)
        if ended is not None:
            await websocket.close(ended.close_code, json.dumps({"code": ended.code}))
        else:
            await websocket.close(NORMAL_CLOSE)


async def _receive_session(
    websocket: WebSocket, hub: StreamHub, session: StreamSession, opened: OpenMessage
) -> tuple[StreamError | None, bool]:
    """Opened: frames and updates until the end. Returns (the error it ended with, or None
    after ``close``; whether the client is gone)."""
    service = websocket.app.state.service
    try:
        await websocket.send_json(
            {
                "type": "opened",
                "session": id(session),
                "model": service.bundle.identity(),
                "engine": session.engine.kind,
                "update_every": session.spec.update_every,
                "limits": hub.limits.to_json(),
            }
        )
        hub.publish({"type": "opened", "session": id(session), "fps": opened.fps})
        await run_frames(websocket, hub, session)
    except StreamError as error:
        return error, False
    except (ConnectionError, WebSocketDisconnect, asyncio.CancelledError) as exc:
        # dropped, or the handler cancelled as the client left
        log.info("live session %d dropped after %d frames (%r)", id(session), session.frames, exc)
        return None, True
    except Exception as exc:
        if websocket.client_state != WebSocketState.CONNECTED:  # sending to a closed socket
            return None, True
        log.exception("live session %d failed after %d frames", id(session), session.frames)
        return StreamInternalError(f"the server failed on a frame ({type(exc).__name__})"), False
    return None, False


async def _finish(
    websocket: WebSocket,
    hub: StreamHub,
    session: StreamSession,
    opened: OpenMessage,
    ended: StreamError | None,
    gone: bool,
) -> dict:
    """Score the recorded frames and store the row (serve/stream/finish.py); release."""
    host = websocket.client.host if websocket.client else "unknown"
    try:
        result = await finish_session(
            websocket.app,
            session,
            hub.executor,
            ended=DISCONNECTED if gone else (ended.code if ended else None),
            caller=f"ws:{host}",
            dicom_header=opened.dicom_header if opened.sr else None,
        )
    finally:
        hub.open_sessions -= 1
        session.discard()
    hub.publish({**result, "session": id(session)})
    return result
