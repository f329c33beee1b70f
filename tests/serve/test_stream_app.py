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
