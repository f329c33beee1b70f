"""Suite-wide fixtures and policy.

Fixtures that tests in several folders use live here (``train_cfg``: the train and bench
tests compose training runs); plain helpers they call live in ``tests/helpers/``. A
conftest never imports another folder's conftest. This file must not import
``tests.helpers`` either: tests/serve/test_required_tools.py runs it as the conftest of
inner pytest sessions outside this repository.

The policy: in CI a missing external tool fails its tests instead of skipping them.

Some tests drive Debian tools that no Python dependency replaces: dcmtk (dcmdump, dcmconv,
dcmcjpeg, img2dcm, storescu, ...), dicom3tools' dciodvfy, chromium and ffmpeg. On a
developer machine without them those tests skip, and the reason (``-rs`` prints it) names
the package to install. With ``LABRAL_REQUIRE_TOOLS=1``, which ``.ci/run`` sets, every skip
whose reason names one of these tools or packages becomes a failure, so CI cannot pass by
not running those tests.

One mechanism covers both ways the suite guards a tool:

- the ``require_tool`` fixture: ``path = require_tool("dciodvfy")`` returns the executable,
  or skips with a reason that names the tool and its package;
- guards written by hand (``skipif(shutil.which(...) is None, reason=...)``, a helper
  calling ``pytest.skip``): ``pytest_runtest_makereport`` and ``pytest_make_collect_report``
  recognise them by their reason.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

pytest_plugins = ["pytester"]  # tests/serve/test_required_tools.py runs inner pytest sessions

REQUIRE_ENV = "LABRAL_REQUIRE_TOOLS"
# executable -> the Debian package that provides it (.ci/run installs these packages)
TOOL_PACKAGES = {
    "dcmdump": "dcmtk",
    "dcmconv": "dcmtk",
    "dcmcjpeg": "dcmtk",
    "dcmcjpls": "dcmtk",
    "dcmcrle": "dcmtk",
    "img2dcm": "dcmtk",
    "storescu": "dcmtk",
    "storescp": "dcmtk",
    "echoscu": "dcmtk",
    "initdb": "postgresql",  # tests/serve/test_store.py: the store on PostgreSQL (.ci/run)
    "dciodvfy": "dicom3tools",
    "chromium": "chromium",
    "ffmpeg": "ffmpeg",
}
TOOL_ALIASES = {"chromium": ("chromium", "chromium-browser")}  # Debian, Ubuntu
_NAMES = sorted(
    {*TOOL_PACKAGES, *TOOL_PACKAGES.values(), *(a for v in TOOL_ALIASES.values() for a in v)},
    key=len,
    reverse=True,
)
TOOL_IN_REASON = re.compile(
    r"(?<![\w-])(" + "|".join(map(re.escape, _NAMES)) + r")(?![\w-])", re.IGNORECASE
)


def tools_required() -> bool:
    """True when ``LABRAL_REQUIRE_TOOLS`` asks for every external tool (CI)."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes"}


def find_tool(name: str) -> str | None:
    """Path of the executable ``name`` (or one of its aliases) on PATH, or None."""
    for candidate in TOOL_ALIASES.get(name, (name,)):
        path = shutil.which(candidate)
        if path is not None:
            return path
    return None


@pytest.fixture(scope="session")
def require_tool() -> Callable[[str], str]:
    """``require_tool(name) -> path``: the external tool, or a skip that names its package.

    Under ``LABRAL_REQUIRE_TOOLS=1`` that skip is reported as a failure (see the hooks).
    """

    def require(name: str) -> str:
        if name not in TOOL_PACKAGES:
            raise ValueError(f"unknown external tool {name!r}; add it to TOOL_PACKAGES")
        path = find_tool(name)
        if path is None:
            pytest.skip(f"{name} is not installed (apt-get install {TOOL_PACKAGES[name]})")
        return path

    return require


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


def _fail_if_tool_missing(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Turn a skip caused by a missing external tool into a failure when tools are required."""
    if not report.skipped or hasattr(report, "wasxfail") or not tools_required():
        return
    reason = _skip_reason(report)
    match = TOOL_IN_REASON.search(reason)
    if match is None:
        return
    report.outcome = "failed"
    report.longrepr = (
        f"{REQUIRE_ENV}=1 requires the external tool {match.group(1)!r}, but the test was "
        f"skipped: {reason}\nInstall it (.ci/run does) or unset {REQUIRE_ENV} to skip it."
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report = yield
    _fail_if_tool_missing(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> pytest.CollectReport:
    report = yield
    _fail_if_tool_missing(report)
    return report


@pytest.fixture
def train_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """Factory: the real ``configs/train.yaml`` composed with ``debug=default`` (the tiny
    settings) and ``overrides``, writing into tmp_path."""

    def make(*overrides: str, run_name: str = "run") -> DictConfig:
        GlobalHydra.instance().clear()
        run_dir = tmp_path / run_name
        with initialize_config_module(config_module="labral.configs", version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[
                    f"paths.root_dir={tmp_path}",
                    f"hydra.run.dir={run_dir}",
                    "debug=default",  # configs/debug/default.yaml: tiny model, 8x32x32, 2 epochs
                    *overrides,
                ],
                return_hydra_config=True,
            )
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(run_dir)
        return cfg

    return make
