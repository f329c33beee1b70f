"""benchmarks/stream_latency.py at its smallest: the demo bundle served in this process."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import pytest
import torch

from tests.benchmarks.test_scripts import figures, load, positive


@pytest.fixture(autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """The in-process server sets torch's thread count (serve torch_threads); undo it."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow  # starts the service in this process and streams for real (~10-20 s)
def test_stream_latency_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    result = load("stream_latency").main(["--smoke"])
    out = capsys.readouterr().out
    for label, count in (("1 stream ", 20), ("4 streams", 80)):
        p50, p99, period, updates, work, offline = figures(
            re.escape(label) + r": update latency p50 ([\d.]+) ms  p99 ([\d.]+) ms  "
            r"\(frame period ([\d.]+) ms; kept real time: (?:yes|no); (\d+) updates; "
            r"server frame work ([\d.]+) ms/frame, engine window; last running p (?:[\d.]+|-), "
            r"final p [\d.]+\)  \| offline /v1/predictions ([\d.]+) ms",
            out,
        )
        assert positive(p50, p99, offline, work) and p50 <= p99 and updates == count
        assert period == pytest.approx(1000 / 30, abs=0.05)
    rate, start, end = figures(
        r"long session: 60 frames at ([\d.]+) frames/s; server VmRSS after 10 %: ([\d.]+) "
        r"MiB, at the end: ([\d.]+) MiB",
        out,
    )
    assert positive(rate, start, end)
    (window,) = figures(
        r"running engine per model frame \(1 thread, push \+ evaluate\): window ([\d.]+) ms", out
    )
    assert positive(window) and result["engines"] == {"window": pytest.approx(window, abs=0.01)}
    assert result["one"]["p99"] >= result["one"]["p50"] > 0
    assert math.isfinite(result["memory"]["rss_end"])
