"""Load benchmark of `labral serve` on loopback, next to the bare bundle call in one run.

    .venv/bin/python benchmarks/serve_load.py [BUNDLE] [--requests 2000]
    .venv/bin/python benchmarks/serve_load.py --smoke     # demo bundle, a few requests

BUNDLE defaults to the newest bundle under outputs/ (a folder with model.ts and
metadata.json), else the tiny demo bundle (labral.demo_bundle; always with ``--smoke``). The
script starts the real service as a subprocess on a free loopback port and prints:

* the bare in-process call: decode + eval transform + model (median of runs),
* end-to-end latency p50/p95 for one client, and the ratio p50 / bare (target <= 1.5),
* throughput (clips/s) and p50 at 1, 4 and 8 concurrent clients,
* a long run (default 2,000 requests, 4 clients): errors and server VmRSS at its start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from labral.demo_bundle import make_demo_bundle


def newest_bundle(root: Path) -> Path | None:
    """The most recently written bundle folder (model.ts + metadata.json) under ``root``."""
    found = [p.parent for p in root.glob("**/model.ts") if (p.parent / "metadata.json").is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def sample_clip_bytes() -> bytes:
    """A 2 s synthetic DICOM cine (JPEG Baseline), 128x128, as a clinic would send."""
    from labral.datasets.synth.dicom_writer import write_cine_dicom
    from labral.datasets.synth.generate import draw_patient, generate_clip

    clip = generate_clip(draw_patient(7), "positive", 7, frames=40, height=128, width=128)
    with tempfile.TemporaryDirectory() as folder:
        path = write_cine_dicom(clip, Path(folder) / "clip.dcm", syntax="jpeg")
        return path.read_bytes()


def bare_call_ms(bundle_dir: Path, data: bytes, runs: int) -> dict[str, float]:
    """Median ms of decode, preprocess and model in this process (no HTTP, batch 1)."""
    from labral.bundle import load_bundle
    from labral.datasets.io.reader import read_cine
    from labral.datasets.transforms.clip_transforms import build_eval_transform

    bundle = load_bundle(bundle_dir)
    transform = build_eval_transform(bundle.spec["eval_transform"])
    stages: dict[str, list[float]] = {"decode": [], "preprocess": [], "model": []}
    for i in range(runs + 3):
        t0 = time.perf_counter()
        clip = read_cine(data)
        t1 = time.perf_counter()
        item = transform({"clip": clip})
        t2 = time.perf_counter()
        bundle.predict(item["image"])
        t3 = time.perf_counter()
        if i >= 3:
            for key, value in zip(stages, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                value_ms = value * 1000
                stages[key].append(value_ms)
    out = {key: statistics.median(values) for key, values in stages.items()}
    out["total"] = sum(out.values())
    return out


def free_port() -> int:
    """A loopback TCP port that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    bundle_dir: Path, port: int, out_root: str, args: argparse.Namespace
) -> tuple[subprocess.Popen, str]:
    """Start ``labral serve`` as a subprocess; return it and its URL once /readyz is 200."""
    cmd = [
        sys.executable, "-m", "labral.cli", "serve", f"bundle={bundle_dir}", f"port={port}",
        f"max_batch={args.max_batch}", f"batch_window_ms={args.window_ms}",
        f"torch_threads={args.torch_threads}", "log_level=warning",
        f"paths.output_root={out_root}",
    ]  # fmt: skip
    return launch_server(cmd, {"PYTHONSAFEPATH": "1"}, port)


def launch_server(cmd: list[str], env: dict[str, str], port: int) -> tuple[subprocess.Popen, str]:
    """Run ``cmd`` (a ``labral serve`` on loopback ``port``; ``env`` added to this process's,
    output discarded); return it and its URL once /readyz is 200 (dicom_load.py uses it too)."""
    env = {**os.environ, **env}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}: {' '.join(cmd)}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not become ready within 300 s")


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (all resident pages) and RssAnon (private heap, what each extra worker adds)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon"):
            out[key] = int(value.split()[0])
    return out


def run_clients(url: str, data: bytes, clients: int, total: int) -> dict[str, Any]:
    """``total`` requests spread over ``clients`` keep-alive clients; latencies in ms."""
    per_client = [total // clients + (i < total % clients) for i in range(clients)]
    headers = {"Content-Type": "application/dicom"}

    def worker(n: int) -> tuple[list[float], int, list[float]]:
        latencies, errors, server = [], 0, []
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(n):
                t0 = time.perf_counter()
                response = client.post("/v1/predictions", content=data, headers=headers)
                latencies.append((time.perf_counter() - t0) * 1000)
                if response.status_code == 200:
                    server.append(response.json()["timing_ms"]["total"])
                else:
                    errors += 1
        return latencies, errors, server

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(worker, per_client))
    elapsed = time.perf_counter() - start
    latencies = sorted(v for lat, _, _ in results for v in lat)
    server = [v for _, _, srv in results for v in srv]
    return {
        "clients": clients,
        "requests": total,
        "errors": sum(e for _, e, _ in results),
        "server_total_p50_ms": float(np.median(server)) if server else float("nan"),
        "p50_ms": float(np.percentile(latencies, 50)),
        "p95_ms": float(np.percentile(latencies, 95)),
        "throughput_per_s": total / elapsed,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure the bare call and the service under load; print and return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", nargs="?", type=Path, help="bundle folder (default: newest)")
    parser.add_argument("--requests", type=int, default=2000, help="long-run requests")
    parser.add_argument("--latency-requests", type=int, default=60)
    parser.add_argument("--bare-runs", type=int, default=30)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--window-ms", type=float, default=5.0)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--smoke", action="store_true", help="demo bundle, 2-8 requests per figure")
    args = parser.parse_args(argv)
    if args.smoke:
        args.requests, args.latency_requests, args.bare_runs = 8, 3, 2
    import torch  # here: dicom_load.py loads this file for its helpers, without torch

    torch.set_num_threads(args.torch_threads)

    tmp = tempfile.TemporaryDirectory()
    bundle_dir = args.bundle or (None if args.smoke else newest_bundle(Path("outputs")))
    if bundle_dir is None:
        bundle_dir = make_demo_bundle(Path(tmp.name) / "demo-bundle")
    spec = json.loads((Path(bundle_dir) / "metadata.json").read_text())
    data = sample_clip_bytes()
    print(f"bundle {bundle_dir} ({spec['model_name']}), clip {len(data) / 1024:.0f} KiB")

    bare = bare_call_ms(Path(bundle_dir), data, args.bare_runs)
    proc, url = start_server(Path(bundle_dir), free_port(), tmp.name, args)
    try:
        run_clients(url, data, 1, 2 if args.smoke else 10)  # warm the HTTP path
        single = run_clients(url, data, 1, args.latency_requests)
        concurrency = [
            run_clients(url, data, c, c if args.smoke else max(4 * c, 24)) for c in (1, 4, 8)
        ]
        mem_start = memory_kib(proc.pid)
        long_run = run_clients(url, data, 4, args.requests)
        mem_end = memory_kib(proc.pid)
        healthy = httpx.get(url + "/healthz", timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        tmp.cleanup()

    figures = {
        "bare_ms": bare,
        "single_client": single,
        "ratio_p50_to_bare": single["p50_ms"] / bare["total"],
        "concurrency": concurrency,
        "long_run": {
            **long_run,
            "rss_start_mib": mem_start["VmRSS"] / 1024,
            "rss_end_mib": mem_end["VmRSS"] / 1024,
            "rss_change": (mem_end["VmRSS"] - mem_start["VmRSS"]) / max(mem_start["VmRSS"], 1),
            "anon_start_mib": mem_start.get("RssAnon", 0) / 1024,
            "anon_end_mib": mem_end.get("RssAnon", 0) / 1024,
            "healthy_after": healthy,
        },
    }
    print(
        f"bare call (median of {args.bare_runs}): decode {bare['decode']:.1f} ms + preprocess "
        f"{bare['preprocess']:.1f} ms + model {bare['model']:.1f} ms = {bare['total']:.1f} ms"
    )
    print(
        f"one client: p50 {single['p50_ms']:.1f} ms, p95 {single['p95_ms']:.1f} ms; "
        f"p50 / bare = {figures['ratio_p50_to_bare']:.2f} (target <= 1.5); "
        f"server-side total p50 {single['server_total_p50_ms']:.1f} ms"
    )
    print("clients  throughput/s  p50 ms  p95 ms  errors")
    for row in concurrency:
        print(
            f"{row['clients']:>7}  {row['throughput_per_s']:>12.1f}  {row['p50_ms']:>6.1f}  "
            f"{row['p95_ms']:>6.1f}  {row['errors']:>6}"
        )
    lr = figures["long_run"]
    print(
        f"long run: {lr['requests']} requests, {lr['errors']} errors, "
        f"{lr['throughput_per_s']:.1f}/s; VmRSS {lr['rss_start_mib']:.0f} -> "
        f"{lr['rss_end_mib']:.0f} MiB ({100 * lr['rss_change']:+.1f} %; private RssAnon "
        f"{lr['anon_start_mib']:.0f} -> {lr['anon_end_mib']:.0f} MiB), healthy {healthy}"
    )
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
