"""The auxiliary targets the generator gives for free: what they hold, how a run turns them on,
and that each one changes what CleftNet learns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from labral.datasets.io.reader import read_cine
from labral.datasets.synth.dataset import synthesize
from labral.datasets.synth.settings import SynthSettings
from labral.datasets.transforms.clip_ops import resize_frames
from labral.errors import BadConfigError
from labral.models.cleft_net import CleftNet
from labral.models.compact import CompactVideoNet
from labral.train.auxiliary import (
    DEFAULT_WEIGHTS,
    SCENARIOS,
    _attention_loss,
    auxiliary_losses,
    clip_targets,
    record_params,
    resolve_weights,
    weighted_auxiliary_loss,
)

SIZE = (32, 32)


@pytest.fixture(scope="module")
def synth_rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """A tiny `labral synth` data set at `hard` (16-frame 48 x 48 clips): manifest rows."""
    out = tmp_path_factory.mktemp("aux") / "data"
    settings = SynthSettings.from_config(
        {
            "out": str(out),
            "n_patients": 12,
            "difficulty": "hard",
            "preview": False,
            "progress": False,
            "workers": 1,
            "clip": {"frames": 16, "height": 48, "width": 48},
        }
    )
    synthesize(settings)
    manifest = out / "manifest.jsonl"
    return manifest, [json.loads(line) for line in manifest.read_text().splitlines()]


def _clips(rows: list[dict]) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Every clip of the rows at 32 x 32, (N, 1, 16, 32, 32) in [0, 1], labels and targets."""
    images, labels, targets = [], [], []
    for row in rows:
        clip = read_cine(str(row["path"]))
        frames = resize_frames(clip.frames, SIZE).astype(np.float32) / 255.0
        images.append(torch.from_numpy(frames)[None])
        labels.append(int(row["label"]))
        targets.append(clip_targets(record_params(row), np.arange(frames.shape[0]), SIZE))
    stacked = {k: torch.stack([t[k] for t in targets]) for k in targets[0]}
    return torch.stack(images), torch.tensor(labels, dtype=torch.float32), stacked


def _absolute(manifest: Path, rows: list[dict]) -> list[dict]:
    return [{**row, "path": str(manifest.parent / row["path"])} for row in rows]


def test_targets_hold_where_the_cleft_is_and_when_fluid_fills_it(synth_rows) -> None:
    manifest, rows = synth_rows
    for row in _absolute(manifest, rows):
        params = record_params(row)
        assert params is not None
        frames = int(params["frames"])
        targets = clip_targets(params, np.arange(frames), SIZE)
        heat = targets["heatmap"]
        assert heat.shape == (8, 8) and float(heat.sum()) == pytest.approx(1.0, abs=1e-5)
        # the heatmap's mass lies in the recorded cleft region (48 -> 8 cells: 6 px a cell)
        r0, r1, c0, c1 = params["cleft_roi_px"]
        cells = heat[r0 // 6 : -(-r1 // 6), c0 // 6 : -(-c1 // 6)]
        assert float(cells.sum()) > 0.9
        assert targets["extent"].shape == (frames,) and targets["loading"].shape == (frames,)
        for t in row["extrusion_frames"]:  # fluid is in the cleft whenever extrusion shows
            assert targets["extent"][t] == 1.0
        assert abs(float(targets["loading"].mean())) < 1e-4  # standardised per clip
        expected = row["clip_type"]
        if expected == "incoherent_twin":
            expected = f"incoherent_twin/{params['variant']}"
        assert SCENARIOS[int(targets["scenario"])] == expected


def test_the_attention_target_is_the_frames_with_fluid() -> None:
    """Attention on the fluid frames scores best, a uniform spread worse; a clip without
    fluid adds nothing."""
    extent = torch.tensor([[0, 0, 1, 1, 0, 0, 0, 0], [0] * 8], dtype=torch.float32)
    on_fluid = torch.tensor([[0, 0, 0.5, 0.5, 0, 0, 0, 0]] * 2) + 1e-4
    uniform = torch.full((2, 8), 1 / 8)
    elsewhere = torch.tensor([[0.5, 0.5, 0, 0, 0, 0, 0, 0]] * 2) + 1e-4
    losses = [float(_attention_loss(a, extent)) for a in (on_fluid, uniform, elsewhere)]
    assert losses[0] < losses[1] < losses[2]
    assert losses[1] == pytest.approx(np.log(8), abs=1e-4)  # the fluid-free clip is left out
    assert float(_attention_loss(uniform, torch.zeros(2, 8))) == 0.0


def test_a_user_manifest_without_params_has_no_targets() -> None:
    assert record_params({"path": "a.dcm", "label": 1}) is None
    assert record_params({"params": {"traces": {}, "size": [4, 4]}}) is not None


def test_weights_default_on_for_models_with_heads_only() -> None:
    assert resolve_weights(None, CleftNet) == DEFAULT_WEIGHTS
    assert resolve_weights(None, CompactVideoNet) == {}
    assert resolve_weights({"heatmap": 1.0, "extent": 0.0}, CleftNet) == {"heatmap": 1.0}
    assert resolve_weights({}, CompactVideoNet) == {}
    with pytest.raises(BadConfigError, match=r"auxiliary\.masks: no such target"):
        resolve_weights({"masks": 1.0}, CleftNet)
    with pytest.raises(BadConfigError, match=r"auxiliary\.extent=-1.0 must be >= 0"):
        resolve_weights({"extent": -1.0}, CleftNet)
    with pytest.raises(BadConfigError, match="model=cleft"):
        resolve_weights({"extent": 1.0}, CompactVideoNet)


def _train(images, labels, targets, weights: dict[str, float], steps: int = 40) -> dict:
    """Train a small CleftNet on the clips; return every auxiliary loss after training."""
    torch.manual_seed(0)
    net = CleftNet(crop=16, widths=(8, 8, 8), context_width=8, temporal_width=16, dropout=0.0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        out = net.outputs(images)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out["logit"], labels)
        loss = loss + weighted_auxiliary_loss(out, targets, weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():  # batch statistics, as in training: 40 steps leave running ones behind
        return {k: float(v) for k, v in auxiliary_losses(net.outputs(images), targets).items()}


@pytest.fixture(scope="module")
def trained_without(synth_rows) -> tuple[tuple, dict]:
    """The clips, and the auxiliary losses of a net trained on them for the label alone."""
    manifest, rows = synth_rows
    clips = _clips(_absolute(manifest, rows)[:24])
    return clips, _train(*clips, {})


@pytest.mark.parametrize("name", sorted(DEFAULT_WEIGHTS))
def test_each_auxiliary_target_changes_what_the_model_learns(trained_without, name: str) -> None:
    """Trained with the target, the net predicts it far better than trained without it (same
    seed, same clips): removing a target from the loss would fail this."""
    clips, without = trained_without
    with_target = _train(*clips, {name: 1.0})
    assert with_target[name] < 0.75 * without[name], (name, with_target, without)
