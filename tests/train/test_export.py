"""labral export: checkpoint -> verified bundle -> load_bundle -> predict, and its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig

from labral.bundle import load_bundle, sha256_file
from labral.errors import BadConfigError, LabralError
from labral.models.compact import CompactVideoNet
from labral.train import export as export_mod
from tests.helpers.configs import NO_CHECK

TINY_MODEL = {
    "_target_": "labral.models.compact.CompactVideoNet",
    "in_channels": 1,
    "widths": [4, 8, 8],
    "temporal_strides": [1, 2],
    "norm": "batch",
    "act": "relu",
    "dropout": 0.0,
}
EVAL_SPEC = {"frames": 8, "fps": 10.0, "size": [32, 32], "windows": 1}
CALIBRATION = {
    "temperature": 1.7,
    "threshold": 0.42,
    "threshold_rule": "sensitivity >= 0.90",
    "val_metrics": {"auroc": 0.97, "n": 40},
    "data_fingerprint": "abc123",
}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A training run dir following the checkpoint contract, with random (non-trivial) BN stats."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = CompactVideoNet(**{k: v for k, v in TINY_MODEL.items() if k != "_target_"})
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 1, 8, 32, 32))  # move BatchNorm running stats off their defaults
    folder = tmp_path / "run"
    (folder / "checkpoints").mkdir(parents=True)
    config = {"model": TINY_MODEL, "transforms": {"eval": EVAL_SPEC}, "seed": 1}
    torch.save(
        {"model": model.state_dict(), "config": config, "epoch": 3},
        folder / "checkpoints" / "best.pt",
    )
    (folder / "calibration.json").write_text(json.dumps(CALIBRATION))
    return folder


def _compose(**overrides: str):
    with initialize_config_module(config_module="labral.configs", version_base="1.3"):
        cfg = compose(
            "export",
            overrides=[*NO_CHECK, *(f"{k}={v}" for k, v in overrides.items())],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    return cfg


def test_export_writes_a_bundle_that_predicts_like_the_checkpoint(run_dir, tmp_path) -> None:
    out = tmp_path / "bundle"
    bundle_dir = export_mod.run(_compose(run_dir=str(run_dir), out=str(out)))
    assert bundle_dir == out
    bundle = load_bundle(out)
    spec = bundle.spec
    assert spec["class_names"] == ["intact", "detachment"]
    assert spec["input_spec"] == {
        "frames": 8, "fps": 10.0, "size": [32, 32], "channels": 1,
        "dtype": "float32", "value_range": [0, 1],
    }  # fmt: skip
    assert spec["eval_transform"] == EVAL_SPEC
    assert (bundle.temperature, bundle.threshold) == (1.7, 0.42)
    assert spec["data_fingerprint"] == "abc123" and spec["val_metrics"]["auroc"] == 0.97
    assert spec["config"]["model"]["_target_"] == TINY_MODEL["_target_"]
    assert spec["model_name"] == "labral-compact" and "epoch3" in spec["model_version"]
    assert spec["code_version"] and spec["labral_version"]
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["files"]["model.ts"]["sha256"] == sha256_file(out / "model.ts")
    assert metadata["files"]["model.onnx"]["sha256"] == sha256_file(out / "model.onnx")
    card = (out / "README.md").read_text()
    assert "Research only" in card and "not a diagnosis" in card and "sensitivity >= 0.90" in card

    model = CompactVideoNet(**{k: v for k, v in TINY_MODEL.items() if k != "_target_"}).eval()
    state = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    model.load_state_dict(state["model"])
    x = torch.rand(3, 1, 8, 32, 32)
    with torch.no_grad():
        want_logits, want_rel = model.forward_with_relevance(x)
    got = bundle.predict(x)
    torch.testing.assert_close(got["logits"], want_logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(
        got["probability"], torch.sigmoid(want_logits / 1.7), atol=1e-5, rtol=0
    )
    assert torch.equal(got["decision"], got["probability"] >= 0.42)
    assert got["relevance"].shape == (3, 8)


def test_onnx_and_torch_export_files_match_eager(run_dir, tmp_path) -> None:
    import onnxruntime

    out = export_mod.export_run(
        export_mod.load_training_run(run_dir / "checkpoints" / "best.pt", None),
        tmp_path / "b", ["torchscript", "onnx", "torch_export"],
    )  # fmt: skip
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["files"]["model.pt2"]["sha256"] == sha256_file(out / "model.pt2")
    assert set(metadata["export_checks"]["max_abs_diff"]) == {"torchscript", "onnx", "torch_export"}
    session = onnxruntime.InferenceSession(
        str(out / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    x = torch.rand(5, 1, 8, 32, 32)  # another batch size than the export example
    logits, relevance = session.run(None, {"clip": x.numpy()})
    with torch.no_grad():
        want_logits, want_rel = load_bundle(out).module(x)
    np.testing.assert_allclose(logits, want_logits.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(relevance, want_rel.numpy(), atol=1e-4, rtol=0)
    program = torch.export.load(str(out / "model.pt2"))
    with torch.no_grad():
        pt2_logits, _ = program.module()(x)
    np.testing.assert_allclose(pt2_logits.numpy(), want_logits.numpy(), atol=1e-4, rtol=0)


def test_verification_catches_a_mismatch(run_dir, tmp_path, monkeypatch) -> None:
    original = export_mod.TorchScriptExporter.run

    def drifting(self, artifact, x):
        logits, relevance = original(self, artifact, x)
        return logits + 1e-3, relevance

    monkeypatch.setattr(export_mod.TorchScriptExporter, "run", drifting)
    with pytest.raises(export_mod.ExportVerificationError, match="torchscript export differs"):
        export_mod.run(
            _compose(run_dir=str(run_dir), out=str(tmp_path / "b"), formats="[torchscript]")
        )
    assert not (tmp_path / "b" / "model.ts").exists()


def test_bundle_runs_without_labral_importable(run_dir, tmp_path) -> None:
    out = export_mod.run(
        _compose(run_dir=str(run_dir), out=str(tmp_path / "b"), formats="[torchscript]")
    )
    script = """
import sys
class NoLabral:
    def find_spec(self, name, path=None, target=None):
        if name == "labral" or name.startswith("labral."):
            raise ImportError("labral is blocked in this test")
        return None
sys.meta_path.insert(0, NoLabral())
import torch
extra = {"labral/spec.json": ""}
module = torch.jit.load(sys.argv[1], _extra_files=extra)
logits, relevance = module(torch.rand(2, 1, 8, 32, 32))
assert not any(m == "labral" or m.startswith("labral.") for m in sys.modules)
print(tuple(logits.shape), tuple(relevance.shape), len(extra["labral/spec.json"]) > 0)
"""
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(out / "model.ts")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(2,) (2, 8) True"


def test_missing_checkpoint_names_the_setting(tmp_path) -> None:
    with pytest.raises(BadConfigError, match="ckpt="):
        export_mod.run(_compose(run_dir=str(tmp_path / "nowhere"), out=str(tmp_path / "b")))
    with pytest.raises(BadConfigError, match="run_dir="):
        export_mod.run(_compose(out=str(tmp_path / "b")))


def test_bad_checkpoints_give_clear_errors(run_dir, tmp_path) -> None:
    ckpt = run_dir / "checkpoints" / "best.pt"
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(BadConfigError, match="not a loadable checkpoint"):
        export_mod.load_training_run(garbage, None)
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(BadConfigError, match="lacks 'model' and 'config'"):
        export_mod.load_training_run(tmp_path / "other.pt", None)
    state = torch.load(ckpt, weights_only=True)
    state["config"]["model"] = {**TINY_MODEL, "widths": [4, 16, 16]}
    torch.save(state, tmp_path / "wrong.pt")
    run = export_mod.load_training_run(tmp_path / "wrong.pt", run_dir / "calibration.json")
    with pytest.raises(BadConfigError, match="weights do not fit"):
        export_mod.build_model(run)
    state["config"]["model"] = {"_target_": "labral.models.nope.Net"}
    torch.save(state, tmp_path / "unknown.pt")
    run = export_mod.load_training_run(tmp_path / "unknown.pt", run_dir / "calibration.json")
    with pytest.raises(BadConfigError, match=r"model\._target_"):
        export_mod.build_model(run)
    (run_dir / "calibration.json").unlink()
    with pytest.raises(BadConfigError, match="require_calibration=false"):
        export_mod.load_training_run(ckpt, None)
    uncalibrated = export_mod.load_training_run(ckpt, None, require_calibration=False)
    assert uncalibrated.calibration["temperature"] == 1.0


def test_unknown_format_is_a_config_error(run_dir, tmp_path) -> None:
    with pytest.raises(LabralError, match="formats"):
        export_mod.run(
            _compose(run_dir=str(run_dir), out=str(tmp_path / "b"), formats="[torchscript,tflite]")
        )


class _NeedsTracing(torch.nn.Module):
    """A network TorchScript cannot compile (``*args``), so the exporter must trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 2, 3, padding=1)

    def forward_with_relevance(self, x: torch.Tensor, *extra: int):
        relevance = self.conv(x).mean(dim=(1, 3, 4))
        return relevance.mean(dim=1), relevance


def test_torchscript_exporter_falls_back_to_tracing() -> None:
    module = export_mod.RelevanceModule(_NeedsTracing()).eval()
    clips = export_mod.verification_clips(3, 8, [16, 16])
    exporter = export_mod.TorchScriptExporter()
    artifact = exporter.convert(module, clips[:2])
    assert isinstance(artifact, torch.jit.ScriptModule)
    assert export_mod.verify(exporter, artifact, module, clips, atol=1e-5) <= 1e-5


def test_a_failing_conversion_names_the_format(monkeypatch, tmp_path) -> None:
    def broken(self, module, example):
        raise RuntimeError("unsupported operator aten::magic")

    monkeypatch.setattr(export_mod.OnnxExporter, "convert", broken)
    run = export_mod.TrainingRun(
        Path("x.pt"), CompactVideoNet(widths=[4, 8], temporal_strides=[1]).state_dict(),
        {"model": {**TINY_MODEL, "widths": [4, 8], "temporal_strides": [1]},
         "transforms": {"eval": EVAL_SPEC}},
        0, CALIBRATION,
    )  # fmt: skip
    with pytest.raises(export_mod.ExportVerificationError, match="onnx conversion failed"):
        export_mod.export_run(run, tmp_path / "b", ["torchscript", "onnx"])
    assert not (tmp_path / "b").exists()  # nothing is written before every format checks out


class _Offset(export_mod.Exporter):
    """An exporter whose artifact is the eager module with its outputs scaled by ``1 + eps``."""

    name = "offset"

    def __init__(self, eps: float) -> None:
        self.eps = eps

    def convert(self, module, example):
        return module

    def run(self, artifact, x):
        with torch.inference_mode():
            logits, relevance = artifact(x)
        return (logits * (1 + self.eps)).numpy(), (relevance * (1 + self.eps)).numpy()

    def save(self, artifact, out_dir):
        return None


class _LargeRelevance(torch.nn.Module):
    """Relevance values in the hundreds (an attention-pooled net's T * a_t * e_t can be)."""

    def forward_with_relevance(self, x: torch.Tensor):
        relevance = 300.0 * x.mean(dim=(1, 3, 4))
        return relevance.mean(dim=1), relevance


def test_verification_allows_float_rounding_relative_to_the_value() -> None:
    module = export_mod.RelevanceModule(_LargeRelevance()).eval()
    clips = export_mod.verification_clips(2, 8, [16, 16])
    # 2e-6 of values near 150: 3e-4 apart, float32 rounding scale, accepted with rtol 1e-5
    assert export_mod.verify(_Offset(2e-6), module, module, clips, atol=1e-4, rtol=1e-5) > 1e-4
    with pytest.raises(export_mod.ExportVerificationError, match=r"\+ 0 x \|value\|"):
        export_mod.verify(_Offset(2e-6), module, module, clips, atol=1e-4, rtol=0.0)
    with pytest.raises(export_mod.ExportVerificationError, match="differs"):
        export_mod.verify(_Offset(1e-3), module, module, clips, atol=1e-4, rtol=1e-5)
