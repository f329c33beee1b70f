"""The package layout: one `labral` namespace over the repository folders, guarded."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import labral
import labral.errors as errors
from labral.cli import COMMANDS, main

REPO = Path(__file__).resolve().parents[1]
SUBPACKAGES = {
    "labral.datasets": "datasets",
    "labral.models": "models",
    "labral.train": "train",
    "labral.serve": "serve",
    "labral.bench": "bench",
    "labral.configs": "configs",
}


def _python(code: str, *, safe_path: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}
    if safe_path:
        env["PYTHONSAFEPATH"] = "1"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("name,folder", sorted(SUBPACKAGES.items()))
def test_namespace_maps_each_folder(name: str, folder: str) -> None:
    module = __import__(name, fromlist=["_"])
    assert Path(module.__file__).resolve().parent == REPO / folder


@pytest.mark.parametrize("folder", ["datasets", "models", "train", "serve", "bench"])
def test_bare_folder_import_is_refused_by_the_guard(folder: str) -> None:
    # Without PYTHONSAFEPATH the repo root is on sys.path, so the folder is found by its
    # bare name: its __init__ must refuse to load.
    result = _python(f"import {folder}", safe_path=False)
    assert result.returncode != 0
    assert f"labral.{folder}" in result.stderr
    assert "ImportError" in result.stderr


def test_safe_path_keeps_the_repo_root_off_sys_path() -> None:
    result = _python(
        "import sys, os; print(os.getcwd() in sys.path or '' in sys.path)", safe_path=True
    )
    assert result.stdout.strip() == "False"


def test_version_is_set() -> None:
    assert labral.__version__.count(".") == 2


def test_error_codes_are_unique_and_statuses_are_http_errors() -> None:
    classes = [
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, errors.LabralError)
    ]
    codes = [cls.code for cls in classes]
    assert len(classes) >= 10
    assert len(codes) == len(set(codes))
    assert all(400 <= cls.http_status < 600 for cls in classes)
    err = errors.OverLimitError("too many frames")
    assert err.to_dict() == {"code": "over_limit", "message": "too many frames"}


def test_cli_usage_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_cli_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err


def _imported_modules(path: Path) -> set[str]:
    """Every module a Python file imports, at any depth (lazy imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_train_never_imports_bench() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(n for n in _imported_modules(path) if "bench" in n)
        for path in sorted((REPO / "train").rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_shared_metrics_sit_below_train_and_bench() -> None:
    imported = _imported_modules(REPO / "labral" / "metrics.py")
    assert not {n for n in imported if n.startswith("labral")}
    for consumer in ("train/calibration.py", "train/finalize.py", "bench/bootstrap.py"):
        assert any(n.startswith("labral.metrics") for n in _imported_modules(REPO / consumer))


def test_benchmarks_folder_is_not_packaged() -> None:
    # the speed and load scripts are developer tools beside the product, not inside it
    pyproject = (REPO / "pyproject.toml").read_text()
    assert "benchmarks" not in pyproject
    assert not (REPO / "benchmarks" / "__init__.py").exists()
    assert importlib.util.find_spec("labral.benchmarks") is None
    assert sorted(p.name for p in (REPO / "benchmarks").glob("*.py"))  # the scripts are there


def test_bench_holds_the_evaluator_not_scripts() -> None:
    # the evaluator's own entry points only: `python -m labral.bench.command` (what torchrun
    # starts) and the tools that turn a run into documents (Markdown, the report's PDF, the
    # failure-cases page); speed and load scripts live in benchmarks/
    entry_points = {"command.py", "markdown.py", "pdf.py", "failure_cases.py"}
    scripts = [
        path.name
        for path in sorted((REPO / "bench").glob("*.py"))
        if 'if __name__ == "__main__":' in path.read_text()
    ]
    assert set(scripts) <= entry_points, set(scripts) - entry_points
