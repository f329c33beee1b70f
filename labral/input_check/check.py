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
from labral.input_check.features import STATISTICS, VIEW_SIZE, Features, clip_features
from labral.input_check.verdict import REASONS, CheckVerdict, check_failed
from labral.models.view_net import VIEW_CHANNELS
from labral.runtimes import OnnxRuntimeForward, onnx_bytes

#: Files of a saved check (in the bundle's ``input_check/`` folder). The view network is run
#: by ONNX Runtime on one thread: 50 us a clip where the frozen TorchScript took 250 us, and
#: the check must stay within 10% of scoring time.
VIEW_NET_FILE = "view_net.onnx"
#: The view network's input and outputs in ``view_net.onnx``.
VIEW_NET_NAMES = ("images", "logits", "features")
CHECK_FILE = "check.json"
#: Version of the saved check's format (2: working frames at 32 x 32, a view network with a
#: class per wrong kind in ONNX, OOD vectors of the view features and statistics only).
CHECK_VERSION = 2

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


#: Entries of an OOD vector beside the view features: the 6 statistics.
OOD_EXTRA_DIMS = 6


def ood_vector(features: np.ndarray, statistics: dict[str, float]) -> np.ndarray:
    """float64 (F + 6,): the view features and the statistics on comparable scales.

    (An 8 x 8 mean image beside them, 64 more entries, let valid clips of the wrong-input
    suite stray further than the held-out knee and shoulder views did: fitted on 1,376
    vectors, it refused 4% of the easy level where the features and statistics alone refused
    at most 2% of every level.)

    Args:
        features: float (F,) the view network's features.
        statistics: :func:`labral.input_check.features.clip_statistics`.
    """
    stats = [
        math.log(max(statistics["duration_s"], 1e-3)),
        statistics["intensity_std"] * 10.0,
        statistics["saturated_fraction"] * 10.0,
        statistics["repeated_fraction"] * 10.0,
        statistics["structure"],
        math.log1p(max(statistics["motion"], 0.0)),
    ]
    return np.concatenate([np.asarray(features, np.float64).reshape(-1), stats])


def _rule_margin(value: float, threshold: float, refuses: str) -> float:
    """Relative margin by which ``value`` breaks its rule (> 0 broken, <= 0 kept)."""
    scale = abs(threshold) if threshold else 1.0
    return (threshold - value) / scale if refuses == "below" else (value - threshold) / scale


class InputCheck:
    """A fitted input check.

    Args:
        view_net: ``forward(x float32 (B, 3, 32, 32)) -> (logits (B,), features (B, F))``
            (an eager :class:`labral.models.view_net.ViewNet` in eval mode, or, loaded,
            its ONNX model in ONNX Runtime).
        thresholds: the fitted :class:`Thresholds`.
        ood_mean: float64 (D,) mean of the valid training clips' :func:`ood_vector`.
        ood_precision: float64 (D, D) inverse of their (shrunk) covariance.
        info: how it was fitted (counts, held-out family, rates), JSON-ready.
        view_net_onnx: the ONNX model ``view_net`` runs, when loaded from one (saved as is).
    """

    def __init__(
        self,
        view_net: Any,
        thresholds: Thresholds,
        ood_mean: np.ndarray,
        ood_precision: np.ndarray,
        info: dict[str, Any] | None = None,
        view_net_onnx: bytes | None = None,
    ) -> None:
        self.view_net = view_net
        self.view_net_onnx = view_net_onnx
        self.thresholds = thresholds
        self.ood_mean = np.asarray(ood_mean, np.float64)
        self.ood_precision = np.asarray(ood_precision, np.float64)
        self.info = dict(info or {})

    def measure(self, clips: list[Clip]) -> list[Measurement]:
        """Measure several clips (one view-network call for all)."""
        return self.measure_features([clip_features(clip.frames, clip.fps) for clip in clips])

    def measure_features(self, measured: list[Features]) -> list[Measurement]:
        """Measure clips whose :func:`~labral.input_check.features.clip_features` are made
        (fitting makes them once per clip and reuses them)."""
        if not measured:
            return []
        logits, features = self._view_forward(np.stack([image.numpy() for _, image in measured]))
        out = []
        for (stats, _), logit, feature in zip(measured, logits, features, strict=True):
            vector = ood_vector(feature, stats)
            delta = vector - self.ood_mean
            distance = float(np.sqrt(max(delta @ self.ood_precision @ delta, 0.0)))
            out.append(Measurement(stats, float(logit), distance))
        return out

    def _view_forward(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float32 (B, 3, h, w) -> the view network's logits (B,) and features (B, F), NumPy
        (a loaded check's ONNX session takes the arrays as they are)."""
        if isinstance(self.view_net, OnnxRuntimeForward):
            logits, features = self.view_net.run_arrays(images)
            return logits, features
        with torch.inference_mode():
            logits, features = self.view_net(torch.from_numpy(images))
        return logits.numpy(), features.numpy()

    def verdict_of(self, measured: Measurement) -> CheckVerdict:
        """The verdict on one measurement (pure: no model call)."""
        t = vars(self.thresholds)  # read only (asdict would deep-copy it for every clip)
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
        """Write ``view_net.onnx`` and ``check.json`` into ``folder``; returns both paths."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        onnx = self.view_net_onnx
        if onnx is None:
            example = torch.rand(2, VIEW_CHANNELS, VIEW_SIZE, VIEW_SIZE)
            onnx = onnx_bytes(self.view_net.eval(), example, names=VIEW_NET_NAMES)
        (out / VIEW_NET_FILE).write_bytes(onnx)
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
        onnx = (path / VIEW_NET_FILE).read_bytes()
        view_net = OnnxRuntimeForward(onnx, threads=1, input_name=VIEW_NET_NAMES[0])
        return cls(
            view_net,
            Thresholds(**document["thresholds"]),
            np.asarray(document["ood_mean"]),
            np.asarray(document["ood_precision"]),
            document.get("info", {}),
            view_net_onnx=onnx,
        )
