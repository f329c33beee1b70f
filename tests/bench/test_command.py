"""End to end: `labral bench` on a small .dcm manifest suite with hand-made bundles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from labral.bench import command
from labral.bench import suite_scoring as scoring
from labral.bench.gate import GateFailedError
from labral.bench.results import RESULTS_SCHEMA_VERSION
from labral.bundle import SPEC_EXTRA_FILE
from labral.errors import BadConfigError, BadManifestError, IncompatibleBundleError
from labral.metrics import DEFAULT_ECE_BINS
from tests.helpers.bundles import blob_scorer

VOLATILE = ("speed", "hardware", "created_unix", "pass_seconds")


def _stable(results: dict) -> dict:
    return {
        k: v for k, v in json.loads(json.dumps(results, default=float)).items() if k not in VOLATILE
    }


def test_two_models_outputs_and_identical_rerun(
    bench_assets, compose_bench, tmp_path: Path
) -> None:
    models = f"bundle=[{bench_assets['bundle']},{bench_assets['bundle_b']}]"
    cfg = compose_bench(tmp_path / "a", [models, f"suite={bench_assets['manifest']}"])
    first = command.run(cfg)
    out = Path(cfg.out)
    saved = json.loads((out / "results.json").read_text())
    assert saved["schema_version"] == RESULTS_SCHEMA_VERSION
    assert saved["settings"]["ece_bins"] == DEFAULT_ECE_BINS  # ece_bins: null = the shared default
    assert len(saved["suite"]["content_hash"]) == 64
    assert [m["name"] for m in saved["models"]] == ["blob-detector", "blunt"]
    assert all(len(m["sha256"]) == 64 for m in saved["models"])
    overall = saved["results"]["blob-detector"]["overall"]
    for block in overall.values():
        if block["value"] == block["value"]:  # not NaN
            assert block["ci_low"] - 1e-9 <= block["value"] <= block["ci_high"] + 1e-9
    assert overall["auroc"]["value"] > 0.8  # the blob separates the classes
    per_type = saved["results"]["blob-detector"]["per_type"]
    assert set(per_type) == {"normal", "sulcus"}
    assert per_type["normal"]["n"] + per_type["sulcus"]["n"] == 12
    loc = saved["results"]["blob-detector"]["localisation"]
    assert loc["n"] == 12 and loc["value"] > 0.7 and loc["tolerance_frames"] == 1
    assert loc["chance"] == pytest.approx(6 / 16)  # frames 5-10 of 16 are within 1 of 6-9
    comp = saved["comparisons"][0]
    assert (comp["a"], comp["b"]) == ("blob-detector", "blunt")
    assert saved["speed"]["blunt"]["clips_per_s"] > 0
    assert saved["hardware"]["torch_threads"] >= 1 and saved["hardware"]["cpu_model"]
    assert (out / "report.html").stat().st_size > 10_000
    assert len((out / "predictions.csv").read_text().splitlines()) == 25

    cfg2 = compose_bench(tmp_path / "b", [models, f"suite={bench_assets['manifest']}", "workers=2"])
    assert _stable(command.run(cfg2)) == _stable(first)


def test_gate_fails_and_passes(bench_assets, compose_bench, tmp_path: Path) -> None:
    base = [f"bundle={bench_assets['bundle']}", f"suite={bench_assets['manifest']}"]
    with pytest.raises(GateFailedError) as failed:
        command.run(
            compose_bench(tmp_path / "f", [*base, "fail_under.auroc=0.999", "fail_under.ece=0.0"])
        )
    assert "auroc" in failed.value.message and "ece" in failed.value.message
    assert (tmp_path / "f" / "out" / "results.json").is_file()  # written before the gate
    results = command.run(compose_bench(tmp_path / "p", [*base, "fail_under.auroc=0.5"]))
    assert results["gate"]["passed"] and results["gate"]["thresholds"] == {"auroc": 0.5}
    with pytest.raises(BadConfigError, match="fail_under.accuracy"):
        command.run(compose_bench(tmp_path / "u", [*base, "+fail_under.accuracy=0.5"]))


@pytest.fixture
def no_scoring(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("scoring started despite bad input")

    monkeypatch.setattr(scoring, "score_pass", refuse)


def test_missing_files_all_listed(bench_assets, compose_bench, tmp_path: Path, no_scoring) -> None:
    suite = tmp_path / "suite"
    shutil.copytree(bench_assets["manifest"].parent, suite)
    (suite / "clips" / "p0_c0.dcm").unlink()
    (suite / "clips" / "p3_c1.dcm").unlink()
    cfg = compose_bench(
        tmp_path, [f"bundle={bench_assets['bundle']}", f"suite={suite / 'manifest.jsonl'}"]
    )
    with pytest.raises(BadManifestError) as error:
        command.run(cfg)
    assert "2 of 24" in error.value.message
    assert "p0_c0.dcm" in error.value.message and "p3_c1.dcm" in error.value.message


@pytest.mark.parametrize(
    "override",
    ["latency_clips=-1", "latency_clips=abc", "bootstrap.level=1.5", "threads=0", "threads=abc"],
)
def test_bad_setting_refused_before_scoring(
    bench_assets, compose_bench, tmp_path: Path, no_scoring, override: str
) -> None:
    base = [f"bundle={bench_assets['bundle']}", f"suite={bench_assets['manifest']}"]
    with pytest.raises(BadConfigError, match=override.split("=")[0]):
        command.run(compose_bench(tmp_path, [*base, override]))


def test_incompatible_bundle(bench_assets, compose_bench, tmp_path: Path, no_scoring) -> None:
    folder = tmp_path / "old_bundle"
    folder.mkdir()
    spec = json.loads((bench_assets["bundle"] / "metadata.json").read_text())
    spec["schema_version"] = 0
    torch.jit.save(
        torch.jit.script(blob_scorer(1.0, 0.0)),
        str(folder / "model.ts"),
        _extra_files={SPEC_EXTRA_FILE: json.dumps(spec)},
    )
    cfg = compose_bench(tmp_path, [f"bundle={folder}", f"suite={bench_assets['manifest']}"])
    with pytest.raises(IncompatibleBundleError, match="schema_version"):
        command.run(cfg)


def test_unknown_suite_lists_known(bench_assets, compose_bench, tmp_path: Path, no_scoring) -> None:
    cfg = compose_bench(tmp_path, [f"bundle={bench_assets['bundle']}", "suite=synthetic-idd"])
    with pytest.raises(BadConfigError) as error:
        command.run(cfg)
    for name in ("synthetic-id", "synthetic-shift", "robustness"):
        assert name in error.value.message
