"""Live scoring speed: per-frame update latency at 30 fps, 1 and 4 streams, and memory.

    .venv/bin/python benchmarks/stream_latency.py [--bundle DIR] [--frames 18000]
    .venv/bin/python benchmarks/stream_latency.py --smoke     # demo bundle, in-process server

By default the bundle is the default compact (2+1)D net with random weights (its cost does
not depend on the weights) with an input check (an untrained view network behind the
image and manoeuvre rules: the check's full cost), served by ``labral serve`` in a
subprocess on loopback. The clip is a synthetic 3 s cine at 30 fps (128 x 128, DICOM). It
prints, each beside the offline ``POST /v1/predictions`` time of the same clip:

* one stream at 30 fps (``--realtime`` pacing): update latency p50 / p99, frame to update,
  measured by the client (target: p99 <= 33 ms, one frame period);
* 4 concurrent streams at 30 fps: p50 / p99 over all updates, and whether they kept real
  time (each stream's last update within a frame period of its last frame);
* the running engines in this process: ms per model frame of the compact net's stream
  buffers (``streaming``) against running the whole window for every frame (``window``);
* one long session of ``--frames`` frames (the clip repeated, sent as fast as the server
  takes them): the server's VmRSS after 10 % of the frames and at the end (target: within
  10 %), and the session's frames per second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
import uvicorn

from labral.bundle import input_spec_from, load_bundle, read_bundle_spec, write_bundle
from labral.datasets.io.reader import read_cine
from labral.datasets.synth.dicom_writer import write_cine_dicom
from labral.datasets.synth.generate import draw_patient, generate_clip
from labral.demo_bundle import make_demo_bundle
from labral.input_check.check import OOD_EXTRA_DIMS, InputCheck, Thresholds
from labral.models.compact import CompactVideoNet
from labral.models.streaming import streaming_net_of
from labral.models.view_net import ViewNet
from labral.serve.http.app import create_app
from labral.serve.settings import ServeSettings
from labral.serve.stream.client import stream_frames
from labral.serve.stream.engines import StepEngine, WindowEngine
from labral.train.export_formats import RelevanceModule

FPS = 30.0


def compact_bundle(folder: Path) -> Path:
    """The default compact net (random weights) with a rule-based input check, as a bundle."""
    torch.manual_seed(0)
    spec = {"frames": 16, "fps": 10.0, "size": [96, 96], "windows": 1}
    view = ViewNet().eval()
    dim = view.feature_dim + OOD_EXTRA_DIMS
    rules = Thresholds(0.8, 0.02, 0.2, 0.3, 0.01, 0.01, 1e9, 1e9)
    check = InputCheck(view, rules, np.zeros(dim), np.zeros((dim, dim)), {"kind": "benchmark"})
    module = torch.jit.script(RelevanceModule(CompactVideoNet()).eval())
    meta = {
        "model_name": "compact-random",
        "class_names": ["intact", "detachment"],
        "eval_transform": spec,
        "input_spec": input_spec_from(spec),
        "temperature": 1.0,
        "threshold": 0.5,
    }
    return write_bundle(folder, module, meta, onnx=True, input_check=check)


def sample_clip(folder: Path, frames: int, size: int) -> Path:
    """A synthetic positive cine at 30 fps as an uncompressed DICOM file."""
    clip = generate_clip(
        draw_patient(7), "positive", 7, frames=frames, height=size, width=size, fps=FPS
    )
    return write_cine_dicom(clip, folder / "clip.dcm", syntax="explicit")


@contextlib.contextmanager
def in_process_server(bundle: Path, state: Path) -> Iterator[tuple[str, int]]:
    """``labral serve``'s app under uvicorn in a thread of this process (the smoke mode)."""
    port = free_port()
    app = create_app(ServeSettings(bundle=bundle, state_dir=state))
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_ready(url)
    try:
        yield url, os.getpid()
    finally:
        server.should_exit = True
        thread.join(30)


@contextlib.contextmanager
def subprocess_server(bundle: Path, out_root: Path) -> Iterator[tuple[str, int]]:
    """``labral serve`` in a subprocess; yields its URL and pid once it is ready."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "labral.cli", "serve", f"bundle={bundle}", f"port={port}",
        "log_level=warning", f"paths.output_root={out_root}", f"state_dir={out_root}/state",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    out_root.mkdir(parents=True, exist_ok=True)
    log = out_root / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=300)
    except SystemExit:
        proc.kill()
        raise SystemExit(f"{url} did not become ready:\n{log.read_text()[-3000:]}") from None
    try:
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


def free_port() -> int:
    """A loopback TCP port that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise SystemExit(f"{url} did not become ready")


def rss_mib(pid: int) -> float:
    """VmRSS of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def offline_ms(url: str, data: bytes, runs: int) -> float:
    """Median ms of ``POST /v1/predictions`` for the clip (after one warm-up)."""
    times = []
    with httpx.Client(base_url=url, timeout=120) as client:
        for i in range(runs + 1):
            t0 = time.perf_counter()
            response = client.post(
                "/v1/predictions", content=data, headers={"Content-Type": "application/dicom"}
            )
            response.raise_for_status()
            if i:
                times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


async def concurrent_streams(url: str, frames: np.ndarray, streams: int) -> list[Any]:
    """``streams`` sessions at once, each sending ``frames`` paced at 30 fps."""
    height, width = frames.shape[1:]
    runs = [
        stream_frames(url, frames, fps=FPS, height=height, width=width, realtime=True)
        for _ in range(streams)
    ]
    return await asyncio.gather(*runs)


def _p(probability: float | None) -> str:
    return "-" if probability is None else f"{probability:.3f}"


def latency_line(label: str, runs: list[Any], offline: float) -> dict[str, float]:
    """Print p50 / p99 of every update's latency and whether each stream kept real time."""
    latencies = np.array([u["latency_ms"] for run in runs for u in run.updates])
    p50, p99 = np.percentile(latencies, [50, 99])
    period = 1000 / FPS
    kept = all(run.updates and run.updates[-1]["latency_ms"] <= period for run in runs)
    work = statistics.mean(run.result["stream"]["work_ms_per_frame"] for run in runs)
    print(
        f"{label}: update latency p50 {p50:.1f} ms  p99 {p99:.1f} ms  "
        f"(frame period {period:.1f} ms; kept real time: {'yes' if kept else 'no'}; "
        f"{latencies.size} updates; server frame work {work:.2f} ms/frame, engine "
        f"{runs[0].opened['engine']}; last running p {_p(runs[0].updates[-1]['probability'])}, "
        f"final p {_p(runs[0].result['probability'])})  "
        f"| offline /v1/predictions {offline:.1f} ms"
    )
    return {"p50": float(p50), "p99": float(p99), "kept": float(kept), "work_ms": work}


def long_session(url: str, pid: int, frames: np.ndarray, total: int, offline: float) -> dict:
    """One session of ``total`` frames sent as fast as the server takes them; server RSS."""
    tiled = np.resize(frames, (total, *frames.shape[1:]))
    samples: dict[int, float] = {}

    def on_message(message: dict) -> None:
        index = message.get("frame", -1)
        if message.get("type") == "update" and index in (total // 10, total - 1):
            samples[index] = rss_mib(pid)

    height, width = frames.shape[1:]
    t0 = time.perf_counter()
    asyncio.run(
        stream_frames(url, tiled, fps=FPS, height=height, width=width, on_message=on_message)
    )
    rate = total / (time.perf_counter() - t0)
    start, end = samples.get(total // 10, float("nan")), samples.get(total - 1, float("nan"))
    print(
        f"long session: {total} frames at {rate:.0f} frames/s; server VmRSS after 10 %: "
        f"{start:.0f} MiB, at the end: {end:.0f} MiB (change {100 * (end / start - 1):+.1f} %)"
        f"  | offline /v1/predictions {offline:.1f} ms"
    )
    return {"rss_start": start, "rss_end": end, "frames_per_s": rate}


def engine_costs(bundle: Path, steps: int) -> dict[str, float]:
    """ms per model frame of each running engine, in this process on one thread: push a
    frame and evaluate the running logit, as a session does when ``update_every`` is 1.

    ``streaming`` completes the value with ``peek`` (no lag, the service's default),
    ``streaming-lagging`` does not, ``window`` runs the whole window for every frame.
    """
    module = load_bundle(bundle, runtime="torchscript").module
    spec = read_bundle_spec(bundle)["eval_transform"]
    frames, size = int(spec["frames"]), [int(v) for v in spec["size"]]
    net = streaming_net_of(module)
    engines: dict[str, Callable[[], Any]] = {"window": lambda: WindowEngine(module, frames)}
    if net is not None:
        engines["streaming"] = lambda: StepEngine(net, frames, peek=True)
        engines["streaming-lagging"] = lambda: StepEngine(net, frames, peek=False)
    costs = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for kind, make in engines.items():
            running = make()
            for index in range(steps + frames):
                if index == frames:  # the window is full: time from here
                    start = time.perf_counter()
                running.push(torch.rand(*size), index)
                running.evaluate()
            costs[kind] = (time.perf_counter() - start) * 1000 / steps
    finally:
        torch.set_num_threads(threads)
    shown = ", ".join(f"{kind} {ms:.2f} ms" for kind, ms in costs.items())
    print(f"running engine per model frame (1 thread, push + evaluate): {shown}")
    return costs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the figures it printed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, help="a bundle (default: compact, random)")
    parser.add_argument("--frames", type=int, default=900, help="frames of the long session")
    parser.add_argument("--clip-frames", type=int, default=90, help="frames of the clip (30 fps)")
    parser.add_argument("--size", type=int, default=128, help="frame height and width")
    parser.add_argument("--smoke", action="store_true", help="demo bundle, in-process, small")
    args = parser.parse_args(argv)
    if args.smoke:
        args.frames, args.clip_frames, args.size = 60, 20, 64
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.bundle is not None:
            bundle = args.bundle
        elif args.smoke:
            bundle = make_demo_bundle(folder / "demo")
        else:
            bundle = compact_bundle(folder / "compact")
        costs = engine_costs(bundle, 32 if args.smoke else 160)
        path = sample_clip(folder, args.clip_frames, args.size)
        frames = read_cine(path).frames
        serving = in_process_server if args.smoke else subprocess_server
        with serving(bundle, folder / "serve") as (url, pid):
            offline = offline_ms(url, path.read_bytes(), 3 if args.smoke else 10)
            print(f"clip: {len(frames)} frames {args.size}x{args.size} at {FPS:g} fps; {url}")
            one = latency_line(
                "1 stream ", asyncio.run(concurrent_streams(url, frames, 1)), offline
            )
            four = latency_line(
                "4 streams", asyncio.run(concurrent_streams(url, frames, 4)), offline
            )
            memory = long_session(url, pid, frames, args.frames, offline)
    return {"offline_ms": offline, "one": one, "four": four, "memory": memory, "engines": costs}


if __name__ == "__main__":
    main()
