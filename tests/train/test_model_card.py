"""The bundle's model card is written under the TRIPOD+AI / CLAIM topics and marks what the
export cannot fill."""

from __future__ import annotations

import re

from labral.reporting_topics import NOT_FILLED, TOPICS
from labral.train.model_card import model_card, reporting_items


def _spec(**changes: object) -> dict:
    spec = {
        "model_name": "labral-compact",
        "model_version": "0.1+epoch3",
        "class_names": ["intact", "detachment"],
        "input_spec": {"frames": 8, "fps": 10.0, "size": [32, 32]},
        "eval_transform": {"frames": 8},
        "temperature": 1.7,
        "threshold": 0.42,
        "threshold_rule": "sensitivity >= 0.90 on validation",
        "val_metrics": {"auroc": 0.97, "brier": 0.05, "n": 40, "n_positive": 18},
        "data_fingerprint": "abc123",
        "split_patients": {"splits": {"train": ["h1", "h2", "h3"], "val": ["h4"]}},
        "code_version": "deadbeef",
        "labral_version": "0.2.0",
        "config": {"data": {"manifest": "data/synth/manifest.jsonl"}},
    }
    return {**spec, **changes}


def test_card_follows_the_topics_in_order_and_fills_from_the_spec() -> None:
    card = model_card(_spec(), {"torchscript": 1e-6}, "CompactVideoNet 12k params", "check")
    headings = re.findall(r"^### (.+)$", card, flags=re.MULTILINE)
    assert headings == [title for _, title in TOPICS]
    items = dict(reporting_items(_spec(), "CompactVideoNet 12k params"))
    assert "0.42" in items["model, version and operating threshold"]
    assert "sensitivity >= 0.90" in items["model, version and operating threshold"]
    assert "train 3 patients; val 1 patients" in items["sample size (clips, patients, hips)"]
    assert "40 clips (18 positive)" in items["sample size (clips, patients, hips)"]
    assert "abc123" in items["data source and provenance"]
    assert "0.97" in items["discrimination with CIs (AUROC)"]
    assert "1.7" in items["calibration (ECE, Brier, reliability)"]
    assert "not a diagnosis" in items["intended use and clinical setting"]
    assert "Research only" in card and "check" in card.split("## Input check")[1]


def test_card_marks_every_topic_it_cannot_fill_with_a_reason() -> None:
    items = dict(reporting_items(_spec(split_patients={"unavailable": "manifest moved"}), "net"))
    unfilled = {topic for topic, text in items.items() if text.startswith(NOT_FILLED)}
    assert unfilled == {
        "participants and eligibility criteria",
        "data splits and overlap with training",
        "missing data",
        "subgroups and fairness",
        "clinical utility",
        "sample-size justification",
        "ethics approval, consent and registration",
    }
    assert items["data splits and overlap with training"] == NOT_FILLED + "manifest moved"
    assert all(len(items[t]) > len(NOT_FILLED) + 10 for t in unfilled)  # each says why
    bare = dict(reporting_items(_spec(val_metrics={}, split_patients={}), "net"))
    assert bare["discrimination with CIs (AUROC)"].startswith(NOT_FILLED)
    assert bare["sample size (clips, patients, hips)"].startswith(NOT_FILLED)
