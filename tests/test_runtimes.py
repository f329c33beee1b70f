"""The three bundle runtimes: same outputs as eager, same spatial maps, typed refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from labral.bundle import load_bundle, sha256_file
from labral.datasets.io.clip import Clip
from labral.errors import BadConfigError, IncompatibleBundleError
from labral.models.compact import CompactVideoNet
from labral.runtimes import DEFAULT_RUNTIME, RUNTIME_FILES
from labral.scoring import ClipScorer
from labral.train.export import TrainingRun, export_run
from labral.train.export_formats import RelevanceModule

EVAL_SPEC = {"frames": 8, "fps": 10.0, "size": [32, 32], "windows": 2}
MODEL = {"in_channels": 1, "widths": [4, 8, 8], "temporal_strides": [1, 2], "dropout": 0.0}
RUNTIMES = list(RUNTIME_FILES)


@pytest.fixture(scope="module")
def trained() -> tuple[torch.nn.Module, TrainingRun]:
    """A tiny compact net with non-trivial BatchNorm statistics, as a training run."""
    torch.manual_seed(0)
    model = CompactVideoNet(**MODEL)
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 1, 8, 32, 32))  # move BatchNorm running stats off their defaults
    model.eval()
    run = TrainingRun(
        checkpoint=Path("best.pt"),
        state_dict=model.state_dict(),
        config={
            "model": {"_target_": "labral.models.compact.CompactVideoNet", **MODEL},
            "transforms": {"eval": EVAL_SPEC},
        },
        epoch=1,
        calibration={"temperature": 1.3, "threshold": 0.4},
    )
    return model, run


@pytest.fixture(scope="module")
def bundle_dir(trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, run = trained
    formats = ["torchscript", "onnx", "torch_export"]
    return export_run(run, tmp_path_factory.mktemp("bundle") / "b", formats)


def test_a_default_export_writes_every_file_with_its_sha256(bundle_dir) -> None:
    metadata = json.loads((bundle_dir / "metadata.json").read_text())
    for name in ("model.ts", "model.pt2", "model.onnx"):
        assert metadata["files"][name]["sha256"] == sha256_file(bundle_dir / name)


@pytest.mark.parametrize("batch", [1, 3])
def test_logits_and_relevance_of_every_runtime_match_eager(trained, bundle_dir, batch) -> None:
    model, _ = trained
    x = torch.rand(batch, 1, 8, 32, 32, generator=torch.Generator().manual_seed(batch))
    with torch.inference_mode():
        want_logits, want_rel = RelevanceModule(model).eval()(x)
    for runtime in RUNTIMES:
        bundle = load_bundle(bundle_dir, runtime=runtime)
        assert bundle.runtime == runtime
        with torch.inference_mode():
            logits, relevance = bundle.module(x)
        assert logits.shape == (batch,) and relevance.shape == (batch, 8), runtime
        np.testing.assert_allclose(logits.numpy(), want_logits.numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(relevance.numpy(), want_rel.numpy(), atol=1e-4, rtol=0)


def test_every_runtime_gives_the_same_clip_score_and_spatial_maps(bundle_dir) -> None:
    frames = np.random.default_rng(3).integers(0, 256, (20, 40, 40), dtype=np.uint8)
    clip = Clip(frames=frames, fps=10.0)
    scores = {
        runtime: ClipScorer(load_bundle(bundle_dir, runtime=runtime)).score(clip, spatial=True)
        for runtime in RUNTIMES
    }
    want = scores["torchscript"]
    assert want.spatial_maps and np.ptp(want.spatial_maps[0].values) > 0
    for runtime, score in scores.items():
        assert score.logit == pytest.approx(want.logit, abs=1e-4), runtime
        np.testing.assert_allclose(score.relevance, want.relevance, atol=1e-3)
        assert [m.frame for m in score.spatial_maps] == [m.frame for m in want.spatial_maps]
        for got, ref in zip(score.spatial_maps, want.spatial_maps, strict=True):
            np.testing.assert_allclose(got.values, ref.values, atol=1e-4, rtol=0)


def test_onnxruntime_takes_its_gradients_from_model_ts(bundle_dir) -> None:
    ort = load_bundle(bundle_dir, runtime="onnxruntime")
    assert isinstance(ort.module.differentiable, torch.jit.ScriptModule)
    assert ort.sha256 == sha256_file(bundle_dir / "model.onnx")
    x = torch.rand(2, 1, 8, 32, 32, requires_grad=True)
    with torch.inference_mode():
        assert not ort.module(x)[0].requires_grad  # a plain call runs the session
    logits, _ = ort.module(x)
    (grad,) = torch.autograd.grad(logits.sum(), x)
    scripted = load_bundle(bundle_dir, runtime="torchscript").module
    y = x.detach().clone().requires_grad_(True)
    (want,) = torch.autograd.grad(scripted(y)[0].sum(), y)
    assert torch.equal(grad, want)


def test_the_default_runtime_is_the_one_named_in_labral_runtimes(bundle_dir) -> None:
    assert load_bundle(bundle_dir).runtime == DEFAULT_RUNTIME


@pytest.mark.parametrize(
    ("runtime", "missing"),
    [("export", "model.pt2"), ("onnxruntime", "model.onnx"), ("onnxruntime", "model.ts")],
)
def test_a_bundle_without_the_runtime_file_is_refused_naming_it(
    bundle_dir, tmp_path, runtime, missing
) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in bundle_dir.iterdir():
        if path.name != missing:
            (copy / path.name).write_bytes(path.read_bytes())
    with pytest.raises(IncompatibleBundleError, match=f"no {missing}"):
        load_bundle(copy, runtime=runtime)


def test_a_modified_pt2_is_refused(bundle_dir, tmp_path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in bundle_dir.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    with open(copy / "model.pt2", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(IncompatibleBundleError, match="differs from metadata.json"):
        load_bundle(copy, runtime="export")


def test_an_unknown_runtime_is_a_config_error(bundle_dir) -> None:
    with pytest.raises(BadConfigError, match="runtime='tflite'.*torchscript, export, onnxruntime"):
        load_bundle(bundle_dir, runtime="tflite")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_load_reads_metadata_json_once(bundle_dir, runtime, monkeypatch) -> None:
    reads: list[str] = []
    read_text = Path.read_text

    def counting_read_text(self: Path, *args, **kwargs) -> str:
        if self.name == "metadata.json":
            reads.append(str(self))
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting_read_text)
    load_bundle(bundle_dir, runtime=runtime)
    assert len(reads) == 1, (runtime, reads)
