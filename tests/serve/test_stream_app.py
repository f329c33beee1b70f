"""WS /v1/stream within the app's life: the worker pools the lifespan starts and shuts down."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from labral.datasets.io.reader import read_cine
from labral.serve.http.app import create_app
from labral.serve.settings import ServeSettings
from tests.serve.conftest import wait_ready
from tests.serve.test_stream_limits import opening, released


def one_session(client: TestClient, clip) -> dict:
    """A whole session of the clip's first frames; its result."""
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json({**opening(clip), "update_every": 4})
        assert ws.receive_json()["type"] == "opened"
        for frame in clip.frames[:4]:
            ws.send_bytes(frame.tobytes())
        assert ws.receive_json()["type"] == "update"
        ws.send_json({"type": "close"})
        return ws.receive_json()


def test_the_lifespan_shuts_the_stream_pools_down_and_a_restart_makes_new_ones(bundle_dir, clips):
    app = create_app(ServeSettings(bundle=bundle_dir))
    hub = app.state.stream_hub
    clip = read_cine(clips["bright.dcm"].read_bytes())
    for _ in range(2):  # the same app started twice, as a test client or a reload may do
        with TestClient(app) as client:
            wait_ready(client)
            assert one_session(client, clip)["status"] == "scored"
            assert released(client)
        for pool in (hub.executor, hub.checker):
            with pytest.raises(RuntimeError, match="shutdown"):
                pool.submit(int)


def open_sessions_metric(client: TestClient) -> float:
    """``labral_stream_sessions`` as /metrics states it."""
    from prometheus_client.parser import text_string_to_metric_families

    families = text_string_to_metric_families(client.get("/metrics").text)
    (family,) = [f for f in families if f.name == "labral_stream_sessions"]
    (sample,) = family.samples
    return sample.value


def test_metrics_count_the_open_sessions(client, clips):
    clip = read_cine(clips["bright.dcm"].read_bytes())
    assert open_sessions_metric(client) == 0
    with (
        client.websocket_connect("/v1/stream") as first,
        client.websocket_connect("/v1/stream") as second,
    ):
        for ws in (first, second):
            ws.send_json(opening(clip))
            assert ws.receive_json()["type"] == "opened"
        assert open_sessions_metric(client) == 2
        first.send_json({"type": "close"})
        assert first.receive_json()["type"] == "result"
        assert open_sessions_metric(client) == 1
    assert released(client)
    assert open_sessions_metric(client) == 0
