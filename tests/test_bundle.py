"""The bundle format: write, load, verify integrity, calibrated predictions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from labral.bundle import BUNDLE_SCHEMA_VERSION, load_bundle, read_bundle_spec
from labral.demo_bundle import BrightnessScorer
from labral.errors import IncompatibleBundleError
from labral.runtimes import RUNTIME_FILES
from tests.helpers.bundles import toy_bundle

EVAL = {"frames": 4, "fps": 10.0, "size": [8, 8], "windows": 1}


def mean_scorer() -> BrightnessScorer:
    """logit = 10 * (the clip's mean intensity - 0.5); relevance = per-frame mean."""
    return BrightnessScorer("mean", scale=10.0, reference=0.5)


def _write(folder: Path, card: str = "# card\n", **metadata: object) -> Path:
    """The mean scorer's bundle: 4 frames of 8x8, temperature 2, threshold 0.5."""
    spec = {"model_name": "mean-test", "temperature": 2.0, "threshold": 0.5, **metadata}
    return toy_bundle(folder, mean_scorer(), EVAL, card, **spec)


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    return _write(tmp_path / "b")


def test_round_trip_and_calibration(bundle_dir: Path) -> None:
    bundle = load_bundle(bundle_dir)
    assert bundle.spec["schema_version"] == BUNDLE_SCHEMA_VERSION
    files = json.loads((bundle_dir / "metadata.json").read_text())["files"]
    assert set(files) == {"model.ts", "model.onnx"}  # write_bundle converts to ONNX itself
    # the identity names the file that scores: the default runtime's
    assert bundle.identity()["sha256"] == files[RUNTIME_FILES[bundle.runtime]]["sha256"]
    x = torch.zeros(2, 1, 4, 8, 8)
    x[0] += 0.7  # logit 2 -> calibrated sigmoid(2 / 2) = 0.731
    x[1] += 0.4  # logit -1 -> sigmoid(-0.5) = 0.378
    x[0, :, 2] = 0.9  # frame 2 of clip 0 is the brightest
    out = bundle.predict(x)
    expected_logit0 = 10 * ((0.7 * 3 + 0.9) / 4 - 0.5)
    assert out["logits"][0].item() == pytest.approx(expected_logit0, abs=1e-5)
    assert out["probability"][1].item() == pytest.approx(torch.sigmoid(torch.tensor(-0.5)).item())
    assert out["decision"].tolist() == [True, False]
    assert out["relevance"].shape == (2, 4)
    assert out["relevance"][0].argmax().item() == 2
    assert out["relevance"].max().item() == pytest.approx(1.0)
    assert (bundle_dir / "README.md").read_text() == "# card\n"


def test_tampered_model_is_refused(bundle_dir: Path) -> None:
    with open(bundle_dir / "model.ts", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(IncompatibleBundleError, match="SHA-256"):
        load_bundle(bundle_dir)


def test_other_schema_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IncompatibleBundleError, match="schema_version"):
        _write(tmp_path / "old", schema_version=99)


def test_missing_pieces_are_named(tmp_path: Path, bundle_dir: Path) -> None:
    with pytest.raises(IncompatibleBundleError, match="no model.ts"):
        load_bundle(tmp_path)
    meta = json.loads((bundle_dir / "metadata.json").read_text())
    del meta["threshold"]
    (bundle_dir / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(IncompatibleBundleError, match="threshold"):
        read_bundle_spec(bundle_dir)


def test_input_spec_follows_the_eval_transform() -> None:
    from labral.bundle import input_spec_from

    spec = input_spec_from({"frames": 12, "fps": 15, "size": (64, 80), "windows": 3})
    assert spec == {
        "frames": 12,
        "fps": 15.0,
        "size": [64, 80],
        "channels": 1,
        "dtype": "float32",
        "value_range": [0, 1],
    }


def test_the_schema_owns_the_class_names(tmp_path: Path, bundle_dir: Path) -> None:
    from labral.bundle import CLASS_NAMES, POSITIVE_LABEL

    assert CLASS_NAMES[POSITIVE_LABEL] == "detachment" and CLASS_NAMES[0] == "intact"
    bundle = load_bundle(bundle_dir)
    assert bundle.label_name(True) == "detachment" and bundle.label_name(False) == "intact"
    for names in (["detachment", "intact"], ["normal", "detachment"], "intact,detachment"):
        with pytest.raises(IncompatibleBundleError, match="class_names"):
            _write(tmp_path / "swapped", class_names=names)


def test_predict_decision_is_the_threshold_rule_on_its_probability(bundle_dir: Path) -> None:
    bundle = load_bundle(bundle_dir)
    x = torch.zeros(3, 1, 4, 8, 8)
    x[0] += 0.5  # logit 0 -> probability exactly 0.5 = threshold: decided positive
    x[1] += 0.49
    x[2] += 0.9
    out = bundle.predict(x)
    assert out["probability"].dtype == torch.float32
    assert out["probability"][0].item() == 0.5
    assert out["decision"].tolist() == [True, False, True]
    assert torch.equal(out["decision"], out["probability"] >= 0.5)
