"""``labral export``: a training run's best checkpoint -> a self-verified model bundle.

    labral export run_dir=outputs/train/<stamp> out=bundles/compact
    labral export ckpt=<run>/checkpoints/best.pt calibration=<run>/calibration.json out=...

The model is rebuilt with ``hydra.utils.instantiate`` from the checkpoint's own config,
wrapped so its forward returns ``(logits (B,), relevance (B, T))``, converted by each
requested ``Exporter`` (:mod:`labral.train.export_formats`: model.ts, model.onnx and model.pt2 by
default; TorchScript is required), checked against eager outputs on synthetic clips, and
written with ``labral.bundle.write_bundle`` (which records every file's SHA-256) plus a
model card under the TRIPOD+AI / CLAIM topics (:mod:`labral.train.model_card`); every
file is then loaded back with its runtime and checked again.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

import labral
from labral.bundle import CLASS_NAMES, input_spec_from, load_bundle, write_bundle
from labral.errors import BadConfigError, IncompatibleBundleError
from labral.input_check.check import InputCheck
from labral.models.describe import describe_model, format_description
from labral.runtimes import ONNX_OPSET, RUNTIME_FILES
from labral.settings import register_schema, settings_from_config
from labral.train.check_export import check_for_run
from labral.train.export_formats import Exporter, RelevanceModule, make_exporter
from labral.train.export_formats import OnnxExporter as OnnxExporter  # re-exported: tests patch
from labral.train.export_formats import TorchScriptExporter as TorchScriptExporter  # them here
from labral.train.model_card import model_card
from labral.train.settings import EXPORT_SCHEMA, ExportSettings
from labral.train.split_record import split_patient_record

register_schema(EXPORT_SCHEMA, ExportSettings)


class ExportVerificationError(IncompatibleBundleError):
    """An exported artifact does not reproduce the eager model's outputs."""

    code = "export_verification_failed"
    http_status = 500


@dataclass
class TrainingRun:
    """What export needs from a training run."""

    checkpoint: Path
    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any]
    epoch: int
    calibration: dict[str, Any]


def load_training_run(
    ckpt: str | Path, calibration: str | Path | None, require_calibration: bool = True
) -> TrainingRun:
    """Read a checkpoint (``weights_only=True``) and the run's calibration.json.

    Args:
        ckpt: ``<run_dir>/checkpoints/best.pt`` (contract with ``labral train``).
        calibration: ``<run_dir>/calibration.json``; None looks two folders above ``ckpt``.
        require_calibration: without it, a missing calibration gives T = 1, threshold 0.5.

    Raises:
        BadConfigError: missing or unreadable files, or a checkpoint lacking model/config.
    """
    path = Path(ckpt)
    if not path.is_file():
        raise BadConfigError(
            f"ckpt={path} does not exist; set run_dir=<a labral train run dir> or ckpt=<best.pt>"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise BadConfigError(f"ckpt={path} is not a loadable checkpoint ({exc})") from exc
    if not isinstance(state, dict) or not {"model", "config"} <= state.keys():
        raise BadConfigError(
            f"ckpt={path} lacks 'model' and 'config'; export takes checkpoints written by "
            "`labral train` (checkpoints/best.pt)"
        )
    cal_path = Path(calibration) if calibration else path.parent.parent / "calibration.json"
    if cal_path.is_file():
        cal = json.loads(cal_path.read_text())
    elif require_calibration:
        raise BadConfigError(
            f"calibration={cal_path} does not exist; point calibration= at the run's "
            "calibration.json, or set require_calibration=false to export uncalibrated"
        )
    else:
        cal = {"temperature": 1.0, "threshold": 0.5, "threshold_rule": "uncalibrated (0.5)"}
    weights = {
        key.removeprefix("_orig_mod.").removeprefix("module."): value
        for key, value in state["model"].items()
    }
    return TrainingRun(path, weights, dict(state["config"]), int(state.get("epoch", -1)), cal)


def build_model(run: TrainingRun) -> nn.Module:
    """Instantiate ``config["model"]`` and load the weights; eval mode, CPU, float32.

    Raises:
        BadConfigError: no model config, a ``_target_`` that cannot be built, or weights that
            do not fit the model.
    """
    model_cfg = run.config.get("model")
    if not isinstance(model_cfg, dict) or "_target_" not in model_cfg:
        raise BadConfigError(f"ckpt={run.checkpoint}: config['model'] has no _target_")
    try:
        model = instantiate(OmegaConf.create(model_cfg))
    except Exception as exc:  # noqa: BLE001 - Hydra wraps import/constructor errors
        raise BadConfigError(
            f"model._target_={model_cfg['_target_']!r} cannot be built ({exc})"
        ) from exc
    try:
        model.load_state_dict(run.state_dict)
    except RuntimeError as exc:
        raise BadConfigError(
            f"ckpt={run.checkpoint}: weights do not fit model {model_cfg['_target_']} ({exc})"
        ) from exc
    return model.float().eval()


def eval_spec_of(run: TrainingRun) -> dict[str, Any]:
    """The eval transform spec ``{frames, fps, size, windows}`` from the run's config.

    Raises:
        BadConfigError: ``transforms.eval`` missing or without frames/fps/size.
    """
    spec = (run.config.get("transforms") or {}).get("eval")
    if not isinstance(spec, dict) or not {"frames", "fps", "size"} <= spec.keys():
        raise BadConfigError(
            f"ckpt={run.checkpoint}: config transforms.eval must give frames, fps and size"
        )
    return {"windows": 1, **spec}


def verification_clips(n: int, frames: int, size: list[int], seed: int = 0) -> torch.Tensor:
    """Synthetic clips for checking an export: speckle plus a bright bar moving down.

    Returns:
        float32 (n, 1, frames, H, W) in [0, 1].
    """
    gen = torch.Generator().manual_seed(seed)
    h, w = int(size[0]), int(size[1])
    clips = torch.rand(n, 1, frames, h, w, generator=gen) * 0.5
    for i in range(n):
        for t in range(frames):
            row = (t * h // max(frames, 1) + i * 7) % h
            clips[i, 0, t, row : row + max(1, h // 12)] += 0.5
    return clips.clamp(0.0, 1.0)


def verify(
    exporter: Exporter,
    artifact: Any,
    module: nn.Module,
    clips: torch.Tensor,
    atol: float,
    rtol: float = 0.0,
) -> float:
    """Largest absolute difference between the artifact and the eager module on ``clips``.

    Every output value must lie within ``atol + rtol * |eager value|`` of the eager one (as
    ``torch.testing.assert_close`` counts).

    Raises:
        ExportVerificationError: a logit or relevance value outside that band.
    """
    with torch.inference_mode():
        want_logits, want_rel = module(clips)
    got_logits, got_rel = exporter.run(artifact, clips)
    diff, excess = 0.0, 0.0
    for got, want in ((got_logits, want_logits.numpy()), (got_rel, want_rel.numpy())):
        gap = np.abs(np.asarray(got) - want)
        diff = max(diff, float(gap.max()))
        excess = max(excess, float((gap - rtol * np.abs(want)).max()))
    if not excess <= atol:
        raise ExportVerificationError(
            f"{exporter.name} export differs from the eager model by {diff:.3g} (> {atol:g} + "
            f"{rtol:g} x |value|) on synthetic clips; the model uses an operation this format "
            "cannot reproduce"
        )
    return diff


def code_version() -> str:
    """``git describe --always --dirty`` of the labral checkout, else the package version."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(labral.__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip() or labral.__version__
    except (OSError, subprocess.SubprocessError):
        return labral.__version__


def default_model_name(model_cfg: dict[str, Any]) -> str:
    """``labral-<arch>`` for video ResNets, else ``labral-<module>`` (e.g. ``labral-compact``)."""
    if "arch" in model_cfg:
        return f"labral-{model_cfg['arch']}"
    return "labral-" + str(model_cfg["_target_"]).rsplit(".", 2)[-2]


def check_card(check: InputCheck | None) -> str:
    """The model card's input-check section (what it refuses and how it was fitted)."""
    if check is None:
        return (
            "No input check: every clip that decodes is scored, whatever it shows "
            "(exported with `input_check.enabled=false`)."
        )
    info, t = check.info, check.thresholds
    calibration = info.get("calibration", {})
    return (
        "Clips it cannot assess are refused as `not_assessable` with a reason "
        "(docs/input_check.md): image rules (at least "
        f"{t.min_duration_s:g} s, grey-level spread {t.min_intensity_std:g}+, saturated "
        f"share <= {t.max_saturated_fraction:g}, repeated frames <= "
        f"{t.max_repeated_fraction:g}, structure {t.min_structure:g}+), manoeuvre motion "
        f"{t.min_motion:.3g}+, view logit <= {t.max_view_logit:.3g}, OOD distance <= "
        f"{t.max_ood_distance:.3g}. Fitted on {info.get('valid_train', '?')} valid and "
        f"{sum(info.get('wrong_train', {}).values())} generated wrong clips; it refuses "
        f"{calibration.get('false_refusal', float('nan')):.1%} of "
        f"{info.get('valid_calibration', '?')} valid calibration clips. Its view network "
        "knows the generator's anatomy only."
    )


def convert_and_verify(
    exporters: list[Exporter], module: nn.Module, clips: torch.Tensor, atol: float, rtol: float
) -> tuple[dict[str, Any], dict[str, float]]:
    """Convert the module with every exporter and check each artifact on ``clips`` (float32
    (N, 1, T, H, W)) before anything is written: ``(artifact by format, its largest
    difference from the eager module)``.

    Raises:
        ExportVerificationError: a conversion fails, or :func:`verify` fails.
    """
    artifacts: dict[str, Any] = {}
    verified: dict[str, float] = {}
    for exporter in exporters:
        try:
            artifact = exporter.convert(module, clips[:2])
        except Exception as exc:  # noqa: BLE001 - each converter fails in its own way
            raise ExportVerificationError(
                f"{exporter.name} conversion failed ({type(exc).__name__}: {exc}); "
                f"remove {exporter.name} from formats= or change the model"
            ) from exc
        verified[exporter.name] = verify(exporter, artifact, module, clips, atol, rtol)
        artifacts[exporter.name] = artifact
    return artifacts, verified


def export_run(
    run: TrainingRun,
    out_dir: str | Path,
    formats: list[str],
    *,
    model_name: str | None = None,
    model_version: str | None = None,
    verify_clips: int = 4,
    atol: float = 1e-4,
    rtol: float = 1e-5,
    seed: int = 0,
    onnx_opset: int = ONNX_OPSET,
    input_check: InputCheck | None = None,
) -> Path:
    """Export a loaded training run to a bundle folder; returns the folder.

    ``input_check`` (fitted by :func:`labral.train.check_export.check_for_run`) goes into the
    bundle's ``input_check/``; None exports a bundle that scores every clip, with a warning.

    Raises:
        BadConfigError: no ``torchscript`` in formats, or a bad model/config.
        ExportVerificationError: an artifact disagrees with the eager model beyond ``atol``
            plus ``rtol`` times the eager value.
    """
    if "torchscript" not in formats:
        raise BadConfigError(f"formats={formats} must include torchscript (the bundle's format)")
    model = build_model(run)
    eval_spec = eval_spec_of(run)
    frames, size = int(eval_spec["frames"]), [int(s) for s in eval_spec["size"]]
    module = RelevanceModule(model).eval()
    clips = verification_clips(max(2, verify_clips), frames, size, seed)
    exporters = [make_exporter(name, onnx_opset) for name in formats]
    artifacts, verified = convert_and_verify(exporters, module, clips, atol, rtol)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    extra_files = [
        path
        for exporter in exporters
        if (path := exporter.save(artifacts[exporter.name], out)) is not None
    ]
    for stale in {"model.onnx", "model.pt2"} - {path.name for path in extra_files}:
        (out / stale).unlink(missing_ok=True)  # a file from an earlier export would mislead
    cal = run.calibration
    description = format_description(describe_model(model, (1, frames, *size)))
    spec = {
        "model_name": model_name or default_model_name(run.config["model"]),
        "model_version": model_version or f"{labral.__version__}+epoch{run.epoch}",
        "class_names": list(CLASS_NAMES),
        "eval_transform": eval_spec,
        "input_spec": input_spec_from(eval_spec),
        "temperature": float(cal["temperature"]),
        "threshold": float(cal["threshold"]),
        "threshold_rule": str(cal.get("threshold_rule", "")),
        "val_metrics": cal.get("val_metrics", {}),
        "data_fingerprint": cal.get("data_fingerprint"),
        "split_patients": split_patient_record(run.config, cal.get("data_fingerprint")),
        "code_version": code_version(),
        "labral_version": labral.__version__,
        "config": run.config,
        "export_checks": {
            "max_abs_diff": verified,
            "atol": atol,
            "rtol": rtol,
            "clips": len(clips),
        },
    }
    card = model_card(spec, verified, description, check_card(input_check))
    write_bundle(out, artifacts["torchscript"], spec, card, onnx=False, input_check=input_check)
    check_reloaded(out, module, clips, atol)
    return out


def check_reloaded(out: Path, module: nn.Module, clips: torch.Tensor, atol: float) -> None:
    """Every model file written to ``out`` loads with its runtime and gives the eager
    module's logits on ``clips`` (float32 (N, 1, T, H, W)) within ``atol``.

    Raises:
        ExportVerificationError: a reloaded file disagrees.
    """
    with torch.inference_mode():
        expected = module(clips)[0]
    for runtime, name in RUNTIME_FILES.items():
        if (out / name).is_file():
            logits = load_bundle(out, runtime=runtime).predict(clips)["logits"]
            if not torch.allclose(logits, expected, rtol=0, atol=atol):
                raise ExportVerificationError(
                    f"{out}/{name} reloaded (runtime={runtime}) does not match the eager model"
                )


def run(cfg: DictConfig) -> Path:
    """Hydra entry (``labral export``): see the module docstring; the settings are
    :class:`labral.train.settings.ExportSettings`.

    Returns:
        The bundle folder (also printed).
    """
    settings = settings_from_config(ExportSettings, cfg, ignore=("paths",))
    out = Path(settings.out) if settings.out else Path(cfg.paths.output_dir) / "bundle"
    bundle_dir = export_with(settings, out)
    sha = json.loads((bundle_dir / "metadata.json").read_text())["files"]["model.ts"]["sha256"]
    print(f"bundle written to {bundle_dir} (model.ts sha256 {sha})")
    return bundle_dir


def export_with(settings: ExportSettings, out: Path) -> Path:
    """Export the run that ``settings`` names into ``out``; returns the bundle folder.

    Raises:
        BadConfigError: neither ``run_dir`` nor ``ckpt``, or what :func:`export_run` raises.
    """
    run_dir = Path(settings.run_dir) if settings.run_dir else None
    if settings.ckpt:
        ckpt = Path(settings.ckpt)
    elif run_dir is not None:
        ckpt = run_dir / "checkpoints" / "best.pt"
    else:
        raise BadConfigError("set run_dir=<a labral train run dir> or ckpt=<checkpoints/best.pt>")
    calibration = settings.calibration or (run_dir / "calibration.json" if run_dir else None)
    training = load_training_run(ckpt, calibration, settings.require_calibration)
    try:
        check = check_for_run(settings.input_check, training.config)
    except ValueError as exc:
        raise BadConfigError(f"input_check: {exc}; or set input_check.enabled=false") from exc
    return export_run(
        training,
        out,
        settings.formats,
        model_name=settings.model_name,
        model_version=settings.model_version,
        verify_clips=settings.verify.clips,
        atol=settings.verify.atol,
        rtol=settings.verify.rtol,
        seed=settings.verify.seed,
        onnx_opset=settings.onnx_opset or ONNX_OPSET,
        input_check=check,
    )
