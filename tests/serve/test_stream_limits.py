"""WS /v1/stream limits and faults: session count, length, frame size, idle, a dropped client,
and a slow session that must not hold up the HTTP routes."""

from __future__ import annotations

import json
import threading
import time

from labral.datasets.io.reader import read_cine


def limit(client, **changes) -> None:
    hub = client.app.state.stream_hub
    hub.limits = hub.limits.model_copy(update=changes)


def opening(clip) -> dict:
    height, width = clip.frames.shape[1:]
    return {"type": "open", "fps": clip.fps, "height": height, "width": width}


def released(client, timeout: float = 20.0) -> bool:
    """Wait until every session has stored its row and been released."""
    hub = client.app.state.stream_hub
    deadline = time.monotonic() + timeout
    while (hub.open_sessions or hub.finishing) and time.monotonic() < deadline:
        time.sleep(0.02)
    return hub.open_sessions == 0 and not hub.finishing


def stream_rows(client) -> list[dict]:
    return client.get("/v1/results", params={"source": "stream"}).json()["results"]


def test_one_session_too_many_is_refused(client, clips):
    limit(client, max_sessions=1)
    clip = read_cine(clips["bright.dcm"].read_bytes())
    with client.websocket_connect("/v1/stream") as first:
        first.send_json(opening(clip))
        assert first.receive_json()["type"] == "opened"
        with client.websocket_connect("/v1/stream") as second:
            second.send_json(opening(clip))
            error = second.receive_json()
            closed = second.receive()
        assert error["code"] == "too_many_sessions" and "limit 1" in error["message"]
        assert closed["code"] == 4429
    assert released(client)


def test_the_maximum_length_ends_the_session_with_its_result(client, clips):
    clip = read_cine(clips["bright.dcm"].read_bytes())  # 20 fps
    limit(client, max_seconds=0.5)  # 10 frames
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json(opening(clip))
        ws.receive_json()
        for frame in clip.frames[:10]:
            ws.send_bytes(frame.tobytes())
            assert ws.receive_json()["type"] == "update"
        ws.send_bytes(clip.frames[10].tobytes())
        error, result, closed = ws.receive_json(), ws.receive_json(), ws.receive()
    assert error["code"] == "over_limit" and "0.5 s" in error["message"]
    assert result["type"] == "result" and result["ended"] == "over_limit"
    assert result["clip"]["frames"] == 10 and result["status"] == "scored"
    assert closed["code"] == 4413 and json.loads(closed["reason"])["code"] == "over_limit"
    (row,) = stream_rows(client)
    assert row["reason"] == "over_limit" and row["warnings"][-1].startswith("partial")


def test_a_frame_of_the_wrong_size_ends_the_session(client, clips):
    clip = read_cine(clips["bright.dcm"].read_bytes())
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json(opening(clip))
        ws.receive_json()
        ws.send_bytes(b"\0" * 10)
        error, result, closed = ws.receive_json(), ws.receive_json(), ws.receive()
    assert error["code"] == "bad_frame" and "bytes" in error["message"]
    assert result["status"] == "failed" and result["reason"] == "bad_frame"
    assert closed["code"] == 4422


def test_an_oversized_message_and_an_idle_client(client, clips):
    clip = read_cine(clips["bright.dcm"].read_bytes())
    limit(client, max_frame_bytes=100, idle_timeout_s=0.3)
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json(opening(clip))
        ws.receive_json()
        ws.send_bytes(clip.frames[0].tobytes())
        error, result, closed = ws.receive_json(), ws.receive_json(), ws.receive()
    assert error["code"] == "over_limit" and closed["code"] == 4413
    limit(client, max_frame_bytes=10**6)
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json(opening(clip))
        ws.receive_json()
        ws.send_bytes(clip.frames[0].tobytes())
        ws.receive_json()
        error, result, closed = ws.receive_json(), ws.receive_json(), ws.receive()
    assert error["code"] == "idle_timeout" and closed["code"] == 4408
    assert result["ended"] == "idle_timeout" and result["clip"]["frames"] == 1


def test_a_dropped_connection_stores_a_partial_row(client, clips):
    clip = read_cine(clips["bright.dcm"].read_bytes())
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json(opening(clip))
        ws.receive_json()
        for frame in clip.frames[:12]:
            ws.send_bytes(frame.tobytes())
            ws.receive_json()
    # leaving the block drops the connection without a close message
    assert released(client)
    (row,) = stream_rows(client)
    assert row["reason"] == "client_disconnected" and row["status"] == "scored"
    assert row["probability"] is not None and "partial" in row["warnings"][-1]


def test_a_slow_session_holds_up_neither_http_nor_another_session(client, clips, monkeypatch):
    """A session whose frame work is slow (0.3 s per frame: its frames are 40 px wide) runs
    off the event loop: /healthz, a prediction and a second session answer meanwhile."""
    from labral.serve.stream.engines import WindowEngine

    original = WindowEngine.push

    def slow_push(self, frame, model_index):
        if self.slow:
            time.sleep(0.3)
        original(self, frame, model_index)

    original_init = WindowEngine.__init__

    def marked_init(self, module, frames):
        original_init(self, module, frames)
        # the first session (made on the event loop; the warm-up's engine is made in a worker)
        in_worker = threading.current_thread().name.startswith("labral-stream")
        self.slow = not in_worker and client.app.state.stream_hub.open_sessions == 1

    monkeypatch.setattr(WindowEngine, "push", slow_push)
    monkeypatch.setattr(WindowEngine, "__init__", marked_init)
    data = clips["bright.dcm"].read_bytes()
    clip = read_cine(data)
    done = threading.Event()

    def slow_session() -> None:
        with client.websocket_connect("/v1/stream") as ws:
            ws.send_json(opening(clip))
            ws.receive_json()
            for frame in clip.frames[:6]:
                ws.send_bytes(frame.tobytes())
                ws.receive_json()
            ws.send_json({"type": "close"})
            ws.receive_json()
        done.set()

    worker = threading.Thread(target=slow_session)
    worker.start()
    time.sleep(0.5)
    start = time.perf_counter()
    assert client.get("/healthz").status_code == 200
    scored = client.post(
        "/v1/predictions", content=data, headers={"Content-Type": "application/dicom"}
    )
    http_s = time.perf_counter() - start
    start = time.perf_counter()
    with client.websocket_connect("/v1/stream") as ws:  # a second, ordinary session
        ws.send_json(opening(clip))
        ws.receive_json()
        for frame in clip.frames:
            ws.send_bytes(frame.tobytes())
            ws.receive_json()
        ws.send_json({"type": "close"})
        second = ws.receive_json()
    session_s = time.perf_counter() - start
    assert not done.is_set()  # the slow session was still running all along
    worker.join(30)
    assert scored.status_code == 200 and second["status"] == "scored" and done.is_set()
    assert http_s < 1.0, f"HTTP waited {http_s:.2f} s behind a slow session"
    assert session_s < 1.5, f"a second session took {session_s:.2f} s beside a slow one"


def test_a_server_failure_on_a_frame_ends_the_session_with_its_row(client, clips, monkeypatch):
    from labral.serve.stream.engines import WindowEngine

    def broken(self, frame, model_index):
        raise ValueError("engine failure")

    clip = read_cine(clips["bright.dcm"].read_bytes())
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json(opening(clip))
        ws.receive_json()
        monkeypatch.setattr(WindowEngine, "push", broken)
        ws.send_bytes(clip.frames[0].tobytes())
        error, result, closed = ws.receive_json(), ws.receive_json(), ws.receive()
    assert error["code"] == "internal_error" and "ValueError" in error["message"]
    assert closed["code"] == 1011 and result["ended"] == "internal_error"
    assert released(client)
    (row,) = stream_rows(client)
    assert row["reason"] == "internal_error"


def test_every_close_code_is_documented():
    """docs/asyncapi-stream.yaml, docs/streaming.md and serve/README.md name every error a
    session ends with."""
    from pathlib import Path

    from labral.serve.stream.limits import STREAM_ERRORS

    root = Path(__file__).resolve().parents[2]
    asyncapi = (root / "docs" / "asyncapi-stream.yaml").read_text()
    tables = [
        (root / "docs" / "streaming.md").read_text(),
        (root / "serve" / "README.md").read_text(),
    ]
    for error in STREAM_ERRORS:
        assert f"{error.close_code} {error.code}" in asyncapi, error.code
        for table in tables:
            assert f"| {error.close_code} | `{error.code}` |" in table, error.code
