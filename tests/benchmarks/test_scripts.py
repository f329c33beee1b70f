"""Every script in benchmarks/ runs at its smallest settings and prints sane figures.

The scripts are not a package: they are run as ``.venv/bin/python benchmarks/<name>.py``.
One test runs that command; the others load each file by path and call its ``main(argv)``
with ``--smoke``, so the process's imports are paid once.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("*.py"))


def load(name: str) -> ModuleType:
    """The script ``benchmarks/<name>.py`` as a module (not importable by name)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def figures(pattern: str, text: str) -> list[float]:
    """The numbers captured by ``pattern`` in ``text``; fails when the line is missing."""
    match = re.search(pattern, text)
    assert match, f"no line matching {pattern!r} in:\n{text}"
    return [float(g) for g in match.groups()]


def positive(*values: float) -> bool:
    return all(math.isfinite(v) and v > 0 for v in values)


@pytest.fixture(autouse=True)
def _restore_torch_state() -> Iterator[None]:
    """The scripts set torch's thread count and seed for themselves; undo it."""
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        yield
    torch.set_num_threads(threads)


def test_every_script_has_a_smoke_mode_and_a_main_guard() -> None:
    assert SCRIPTS == [
        "data_speed",
        "dicom_load",
        "gpu_train_speed",
        "inference_speed",
        "input_check_speed",
        "null_margin",
        "scoring_speed",
        "serve_load",
        "stream_latency",
        "synth_speed",
        "train_speed",
    ]
    for name in SCRIPTS:
        text = (BENCHMARKS / f"{name}.py").read_text()
        assert '"--smoke"' in text and 'if __name__ == "__main__":' in text, name
        assert f"benchmarks/{name}.py" in text, f"{name}: its docstring shows how to run it"
    readme = (BENCHMARKS / "README.md").read_text()
    assert all(f"benchmarks/{name}.py" in readme for name in SCRIPTS)


def test_synth_speed_runs_as_documented() -> None:
    # the one way to run a benchmark: the venv's python on the file, from the repo root
    result = subprocess.run(
        [sys.executable, "benchmarks/synth_speed.py", "--smoke"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    gen, gen_cpu, enc = figures(
        r"generate ([\d.]+) ms \(CPU ([\d.]+)\) \+ encode DICOM ([\d.]+) ms", out
    )
    wall, per_cpu, clips = figures(
        r"1 worker\s*: ([\d.]+) clips/s wall, ([\d.]+) clips per CPU-second \((\d+) clips", out
    )
    assert positive(gen, gen_cpu, enc, wall, per_cpu) and clips == 3
    for level in ("easy", "medium", "hard", "expert"):  # the split is printed per level
        assert re.search(rf"one process, +{level}: generate [\d.]+ ms", out), out
    assert re.search(r"target >= 20/core \(CPU time\): (met|NOT met)", out)
    assert "large run" not in out  # --smoke skips the 2,000-clip run


def test_data_speed_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    load("data_speed").main(["--smoke"])
    out = capsys.readouterr().out
    assert out.startswith("2 clips x 8 frames")
    for label in ("bare pydicom decode", "read_cine", "full eval path", "uncached epoch",
                  "disk-cached epoch", "memory-cached epoch"):  # fmt: skip
        seconds, clips_per_s, frames_per_s = figures(
            rf"{label}\s+([\d.]+) s\s+([\d.]+) clips/s\s+(\d+) frames/s", out
        )
        assert positive(clips_per_s, frames_per_s), label
        assert frames_per_s == pytest.approx(8 * clips_per_s, rel=0.01, abs=1)  # 8 frames/clip
    (ratio,) = figures(r"full path / bare decode rate: ([\d.]+)x \((?:meets|MISSES)", out)
    disk, memory = figures(r"speed-up: ([\d.]+)x from disk .*, ([\d.]+)x from memory", out)
    assert positive(ratio, disk, memory)


def test_inference_speed_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    rows = load("inference_speed").main(["--smoke"])
    out = capsys.readouterr().out
    assert [row["model"] for row in rows] == ["compact"]
    assert figures(r"batch 1 and 8, (\d+)x(\d+)x(\d+) clip", out) == [16, 96, 96]
    (gflops,) = figures(r"compact \(([\d.]+) GFLOPs per clip\)", out)
    assert positive(gflops)
    assert set(rows[0]["batches"]) == {"1", "8"}
    for batch in ("1", "8"):
        ratios = rows[0]["batches"][batch]["ratio_vs_torchscript"]
        assert set(ratios) == {"eager", "torchscript", "export", "onnxruntime"}
        for runtime in ratios:
            median, low, cpu, ratio = figures(
                rf"batch {batch} {runtime}\s+median\s+([\d.]+) ms/clip\s+min\s+([\d.]+) ms\s+"
                r"cpu\s+([\d.]+) ms\s+x([\d.]+) of torchscript",
                out,
            )
            assert positive(median, low, cpu) and low <= median, runtime
            assert ratio == pytest.approx(ratios[runtime], abs=0.006)
        assert ratios["torchscript"] == 1.0


def test_train_speed_smoke_with_the_data_pipeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    with (tmp_path / "manifest.jsonl").open("w") as handle:
        for i in range(4):
            np.save(tmp_path / f"c{i}.npy", rng.integers(0, 256, (24, 64, 64), dtype=np.uint8))
            row = {"path": f"c{i}.npy", "label": i % 2, "patient": f"P{i}", "split": "train"}
            handle.write(json.dumps(row) + "\n")
    rates = load("train_speed").main(["--smoke", "--manifest", str(tmp_path / "manifest.jsonl")])
    out = capsys.readouterr().out
    (compact,) = figures(r"compact\s+([\d.]+) clips/s\s+x1\.00 vs compact", out)
    pipeline, ratio = figures(
        r"labral's loop \+ data pipeline: ([\d.]+) clips/s\s+x([\d.]+) vs random tensors", out
    )
    assert positive(compact, pipeline)
    assert set(rates) == {"compact", "pipeline"}
    assert ratio == pytest.approx(rates["pipeline"] / rates["compact"], abs=0.006)


def test_scoring_speed_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    medians = load("scoring_speed").main(["--smoke", "--controls"])
    out = capsys.readouterr().out
    (suite,) = re.findall(r"suite: 6 clips \((.+)\), ready in", out)
    assert not Path(suite).resolve().is_relative_to(REPO)  # the smoke run writes nothing here
    bare_n, bare_1, pipe = figures(
        r"repeat 1: bare \(2 threads\) ([\d.]+) s, bare \(1 thread\) ([\d.]+) s, "
        r"pipeline ([\d.]+) s",
        out,
    )
    assert positive(bare_n, bare_1, pipe)
    (ratio,) = figures(r"ratio pipeline / faster bare: per repeat [\d.]+; median ([\d.]+)", out)
    expected = medians["pipeline"] / min(medians["bare_n"], medians["bare_1"])
    assert ratio == pytest.approx(expected, abs=0.0006) and medians["ratio"] == expected
    n_pos, controls_s, with_controls = figures(
        r"order controls: (\d+) positives x 3 controls, median ([\d.]+) s; .* median ([\d.]+) "
        r"\(target <= 2.5\)",
        out,
    )
    assert n_pos >= 1 and controls_s > 0
    assert with_controls == pytest.approx(1 + medians["controls"] / medians["pipeline"], abs=6e-4)


def test_input_check_speed_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    medians = load("input_check_speed").main(["--smoke"])
    out = capsys.readouterr().out
    without, with_check, alone, ratio = figures(
        r"without the check +([\d.]+) ms/clip\n.*with the check +([\d.]+) ms/clip\n"
        r".*check alone +([\d.]+) ms/clip\n.*with / without +([\d.]+)",
        out.replace("\n  ", "\n"),
    )
    assert positive(without, with_check, alone)
    # the printed ratio is the median of the repeats' own with / without ratios
    assert len(medians["ratios"]) == 2
    assert ratio == pytest.approx(statistics.median(medians["ratios"]), abs=6e-4)


def test_null_margin_smoke_pairs_the_model_with_the_strongest_null(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (row,) = load("null_margin").main(["--smoke"])
    for family in ("oracle", "pixels"):
        strongest = row[f"strongest_{family}"]
        family_nulls = [n for n, _, _, f in load("null_margin").NULLS if f == family]
        assert row["null_auroc"][strongest] == max(row["null_auroc"][n] for n in family_nulls)
        margin = row[f"margin_{family}"]["value"]
        assert margin == pytest.approx(row["model_auroc"] - row["null_auroc"][strongest])
    out = capsys.readouterr().out
    assert re.search(r"hard +\d+ +[\d.]+ +direction\w* +[\d.]+ +[+-][\d.]+ ", out)


def test_serve_load_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    result = load("serve_load").main(["--smoke"])
    out = capsys.readouterr().out
    decode, prep, model, total = figures(
        r"bare call \(median of 2\): decode ([\d.]+) ms \+ preprocess ([\d.]+) ms \+ "
        r"model ([\d.]+) ms = ([\d.]+) ms",
        out,
    )
    assert positive(decode, total) and total == pytest.approx(decode + prep + model, abs=0.2)
    p50, p95, ratio = figures(
        r"one client: p50 ([\d.]+) ms, p95 ([\d.]+) ms; p50 / bare = ([\d.]+)", out
    )
    assert positive(p50, p95, ratio) and p50 <= p95
    rows = re.findall(r"^\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)$", out, re.M)
    assert [int(r[0]) for r in rows] == [1, 4, 8]
    assert all(positive(*map(float, r[1:4])) and r[4] == "0" for r in rows)  # no errors
    assert re.search(r"long run: 8 requests, 0 errors, .* healthy True", out)
    assert result["long_run"]["errors"] == 0 and result["long_run"]["healthy_after"]


@pytest.mark.slow  # starts labral serve with its DICOM node (about 15 s on 2 cores)
def test_dicom_load_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    result = load("dicom_load").main(["--smoke"])
    out = capsys.readouterr().out
    assert re.search(
        r"6 instances over 2 associations: 0 failures, 6 result rows, 6 SRs at the PACS", out
    ), out
    ack50, ack95 = figures(r"acknowledgement p50 ([\d.]+) ms, p95 ([\d.]+) ms", out)
    res50, res95, end50, end95, rate = figures(
        r"acknowledgement -> result row p50 ([\d.]+) ms, p95 ([\d.]+) ms; send -> result row "
        r"p50 ([\d.]+) ms, p95 ([\d.]+) ms; ([\d.]+) instances/s",
        out,
    )
    http50, http95, ratio, end_ratio = figures(
        r"HTTP /v1/predictions \(2 clients\) p50 ([\d.]+) ms, p95 ([\d.]+) ms; result p50 / "
        r"HTTP p50 = ([\d.]+) \((?:meets|MISSES) <= 1.5\); send -> result p50 / HTTP p50 = "
        r"([\d.]+)",
        out,
    )
    assert positive(ack50, ack95, res50, res95, end50, end95, rate, http50, http95, ratio)
    assert ack50 <= ack95 and res50 <= res95 and end50 <= end95 and http50 <= http95
    assert res50 < end50 and ratio < end_ratio  # the end-to-end figure includes the ack
    first, last = figures(r"VmRSS ([\d.]+) MiB after the first 50 results, ([\d.]+) MiB", out)
    assert positive(first, last) and result["instances"] == 6 and result["srs"] == 6


def test_gpu_train_speed_smoke_reports_both_paths_and_ratio(
    capsys: pytest.CaptureFixture[str],
) -> None:
    results = load("gpu_train_speed").main(["--smoke", "--model", "compact", "--variants", "cl3d"])
    out = capsys.readouterr().out
    assert set(results) == {"cl3d"}
    figures_ = results["cl3d"]
    assert positive(figures_["bare"], figures_["labral"])
    assert figures_["ratio"] == figures_["labral"] / figures_["bare"]
    bare, ours, ratio = figures(
        r"cl3d\s+bare\s+([\d.]+) clips/s\s+labral loop\+data\s+([\d.]+) clips/s\s+ratio ([\d.]+)",
        out,
    )
    assert positive(bare, ours) and ratio == pytest.approx(figures_["ratio"], abs=0.006)
    assert "fastest variant through labral's loop: cl3d" in out
