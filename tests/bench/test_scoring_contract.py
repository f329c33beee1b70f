"""One scoring contract: `labral bench` and the HTTP API give the same answer for a clip.

The same DICOM clips go through the bench command (its predictions.csv and spatial_maps.npz)
and through POST /v1/predictions (TestClient). The bundle has three eval windows, a
temperature and a threshold that are not 1 and 0.5, and a raw relevance that can be
negative, so a consumer that skipped a step of the chain (window mean, temperature, relevance
scaling) would disagree with the other, and with the chain computed by hand here.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from scipy.special import expit

from labral.bench.command import run
from labral.bundle import load_bundle
from labral.datasets.io.reader import read_cine
from labral.datasets.transforms.clip_transforms import build_eval_transform
from labral.demo_bundle import BrightnessScorer
from labral.serve.http.app import create_app
from labral.serve.settings import ServeSettings
from tests.helpers.bundles import toy_bundle

EVAL = {"frames": 8, "fps": 10.0, "size": [32, 32], "windows": 3}


def centre_contrast() -> BrightnessScorer:
    """logit = 60 * (peak - mean of the centre's per-frame contrast) - 1.5; relevance = contrast.

    The contrast (B, T) is the mean of rows and columns 8-23 minus the whole frame's mean.
    """
    return BrightnessScorer(
        "peak-mean", 60.0, reference=0.0, offset=1.5, window=(8, 24), baseline="frame"
    )


@pytest.fixture(scope="module")
def contract_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    metadata = {"model_name": "centre-contrast", "temperature": 1.7, "threshold": 0.4}
    folder = tmp_path_factory.mktemp("contract")
    return toy_bundle(folder, centre_contrast(), EVAL, model_version="test", **metadata)


def _hand_probability(bundle_dir: Path, clip_path: Path) -> float:
    module = load_bundle(bundle_dir).module  # the runtime bench and the service both use
    image = build_eval_transform(EVAL)({"clip": read_cine(clip_path)})["image"]
    with torch.inference_mode():
        logits = module(image)[0].double().numpy()
    return float(expit(logits.mean() / 1.7))


def test_bench_and_http_api_score_a_clip_the_same(
    contract_bundle, bench_assets, compose_bench, tmp_path
) -> None:
    manifest = bench_assets["manifest"]
    cfg = compose_bench(
        tmp_path,
        [f"bundle={contract_bundle}", f"suite={manifest}", "latency_clips=0", "+spatial_maps=true"],
    )
    run(cfg)
    out = tmp_path / "out"
    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    maps = np.load(out / "spatial_maps.npz")
    name = "centre-contrast"
    settings = ServeSettings(bundle=contract_bundle)
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 120
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "service never became ready"
            time.sleep(0.02)
        decisions = set()
        for i in (0, 1, 2, 3, 6, 9):  # positives and both kinds of negative
            row = rows[i]
            path = manifest.parent / row["path"]
            response = client.post(
                "/v1/predictions",
                params={"spatial": "true"},
                files={"file": (path.name, path.read_bytes())},
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert abs(body["probability"] - float(row[f"p_{name}"])) <= 1e-6
            assert abs(body["probability"] - _hand_probability(contract_bundle, path)) <= 1e-6
            assert body["decision"] == bool(int(row[f"decision_{name}"]))
            assert body["decision"] == (body["probability"] >= 0.4)
            decisions.add(body["decision"])
            bench_relevance = [float(v) for v in row[f"relevance_{name}"].split(";")]
            assert len(body["relevance"]) == len(bench_relevance) == 16
            np.testing.assert_allclose(body["relevance"], bench_relevance, atol=1.01e-4)
            assert min(body["relevance"]) == 0.0 and max(body["relevance"]) == 1.0
            assert len(body["spatial_maps"]) == len(body["peak_frames"]) > 0
            for spatial in body["spatial_maps"]:
                assert spatial["frame"] in body["peak_frames"] and spatial["size"] == [32, 32]
                bench_map = maps[f"model0_clip{i}_frame{spatial['frame']}"]
                np.testing.assert_allclose(spatial["values"], bench_map, atol=1.01e-4)
    assert decisions == {True, False}  # the clips exercise both sides of the threshold
