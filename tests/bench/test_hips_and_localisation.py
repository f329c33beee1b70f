"""Hip-level results and the localisation nulls, pinned to independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from labral.bench import bootstrap as M
from labral.bench import evaluate, localisation
from labral.bench.suite_scoring import ModelScores


def _records(n_patients: int = 24, seed: int = 0) -> tuple[list[dict], np.ndarray]:
    rng = np.random.default_rng(seed)
    records, probs = [], []
    for p in range(n_patients):
        for side in ("R", "L"):
            hip_label = int(rng.integers(0, 2))
            for c in range(3):
                label = int(hip_label and rng.random() < 0.7)
                records.append(
                    {
                        "patient": f"P{p}",
                        "hip": f"P{p}_{side}",
                        "hip_label": hip_label,
                        "label": label,
                        "clip": c,
                    }
                )
                probs.append(float(np.clip(0.3 * label + 0.1 * hip_label + rng.random(), 0, 1)))
    return records, np.asarray(probs)


def test_hip_level_auroc_equals_sklearn_on_hand_aggregated_hips() -> None:
    records, p = _records()
    plan = M.ClusterBootstrap([r["patient"] for r in records], n=200, seed=0)
    out = evaluate.hip_level(records, p, 0.7, plan)
    by_hip: dict[str, list[float]] = {}
    truth: dict[str, int] = {}
    for r, prob in zip(records, p, strict=True):
        by_hip.setdefault(r["hip"], []).append(prob)
        truth[r["hip"]] = r["hip_label"]
    hips = sorted(by_hip)
    y = np.array([truth[h] for h in hips])
    top = np.array([max(by_hip[h]) for h in hips])
    mean = np.array([np.mean(by_hip[h]) for h in hips])
    assert out["n_hips"] == 48 and out["n_detached"] == int(y.sum())
    assert out["rules"]["max"]["auroc"]["value"] == pytest.approx(roc_auc_score(y, top))
    assert out["rules"]["mean"]["auroc"]["value"] == pytest.approx(roc_auc_score(y, mean))
    sens = np.mean(top[y == 1] >= 0.7)
    assert out["rules"]["max"]["sensitivity"]["value"] == pytest.approx(sens)
    block = out["rules"]["max"]["auroc"]
    assert block["ci_low"] <= block["value"] <= block["ci_high"]
    # no hip truth in the rows (a plain manifest): no hip-level block
    plain = [{k: v for k, v in r.items() if k not in ("hip", "hip_label")} for r in records]
    assert evaluate.hip_level(plain, p, 0.7, plan) is None


def test_velocity_null_is_scored_like_a_model_and_compared_pairwise() -> None:
    # 12 patients, one positive each; extrusion on frames 10-12; the loading velocity peaks
    # at frame 11 for the first 8 and at frame 2 for the last 4. The model's relevance
    # peaks at 11 for the first 6 only.
    records, relevance = [], []
    for p in range(12):
        velocity = np.zeros(20)
        velocity[11 if p < 8 else 2] = 1.0
        velocity[5] = -3.0  # negative velocity (unloading) never counts
        records.append(
            {
                "patient": f"P{p}",
                "label": 1,
                "extrusion_frames": [10, 11, 12],
                "loading_velocity": list(velocity),
            }
        )
        rel = np.zeros(20)
        rel[11 if p < 6 else 18] = 1.0
        relevance.append(rel)
    scores = ModelScores(np.zeros(12), np.full(12, 0.9), np.ones(12, bool), relevance)
    plan = M.ClusterBootstrap([r["patient"] for r in records], n=300, seed=1)
    out = localisation.temporal(records, scores, plan, tolerance=0, level=0.95)
    assert out["value"] == pytest.approx(6 / 12)
    assert out["chance"] == pytest.approx(3 / 20)
    assert out["velocity_null"]["value"] == pytest.approx(8 / 12)
    assert out["vs_velocity_null"]["value"] == pytest.approx(6 / 12 - 8 / 12)


def test_mask_at_model_size_follows_the_bundles_crop_and_resize() -> None:
    mask = np.zeros((100, 80), bool)
    mask[10:20, 40:60] = True
    spec = {"frames": 16, "fps": 10.0, "size": [50, 40], "windows": 1}
    small = localisation.mask_at_model_size(mask, spec)
    assert small.shape == (50, 40)
    rows, cols = np.nonzero(small)
    assert 4 <= rows.min() <= 5 and 9 <= rows.max() <= 10  # rows 10-19 / 2
    assert 19 <= cols.min() <= 20 and 29 <= cols.max() <= 30  # cols 40-59 / 2
    cropped = localisation.mask_at_model_size(mask, {**spec, "crop": [0.5, 0.0, 0.0, 0.0]})
    assert not cropped.any()  # the crop removes the top half, where the mask lies


def test_graded_suite_end_to_end_reports_every_new_block(
    bench_assets, compose_bench, tmp_path, monkeypatch
) -> None:
    from labral.bench import command
    from labral.datasets.io import reader

    decoded: list[str] = []
    read_cine = reader.read_cine

    def counting_read(path, *args, **kwargs):
        decoded.append(str(path))
        return read_cine(path, *args, **kwargs)

    monkeypatch.setattr(reader, "read_cine", counting_read)

    models = f"bundle=[{bench_assets['bundle']},{bench_assets['bundle_b']}]"
    cfg = compose_bench(
        tmp_path,
        [
            models,
            "suite=synthetic-graded",
            "suite_overrides.n_patients=3",
            f"cache_dir={tmp_path / 'cache'}",
            "generate_workers=1",
        ],
    )
    results = command.run(cfg)
    model = results["results"]["blob-detector"]
    levels = {"easy", "medium", "hard", "expert"}
    assert set(model["per_shift"]) == levels and results["suite"]["n_clips"] == 72
    assert set(model["per_shift"]["easy"]["hip_level"]["rules"]) == {"max", "mean"}
    # 3 patients per level: below the minimum, so the per-level CIs are not estimable
    assert model["per_shift"]["easy"]["auroc"]["ci_low"] is None
    n_pos = sum(
        1
        for r in command.resolve_suite(
            "synthetic-graded", tmp_path / "cache", {"n_patients": 3}, False
        ).records
        if r["label"]
    )
    for control in ("reversed", "shuffled", "motionless"):
        block = model["order_controls"][control]
        assert block["overall"]["n"] == n_pos and set(block["per_shift"]) <= levels
    loc = model["localisation"]
    assert loc["velocity_null"]["n"] == n_pos and loc["pointing_game"]["n"] == n_pos
    # per level: each level's positives, which together are the suite's
    per_level = [model["per_shift"][lv]["localisation"] for lv in sorted(levels)]
    assert sum(block["n"] for block in per_level) == loc["n"]
    hits = sum(block["value"] * block["n"] for block in per_level)
    assert hits == pytest.approx(loc["value"] * loc["n"])
    assert 0 < loc["pointing_game"]["chance"] < 0.1  # the cleft is a small part of the frame
    comparison = results["comparisons"][0]
    assert set(comparison["per_shift"]) == levels and "delong" in comparison
    html = (tmp_path / "out" / "report.html").read_text()
    for heading in (
        "Hip level",
        "Order controls",
        "velocity null",
        "pointing game",
        "Spatial maps on key frames",
        "DeLong",
    ):
        assert heading in html, heading
