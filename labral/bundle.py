"""The self-contained model bundle: write it (training side) and load it (serve, bench).

A bundle is a folder::

    model.ts        TorchScript module; forward(x) -> (logits, relevance)
                      x: float32 (B, 1, T, H, W) as produced by the bundle's eval transform
                      logits: float32 (B,) uncalibrated log-odds of "detachment"
                      relevance: float32 (B, T) temporal relevance, one value per input frame
                    its extra file ``labral/spec.json`` carries the spec below
    model.pt2       the same forward as a ``torch.export`` program (batch axis dynamic)
    model.onnx      the same forward for ONNX Runtime (batch axis dynamic)
    metadata.json   the same spec plus the SHA-256 of every model file (MONAI-bundle spirit)
    README.md       a short model card
    input_check/    the input check (:mod:`labral.input_check`): view_net.onnx and check.json,
                    recorded in the spec's ``input_check`` and in metadata.json's files; a
                    bundle exported before it existed has none and scores with a warning

``labral export`` writes all three model files by default; :func:`load_bundle` runs one of
them, chosen by ``runtime`` (:mod:`labral.runtimes`: ``torchscript`` -> model.ts, ``export``
-> model.pt2, ``onnxruntime`` -> model.onnx, which also needs model.ts for spatial maps).

The spec is a JSON dict with at least ``SPEC_REQUIRED_KEYS``. ``serve`` and ``bench`` take the
eval transform, input spec, temperature and threshold from here and never redeclare them.
No labral model code is needed to run a bundle: only torch.

This module also owns what the spec's fields mean, so that no consumer restates it:

- ``class_names`` is :data:`CLASS_NAMES` (stated in :mod:`labral.labels`, below every layer):
  label 0 is ``"intact"``, label 1 (:data:`POSITIVE_LABEL`) is ``"detachment"``, the class
  whose probability is reported.
- ``temperature``: :func:`calibrated_probability` = sigmoid(logit / temperature).
- ``threshold``: :func:`decide` = probability >= threshold (:func:`labral.metrics.decision`).
- relevance: :func:`normalise_relevance` scales it to [0, 1] (minimum 0, maximum 1).

How a clip's windows become one score is :mod:`labral.scoring`, which builds on these.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import expit

from labral.errors import IncompatibleBundleError
from labral.input_check.check import CHECK_FILE, VIEW_NET_FILE, InputCheck
from labral.labels import CLASS_NAMES, POSITIVE_LABEL
from labral.metrics import decision
from labral.runtimes import (
    DEFAULT_RUNTIME,
    RUNTIME_FILES,
    Forward,
    load_exported,
    load_onnxruntime,
    load_torchscript,
    onnx_bytes,
    runtime_file,
)

BUNDLE_SCHEMA_VERSION = 1
#: Scaled logits are clipped to +-60 before the sigmoid: float64 sigmoid already rounds to 1
#: above +37, and the clip gives train, bench and serve the same ties among saturated scores.
LOGIT_LIMIT = 60.0
SPEC_EXTRA_FILE = "labral/spec.json"
#: The input check's folder inside a bundle.
INPUT_CHECK_DIR = "input_check"
SPEC_REQUIRED_KEYS = (
    "schema_version",
    "model_name",
    "class_names",
    "eval_transform",
    "input_spec",
    "temperature",
    "threshold",
)


def input_spec_from(eval_transform: dict[str, Any]) -> dict[str, Any]:
    """The bundle's ``input_spec`` implied by its eval transform spec.

    Args:
        eval_transform: ``{"frames", "fps", "size", ...}`` as in ``configs/transforms``.

    Returns:
        ``{"frames", "fps", "size", "channels": 1, "dtype": "float32", "value_range": [0, 1]}``
        describing the float32 (N, 1, T, H, W) tensor the model receives.
    """
    return {
        "frames": int(eval_transform["frames"]),
        "fps": float(eval_transform["fps"]),
        "size": [int(v) for v in eval_transform["size"]],
        "channels": 1,
        "dtype": "float32",
        "value_range": [0, 1],
    }


def calibrated_probability(
    logits: np.ndarray | torch.Tensor | float, temperature: float
) -> np.ndarray:
    """The calibrated probability of :data:`POSITIVE_LABEL`: sigmoid(logit / temperature).

    Args:
        logits: float (...) uncalibrated log-odds (a clip's logit, or a batch of them).
        temperature: the bundle's (or a training run's) calibration temperature, > 0.

    Returns:
        float64 (...) probabilities, computed as ``expit(clip(logits / temperature, -60, 60))``
        (see :data:`LOGIT_LIMIT`).
    """
    if isinstance(logits, torch.Tensor):
        logits = logits.detach().cpu().double().numpy()
    scaled = np.asarray(logits, dtype=np.float64) / float(temperature)
    return expit(np.clip(scaled, -LOGIT_LIMIT, LOGIT_LIMIT))


def decide(probability: np.ndarray | float, threshold: float) -> np.ndarray:
    """The decision at the operating threshold: True (label 1) where probability >= threshold.

    Args:
        probability: float (...) calibrated probabilities.
        threshold: the bundle's ``threshold``.

    Returns:
        bool (...) array (0-d for a float); the rule is :func:`labral.metrics.decision`.
    """
    return decision(probability, threshold)


def normalise_relevance(relevance: np.ndarray | torch.Tensor) -> np.ndarray:
    """Scale relevance to [0, 1] along its last axis: minimum 0, maximum 1.

    Args:
        relevance: float (..., T) relevance (model frames of a window, or source frames).

    Returns:
        float64 (..., T); a constant row becomes all zeros. The scaling is affine and
        increasing, so the order of frames (and hence every peak) is kept.
    """
    if isinstance(relevance, torch.Tensor):
        relevance = relevance.detach().cpu().numpy()
    rel = np.asarray(relevance, dtype=np.float64)
    if rel.size == 0:
        return rel
    rel = rel - rel.min(axis=-1, keepdims=True)
    top = rel.max(axis=-1, keepdims=True)
    return rel / np.where(top > 0, top, 1.0)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_spec(spec: dict[str, Any], where: str) -> None:
    missing = [key for key in SPEC_REQUIRED_KEYS if key not in spec]
    if missing:
        raise IncompatibleBundleError(
            f"{where}: bundle spec lacks {missing}; re-export the model with `labral export`"
        )
    if spec["schema_version"] != BUNDLE_SCHEMA_VERSION:
        raise IncompatibleBundleError(
            f"{where}: bundle schema_version {spec['schema_version']} but this labral reads "
            f"version {BUNDLE_SCHEMA_VERSION}; re-export the model with this labral version"
        )
    names = spec["class_names"]
    if not isinstance(names, list | tuple) or list(names) != list(CLASS_NAMES):
        raise IncompatibleBundleError(
            f"{where}: bundle class_names {spec['class_names']} but labral scores "
            f"{list(CLASS_NAMES)} (label 0, label 1); re-export the model with `labral export`"
        )


def write_bundle(
    out_dir: str | Path,
    scripted: torch.jit.ScriptModule,
    spec: dict[str, Any],
    model_card: str = "",
    *,
    onnx: bool = True,
    input_check: InputCheck | None = None,
) -> Path:
    """Save a scripted model and its spec as a bundle folder; returns the folder.

    Args:
        out_dir: folder to create (parents too); existing files in it are replaced.
        scripted: TorchScript module with forward(x (B,1,T,H,W)) -> (logits (B,), relevance (B,T)).
            A ``model.pt2`` or ``model.onnx`` already in ``out_dir`` is recorded with its
            SHA-256 too (``labral export`` saves them first).
        spec: the bundle spec; ``schema_version`` is filled in if absent.
        model_card: Markdown written to README.md (a default stub is written if empty).
        onnx: convert ``scripted`` to model.onnx when the folder has none, so that the
            default runtime can run the bundle (``labral export`` writes its own, verified
            one, and passes False).
        input_check: a fitted input check, saved under ``input_check/`` and recorded in the
            spec (``input_check``) and metadata.json's files; None writes a bundle without
            one (it scores every clip, with a warning).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = {"schema_version": BUNDLE_SCHEMA_VERSION, **spec}
    spec.pop("input_check", None)
    check_files: list[Path] = []
    if input_check is not None:
        spec["input_check"] = input_check.to_spec()
        check_files = input_check.save(out / INPUT_CHECK_DIR)
    _check_spec(spec, str(out))
    model_path = out / "model.ts"
    tmp = out / "model.ts.tmp"
    torch.jit.save(scripted, str(tmp), _extra_files={SPEC_EXTRA_FILE: json.dumps(spec)})
    tmp.replace(model_path)
    onnx_path = out / RUNTIME_FILES["onnxruntime"]
    if onnx and not onnx_path.is_file():
        frames, size = int(spec["eval_transform"]["frames"]), spec["eval_transform"]["size"]
        example = torch.rand(2, 1, frames, int(size[0]), int(size[1]))  # batch 2: dynamic
        onnx_path.write_bytes(onnx_bytes(scripted, example))
    metadata = {**spec, "files": {"model.ts": {"sha256": sha256_file(model_path)}}}
    for name in RUNTIME_FILES.values():  # model.pt2 / model.onnx written beside it
        if name != model_path.name and (out / name).is_file():
            metadata["files"][name] = {"sha256": sha256_file(out / name)}
    for path in check_files:
        metadata["files"][f"{INPUT_CHECK_DIR}/{path.name}"] = {"sha256": sha256_file(path)}
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2, default=str))
    (out / "README.md").write_text(model_card or f"# {spec['model_name']}\n")
    return out


@dataclass
class Bundle:
    """A loaded bundle: the runtime's forward, the spec and the SHA-256 of the file it runs.

    Attributes:
        path: the bundle folder.
        module: ``forward(x float32 (B, 1, T, H, W)) -> (logits (B,), relevance (B, T))`` of
            the runtime (a ScriptModule, the exported program's module or an ONNX session).
        spec: the bundle spec.
        sha256: SHA-256 of the file ``module`` was loaded from (model.ts for torchscript).
        runtime: ``torchscript`` | ``export`` | ``onnxruntime`` (:mod:`labral.runtimes`;
            with onnxruntime, calls that need input gradients run model.ts).
        input_check: the bundle's input check, None for a bundle exported without one.
    """

    path: Path
    module: Forward
    spec: dict[str, Any]
    sha256: str
    runtime: str = DEFAULT_RUNTIME
    input_check: InputCheck | None = None

    @property
    def temperature(self) -> float:
        return float(self.spec["temperature"])

    @property
    def threshold(self) -> float:
        return float(self.spec["threshold"])

    @property
    def name(self) -> str:
        return str(self.spec["model_name"])

    def identity(self) -> dict[str, Any]:
        """Model name, version and SHA-256, for responses and reports."""
        return {
            "name": self.name,
            "version": self.spec.get("model_version", self.spec.get("labral_version", "")),
            "sha256": self.sha256,
        }

    def label_name(self, decided: bool) -> str:
        """The class name of a decision: ``class_names[1]`` when True, else ``class_names[0]``."""
        return str(self.spec["class_names"][POSITIVE_LABEL if decided else 1 - POSITIVE_LABEL])

    @torch.inference_mode()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Score a batch of windows, each on its own (a clip's score is :mod:`labral.scoring`).

        Args:
            x: float32 (B, 1, T, H, W), the bundle's eval transform output.

        Returns:
            ``logits`` float32 (B,), ``probability`` float32 (B,)
            (:func:`calibrated_probability`), ``decision`` bool (B,) (:func:`decide` on the
            float32 probability returned),
            ``relevance`` float32 (B, T) in [0, 1] (:func:`normalise_relevance` per row).
        """
        logits, relevance = self.module(x)
        probability = calibrated_probability(logits, self.temperature).astype(np.float32)
        return {
            "logits": logits.float(),
            "probability": torch.from_numpy(probability),
            "decision": torch.from_numpy(decide(probability, self.threshold)),
            "relevance": torch.from_numpy(normalise_relevance(relevance)).float(),
        }


def read_bundle_spec(path: str | Path) -> dict[str, Any]:
    """Read a bundle's spec from metadata.json without loading the model (cheap checks)."""
    folder = Path(path)
    return _spec_of(_read_metadata(folder), folder)


def _read_metadata(folder: Path) -> dict[str, Any] | None:
    """The folder's metadata.json parsed, None when it has none (a load reads it once).

    Raises:
        IncompatibleBundleError: the file is not valid JSON.
    """
    meta = folder / "metadata.json"
    if not meta.is_file():
        return None
    try:
        return json.loads(meta.read_text())
    except json.JSONDecodeError as exc:
        raise IncompatibleBundleError(f"{meta}: not valid JSON ({exc})") from exc


def _spec_of(metadata: dict[str, Any] | None, folder: Path) -> dict[str, Any]:
    """The checked spec in ``metadata`` (a bundle without metadata.json is refused)."""
    if metadata is None:
        raise IncompatibleBundleError(
            f"{folder}: no metadata.json; point at a bundle folder written by `labral export`"
        )
    _check_spec(metadata, str(folder))
    return metadata


def _checked_sha256(metadata: dict[str, Any] | None, path: Path, required: bool) -> str:
    """The file's SHA-256, which must equal metadata.json's record (and exist if required)."""
    digest = sha256_file(path)
    recorded = (metadata or {}).get("files", {}).get(path.name, {}).get("sha256")
    if recorded is None and required:
        raise IncompatibleBundleError(
            f"{path}: metadata.json records no SHA-256 for {path.name}; re-export the model "
            "with `labral export`"
        )
    if recorded and recorded != digest:
        raise IncompatibleBundleError(
            f"{path}: SHA-256 {digest[:12]}... differs from metadata.json "
            f"({recorded[:12]}...); the bundle was modified after export"
        )
    return digest


def _load_scripted(
    folder: Path, device: str | torch.device, runtime: str, metadata: dict[str, Any] | None
) -> tuple[Any, dict[str, Any], str]:
    """model.ts (which ``runtime`` needs), the spec in its extra file and its checked SHA-256."""
    model_path = runtime_file(folder, runtime, RUNTIME_FILES["torchscript"])
    extra = {SPEC_EXTRA_FILE: ""}
    module = load_torchscript(model_path, device, extra)
    if not extra[SPEC_EXTRA_FILE]:
        raise IncompatibleBundleError(
            f"{model_path}: has no {SPEC_EXTRA_FILE}; not a labral bundle"
        )
    spec = json.loads(extra[SPEC_EXTRA_FILE])
    _check_spec(spec, str(folder))
    return module, spec, _checked_sha256(metadata, model_path, required=False)


def load_bundle(
    path: str | Path, device: str | torch.device = "cpu", runtime: str | None = None
) -> Bundle:
    """Load a bundle folder (or a file in it) and check it is one this labral can run.

    Args:
        path: the bundle folder, or any file in it (e.g. its model.ts).
        device: where the model runs (onnxruntime: the CPU only).
        runtime: ``torchscript`` (model.ts) | ``export`` (model.pt2) | ``onnxruntime``
            (model.onnx, plus model.ts for the gradients of spatial maps); None is
            :data:`labral.runtimes.DEFAULT_RUNTIME`.

    Raises:
        BadConfigError: an unknown runtime, or onnxruntime on a device other than the CPU.
        IncompatibleBundleError: missing files (the one the runtime loads is named), bad spec,
            other schema version, or a model file whose SHA-256 differs from metadata.json
            (model.pt2 and model.onnx must be recorded there: their spec lives only there).
    """
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    runtime = runtime or DEFAULT_RUNTIME
    metadata = _read_metadata(folder)
    if runtime == "torchscript":
        module, spec, digest = _load_scripted(folder, device, runtime, metadata)
    elif runtime == "export":
        model_path = runtime_file(folder, runtime)
        spec = _spec_of(metadata, folder)
        digest = _checked_sha256(metadata, model_path, required=True)
        module = load_exported(model_path, device)
    else:  # ONNX Runtime cannot differentiate: calls that need gradients run model.ts
        scripted, _, _ = _load_scripted(folder, device, runtime, metadata)
        model_path = runtime_file(folder, runtime)
        spec = _spec_of(metadata, folder)
        digest = _checked_sha256(metadata, model_path, required=True)
        module = load_onnxruntime(model_path, device, differentiable=scripted)
    if not (math.isfinite(float(spec["temperature"])) and float(spec["temperature"]) > 0):
        raise IncompatibleBundleError(f"{folder}: temperature must be a positive number")
    check = _load_input_check(folder, metadata) if "input_check" in spec else None
    return Bundle(
        path=folder, module=module, spec=spec, sha256=digest, runtime=runtime, input_check=check
    )


def _load_input_check(folder: Path, metadata: dict[str, Any] | None) -> InputCheck:
    """The bundle's ``input_check/``, each file checked against metadata.json's SHA-256.

    Raises:
        IncompatibleBundleError: a file missing, modified or unreadable.
    """
    check_dir = folder / INPUT_CHECK_DIR
    for name in (VIEW_NET_FILE, CHECK_FILE):
        path = check_dir / name
        if not path.is_file():
            raise IncompatibleBundleError(
                f"{path}: missing, but the bundle's spec records an input check; copy the "
                "whole bundle folder or re-export it with `labral export`"
            )
        recorded = (metadata or {}).get("files", {}).get(f"{INPUT_CHECK_DIR}/{name}", {})
        if recorded.get("sha256") != sha256_file(path):
            raise IncompatibleBundleError(
                f"{path}: SHA-256 differs from metadata.json's record; the bundle was modified "
                "after export"
            )
    try:
        return InputCheck.load(check_dir)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise IncompatibleBundleError(f"{check_dir}: unreadable input check ({exc})") from exc
