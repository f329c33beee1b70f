"""WS /v1/stream: the protocol, parity with POST /v1/predictions, the results row, the SR."""

from __future__ import annotations

import base64
import io
import json
import time
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image

from labral.datasets.io.reader import read_cine
from tests.helpers.input_check import blank_frames


def open_message(clip, **extra: Any) -> dict[str, Any]:
    height, width = clip.frames.shape[1:]
    return {"type": "open", "fps": clip.fps, "height": height, "width": width, **extra}


def stream_frames(ws, frames: np.ndarray, jpeg: bool = False) -> list[dict]:
    """Send every frame; collect the updates the server sends on the way."""
    updates = []
    for frame in frames:
        if jpeg:
            out = io.BytesIO()
            Image.fromarray(frame).save(out, format="JPEG", quality=95)
            ws.send_bytes(out.getvalue())
        else:
            ws.send_bytes(frame.tobytes())
        message = ws.receive_json()
        assert message["type"] == "update", message
        updates.append(message)
    return updates


def run_session(client, clip, frames=None, **extra) -> tuple[dict, list[dict], dict]:
    """opened, updates (update_every=1), result of one whole session."""
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json(open_message(clip, **extra))
        opened = ws.receive_json()
        assert opened["type"] == "opened", opened
        updates = stream_frames(ws, clip.frames if frames is None else frames)
        ws.send_json({"type": "close"})
        result = ws.receive_json()
    return opened, updates, result


def test_session_updates_then_result_equal_to_offline_scoring(make_client, clips, tmp_path):
    client = make_client(state_dir=tmp_path / "state")
    data = clips["bright.dcm"].read_bytes()
    clip = read_cine(data)
    opened, updates, result = run_session(client, clip)
    assert opened["engine"] == "window" and opened["limits"]["max_sessions"] >= 1
    assert [u["frame"] for u in updates] == list(range(clip.num_frames))
    # the toy bundle has no input check: scores are unchecked; a probability once a window
    # of model frames (8 at 10 fps = 16 source frames at 20 fps) has arrived
    assert {u["input_check"]["state"] for u in updates} == {"unchecked"}
    assert updates[0]["probability"] is None and updates[-1]["probability"] is not None
    assert 0 < len(updates[-1]["relevance"]) <= 32
    assert max(r["value"] for r in updates[-1]["relevance"]) == 1.0
    offline = client.post(
        "/v1/predictions", content=data, headers={"Content-Type": "application/dicom"}
    ).json()
    assert result["type"] == "result" and result["ended"] is None
    assert abs(result["probability"] - offline["probability"]) <= 1e-6
    assert result["decision"] == offline["decision"] is True
    assert np.allclose(result["relevance"], offline["relevance"], atol=1e-6)
    assert result["peak_frames"] == offline["peak_frames"]
    assert result["clip"]["frames"] == clip.num_frames
    rows = client.get("/v1/results", params={"source": "stream"}).json()["results"]
    assert [r["id"] for r in rows] == [result["result_id"]]
    assert rows[0]["status"] == "scored" and rows[0]["reason"] is None
    assert abs(rows[0]["probability"] - offline["probability"]) <= 1e-6


def test_jpeg_frames_every_kth_update_and_sr(make_client, clips):
    client = make_client()
    data = clips["dark.dcm"].read_bytes()
    clip = read_cine(data)
    header = base64.b64encode(data).decode()
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json(
            open_message(clip, encoding="jpeg", update_every=4, sr=True, dicom_header=header)
        )
        assert ws.receive_json()["type"] == "opened"
        updates = []
        for i, frame in enumerate(clip.frames):
            out = io.BytesIO()
            Image.fromarray(frame).save(out, format="JPEG", quality=95)
            ws.send_bytes(out.getvalue())
            if i % 4 == 3:
                updates.append(ws.receive_json())
        ws.send_json({"type": "close"})
        result = ws.receive_json()
    assert [u["frame"] for u in updates] == list(range(3, clip.num_frames, 4))
    assert result["status"] == "scored" and result["decision"] is False
    sr = pydicom.dcmread(io.BytesIO(base64.b64decode(result["sr"])))
    assert sr.Modality == "SR"
    assert sr.StudyInstanceUID == pydicom.dcmread(io.BytesIO(data)).StudyInstanceUID


def test_input_check_state_and_a_blank_session_not_assessable(make_client, checked_bundle, clips):
    client = make_client(bundle=checked_bundle)
    hub = client.app.state.stream_hub
    hub.limits = hub.limits.model_copy(update={"check_in_background": False})  # exact states
    clip = read_cine(clips["bright.dcm"].read_bytes())
    _, updates, result = run_session(client, clip)
    states = [u["input_check"]["state"] for u in updates]
    assert states[0] == "collecting" and states[-1] == "assessable"
    assert updates[-1]["probability"] is not None
    blank = blank_frames()
    _, updates, result = run_session(client, clip, frames=blank, height=48, width=64)
    assert all(u["probability"] is None for u in updates)
    assert updates[-1]["input_check"]["state"] == "image_quality"
    assert result["status"] == "not_assessable" and result["decision"] is None
    assert "image_quality" in result["input_check"]["reasons"]


def test_the_running_check_in_the_background_reports_its_latest_verdict(
    make_client, checked_bundle, clips
):
    client = make_client(bundle=checked_bundle)
    clip = read_cine(clips["bright.dcm"].read_bytes())
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json(open_message(clip))
        ws.receive_json()
        states = [u["input_check"]["state"] for u in stream_frames(ws, clip.frames)]
        time.sleep(0.5)  # the check started at the last second of video has finished
        (last,) = stream_frames(ws, clip.frames[-1:])
        ws.send_json({"type": "close"})
        result = ws.receive_json()
    assert states[0] == "collecting" and last["input_check"]["state"] == "assessable"
    assert last["probability"] is not None and result["status"] == "scored"
    assert result["stream"]["frames"] == clip.num_frames + 1
    assert result["stream"]["work_ms_per_frame"] > 0


def test_auth_as_on_the_http_routes(make_client, clips):
    client = make_client(api_key="s3cret")
    clip = read_cine(clips["bright.dcm"].read_bytes())
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json(open_message(clip))
        error = ws.receive_json()
        closed = ws.receive()
    assert error["code"] == "unauthorized"
    assert closed["code"] == 4401 and json.loads(closed["reason"]) == {"code": "unauthorized"}
    with client.websocket_connect("/v1/stream", headers={"Authorization": "Bearer s3cret"}) as ws:
        ws.send_json(open_message(clip))
        assert ws.receive_json()["type"] == "opened"
    _, _, result = run_session(client, clip, api_key="s3cret")
    assert result["status"] == "scored"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"fps": 500.0}, "bad_message"),
        ({"height": 5000}, "bad_message"),
        ({"encoding": "png"}, "bad_message"),
        ({"type": "frames"}, "bad_message"),
    ],
)
def test_a_bad_open_message_is_refused(client, clips, change, code):
    clip = read_cine(clips["bright.dcm"].read_bytes())
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json({**open_message(clip), **change})
        error = ws.receive_json()
        closed = ws.receive()
    assert error["type"] == "error" and error["code"] == code and error["message"]
    assert closed["type"] == "websocket.close" and closed["code"] == 4400
