"""The clinician page's live view in headless Chromium, fed by the replay client.

Chromium is driven over the DevTools protocol (``--remote-debugging-port``) so the
screenshot is taken mid-clip, when the page has shown a given frame, not at page load.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from websockets.sync.client import connect

from labral import cli
from labral.bench.pdf import HEADLESS_FLAGS
from labral.datasets.synth.dicom_writer import write_cine_dicom
from labral.datasets.synth.generate import draw_patient, generate_clip


class Page:
    """One Chromium tab over the DevTools protocol."""

    def __init__(self, url: str) -> None:
        self.socket = connect(url, max_size=None)
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == call_id:
                return message.get("result", {})

    def value(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression)["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.value(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"the page never satisfied {expression}")


@pytest.fixture
def page(require_tool: Callable[[str], str], tmp_path: Path) -> Iterator[Page]:
    chromium = require_tool("chromium")
    proc = subprocess.Popen(
        [
            chromium, *HEADLESS_FLAGS, "--remote-debugging-port=0", "--window-size=900,1100",
            f"--user-data-dir={tmp_path / 'profile'}", "about:blank",
        ],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for line in proc.stderr:
            found = re.search(r"DevTools listening on ws://([\d.:]+)/", line)
            if found:
                break
        targets = httpx.get(f"http://{found.group(1)}/json/list", timeout=10).json()
        tab = next(t for t in targets if t["type"] == "page")
        opened = Page(tab["webSocketDebuggerUrl"])
        yield opened
        opened.socket.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.slow  # Chromium plus a 6 s realtime replay
def test_live_view_mid_clip(page, live_server, tmp_path):
    clip = generate_clip(draw_patient(3), "positive", 3, frames=120, height=128, width=160)
    path = write_cine_dicom(clip, tmp_path / "scan.dcm", syntax="explicit")
    page.call("Page.navigate", url=live_server["url"] + "/?live=1")
    page.wait_for("document.body.dataset.live === 'watching'")
    replay = threading.Thread(
        target=cli.main,
        args=(["stream", str(path), "--server", live_server["url"], "--realtime", "--quiet"],),
    )
    replay.start()
    try:
        page.wait_for("Number(document.body.dataset.liveFrame || -1) >= 60")
        shot = page.call("Page.captureScreenshot", format="png")["data"]
        dom = page.value("document.getElementById('live').outerHTML")
        (tmp_path / "live.png").write_bytes(base64.b64decode(shot))
    finally:
        replay.join(60)
    assert 'data-check-state="unchecked"' in dom  # the demo bundle has no input check
    assert re.search(r'id="live-probability"[^>]*>[\d.]+ %<', dom)
    bars = int(re.search(r'id="live-strip"[^>]*data-bars="(\d+)"', dom).group(1))
    assert 32 <= bars <= 120
    assert re.search(r'id="live-frame"[^>]*src="data:image/png;base64,', dom)
    rgb = np.asarray(Image.open(tmp_path / "live.png").convert("RGB")).astype(int)
    orange = (rgb[..., 0] > 200) & (rgb[..., 1] > 100) & (rgb[..., 2] < 60)
    assert orange.sum() > 50  # the strip's brightest bars are drawn
    page.wait_for("document.body.dataset.live === 'ended'")
