"""The ``stream`` settings of ``labral serve``: a bad value is refused with its key named, a
configured limit is what live sessions meet."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module

from labral.errors import BadConfigError
from labral.serve import command
from labral.serve.asgi import settings_from_env
from labral.serve.settings import ServeSettings
from labral.settings import settings_from_config
from tests.serve.test_stream_limits import opening, released


def test_a_bad_stream_setting_names_its_key(tmp_path, bundle_dir):
    with initialize_config_module(config_module="labral.configs", version_base="1.3"):
        cfg = compose(
            "serve",
            overrides=[f"paths.output_root={tmp_path}", f"bundle={bundle_dir}"]
            + ["stream.max_sessions=0"],
        )
    with pytest.raises(BadConfigError, match=r"^stream\.max_sessions=0: .*greater than or eq"):
        command.settings_from_config(cfg)
    for stream, message in (
        ({"idle_timeout_s": -1}, r"^stream\.idle_timeout_s=-1: "),
        ({"min_fps": 200}, r"^stream\.min_fps=200(\.0)?: is above stream\.max_fps=120"),
        ({"max_sesions": 2}, r"^stream\.max_sesions: unknown setting$"),
    ):
        with pytest.raises(BadConfigError, match=message):
            settings_from_config(ServeSettings, {"bundle": tmp_path, "stream": stream})
    env = {"LABRAL_BUNDLE": str(tmp_path), "LABRAL_STREAM_MAX_FPS": "fast"}
    with pytest.raises(BadConfigError, match=r"^stream\.max_fps='fast': "):
        settings_from_env(env)


def test_configured_limits_are_enforced(make_client, clips):
    from labral.datasets.io.reader import read_cine

    client = make_client(stream={"max_sessions": 1, "max_fps": 15})
    assert client.app.state.stream_hub.limits == client.app.state.settings.stream
    clip = read_cine(clips["bright.dcm"].read_bytes())  # 20 fps
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json(opening(clip))
        error, closed = ws.receive_json(), ws.receive()
    assert error["code"] == "bad_message" and "1-15" in error["message"]
    assert closed["code"] == 4400
    with client.websocket_connect("/v1/stream") as first:
        first.send_json({**opening(clip), "fps": 15})
        opened = first.receive_json()
        assert opened["type"] == "opened" and opened["limits"]["max_sessions"] == 1
        with client.websocket_connect("/v1/stream") as second:
            second.send_json({**opening(clip), "fps": 15})
            error, closed = second.receive_json(), second.receive()
        assert error["code"] == "too_many_sessions" and "limit 1" in error["message"]
        assert closed["code"] == 4429
        first.send_json({"type": "close"})
        assert first.receive_json()["type"] == "result"
    assert released(client)


def test_the_settings_table_in_the_docs_shows_the_defaults():
    """docs/streaming.md's table of ``stream.*`` keys lists every key with the model's
    default (the model is the one source; the table must not drift from it)."""
    import re
    from pathlib import Path

    from labral.serve.settings import StreamSettings

    guide = (Path(__file__).resolve().parents[2] / "docs" / "streaming.md").read_text()
    shown: dict[str, str] = {}
    for keys, defaults in re.findall(r"^\| (`stream\.[^|]+) \| ([^|]+) \|", guide, re.M):
        names = re.findall(r"`stream\.(\w+)`", keys)
        shown.update(zip(names, defaults.split(" / "), strict=True))
    assert set(shown) == set(StreamSettings.model_fields)
    for name, text in shown.items():
        default = StreamSettings.model_fields[name].default
        assert str(default).lower() == text.strip() or float(text) == default, name
