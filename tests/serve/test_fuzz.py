"""The independent OpenAPI fuzzer finds nothing: schemathesis ``--checks all`` against a real
``labral serve`` (uvicorn on loopback), once without an api_key and once with one.

Slow (two service starts and about a minute of fuzzing); the fast pins of what it found are
in ``test_openapi_security.py``. Its settings and the STOW-RS serializer are in ``fuzz/``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency (.[dev])")

REPO = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).parent / "fuzz" / "schemathesis.toml"
KEY = "fuzz-key"


@pytest.mark.slow
@pytest.mark.parametrize("api_key", [None, KEY], ids=["no-key", "key"])
def test_schemathesis_finds_nothing(api_key, bundle_dir, serve_runner, port_finder, tmp_path):
    port = port_finder()
    cmd = [sys.executable, "-m", "labral.cli", "serve", f"bundle={bundle_dir}", f"port={port}"]
    cmd += [f"paths.output_root={tmp_path / 'out'}"] + ([f"api_key={api_key}"] if api_key else [])
    auth = ["-H", f"Authorization: Bearer {api_key}"] if api_key else []
    fuzzer = Path(sys.executable).parent / "schemathesis"
    with serve_runner(cmd, tmp_path / "serve.log", port) as (_, base):
        found = subprocess.run(
            [str(fuzzer), "--config-file", str(CONFIG), "run", f"{base}/openapi.json"]
            + ["--checks", "all", "--workers", "1", *auth],
            cwd=REPO,  # the config names its hooks file relative to the repository
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert found.returncode == 0, found.stdout[-6000:] + found.stderr[-2000:]
