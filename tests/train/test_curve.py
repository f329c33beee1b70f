"""The learning curve (``labral curve``): hip draws, epochs, and the quick preset end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from labral.errors import BadConfigError
from labral.train.curve import by_hip, choose_hips, epochs_for
from labral.train.curve_resume import earlier_results
from labral.train.settings import CurveEpochs


def _pool(n_hips: int) -> list[dict]:
    return [
        {"path": f"h{h}_{c}.dcm", "patient": f"P{h}", "hip": f"P{h}_R", "label": h % 2}
        | {"hip_label": h % 2}
        for h in range(n_hips)
        for c in range(2)
    ]


def test_hips_are_drawn_balanced_nested_and_split_by_hip():
    pool = _pool(40)
    small, large = choose_hips(pool, 10, seed=1, val_fraction=0.2), choose_hips(pool, 20, 1, 0.2)
    for rows, n in ((small, 10), (large, 20)):
        hips = by_hip(rows)
        assert len(hips) == n
        assert sum(r[0]["label"] for r in hips.values()) == n // 2
        assert all(len({r["split"] for r in clips}) == 1 for clips in hips.values())
        val = [clips[0] for clips in hips.values() if clips[0]["split"] == "val"]
        assert sorted(r["label"] for r in val) == [0] * round(0.2 * n / 2) + [1] * round(
            0.2 * n / 2
        )
    assert set(by_hip(small)) <= set(by_hip(large))  # nested for one seed
    assert set(by_hip(small)) != set(by_hip(choose_hips(pool, 10, seed=2, val_fraction=0.2)))
    with pytest.raises(BadConfigError, match="hips=60: the target pool has 20 hips of class 1"):
        choose_hips(pool, 60, seed=0, val_fraction=0.2)


def test_epochs_follow_the_clip_budget_within_bounds():
    spec = CurveEpochs(min=6, max=30, min_clips=480)
    assert [epochs_for(n, spec) for n in (10, 40, 80, 300)] == [30, 12, 6, 6]


def _quick_curve(out, tmp_path, run_name: str) -> subprocess.CompletedProcess:
    """``labral curve curve_preset=quick out=<out>``, which must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", "labral.cli", "curve", "curve_preset=quick", f"out={out}"]
        + [f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path / run_name}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_quick_preset_end_to_end(tmp_path):
    out = tmp_path / "curve"
    done = _quick_curve(out, tmp_path, "hydra")
    result = json.loads((out / "curve.json").read_text())
    points = result["points"]
    arms = ("scratch", "synthetic", "ssl")
    assert {(p["arm"], p["hips"], p["seed"]) for p in points} == {
        (arm, hips, seed) for arm in arms for hips in (4, 8) for seed in (0, 1)
    }
    for arm, cells in result["summary"].items():
        for hips, cell in cells.items():
            values = [p["auroc"] for p in points if p["arm"] == arm and str(p["hips"]) == hips]
            assert cell["mean"] == pytest.approx(np.mean(values))
            assert cell["sd"] == pytest.approx(np.std(values, ddof=1))
    assert result["goal"] is None  # the quick sizes have no 40 / 160 hips
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "curve.html").read_text()
    assert "data:image/png;base64," in report and "<table>" in report
    for arm in arms:
        cell = result["summary"][arm]["8"]
        assert f"{cell['mean']:.3f} ± {cell['sd']:.3f}" in report  # the table shows the summary
    for folder in ("pretrain", "ssl"):  # each pretrained arm's 4 runs start from its weights
        pretrained = out / folder / "checkpoints" / "best.pt"
        assert done.stdout.count(f"from {pretrained} (labral checkpoint)") == 4
    # the self-supervised run read a manifest without labels, of other target patients
    unlabelled = [json.loads(x) for x in (out / "data/target_unlabelled/unlabelled.jsonl").open()]
    assert unlabelled and all(set(row) == {"path", "patient"} for row in unlabelled)
    assert result["ssl_pretrain"]["clips"] == len(unlabelled)
    # a second call finds every point done: nothing trains again, the figures are the same
    again = _quick_curve(out, tmp_path, "hydra2")
    assert "epoch 0" not in again.stdout
    assert json.loads((out / "curve.json").read_text())["summary"] == result["summary"]
    # the target domain carries the shift, the source does not; test hips are their own
    rows = {
        name: [json.loads(x) for x in (out / "data" / name / "manifest.jsonl").open()]
        for name in ("source", "target", "target_test")
    }
    assert {r["params"]["overrides"].get("center_freq_mhz") for r in rows["target"]} == {5.0}
    assert all(r["params"]["overrides"] == {} for r in rows["source"])
    # each domain at its own generator level (configs/curve.yaml: easy source, medium target)
    assert {r["params"]["difficulty"]["level"] for r in rows["source"]} == {"easy"}
    levels = {r["params"]["difficulty"]["level"] for r in rows["target"] + rows["target_test"]}
    assert levels == {"medium"}
    anatomy = {n: {json.dumps(r["params"]["anatomy"]) for r in rows[n]} for n in rows}
    assert not anatomy["target"] & anatomy["target_test"]  # other patients, not a copy
    for seed in (0, 1):
        assert (out / "runs" / f"synthetic_h8_s{seed}" / "calibration.json").is_file()


def test_an_earlier_curve_is_reused_only_where_its_settings_still_hold(tmp_path):
    settings = {
        "train": ["experiment=cleft"],
        "epochs": {"min": 6, "max": 40, "min_clips": 3000},
        "source": {"n_patients": 220},
        "target": {"difficulty": "medium", "auxiliary": True},
        "clip": {"frames": 32},
        "pretrain_epochs": 8,
        "ssl": {"patients": 300, "epochs": 8},
        "arms": {"synthetic": []},
    }
    points = [{"arm": arm, "hips": 20, "seed": 0, "auroc": 0.7} for arm in ("scratch", "ssl")]
    earlier = {"settings": settings, "points": points, "pretrain": {}, "ssl_pretrain": {}}
    (tmp_path / "curve.json").write_text(json.dumps(earlier))

    def kept(**changes):
        return earlier_results(tmp_path / "curve.json", {**settings, **changes})

    assert set(kept()["points"]) == {("scratch", 20, 0), ("ssl", 20, 0)}
    assert "pretrain" in kept() and "ssl_pretrain" in kept()
    more_epochs = kept(epochs={"min": 6, "max": 40, "min_clips": 5000})
    assert more_epochs["points"] == {}  # every point trained differently
    assert "pretrain" in more_epochs  # the pretraining runs do not depend on it
    other_ssl = kept(ssl={"patients": 100, "epochs": 8})
    assert set(other_ssl["points"]) == {("scratch", 20, 0)} and "ssl_pretrain" not in other_ssl
    assert kept(train=["experiment=cleft", "seed=3"]) == {"points": {}}
    # labelled target runs without generator targets: every point again, no pretraining again
    real_like = kept(target={"difficulty": "medium", "auxiliary": False})
    assert real_like["points"] == {} and {"pretrain", "ssl_pretrain"} <= set(real_like)
