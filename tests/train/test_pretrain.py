"""``labral pretrain``: the temporal contrastive objective, a manifest without labels, the
checkpoint a fine-tune starts from, resume, and a model it cannot pretrain."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from labral.datasets.manifests.manifest import load_manifest
from labral.datasets.synth.dataset import synthesize
from labral.datasets.synth.settings import SynthSettings
from labral.errors import BadManifestError
from labral.train.pretrain import contrastive_loss

#: The cleft recipe at its smallest (as configs/curve_preset/quick.yaml).
TINY = [
    "experiment=cleft",
    "transforms.eval.frames=8",
    "transforms.eval.size=[32,32]",
    "model.crop=16",
    "model.widths=[4,8,8]",
    "model.context_width=8",
    "model.temporal_width=16",
    "data.batch_size=4",
    "data.num_workers=0",
    "trainer.num_threads=1",
]


def _unit(rows: list[list[float]]) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def test_the_reversed_clip_is_a_negative_so_time_blind_embeddings_cost() -> None:
    views = _unit([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    # an embedding blind to the direction of time: each reversed clip equals its forward one
    blind = contrastive_loss(views, views, views, temperature=0.1)
    # one that maps each reversed clip far away
    aware = contrastive_loss(views, views, -views, temperature=0.1)
    assert blind > math.log(2) - 1e-3  # the twin and its own reversal tie: at best 50:50
    assert aware < 1e-3
    # without reversed negatives, the blind embedding is not penalised
    assert contrastive_loss(views, views, None, temperature=0.1) < 1e-3


def test_the_twin_must_be_picked_among_the_batch() -> None:
    first = _unit([[1, 0], [0, 1]])
    swapped = _unit([[0, 1], [1, 0]])  # each view's twin looks like the other clip
    assert contrastive_loss(first, swapped, None, 0.1) > contrastive_loss(first, first, None, 0.1)


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generated data set rewritten as a manifest with path and patient only."""
    out = tmp_path_factory.mktemp("ssl") / "data"
    settings = SynthSettings.from_config(
        {
            "out": str(out),
            "n_patients": 6,
            "preview": False,
            "progress": False,
            "workers": 1,
            "clip": {"frames": 16, "height": 48, "width": 48},
        }
    )
    synthesize(settings)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    path = out / "unlabelled.jsonl"
    lines = [json.dumps({"path": str(out / r["path"]), "patient": r["patient"]}) for r in rows]
    (out / "broken.dcm").write_bytes(b"not a DICOM file")  # one corrupt clip in the archive
    lines.append(json.dumps({"path": str(out / "broken.dcm"), "patient": "P-broken"}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_manifest_without_labels_is_read_only_when_asked(unlabelled: Path) -> None:
    rows = load_manifest(unlabelled, labelled=False)
    assert rows and all(row["label"] is None for row in rows)
    with pytest.raises(BadManifestError, match="missing required column"):
        load_manifest(unlabelled)


def _pretrain(manifest: Path, run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labral.cli", "pretrain", *TINY, f"data.manifest={manifest}"]
        + [f"hydra.run.dir={run_dir}", *overrides],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_pretrain_writes_weights_a_fine_tune_starts_from_and_resumes(
    unlabelled: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "ssl"
    first = _pretrain(unlabelled, run_dir, "trainer.max_epochs=1")
    assert first.returncode == 0, first.stderr[-3000:]
    one = json.loads((run_dir / "pretrain.json").read_text())
    assert one["clips"] == len(load_manifest(unlabelled, labelled=False)) - 1
    assert [s["path"] for s in one["skipped"]] == [str(unlabelled.parent / "broken.dcm")]
    assert (
        "skipped 1 of" in first.stdout + first.stderr
        and "broken.dcm" in first.stdout + first.stderr
    )
    assert [h["epoch"] for h in one["history"]] == [0]
    resumed = _pretrain(unlabelled, run_dir, "trainer.max_epochs=2", "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed after epoch 0" in resumed.stdout
    two = json.loads((run_dir / "pretrain.json").read_text())
    assert [h["epoch"] for h in two["history"]] == [0, 1]
    assert two["history"][0] == one["history"][0]  # epoch 0 was not trained again
    weights = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["model"]
    assert any(key.startswith("locator.") for key in weights)  # CleftNet's own state dict


def test_a_model_without_a_clip_embedding_is_refused(unlabelled: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "labral.cli", "pretrain", "debug=default", "model=compact"]
        + [f"data.manifest={unlabelled}", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert "gives no clip embedding" in done.stderr and "model=cleft" in done.stderr
