"""The input check: four detectors, their thresholds, one verdict per clip.

============================  ==========================================  =================
reason                        score (higher = more likely a wrong input)  refuses when
============================  ==========================================  =================
``image_quality``             the largest relative margin by which one    score > 0
                              image rule is broken (:data:`QUALITY_RULES`;
                              the detail names the first broken, in order)
``no_manoeuvre``              ``1 - motion / min_motion``                 score > 0
``not_hip_view``              the view network's logit                    > ``max_view_logit``
``out_of_distribution``       Mahalanobis distance of the view features   > ``max_ood_distance``
                              and statistics from the valid training clips
============================  ==========================================  =================

Every number a verdict is compared with lives in :class:`Thresholds`, which travels in the
bundle (``metadata.json``'s ``input_check``) beside the view network (``input_check/``);
:mod:`labral.input_check.fit` sets them at export. A check that raises makes the clip not
assessable with reason ``check_failed``, never a silent score.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labral.datasets.io.clip import Clip
from labral.input_check.features import STATISTICS, Features, clip_features
from labral.input_check.verdict import REASONS, CheckVerdict, check_failed

#: Files of a saved check (in the bundle's ``input_check/`` folder).
VIEW_NET_FILE = "view_net.ts"
CHECK_FILE = "check.json"
#: Version of the saved check's format.
CHECK_VERSION = 1

#: Image rules: (detail, statistic, threshold field, "below" or "above" refuses).
QUALITY_RULES: tuple[tuple[str, str, str, str], ...] = (
    ("too_short", "duration_s", "min_duration_s", "below"),
    ("blank", "intensity_std", "min_intensity_std", "below"),
    ("saturated", "saturated_fraction", "max_saturated_fraction", "above"),
    ("frames_missing", "repeated_fraction", "max_repeated_fraction", "above"),
    ("noise_only", "structure", "min_structure", "below"),
)


@dataclass
class Thresholds:
    """Every threshold of the check (see the module table)."""

    min_duration_s: float
    min_intensity_std: float
    max_saturated_fraction: float
    max_repeated_fraction: float
    min_structure: float
    min_motion: float
    max_view_logit: float
    max_ood_distance: float


@dataclass
class Measurement:
    """What the check measured on one clip: :data:`STATISTICS`, the view logit, the OOD
    distance (the inputs of a verdict, kept apart so fitting can reuse them)."""

    statistics: dict[str, float]
    view_logit: float
    ood_distance: float


#: Entries of an OOD vector beside the view features: 6 statistics and the 8 x 8 mean image.
OOD_EXTRA_DIMS = 6 + 64


def ood_vector(features: np.ndarray, statistics: dict[str, float], image: np.ndarray) -> np.ndarray:
    """float64 (F + 6 + 64,): the view features, the statistics on comparable scales and the
    clip's mean image at 8 x 8 (where the bright and dark tissue lies: a template that the
    view network's features, trained on the wrong inputs it knows, need not keep).

    Args:
        features: float (F,) the view network's features.
        statistics: :func:`labral.input_check.features.clip_statistics`.
        image: float (3, h, w) the view image (:func:`~labral.input_check.features.view_image`).
    """
    stats = [
        math.log(max(statistics["duration_s"], 1e-3)),
        statistics["intensity_std"] * 10.0,
        statistics["saturated_fraction"] * 10.0,
        statistics["repeated_fraction"] * 10.0,
        statistics["structure"],
        math.log1p(max(statistics["motion"], 0.0)),
    ]
    mean = np.asarray(image[0], np.float64)
    h, w = mean.shape
    coarse = mean.reshape(8, h // 8, 8, w // 8).mean(axis=(1, 3)).reshape(-1) * 4.0
    return np.concatenate([np.asarray(features, np.float64).reshape(-1), stats, coarse])


def _rule_margin(value: float, threshold: float, refuses: str) -> float:
    """Relative margin by which ``value`` breaks its rule (> 0 broken, <= 0 kept)."""
    scale = abs(threshold) if threshold else 1.0
    return (threshold - value) / scale if refuses == "below" else (value - threshold) / scale


class InputCheck:
    """A fitted input check.

    Args:
        view_net: ``forward(x float32 (B, 3, 64, 64)) -> (logits (B,), features (B, F))``
            (a TorchScript or eager :class:`labral.models.view_net.ViewNet`, in eval mode).
        thresholds: the fitted :class:`Thresholds`.
        ood_mean: float64 (D,) mean of the valid training clips' :func:`ood_vector`.
        ood_precision: float64 (D, D) inverse of their (shrunk) covariance.
        info: how it was fitted (counts, held-out family, rates), JSON-ready.
    """

    def __init__(
        self,
        view_net: Any,
        thresholds: Thresholds,
        ood_mean: np.ndarray,
        ood_precision: np.ndarray,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.view_net = view_net
        self.thresholds = thresholds
        self.ood_mean = np.asarray(ood_mean, np.float64)
        self.ood_precision = np.asarray(ood_precision, np.float64)
        self.info = dict(info or {})

    def measure(self, clips: list[Clip]) -> list[Measurement]:
        """Measure several clips (one view-network call for all)."""
        return self.measure_features([clip_features(clip.frames, clip.fps) for clip in clips])

    @torch.inference_mode()
    def measure_features(self, measured: list[Features]) -> list[Measurement]:
        """Measure clips whose :func:`~labral.input_check.features.clip_features` are made
        (fitting makes them once per clip and reuses them)."""
        if not measured:
            return []
        images = torch.stack([image for _, image in measured])
        logits, features = self.view_net(images)
        out = []
        for (stats, image), logit, feature in zip(measured, logits, features, strict=True):
            vector = ood_vector(feature.double().numpy(), stats, image.numpy())
            delta = vector - self.ood_mean
            distance = float(np.sqrt(max(delta @ self.ood_precision @ delta, 0.0)))
            out.append(Measurement(stats, float(logit), distance))
        return out

    def verdict_of(self, measured: Measurement) -> CheckVerdict:
        """The verdict on one measurement (pure: no model call)."""
        t = asdict(self.thresholds)
        stats = measured.statistics
        broken = {
            detail: _rule_margin(stats[stat], t[field], refuses)
            for detail, stat, field, refuses in QUALITY_RULES
        }
        first = next((d for d, margin in broken.items() if margin > 0), "")
        scores = {
            "image_quality": max(broken.values()),
            "no_manoeuvre": 1.0 - stats["motion"] / t["min_motion"],
            "not_hip_view": measured.view_logit,
            "out_of_distribution": measured.ood_distance,
        }
        thresholds = {
            "image_quality": 0.0,
            "no_manoeuvre": 0.0,
            "not_hip_view": t["max_view_logit"],
            "out_of_distribution": t["max_ood_distance"],
        }
        reasons = [r for r in REASONS if r in scores and scores[r] > thresholds[r]]
        details = {"image_quality": first} if "image_quality" in reasons else {}
        return CheckVerdict(
            assessable=not reasons,
            reasons=reasons,
            details=details,
            scores=scores,
            thresholds=thresholds,
        )

    def assess(self, clip: Clip) -> CheckVerdict:
        """One clip's verdict; a check that raises gives reason ``check_failed``."""
        try:
            return self.verdict_of(self.measure([clip])[0])
        except Exception as exc:  # noqa: BLE001 - any failure must refuse, never score
            return check_failed(exc)

    def to_spec(self) -> dict[str, Any]:
        """What the bundle's metadata records: version, thresholds, how it was fitted."""
        return {
            "version": CHECK_VERSION,
            "statistics": list(STATISTICS),
            "thresholds": asdict(self.thresholds),
            "info": self.info,
        }

    def save(self, folder: str | Path) -> list[Path]:
        """Write ``view_net.ts`` and ``check.json`` into ``folder``; returns both paths."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        scripted = (
            self.view_net
            if isinstance(self.view_net, torch.jit.ScriptModule)
            else torch.jit.script(self.view_net.eval())
        )
        torch.jit.save(scripted, str(out / VIEW_NET_FILE))
        document = {
            **self.to_spec(),
            "ood_mean": self.ood_mean.tolist(),
            "ood_precision": self.ood_precision.tolist(),
        }
        (out / CHECK_FILE).write_text(json.dumps(document))
        return [out / VIEW_NET_FILE, out / CHECK_FILE]

    @classmethod
    def load(cls, folder: str | Path) -> InputCheck:
        """Read a check written by :meth:`save`.

        Raises:
            ValueError: a missing file or an unknown version (the bundle loader turns it
                into :class:`labral.errors.IncompatibleBundleError`).
        """
        path = Path(folder)
        document = json.loads((path / CHECK_FILE).read_text())
        if document.get("version") != CHECK_VERSION:
            raise ValueError(
                f"{path / CHECK_FILE}: input check version {document.get('version')}, "
                f"this labral reads {CHECK_VERSION}"
            )
        view_net = torch.jit.load(str(path / VIEW_NET_FILE), map_location="cpu").eval()
        return cls(
            view_net,
            Thresholds(**document["thresholds"]),
            np.asarray(document["ood_mean"]),
            np.asarray(document["ood_precision"]),
            document.get("info", {}),
        )
