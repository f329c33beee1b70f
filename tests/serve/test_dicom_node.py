"""The DICOM node against dcmtk's echoscu and storescu: negotiation, every syntax, refusals.

The node runs in-process (a TestClient app with ``dicom.enabled``) on a free loopback port;
the clients are dcmtk's, which no one here wrote.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from fastapi.testclient import TestClient

from labral.errors import BadConfigError
from labral.serve.http.app import create_app
from labral.serve.settings import ServeSettings
from labral.settings import settings_from_config

AE = "LABRAL"
#: each syntax and the storescu options that propose it (dcmtk's names)
FLAGS = {
    "explicit": [],
    "implicit": ["-xi"],
    "jpeg": ["-xy"],
    "rle": ["-xr"],
    "jpegls": ["-xt"],
    "j2k": ["-xv"],
}
SYNTAXES = tuple(FLAGS)
#: syntaxes storescu makes itself from an Explicit VR Little Endian file, as it sends it
ON_THE_WIRE = {"deflated": ["-xd"], "big_endian": ["-xb"]}
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture(scope="module")
def dcmtk(require_tool: Callable[[str], str]) -> dict[str, str]:
    """echoscu and storescu (a failure under LABRAL_REQUIRE_TOOLS=1 when missing)."""
    return {name: require_tool(name) for name in ("echoscu", "storescu")}


@pytest.fixture(scope="module")
def node(bundle_dir, tmp_path_factory, port_finder, ready_waiter) -> Iterator[dict]:
    """A started app whose DICOM node listens on a free loopback port."""
    port = port_finder()
    state = tmp_path_factory.mktemp("node-state")
    settings = ServeSettings(
        bundle=bundle_dir,
        state_dir=state,
        dicom={"enabled": True, "port": port, "ae_title": AE, "workers": 2},
    )
    with TestClient(create_app(settings)) as client:
        ready_waiter(client)
        yield {"client": client, "port": port, "state": state}


def storescu(dcmtk, node, path: Path, *flags: str, called: str = AE):
    cmd = [dcmtk["storescu"], "-v", "-aet", "SCANNER", "-aec", called, *flags]
    cmd += ["127.0.0.1", str(node["port"]), str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def results(client: TestClient, **params) -> dict:
    return client.get("/v1/results", params={"limit": 500, **params}).json()


def wait_for(client: TestClient, count: int, timeout: float = 60.0, **params) -> dict:
    """Poll GET /v1/results until ``count`` rows match (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = results(client, **params)
        if page["total"] >= count:
            return page
        time.sleep(0.05)
    raise AssertionError(f"only {results(client, **params)['total']} of {count} results stored")


def test_echo_and_readiness(dcmtk, node):
    echo = [dcmtk["echoscu"], "-aet", "SCANNER", "-aec", AE, "127.0.0.1", str(node["port"])]
    assert subprocess.run(echo, capture_output=True, timeout=30).returncode == 0
    wrong = [*echo[:4], "NOT_LABRAL", *echo[5:]]
    assert subprocess.run(wrong, capture_output=True, timeout=30).returncode != 0
    ready = node["client"].get("/readyz").json()
    assert ready["dicom"] == {
        "enabled": True,
        "up": True,
        "ae_title": AE,
        "port": node["port"],
        "error": None,
    }


def test_a_node_that_cannot_listen_is_not_ready(node, bundle_dir, tmp_path):
    taken = {"enabled": True, "port": node["port"]}  # the module's node holds this port
    settings = ServeSettings(bundle=bundle_dir, state_dir=tmp_path, dicom=taken)
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 60
        while client.app.state.service.ready.is_set() is False and time.monotonic() < deadline:
            time.sleep(0.05)
        ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "failed"
    assert ready.json()["dicom"]["up"] is False and "cannot listen" in ready.json()["error"]
    with pytest.raises(BadConfigError, match="together"):
        settings_from_config(
            ServeSettings, {"bundle": bundle_dir, "dicom": {"forward": {"host": "pacs.example"}}}
        )


def test_every_syntax_is_received_and_scored(dcmtk, node, instance_writer):
    client = node["client"]
    before = results(client, source="cstore", status="scored")["total"]
    sent = {}
    for index, (syntax, flags) in enumerate({**FLAGS, **ON_THE_WIRE}.items()):
        written = syntax if syntax in FLAGS else "explicit"
        path = instance_writer(100 + index, written, bright=index % 2 == 0)
        header = pydicom.dcmread(path, stop_before_pixels=True)
        done = storescu(dcmtk, node, path, *flags)
        assert done.returncode == 0, (syntax, done.stdout, done.stderr)
        assert "store response (success)" in done.stderr.lower(), syntax
        if syntax in ON_THE_WIRE:  # storescu re-encoded it: the node accepted that syntax
            assert syntax.replace("_", " ") in done.stderr.lower(), done.stderr
        sent[syntax] = (header, index % 2 == 0)
    page = wait_for(client, before + len(sent), source="cstore", status="scored")
    assert page["total"] == before + len(sent)
    keys = node["client"].app.state.stateful.keys
    by_key = {r["instance_key"]: r for r in page["results"]}
    for syntax, (header, bright) in sent.items():
        row = by_key[keys.key(header.SOPInstanceUID)]
        assert row["decision"] is bright, syntax
        assert row["study_key"] == keys.key(header.StudyInstanceUID)
        assert row["forward"] is None
    # the SR follows the row (serve/dicom/reporting.py); then the entry leaves the spool
    deadline = time.monotonic() + 60
    while list((node["state"] / "spool").glob("*.dcm")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list((node["state"] / "spool").glob("*.dcm"))  # every entry left the spool
    by_key = {r["instance_key"]: r for r in results(client, source="cstore")["results"]}
    assert all(by_key[keys.key(h.SOPInstanceUID)]["sr_key"] for h, _ in sent.values())


def test_other_sop_classes_are_refused_at_negotiation(dcmtk, node, dicom_maker, tmp_path):
    ct = tmp_path / "ct.dcm"
    ct.write_bytes(dicom_maker(CT_IMAGE, "CT", 1))
    before = results(node["client"])["total"]
    done = storescu(dcmtk, node, ct)
    assert done.returncode != 0
    assert "presentation context" in (done.stdout + done.stderr).lower()
    assert results(node["client"])["total"] == before  # it never reached the handler


def test_a_corrupt_cine_gets_a_failure_status_and_a_stored_reason(
    dcmtk, node, instance_writer, tmp_path
):
    source = pydicom.dcmread(instance_writer(150, "explicit"))
    source.PixelData = source.PixelData[: len(source.PixelData) // 3]  # truncated
    corrupt = tmp_path / "corrupt.dcm"
    source.save_as(corrupt, enforce_file_format=True)
    single = pydicom.dcmread(instance_writer(151, "explicit"))
    single.NumberOfFrames = 1
    single.PixelData = single.PixelData[: single.Rows * single.Columns]
    one_frame = tmp_path / "one-frame.dcm"
    single.save_as(one_frame, enforce_file_format=True)
    client = node["client"]
    before = results(client, status="failed")["total"]
    for path, status, code in ((corrupt, "0xc000", "corrupt_pixel_data"),
                               (one_frame, "0xa900", "not_a_cine")):  # fmt: skip
        done = storescu(dcmtk, node, path, "-d")  # -d prints the response's elements
        output = (done.stdout + done.stderr).lower()
        assert status in output and code in output, output  # status and Error Comment
    page = wait_for(client, before + 2, status="failed")
    reasons = {r["reason"] for r in page["results"][:2]}
    assert reasons == {"corrupt_pixel_data", "not_a_cine"}
    assert all(r["source"] == "cstore" for r in page["results"][:2])
    good = storescu(dcmtk, node, instance_writer(152, "jpeg"), "-xy")  # still serving
    assert good.returncode == 0


def echo_until_up(dcmtk, port: int, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    """C-ECHO the node until it answers (bounded); fail early if the server died."""
    deadline = time.monotonic() + timeout
    echo = [dcmtk["echoscu"], "-aec", AE, "127.0.0.1", str(port)]
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        if subprocess.run(echo, capture_output=True, timeout=30).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError("the DICOM node never answered C-ECHO:\n" + log.read_text())


def test_nothing_acknowledged_is_lost_when_the_server_is_killed(
    dcmtk, bundle_dir, tmp_path, instance_writer, port_finder, ready_waiter
):
    """SIGKILL ``labral serve`` between the acknowledgements and the scoring; a restart on
    the same state_dir scores every acknowledged instance, first, and nothing twice."""
    state, dicom_port = tmp_path / "state", port_finder()
    cmd = [
        sys.executable, "-m", "labral.cli", "serve", f"bundle={bundle_dir}",
        f"port={port_finder()}", f"state_dir={state}", f"paths.output_root={tmp_path / 'out'}",
        "dicom.enabled=true", f"dicom.port={dicom_port}", f"dicom.ae_title={AE}",
        "dicom.score_delay_s=600",  # test-only: hold every instance between ack and score
    ]  # fmt: skip
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONSAFEPATH": "1"}
        )
    try:
        echo_until_up(dcmtk, dicom_port, proc, log, timeout=240)
        acknowledged = 0
        for i, syntax in enumerate(SYNTAXES[:4]):
            path = instance_writer(200 + i, syntax)
            done = storescu(dcmtk, {"port": dicom_port}, path, *FLAGS[syntax])
            output = (done.stdout + done.stderr).lower()
            acknowledged += output.count("received store response (success)")
        assert acknowledged == 4, log.read_text()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    spooled = sorted((state / "spool").glob("*.dcm"))
    assert len(spooled) == acknowledged  # on disk, none scored yet
    settings = ServeSettings(
        bundle=bundle_dir, state_dir=state, dicom={"enabled": True, "port": port_finder()}
    )
    with TestClient(create_app(settings)) as client:  # the restart, on the same state_dir
        ready_waiter(client)
        page = wait_for(client, acknowledged, source="cstore")
        assert page["total"] == acknowledged
        assert {r["status"] for r in page["results"]} == {"scored"}
    assert not list((state / "spool").glob("*.dcm"))
    assert "scored p=" not in log.read_text()  # the killed run scored nothing
