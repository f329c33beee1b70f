"""Subgroups: groups from the manifest's columns, CIs from the run's bootstrap, Cochran's Q."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from labral.bench import bootstrap as M
from labral.bench import markdown, subgroups
from labral.bench.report import subgroups as subgroups_report
from labral.metrics import ClusterBootstrap


def _suite(n_patients: int = 40, seed: int = 0) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """2 clips per patient, a side and a depth per clip; scores informative."""
    rng = np.random.default_rng(seed)
    records, y, p = [], [], []
    for patient in range(n_patients):
        for clip in range(2):
            label = int(rng.random() < 0.5)
            records.append(
                {
                    "patient": f"P{patient}",
                    "side": "left" if clip == 0 else "right",
                    "depth": float(rng.uniform(3, 6)),
                    "site": "A" if patient < 35 else "B",  # B: 10 clips, not estimable
                }
            )
            y.append(label)
            p.append(float(np.clip(0.3 * label + 0.7 * rng.random(), 0, 1)))
    return records, np.array(y), np.array(p)


def test_a_subgroup_ci_equals_the_bench_bootstrap_on_the_same_rows() -> None:
    records, y, p = _suite()
    plan = ClusterBootstrap([r["patient"] for r in records], 200, 7)
    block = subgroups.subgroups_block(records, y, p, 0.5, plan, ece_bins=10)
    left = block["columns"]["side"]["groups"]["left"]
    mask = np.array([r["side"] == "left" for r in records])
    functions = {k: M.metric_functions(10)[k] for k in ("auroc", "ece")}
    expected = M.metrics_with_ci(y, p, 0.5, plan, functions, mask)
    assert left["auroc"] == expected["auroc"] and left["ece"] == expected["ece"]
    assert left["n"] == 40 and left["estimable"]


def test_numeric_columns_fall_in_tertiles_and_small_groups_are_not_estimable() -> None:
    records, y, p = _suite()
    plan = ClusterBootstrap([r["patient"] for r in records], 50, 7)
    block = subgroups.subgroups_block(records, y, p, 0.5, plan, ece_bins=10)
    depth = block["columns"]["depth"]
    assert depth["rule"] == "tertile" and len(depth["groups"]) == 3
    assert sum(g["n"] for g in depth["groups"].values()) == 80
    site_b = block["columns"]["site"]["groups"]["B"]
    assert not site_b["estimable"] and "not estimable" in site_b["note"]
    assert block["columns"]["site"]["heterogeneity"]["q"] is None  # one estimable group
    assert "fps" not in block["columns"]  # a column no row carries
    results = {"models": [{"name": "m"}], "results": {"m": {"subgroups": block}}}
    text = "\n".join(subgroups_report.markdown_section(results, {}, markdown._row))
    assert "| m | site | B | 10 (" in text and "fewer than 2 estimable groups" in text
    assert "Subgroups" in "".join(subgroups_report.html_section(results))


def test_cochran_q_by_hand() -> None:
    values, ses = [0.8, 0.7, 0.9], [0.05, 0.05, 0.1]
    w = np.array([400.0, 400.0, 100.0])
    mean = (400 * 0.8 + 400 * 0.7 + 100 * 0.9) / 900
    q = float(np.sum(w * (np.array(values) - mean) ** 2))
    result = subgroups.cochran_q(values, ses)
    assert result["q"] == pytest.approx(q)
    assert result["p_value"] == pytest.approx(chi2.sf(q, 2))
    assert result["i2"] == pytest.approx(max(0.0, (q - 2) / q))
