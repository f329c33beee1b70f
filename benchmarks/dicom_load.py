"""Load benchmark of the DICOM node: many instances over concurrent C-STORE associations.

    .venv/bin/python benchmarks/dicom_load.py [BUNDLE] [--instances 200] [--associations 8]
    .venv/bin/python benchmarks/dicom_load.py --smoke     # demo bundle, a few instances

BUNDLE defaults to the newest bundle under outputs/, else the demo bundle (always with
``--smoke``). The script starts ``labral serve dicom.enabled=true`` as a subprocess on free
loopback ports (HTTP and DICOM, a temporary ``state_dir``) and prints:

* DICOM: ``--instances`` copies of one 40-frame JPEG Baseline cine (a new SOP Instance UID
  each) sent over ``--associations`` concurrent associations (pynetdicom SCUs): p50/p95 of the
  acknowledgement (C-STORE response) and of the result (send -> its row in the store);
* HTTP: the same clip posted to ``/v1/predictions`` by as many concurrent clients: p50/p95,
  and the ratio of the DICOM result p50 to it;
* memory: the server's VmRSS once the first 50 results are stored and after the last one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import io
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pydicom

SECRET = "dicom-load-benchmark"  # store.pseudonym_key, so rows can be matched to instances


def _serve_load() -> ModuleType:
    """benchmarks/serve_load.py, whose helpers this script shares (the scripts are not a
    package, so it is loaded by path)."""
    path = Path(__file__).with_name("serve_load.py")
    spec = importlib.util.spec_from_file_location("benchmark_serve_load", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_shared = _serve_load()
free_port, launch_server = _shared.free_port, _shared.launch_server
newest_bundle, sample_clip_bytes = _shared.newest_bundle, _shared.sample_clip_bytes


def start_server(bundle: Path, state: Path, http: int, dicom: int, associations: int):
    """``labral serve`` with the DICOM node; returns it and its URL once /readyz is 200."""
    cmd = [
        sys.executable, "-m", "labral.cli", "serve", f"bundle={bundle}", f"port={http}",
        f"state_dir={state}", f"paths.output_root={state.parent / 'out'}", "log_level=warning",
        "dicom.enabled=true", f"dicom.port={dicom}", f"dicom.max_associations={associations}",
    ]  # fmt: skip
    return launch_server(cmd, {"PYTHONSAFEPATH": "1", "LABRAL_STORE_PSEUDONYM_KEY": SECRET}, http)


def vm_rss_mib(pid: int) -> float:
    """The process's resident memory."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def send_instances(port: int, data: bytes, counts: list[int]) -> list[tuple[str, float, float]]:
    """One association per entry of ``counts``, all at once; (UID, sent at, ack ms) each."""
    from pydicom.uid import JPEGBaseline8Bit, generate_uid
    from pynetdicom import AE
    from pynetdicom.sop_class import UltrasoundMultiFrameImageStorage

    def association(count: int) -> list[tuple[str, float, float]]:
        ae = AE(ae_title="LOADTEST")
        ae.add_requested_context(UltrasoundMultiFrameImageStorage, JPEGBaseline8Bit)
        assoc = ae.associate("127.0.0.1", port, ae_title="LABRAL")
        if not assoc.is_established:
            raise SystemExit("the node refused the association")
        sent = []
        try:
            for _ in range(count):
                ds = pydicom.dcmread(io.BytesIO(data))  # an independent copy per instance
                ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
                at, t0 = time.time(), time.perf_counter()
                status = assoc.send_c_store(ds)
                ack_ms = (time.perf_counter() - t0) * 1000
                if getattr(status, "Status", None) != 0x0000:
                    raise SystemExit(f"C-STORE failed: {status}")
                sent.append((str(ds.SOPInstanceUID), at, ack_ms))
        finally:
            assoc.release()
        return sent

    with ThreadPoolExecutor(len(counts)) as pool:
        return [row for rows in pool.map(association, counts) for row in rows]


def wait_for_results(url: str, total: int, pid: int, timeout: float) -> tuple[list, dict]:
    """Poll /v1/results until ``total`` cstore rows exist; VmRSS at 50 rows and at the end."""
    memory: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=30) as client:
        while time.monotonic() < deadline:
            page = client.get("/v1/results", params={"source": "cstore", "limit": 1}).json()
            if page["total"] >= min(50, total) and "first_50" not in memory:
                memory["first_50"] = vm_rss_mib(pid)
            if page["total"] >= total:
                memory["last"] = vm_rss_mib(pid)
                rows = []
                for offset in range(0, total, 500):
                    params = {"source": "cstore", "limit": 500, "offset": offset}
                    rows += client.get("/v1/results", params=params).json()["results"]
                return rows, memory
            time.sleep(0.05)
    raise SystemExit(f"only {page['total']} of {total} results within {timeout:.0f} s")


def http_latencies(url: str, data: bytes, clients: int, total: int) -> list[float]:
    """``total`` uploads to /v1/predictions from ``clients`` concurrent clients (ms each)."""
    per_client = [total // clients + (i < total % clients) for i in range(clients)]

    def worker(n: int) -> list[float]:
        found = []
        with httpx.Client(base_url=url, timeout=120) as client:
            for _ in range(n):
                t0 = time.perf_counter()
                answer = client.post(
                    "/v1/predictions", content=data, headers={"Content-Type": "application/dicom"}
                )
                answer.raise_for_status()
                found.append((time.perf_counter() - t0) * 1000)
        return found

    with ThreadPoolExecutor(clients) as pool:
        return [v for values in pool.map(worker, per_client) for v in values]


def percentiles(values: list[float]) -> dict[str, float]:
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95))}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Load the node and the HTTP path; print and return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", nargs="?", type=Path, help="bundle folder (default: newest)")
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--associations", type=int, default=8)
    parser.add_argument("--http-requests", type=int, default=80)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--smoke", action="store_true", help="demo bundle, a few instances")
    args = parser.parse_args(argv)
    if args.smoke:
        args.instances, args.associations, args.http_requests = 6, 2, 4

    from labral.serve.pseudonym import Pseudonymizer

    tmp = tempfile.TemporaryDirectory()
    root = Path(tmp.name)
    bundle = args.bundle or (None if args.smoke else newest_bundle(Path("outputs")))
    if bundle is None:
        from labral.serve.demo import make_demo_bundle

        bundle = make_demo_bundle(root / "demo-bundle")
    data = sample_clip_bytes()
    name = json.loads((Path(bundle) / "metadata.json").read_text())["model_name"]
    print(f"bundle {bundle} ({name}), clip {len(data) / 1024:.0f} KiB")
    dicom_port = free_port()
    proc, url = start_server(Path(bundle), root / "state", free_port(), dicom_port, 16)
    try:
        http_latencies(url, data, 1, 2)  # warm the HTTP path
        counts = [
            args.instances // args.associations + (i < args.instances % args.associations)
            for i in range(args.associations)
        ]
        sent = send_instances(dicom_port, data, counts)
        rows, memory = wait_for_results(url, len(sent), proc.pid, timeout=600)
        http = http_latencies(url, data, args.associations, args.http_requests)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    keys = Pseudonymizer.from_settings(SECRET, root)
    stored = {r["instance_key"]: r for r in rows}
    result_ms = []
    for uid, at, _ in sent:
        row = stored[keys.key(uid)]
        assert row["status"] == "scored", row
        result_ms.append((dt.datetime.fromisoformat(row["created_at"]).timestamp() - at) * 1000)
    tmp.cleanup()
    first_sent = min(at for _, at, _ in sent)
    last_stored = max(dt.datetime.fromisoformat(r["created_at"]).timestamp() for r in rows)
    figures = {
        "instances": len(sent),
        "associations": args.associations,
        "ack_ms": percentiles([ack for _, _, ack in sent]),
        "result_ms": percentiles(result_ms),
        "scored_per_s": len(sent) / max(last_stored - first_sent, 1e-9),
        "http_ms": percentiles(http),
        "ratio_result_p50_to_http_p50": float(np.median(result_ms) / np.median(http)),
        "rss_mib": memory,
    }
    a, r, h = figures["ack_ms"], figures["result_ms"], figures["http_ms"]
    print(f"{len(sent)} instances over {args.associations} associations")
    print(f"acknowledgement p50 {a['p50']:.1f} ms, p95 {a['p95']:.1f} ms")
    print(
        f"send -> stored result p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms (queueing included: "
        f"the senders do not wait for scores); {figures['scored_per_s']:.1f} instances/s scored"
    )
    print(
        f"HTTP /v1/predictions ({args.associations} clients) p50 {h['p50']:.1f} ms, "
        f"p95 {h['p95']:.1f} ms; DICOM result p50 / HTTP p50 = "
        f"{figures['ratio_result_p50_to_http_p50']:.2f}"
    )
    print(
        f"server VmRSS {memory['first_50']:.0f} MiB after the first 50 results, "
        f"{memory['last']:.0f} MiB after the last"
    )
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
