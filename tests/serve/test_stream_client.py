"""``labral stream`` against a real ``labral serve`` (uvicorn) on loopback: the replay of a
recorded cine, and a device: an FFmpeg-generated MPEG-TS stream over TCP, read with PyAV."""

from __future__ import annotations

import json
import shutil
import subprocess

import httpx
import pydicom
import pytest

from labral import cli


def result_of(out: str) -> dict:
    """The JSON result ``labral stream`` prints after its update lines."""
    return json.loads(out[out.index("\n{") + 1 :])


def test_replay_prints_updates_and_the_offline_result(live_server, clips, capsys, tmp_path):
    url = live_server["url"]
    path = clips["bright.dcm"]
    sr = tmp_path / "sr.dcm"
    status = cli.main(["stream", str(path), "--server", url, "--every", "4", "--sr", str(sr)])
    out = capsys.readouterr().out
    assert status == 0, out
    lines = [line for line in out.splitlines() if line.startswith("frame ")]
    assert [int(line.split()[1]) for line in lines] == list(range(3, 24, 4))
    assert "unchecked" in lines[-1] and "p=" in lines[-1]
    result = result_of(out)
    offline = httpx.post(
        url + "/v1/predictions", files={"file": ("a.dcm", path.read_bytes())}, timeout=30
    ).json()
    assert abs(result["probability"] - offline["probability"]) <= 1e-6
    rows = httpx.get(url + "/v1/results", params={"source": "stream"}, timeout=30).json()
    assert result["result_id"] in [row["id"] for row in rows["results"]]
    report = pydicom.dcmread(sr)
    assert report.Modality == "SR"
    assert report.StudyInstanceUID == pydicom.dcmread(path).StudyInstanceUID


def test_a_refused_session_exits_2_with_the_servers_reason(live_server, tmp_path, capsys):
    status = cli.main(["stream", str(tmp_path / "missing.dcm"), "--server", live_server["url"]])
    assert status == 2 and "error" in capsys.readouterr().err
    status = cli.main(["stream", "--server", live_server["url"]])
    assert status == 2


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_device_reads_an_ffmpeg_stream_on_loopback(live_server, port_finder, capsys):
    port = port_finder()
    sender = subprocess.Popen(
        [
            "ffmpeg", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", "testsrc=size=64x48:rate=20", "-t", "2",
            "-pix_fmt", "yuv420p", "-c:v", "mpeg2video", "-q:v", "2",
            "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1",
        ]
    )  # fmt: skip
    try:
        status = cli.main(
            ["stream", "--device", f"tcp://127.0.0.1:{port}", "--server", live_server["url"]]
        )
    finally:
        sender.wait(timeout=30)
    out = capsys.readouterr().out
    assert status == 0, out
    result = result_of(out)
    assert result["status"] == "scored" and result["clip"]["region_size"] == [48, 64]
    assert 30 <= result["clip"]["frames"] <= 40 and result["clip"]["fps"] == 20.0
