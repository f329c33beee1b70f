"""LABRAL_REQUIRE_TOOLS=1 (set by .ci/run) turns a skip for a missing external tool into a failure.

Each test runs an inner pytest session with the suite's own tests/conftest.py and a PATH on
which no external tool can be found, so the result does not depend on this machine.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
GUARDED_TESTS = """
import shutil

import pytest


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
def test_marker_guard():
    pass


def test_skip_in_helper():
    pytest.skip("dcmtk's dcmconv is not installed (apt-get install dcmtk)")


def test_fixture_guard(require_tool):
    assert require_tool("chromium")


@pytest.mark.skipif(True, reason="needs a CUDA device")
def test_unrelated_skip():
    pass


@pytest.mark.xfail(reason="known chromium rendering bug", strict=True)
def test_expected_failure():
    raise AssertionError("still broken")
"""


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester folder with the suite's conftest and an empty PATH (no tool installed)."""
    pytester.makeconftest(ROOT_CONFTEST.read_text())
    pytester.makepyfile(test_guarded=GUARDED_TESTS)
    empty = pytester.mkdir("empty-bin")
    monkeypatch.setenv("PATH", str(empty))
    return pytester


def test_required_tools_turn_tool_skips_into_failures(inner, monkeypatch):
    monkeypatch.setenv("LABRAL_REQUIRE_TOOLS", "1")
    result = inner.runpytest("-rA", "-p", "no:cacheprovider")
    # a skipif marker skips during setup (reported as an error), pytest.skip and require_tool
    # in the test body during the call (reported as failures): never as a skip
    result.assert_outcomes(failed=2, errors=1, skipped=1, xfailed=1)
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        [
            "*LABRAL_REQUIRE_TOOLS=1 requires the external tool 'dicom3tools'*",
            "*LABRAL_REQUIRE_TOOLS=1 requires the external tool 'dcmtk'*",
            "*LABRAL_REQUIRE_TOOLS=1 requires the external tool 'chromium'*",
            "SKIPPED * needs a CUDA device",
        ],
        consecutive=False,
    )
    result.stdout.fnmatch_lines(
        [
            "ERROR test_guarded.py::test_marker_guard*",
            "FAILED test_guarded.py::test_skip_in_helper*",
            "FAILED test_guarded.py::test_fixture_guard*",
        ]
    )


def test_without_the_variable_missing_tools_skip_with_their_package(inner, monkeypatch):
    monkeypatch.delenv("LABRAL_REQUIRE_TOOLS", raising=False)
    result = inner.runpytest("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=4, xfailed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["*dicom3tools not installed*", "*chromium is not installed (apt-get install chromium)*"],
        consecutive=False,
    )


def test_a_module_level_tool_skip_fails_collection(pytester, monkeypatch):
    pytester.makeconftest(ROOT_CONFTEST.read_text())
    module = 'import pytest\npytest.skip("ffmpeg not found", allow_module_level=True)\n'
    pytester.makepyfile(test_module_guard=module)
    monkeypatch.setenv("LABRAL_REQUIRE_TOOLS", "1")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*requires the external tool 'ffmpeg'*"])
    assert "skipped" not in result.stdout.str().splitlines()[-1]


def test_require_tool_finds_an_installed_tool(pytester, monkeypatch):
    pytester.makeconftest(ROOT_CONFTEST.read_text())
    bin_dir = pytester.mkdir("bin")
    tool = bin_dir / "chromium-browser"  # the Ubuntu name is accepted for chromium
    tool.write_text("#!/bin/sh\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    pytester.makepyfile(
        test_found=f"""
def test_found(require_tool):
    assert require_tool("chromium") == {str(tool)!r}
"""
    )
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("LABRAL_REQUIRE_TOOLS", "1")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
