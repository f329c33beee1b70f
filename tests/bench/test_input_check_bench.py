"""``labral bench`` reports the input check: a toy bundle with a real rule check beside one
without a check, on a manifest of valid clips and wrong inputs written as DICOM cines.

Valid clips are :func:`labral.demo_bundle.demo_frames` (scored by :func:`rule_check`); wrong
inputs are blank clips (refused for ``image_quality``) and still clips (one frame repeated:
``image_quality`` and ``no_manoeuvre``). results.json's ``input_check``, predictions.csv's
status and reasons, report.html, the Markdown tables and the demo's summary all show it.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from labral.bench import command
from labral.bench.markdown import tables
from labral.datasets.synth.dicom_writer import write_cine_dicom
from labral.datasets.synth.types import SynthClip
from labral.demo_bundle import demo_frames
from tests.helpers.bundles import toy_bundle
from tests.helpers.input_check import blank_frames, rule_check, still_frames

REPO = Path(__file__).resolve().parents[2]
#: wrong-input kind -> (family, held out, clips)
WRONG = {"blank": ("image_fault", False, 4), "still": ("no_manoeuvre", True, 3)}
N_VALID = 12


def _write(folder: Path, name: str, frames: np.ndarray, label: int, row: dict) -> dict[str, Any]:
    """One clip as an uncompressed DICOM cine at 10 frames/s and its manifest row."""
    clip = SynthClip(
        frames=frames,
        label=label,
        clip_type="positive" if label else "normal",
        fps=10.0,
        spacing_mm=(0.3, 0.3),
        extrusion_mask=np.zeros(frames.shape, bool),
        extrusion_frames=[],
    )
    patient = f"P-{name}"
    write_cine_dicom(
        clip,
        folder / f"{name}.dcm",
        syntax="explicit",
        burned_in_text=False,
        patient={"patient": patient, "clip": 0},
    )
    return {"path": f"{name}.dcm", "label": label, "patient": patient, **row}


def make_manifest(folder: Path) -> Path:
    """12 valid clips (easy and hard, half bright = label 1) and the :data:`WRONG` inputs."""
    folder.mkdir(parents=True)
    rows = [
        _write(
            folder,
            f"valid{i}",
            demo_frames(20 + i, bright=i % 2 == 0),
            int(i % 2 == 0),
            {"shift": "easy" if i < N_VALID // 2 else "hard"},
        )
        for i in range(N_VALID)
    ]
    for kind, (family, held_out, count) in WRONG.items():
        for i in range(count):
            frames = blank_frames() if kind == "blank" else still_frames(demo_frames(24 + i))
            extra = {"shift": kind, "wrong_input": kind, "wrong_family": family}
            rows.append(_write(folder, f"{kind}{i}", frames, 0, extra | {"held_out": held_out}))
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


@pytest.fixture(scope="module")
def checked_run(compose_bench, tmp_path_factory) -> tuple[dict[str, Any], Path]:
    """One run of a bundle with a rule check beside the same model without one."""
    root = tmp_path_factory.mktemp("input_check")
    checked = toy_bundle(root / "checked", input_check=rule_check(), model_name="checked")
    unchecked = toy_bundle(root / "unchecked", model_name="unchecked")
    manifest = make_manifest(root / "suite")
    cfg = compose_bench(root, [f"bundle=[{checked},{unchecked}]", f"suite={manifest}"])
    return command.run(cfg), root / "out"


def test_results_json_reports_refusals_per_kind_and_level(checked_run) -> None:
    results, out = checked_run
    block = json.loads((out / "results.json").read_text())["results"]["checked"]["input_check"]
    assert block == json.loads(json.dumps(results["results"]["checked"]["input_check"]))
    assert block["checked"] and block["note"] is None
    assert (block["n_clips"], block["n_wrong_input"], block["n_valid"]) == (19, 7, 12)
    blank, still = block["wrong_input"]["blank"], block["wrong_input"]["still"]
    assert blank["refusal_rate"]["value"] == 1.0 and blank["main_reason"] == "image_quality"
    assert (blank["family"], blank["held_out"], blank["n"]) == ("image_fault", False, 4)
    assert still["refusal_rate"]["value"] == 1.0 and still["held_out"] is True
    assert still["reasons"]["no_manoeuvre"] == 1.0
    for level in ("easy", "hard"):
        part = block["valid"][level]
        assert part["n"] == 6 and part["false_refusal_rate"]["value"] == 0.0
        assert part["passing_clips"]["auroc"]["value"] == part["all_clips"]["auroc"]["value"]
    # every score was computed on every clip: the image-quality score separates perfectly
    quality = block["scores"]["image_quality"]
    assert quality["all"]["auroc"]["value"] == 1.0 and quality["all"]["fpr_at_95_tpr"] == 0.0
    assert quality["held_out"]["n_wrong"] == 3 and quality["all"]["n_valid"] == 12


def test_a_bundle_without_a_check_says_so(checked_run) -> None:
    results, out = checked_run
    block = results["results"]["unchecked"]["input_check"]
    assert not block["checked"] and "no input check" in block["note"]
    assert block["n_refused"] == 0 and block["wrong_input"]["blank"]["refusal_rate"]["value"] == 0
    assert block["scores"] == {} and block["scores_note"].startswith("not estimable")
    html = (out / "report.html").read_text()
    assert "this bundle has no input check" in html


def test_predictions_csv_carries_status_and_reasons(checked_run) -> None:
    _, out = checked_run
    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 19
    for row in rows:
        if row["wrong_input"] == "still":
            assert row["status_checked"] == "not_assessable"
            assert set(row["reasons_checked"].split(";")) == {"image_quality", "no_manoeuvre"}
        elif row["wrong_input"] == "blank":  # blank: no image, and so no movement either
            assert row["status_checked"] == "not_assessable"
            assert row["reasons_checked"].split(";")[0] == "image_quality"
        else:
            assert (row["status_checked"], row["reasons_checked"]) == ("scored", "")
        assert (row["status_unchecked"], row["reasons_unchecked"]) == ("scored", "")
        assert row["decision_checked"] in ("0", "1")  # the model's decision on every clip


def test_report_markdown_and_terminal_show_the_section(checked_run, capsys) -> None:
    results, out = checked_run
    html = (out / "report.html").read_text()
    assert "<h2>Input check</h2>" in html and "false-refusal rate [95% CI]" in html
    assert "<td>blank</td><td>image_fault</td><td>no</td><td>4</td>" in html
    text = tables(results)
    assert "Input check of checked, wrong inputs (refusal rate):" in text
    assert "| still | no_manoeuvre | yes | 3 | 1.000 [CI not estimable] | image_quality |" in text
    command.print_summary(results, out)
    printed = capsys.readouterr().out
    assert "input check of checked: wrong inputs" in printed
    assert "input check of unchecked: this bundle has no input check" in printed


def _demo_summary() -> ModuleType:
    """``scripts/demo_summary.py`` as a module (scripts are not a package)."""
    spec = importlib.util.spec_from_file_location("demo_summary", REPO / "scripts/demo_summary.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_summary_prints_the_wrong_input_table(checked_run, tmp_path, capsys) -> None:
    _, out = checked_run
    summary = _demo_summary()
    for folder in (summary.GRADED, summary.WRONG_INPUT):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "results.json").write_text((out / "results.json").read_text())
    (tmp_path / "bundles" / "cleft").mkdir(parents=True)
    (tmp_path / "bundles" / "cleft" / "metadata.json").write_text('{"model_name": "checked"}')
    summary.main(tmp_path, 61)
    lines = capsys.readouterr().out.splitlines()
    title = lines.index("cleft: input check on synthetic-wrong-input (should refuse >= 95%)")
    assert lines[title + 1].split()[:3] == ["kind", "family", "held"]
    assert lines[title + 2].split() == [
        "blank", "image_fault", "no", "4", "1.000", "[CI", "not", "estimable]", "image_quality"
    ]  # fmt: skip
    assert lines[title + 3].split()[:4] == ["still", "no_manoeuvre", "yes", "3"]
    graded = lines.index(
        "cleft: input check on synthetic-graded (valid clips: should refuse <= 2%)"
    )
    assert lines[graded + 2].split()[:3] == ["easy", "6", "0.000"]


def test_a_suite_of_wrong_inputs_only_runs_and_says_what_it_cannot_estimate(
    checked_run, compose_bench, tmp_path
) -> None:
    """synthetic-wrong-input holds label-0 wrong inputs only: no valid clips, no positives."""
    _, out = checked_run
    suite = out.parent / "suite"
    rows = [json.loads(line) for line in (suite / "manifest.jsonl").read_text().splitlines()]
    manifest = suite / "wrong_only.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows if r.get("wrong_input")))
    bundle = out.parent / "checked"
    results = command.run(compose_bench(tmp_path, [f"bundle={bundle}", f"suite={manifest}"]))
    block = results["results"]["checked"]["input_check"]
    assert block["valid"] == {} and block["valid_overall"] is None
    assert block["wrong_input"]["blank"]["refusal_rate"]["value"] == 1.0
    assert block["scores_note"] == (
        "not estimable: the suite has no valid clips (a score's AUROC needs both)"
    )
    assert "<h4>Wrong inputs</h4>" in (tmp_path / "out" / "report.html").read_text()
