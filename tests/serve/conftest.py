"""Fixtures for the service tests: a tiny scripted bundle, small clips, apps and a live server."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient

from labral.datasets.synth.dicom_writer import write_cine_dicom
from labral.datasets.synth.types import SynthClip
from labral.datasets.synth.video_writer import write_mp4
from labral.demo_bundle import demo_frames
from labral.serve.http.app import create_app
from labral.serve.settings import ServeSettings
from tests.helpers.bundles import toy_bundle
from tests.helpers.dicom import CT_IMAGE, US_MULTIFRAME, US_SINGLE, dicom_bytes, encode, write_dicom
from tests.helpers.input_check import blank_frames, rule_check

ramp_frames = demo_frames


def synth_clip(frames: np.ndarray, fps: float = 20.0) -> SynthClip:
    return SynthClip(
        frames=frames,
        label=1,
        clip_type="positive",
        fps=fps,
        spacing_mm=(0.3, 0.3),
        extrusion_mask=np.zeros(frames.shape, bool),
        extrusion_frames=[],
    )


def plain_dataset(
    sop_class: str,
    modality: str,
    frames: int,
    rows: int = 32,
    cols: int = 32,
    declared_frames: int | None = None,
) -> bytes:
    """A small black uncompressed DICOM with no regions, for the bad-input corpus (CT, single
    frame, a huge declared frame count): :func:`tests.helpers.dicom.dicom_bytes`."""
    return dicom_bytes(
        np.zeros((frames, rows, cols), np.uint8),
        sop_class=sop_class,
        modality=modality,
        number_of_frames=declared_frames,
        regions=[],
    )


def at_fps(fps: float) -> dict[str, dict[str, float]]:
    """The test DICOM writer's ``timing`` keyword for a cine at ``fps``."""
    return {"timing": {"FrameTime": 1000.0 / fps}}


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo bundle: logit = 30 * (brightest frame's mean - 0.25) (labral.demo_bundle)."""
    return toy_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="session")
def checked_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo bundle with an input check whose image and manoeuvre rules are real
    (``tests.helpers.input_check.rule_check``): a blank clip is not assessable."""
    return toy_bundle(tmp_path_factory.mktemp("checked-bundle"), input_check=rule_check())


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Sample uploads: bright/dark DICOM cines (20 fps, 0.3 mm pixels), a JPEG DICOM, a short
    5 fps cine, an MP4 and a blank cine (not assessable where the bundle has a check)."""
    folder = tmp_path_factory.mktemp("clips")
    return {
        "bright.dcm": write_dicom(folder / "bright.dcm", ramp_frames(bright=True), **at_fps(20)),
        "dark.dcm": write_dicom(folder / "dark.dcm", ramp_frames(bright=False), **at_fps(20)),
        "jpeg.dcm": write_dicom(folder / "jpeg.dcm", ramp_frames(), "jpeg", **at_fps(20)),
        "short.dcm": write_dicom(folder / "short.dcm", ramp_frames(frames=4), **at_fps(5)),
        "bright.mp4": write_mp4(
            ramp_frames(frames=20, height=64, width=64), 20.0, folder / "bright.mp4"
        ),
        "blank.dcm": write_dicom(folder / "blank.dcm", blank_frames(), **at_fps(20)),
    }


def wait_ready(client: TestClient | httpx.Client, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.02)
    raise AssertionError("service never became ready")


@pytest.fixture(scope="session")
def bad_inputs(
    clips, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[bytes, str, int, set]]:
    """name -> (bytes, content type, expected status, accepted codes): the bad-input corpus."""
    dicom = clips["bright.dcm"].read_bytes()
    mp4 = clips["bright.mp4"].read_bytes()
    folder = tmp_path_factory.mktemp("bad")
    many = write_mp4(np.zeros((2100, 16, 16), np.uint8), 30.0, folder / "many.mp4")
    huge = write_mp4(np.zeros((2, 2304, 2304), np.uint8), 10.0, folder / "huge.mp4")
    dcm, octet, mp4_type = "application/dicom", "application/octet-stream", "video/mp4"
    return {
        "truncated_dicom": (dicom[: len(dicom) // 2], dcm, 422, {"corrupt_pixel_data"}),
        "truncated_header": (dicom[:200], dcm, 415, {"not_dicom"}),
        "truncated_mp4": (mp4[: len(mp4) // 3], mp4_type, None, None),
        "random_bytes.dcm": (bytes(range(256)) * 40, dcm, 415, {"not_dicom", "unsupported_media"}),
        "declares_100000_frames": (
            plain_dataset(US_MULTIFRAME, "US", 2, declared_frames=100_000),
            dcm,
            413,
            {"over_limit"},
        ),
        "single_frame_us": (plain_dataset(US_SINGLE, "US", 1), dcm, 422, {"not_a_cine"}),
        "ct_image": (plain_dataset(CT_IMAGE, "CT", 1), dcm, 422, {"not_ultrasound"}),
        "video_2100_frames": (many.read_bytes(), octet, 413, {"over_limit"}),
        "video_2304x2304": (huge.read_bytes(), octet, 413, {"over_limit"}),
        "json_body": (b"{}", "application/json", 415, {"unsupported_media_type"}),
        "empty": (b"", dcm, 400, {"missing_file"}),
    }


@pytest.fixture(scope="session")
def ready_waiter():
    """``wait_ready(client)`` for tests (conftest helpers are not importable by tests)."""
    return wait_ready


@pytest.fixture(scope="session")
def dicom_maker():
    """``plain_dataset(sop_class, modality, frames, ...) -> bytes`` for tests."""
    return plain_dataset


@pytest.fixture
def make_client(bundle_dir: Path) -> Iterator:
    """Factory: a started TestClient (lifespan run, model ready) for given settings (the
    demo bundle unless ``bundle=`` names another)."""
    opened: list[TestClient] = []

    def factory(**overrides) -> TestClient:
        settings = ServeSettings(**{"bundle": bundle_dir, **overrides})
        client = TestClient(create_app(settings))
        client.__enter__()
        opened.append(client)
        wait_ready(client)
        return client

    yield factory
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_process(
    cmd: list[str],
    log_path: Path,
    port: int,
    env: dict[str, str] | None = None,
    name: str = "live server",
    stop_timeout: float = 10.0,
) -> Iterator[tuple[subprocess.Popen, str]]:
    """Run ``cmd`` (a ``labral serve`` on ``port``, output to ``log_path``, ``env`` added to
    this process's) until /readyz is 200; yield it and its URL; terminate it on exit."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONSAFEPATH": "1", **(env or {})},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # imports torch+monai; slow on a busy machine
        while time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError(f"{name} never became ready:\n" + log_path.read_text())
        yield proc, base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def serve_runner():
    """``serve_process(cmd, log_path, port, env=None, name=..., stop_timeout=10.0)`` for tests:
    a context manager yielding a ready ``labral serve`` process and its URL."""
    return serve_process


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, bundle_dir: Path, clips
) -> Iterator[dict]:
    """A real ``labral serve`` process (uvicorn) on a free loopback port."""
    port = free_port()
    samples = Path(next(iter(clips.values()))).parent
    cmd = [
        sys.executable,
        "-m",
        "labral.cli",
        "serve",
        f"bundle={bundle_dir}",
        f"port={port}",
        f"samples_dir={samples}",
        "max_upload_bytes=4000000",
        "log_level=info",
        f"paths.output_root={tmp_path_factory.mktemp('out')}",
    ]
    log_path = tmp_path_factory.mktemp("log") / "serve.log"
    with serve_process(cmd, log_path, port) as (proc, base):
        yield {"url": base, "proc": proc, "log": log_path, "samples": samples}


# ---- DICOM node, DICOMweb and results store ------------------------------------------
def identity_of(index: int) -> dict[str, str]:
    """Identifiable test values for instance ``index``; none may reach a log or a table."""
    return {
        "PatientName": f"Identifiable^Testperson{index:03d}^Q",
        "PatientID": f"PID-5550{index:03d}-XY",
        "AccessionNumber": f"ACC77{index:03d}",
        "PatientBirthDate": "19700101",
        "OtherPatientIDs": f"OTHER-ID-{index:03d}",
        "ReferringPhysicianName": f"Referrer^Doctor{index:03d}",
    }


def write_instance(folder: Path, index: int, syntax: str, bright: bool = True) -> Path:
    """A US multi-frame cine with its own UIDs and identity, in ``syntax``.

    The instance is the synthetic generator's file (its UIDs follow from ``index``, so
    writing an index twice gives the same instance); JPEG Baseline comes from that writer,
    the other syntaxes are :func:`tests.helpers.dicom.encode`'s re-encodings.
    """
    frames = ramp_frames(frames=16, height=40, width=48, bright=bright)
    base = folder / f"{syntax}-{index:03d}-base.dcm"
    write_cine_dicom(
        synth_clip(frames),
        base,
        syntax="jpeg" if syntax == "jpeg" else "explicit",
        burned_in_text=False,
        patient={"patient": f"T{index:04d}", "clip": index, "dataset_seed": 4242},
    )
    ds = pydicom.dcmread(base)
    base.unlink()
    for name, value in identity_of(index).items():
        setattr(ds, name, value)
    if syntax != "jpeg":
        encode(ds, syntax)
    path = folder / f"{syntax}-{index:03d}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="session")
def instance_writer(tmp_path_factory: pytest.TempPathFactory):
    """``write(index, syntax, bright=True) -> Path``: an identifiable US cine instance."""
    folder = tmp_path_factory.mktemp("instances")
    return lambda index, syntax="explicit", bright=True: write_instance(
        folder, index, syntax, bright
    )


@pytest.fixture(scope="session")
def port_finder():
    """``port_finder() -> int``: a free loopback TCP port."""
    return free_port
