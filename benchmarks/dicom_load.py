"""Load benchmark of the DICOM node: many instances over concurrent C-STORE associations.

    .venv/bin/python benchmarks/dicom_load.py [BUNDLE] [--instances 200] [--associations 8]
    .venv/bin/python benchmarks/dicom_load.py --runs 3     # medians of three fresh servers
    .venv/bin/python benchmarks/dicom_load.py --smoke      # demo bundle, a few instances

BUNDLE defaults to the newest bundle under outputs/, else the demo bundle (always with
``--smoke``). Each run starts dcmtk's ``storescp`` as the PACS (AE title PACS) and
``labral serve dicom.enabled=true`` forwarding its SRs there, on free loopback ports with a
temporary ``state_dir``, then:

1. DICOM: ``--instances`` copies of one 40-frame JPEG Baseline cine (a new SOP Instance UID
   each) are sent over ``--associations`` concurrent pynetdicom associations, each sending
   its next instance as soon as the previous one is acknowledged. It waits for every result
   row (``GET /v1/results``) and every SR at the PACS.
2. HTTP: the same clip is posted to ``/v1/predictions`` by as many concurrent clients, each
   posting its next request when its answer arrives (``--http-requests`` in all).

The figures (the issue's target: 0 failures, a row and an SR per instance, result p50 at
most 1.5x the HTTP p50, resident memory within 10%):

* ``acknowledgement``: from ``send_c_store`` to its response at the sender: the transfer,
  the header checks, the spool's fsyncs, and any time the node held the answer because
  more than ``dicom.max_backlog`` instances were waiting for their results;
* ``acknowledgement -> result row``: from the
  response at the sender to the ``created_at`` of the instance's row, which the server sets
  as it commits it: how long a result takes once the node has taken responsibility for the
  instance (decode, the shared micro-batched model call, the row). The SR is made and
  forwarded after the row (``serve/dicom/reporting.py``) and is not in this figure;
* ``send -> result row`` (**the latency compared with HTTP**): the two above together,
  the scanner's end-to-end view (negative acknowledgement -> row times mean the node held
  the answer until after the row: ``dicom.max_backlog``);
* HTTP ``request -> response``: the whole request as a client sees it (upload, decode,
  model, answer), at the same concurrency, on the same clip, after the DICOM phase and its
  SRs are done, so the two never compete for the CPU;
* ``VmRSS`` of the server once 50 rows are stored and after the last one (a leak shows as a
  growth between them).

The machine's load average is printed before and after: these are wall-clock figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import io
import json
import os
import shutil
import subprocess
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

from labral.demo_bundle import make_demo_bundle
from labral.serve.dicom.pseudonym import store_pseudonymizer

SECRET = "dicom-load-benchmark"  # store.pseudonym_key, so rows can be matched to instances
TARGET_RATIO = 1.5


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


def start_pacs(folder: Path) -> tuple[subprocess.Popen, int]:
    """dcmtk's storescp as the forward destination (AE title PACS), writing into ``folder``."""
    storescp = shutil.which("storescp")
    if storescp is None:
        raise SystemExit("dcmtk's storescp is needed as the PACS (apt-get install dcmtk)")
    folder.mkdir(parents=True)
    port = free_port()
    cmd = [storescp, "-aet", "PACS", "-od", str(folder), str(port)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port


def start_server(
    bundle: Path, state: Path, http: int, dicom: int, pacs: int, associations: int, extra: list
):
    """``labral serve`` with the DICOM node (``extra``: more overrides); returns it and its
    URL once /readyz is 200."""
    cmd = [
        sys.executable, "-m", "labral.cli", "serve", f"bundle={bundle}", f"port={http}",
        f"state_dir={state}", f"paths.output_root={state.parent / 'out'}", "log_level=warning",
        "dicom.enabled=true", f"dicom.port={dicom}", f"dicom.max_associations={associations}",
        "dicom.forward.ae_title=PACS", "dicom.forward.host=127.0.0.1", f"dicom.forward.port={pacs}",
        *extra,
    ]  # fmt: skip
    return launch_server(cmd, {"PYTHONSAFEPATH": "1", "LABRAL_PSEUDONYM_KEY": SECRET}, http)


def vm_rss_mib(pid: int) -> float:
    """The process's resident memory."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def send_instances(port: int, data: bytes, counts: list[int]) -> list[dict[str, Any]]:
    """One association per entry of ``counts``, all at once; per instance its UID, the
    wall-clock times it was sent and acknowledged, and the response status."""
    from pydicom.uid import JPEGBaseline8Bit, generate_uid
    from pynetdicom import AE
    from pynetdicom.sop_class import UltrasoundMultiFrameImageStorage

    def association(count: int) -> list[dict[str, Any]]:
        copies = []
        for _ in range(count):  # made before the clock starts
            ds = pydicom.dcmread(io.BytesIO(data))
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            copies.append(ds)
        ae = AE(ae_title="LOADTEST")
        ae.add_requested_context(UltrasoundMultiFrameImageStorage, JPEGBaseline8Bit)
        assoc = ae.associate("127.0.0.1", port, ae_title="LABRAL")
        if not assoc.is_established:
            raise SystemExit("the node refused the association")
        sent = []
        try:
            for ds in copies:
                at = time.time()
                status = getattr(assoc.send_c_store(ds), "Status", None)
                acked = time.time()
                sent.append(
                    {"uid": ds.SOPInstanceUID, "sent": at, "acked": acked, "status": status}
                )
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


def wait_for_srs(folder: Path, total: int, timeout: float) -> int:
    """Wait until the PACS folder holds ``total`` files (bounded); returns how many it has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sum(1 for p in folder.iterdir() if p.is_file())
        if found >= total:
            return found
        time.sleep(0.1)
    return sum(1 for p in folder.iterdir() if p.is_file())


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


def one_run(bundle: Path, data: bytes, args: argparse.Namespace) -> dict[str, Any]:
    """A fresh PACS and server, the DICOM phase, then the HTTP phase; the run's figures."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pacs, pacs_port = start_pacs(root / "pacs")
        dicom_port = free_port()
        try:
            proc, url = start_server(
                bundle, root / "state", free_port(), dicom_port, pacs_port, 16, args.serve
            )
            try:
                http_latencies(url, data, 1, 2)  # warm the HTTP path
                counts = [
                    args.instances // args.associations + (i < args.instances % args.associations)
                    for i in range(args.associations)
                ]
                sent = send_instances(dicom_port, data, counts)
                acked = [s for s in sent if s["status"] == 0x0000]
                rows, memory = wait_for_results(url, len(acked), proc.pid, timeout=600)
                srs = wait_for_srs(root / "pacs", len(acked), timeout=300)
                http = http_latencies(url, data, args.associations, args.http_requests)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        finally:
            pacs.terminate()
            pacs.wait(timeout=10)
        keys = store_pseudonymizer(SECRET, root)  # configured: the environment is not read
    stored = {r["instance_key"]: r for r in rows}
    ack_ms, ack_to_row, send_to_row = [], [], []
    for s in acked:
        row = stored[keys.key(s["uid"])]
        if row["status"] != "scored":
            raise SystemExit(f"an instance was not scored: {row}")
        created = dt.datetime.fromisoformat(row["created_at"]).timestamp()
        ack_ms.append((s["acked"] - s["sent"]) * 1000)
        ack_to_row.append((created - s["acked"]) * 1000)
        send_to_row.append((created - s["sent"]) * 1000)
    last_row = max(dt.datetime.fromisoformat(r["created_at"]).timestamp() for r in rows)
    http_p50 = float(np.median(http))
    return {
        "instances": len(sent),
        "failures": len(sent) - len(acked),
        "rows": len(rows),
        "srs": srs,
        "ack_ms": percentiles(ack_ms),
        "ack_to_row_ms": percentiles(ack_to_row),
        "send_to_row_ms": percentiles(send_to_row),
        "scored_per_s": len(rows) / max(last_row - min(s["sent"] for s in sent), 1e-9),
        "http_ms": percentiles(http),
        "ratio": float(np.median(ack_to_row)) / http_p50,
        "ratio_send_to_row": float(np.median(send_to_row)) / http_p50,
        "rss_mib": memory,
        "rss_change": memory["last"] / memory["first_50"] - 1,
    }


def report(f: dict[str, Any], associations: int, label: str = "") -> None:
    """Print one run's figures (or their medians)."""
    a, r, e, h = f["ack_ms"], f["ack_to_row_ms"], f["send_to_row_ms"], f["http_ms"]
    verdict = "meets" if f["ratio_send_to_row"] <= TARGET_RATIO else "MISSES"
    print(
        f"{label}{f['instances']:.0f} instances over {associations} associations: "
        f"{f['failures']:.0f} failures, {f['rows']:.0f} result rows, {f['srs']:.0f} SRs at the PACS"
    )
    print(f"{label}acknowledgement p50 {a['p50']:.1f} ms, p95 {a['p95']:.1f} ms")
    print(
        f"{label}acknowledgement -> result row p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms; "
        f"send -> result row p50 {e['p50']:.1f} ms, p95 {e['p95']:.1f} ms; "
        f"{f['scored_per_s']:.1f} instances/s"
    )
    print(
        f"{label}HTTP /v1/predictions ({associations} clients) p50 {h['p50']:.1f} ms, "
        f"p95 {h['p95']:.1f} ms; send -> result p50 / HTTP p50 = "
        f"{f['ratio_send_to_row']:.2f} ({verdict} <= {TARGET_RATIO}); acknowledgement -> "
        f"result p50 / HTTP p50 = {f['ratio']:.2f}"
    )
    m = f["rss_mib"]
    print(
        f"{label}server VmRSS {m['first_50']:.0f} MiB after the first 50 results, "
        f"{m['last']:.0f} MiB after the last ({f['rss_change'] * 100:+.1f}%)"
    )


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the runs (nested dicts too)."""
    first = runs[0]
    return {
        key: median_of([r[key] for r in runs])
        if isinstance(first[key], dict)
        else float(np.median([r[key] for r in runs]))
        for key in first
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Load the node and the HTTP path; print and return the figures (medians over runs)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", nargs="?", type=Path, help="bundle folder (default: newest)")
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--associations", type=int, default=8)
    parser.add_argument("--http-requests", type=int, default=80)
    parser.add_argument("--runs", type=int, default=1, help="fresh servers; medians printed")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--smoke", action="store_true", help="demo bundle, a few instances")
    parser.add_argument(
        "--serve", nargs="*", default=[], help="more labral serve overrides (dicom.max_backlog=2)"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.instances, args.associations, args.http_requests, args.runs = 6, 2, 4, 1

    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle or (None if args.smoke else newest_bundle(Path("outputs")))
        if bundle is None:
            bundle = make_demo_bundle(Path(tmp) / "demo-bundle")
        data = sample_clip_bytes()
        name = json.loads((Path(bundle) / "metadata.json").read_text())["model_name"]
        print(f"bundle {bundle} ({name}), clip {len(data) / 1024:.0f} KiB")
        runs = []
        for index in range(args.runs):
            before = os.getloadavg()[0]
            runs.append(one_run(Path(bundle), data, args))
            runs[-1]["load_average"] = [before, os.getloadavg()[0]]
            label = f"run {index + 1}: " if args.runs > 1 else ""
            print(f"{label}load average {before:.1f} -> {os.getloadavg()[0]:.1f}")
            report(runs[-1], args.associations, label)
    figures = median_of([{k: v for k, v in r.items() if k != "load_average"} for r in runs])
    figures["load_average"] = [r["load_average"] for r in runs]
    if args.runs > 1:
        report(figures, args.associations, f"median of {args.runs} runs: ")
    if args.out:
        args.out.write_text(json.dumps({"median": figures, "runs": runs}, indent=2))
    return figures


if __name__ == "__main__":
    main()
