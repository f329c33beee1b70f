"""The one scoring function: a decoded clip -> probability, decision, relevance, spatial maps.

Training-time evaluation (:mod:`labral.train.loop`), ``labral bench``
(:mod:`labral.bench.suite_scoring`) and the service (:mod:`labral.serve.service`) all turn model
outputs into a clip's score here, so the three can never disagree. Training has no bundle yet
(it fits the temperature and threshold from these logits), so it uses the pure steps:
:func:`window_logits_of` (its batches of N windows per clip), :func:`clip_logits`,
:func:`calibrated_probability` and :func:`decide`, exactly as :func:`score_windows` does::

    Clip (uint8 frames (T_src, H, W))
      -> the bundle's input check           CheckVerdict: scored, or not_assessable + reasons
      -> the bundle's eval transform        image float32 (N, 1, T, h, w), frame_index (N, T)
      -> the bundle's module                logits (N,), relevance (N, T)   [ClipScorer.forward]
      -> clip_logits: mean of the N window logits
      -> calibrated_probability(logit, temperature) -> decide(probability, threshold)
      -> relevance_to_source_frames (max over windows, nearest frame elsewhere)
         -> normalise_relevance: float64 (T_src,) in [0, 1], maximum 1
      -> peak_frames: the 3 highest local maxima of that relevance
      -> optional spatial maps: |d logit / d image| on each peak frame, (h, w) in [0, 1]

:class:`ClipScorer` binds one bundle. :meth:`ClipScorer.score` does all of it for one clip;
consumers that batch several clips into one model call (bench, the service's micro-batcher)
run its three steps themselves: :meth:`~ClipScorer.prepare` per clip,
:meth:`~ClipScorer.forward` per batch, :meth:`~ClipScorer.finish` per clip. The calibration
and decision rules are :mod:`labral.bundle`'s (the bundle owns what its fields mean).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from labral.bundle import Bundle, calibrated_probability, decide, normalise_relevance
from labral.datasets.io.clip import Clip
from labral.datasets.transforms.clip_ops import relevance_to_source_frames
from labral.datasets.transforms.clip_transforms import build_eval_transform
from labral.input_check.verdict import CheckVerdict, unchecked

__all__ = [
    "DECIMALS",
    "PEAK_FRAMES",
    "ClipScore",
    "ClipScorer",
    "PreparedClip",
    "SpatialMap",
    "calibrated_probability",
    "clip_logits",
    "decide",
    "peak_frames",
    "score_windows",
    "spatial_maps",
    "window_logits_of",
]

#: How many key frames a score names (the highest local maxima of its relevance).
PEAK_FRAMES = 3
#: Decimals of relevance and spatial-map values in JSON answers and predictions.csv.
DECIMALS = 4


def clip_logits(window_logits: np.ndarray | torch.Tensor) -> np.ndarray:
    """A clip's logit from its windows' logits: their mean.

    Args:
        window_logits: float (..., N), the logit of each of a clip's N eval windows.

    Returns:
        float64 (...): one logit per clip (0-d for a single clip's (N,)).
    """
    if isinstance(window_logits, torch.Tensor):
        window_logits = window_logits.detach().cpu().double().numpy()
    return np.asarray(window_logits, dtype=np.float64).mean(axis=-1)


def window_logits_of(
    forward: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor
) -> torch.Tensor:
    """The logit of every eval window of a batch of clips, in one model call.

    Args:
        forward: a logits-only model, ``forward(x float32 (M, 1, T, h, w)) -> logits (M,)``
            (a training model; a bundle's module also returns relevance, see
            :meth:`ClipScorer.forward`).
        image: float32 (B, N, 1, T, h, w), N eval windows per clip, or (B, 1, T, h, w) with
            one window per clip.

    Returns:
        float32 (B, N) window logits (N = 1 for a 5-D ``image``); :func:`clip_logits` of a row
        is the clip's logit.
    """
    if image.ndim == 6:  # (B, N, 1, T, h, w): the N windows of each clip in one call
        return forward(image.flatten(0, 1)).float().view(image.shape[:2])
    return forward(image).float().reshape(-1, 1)


def peak_frames(relevance: np.ndarray, k: int = PEAK_FRAMES) -> list[int]:
    """Source frames where the evidence peaks: the ``k`` highest local maxima, best first.

    A run of equal values (relevance is often repeated across source frames that map to
    one model frame) counts as one peak, reported at its middle frame.

    Args:
        relevance: float (T,) per-source-frame relevance.
        k: how many frames at most.

    Returns:
        Up to ``k`` frame indices of strict local maxima, highest relevance first.
    """
    rel = np.asarray(relevance, dtype=np.float64).reshape(-1)
    if rel.size == 0:
        return []
    change = np.flatnonzero(np.diff(rel) != 0) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [rel.size]])
    values = rel[starts]
    left = np.concatenate([[-np.inf], values[:-1]])
    right = np.concatenate([values[1:], [-np.inf]])
    runs = np.flatnonzero((values > left) & (values > right))
    runs = runs[np.argsort(-values[runs], kind="stable")][:k]
    return [int((starts[r] + ends[r] - 1) // 2) for r in runs]


@dataclass
class SpatialMap:
    """Where in one key frame the evidence lies.

    Attributes:
        frame: the source frame (a peak frame of the clip).
        model_frame: the source frame whose model frame was used (the nearest one sampled
            by the eval transform; ``frame`` itself when it was sampled).
        values: float32 (h, w) at model input size (after the eval transform's crop and
            resize): |d logit / d pixel|, the maximum over the windows that hold the frame,
            divided by its own maximum (so in [0, 1]; all zeros when the logit ignores it).
    """

    frame: int
    model_frame: int
    values: np.ndarray

    def to_json(self) -> dict[str, object]:
        """``{"frame", "model_frame", "size": [h, w], "values": [[...], ...]}`` (rounded)."""
        return {
            "frame": self.frame,
            "model_frame": self.model_frame,
            "size": list(self.values.shape),
            "values": np.round(self.values.astype(np.float64), DECIMALS).tolist(),
        }


@dataclass
class ClipScore:
    """One clip's score.

    Attributes:
        logit: the mean window logit (uncalibrated).
        probability: calibrated probability of label 1 (``class_names[1]``).
        decision: ``probability >= threshold``.
        relevance: float64 (T_src,) temporal relevance on the clip's own frames, in [0, 1].
        peak_frames: up to :data:`PEAK_FRAMES` source frames, strongest evidence first.
        spatial_maps: one :class:`SpatialMap` per peak frame when asked for, else empty.
        verdict: the input check's :class:`~labral.input_check.verdict.CheckVerdict`. When it
            is not assessable the routes give no decision; the model's numbers above are
            still computed, so benchmarks can compare all clips with the clips that pass.
    """

    logit: float
    probability: float
    decision: bool
    relevance: np.ndarray
    peak_frames: list[int]
    spatial_maps: list[SpatialMap] = field(default_factory=list)
    verdict: CheckVerdict = field(default_factory=unchecked)

    @property
    def assessable(self) -> bool:
        """False when the input check refused the clip (then no decision is given)."""
        return self.verdict.assessable

    @property
    def status(self) -> str:
        """``scored`` or ``not_assessable`` (:mod:`labral.input_check.verdict`)."""
        return self.verdict.status

    @property
    def reported_decision(self) -> bool | None:
        """The decision a route reports: None when the clip is not assessable."""
        return self.decision if self.assessable else None

    def rounded_relevance(self) -> list[float]:
        """``relevance`` rounded to :data:`DECIMALS` (the JSON and CSV form)."""
        return [round(float(v), DECIMALS) for v in self.relevance]


@dataclass
class PreparedClip:
    """A clip through the eval transform, ready for the model.

    Attributes:
        image: float32 (N, 1, T, h, w), N eval windows.
        frame_index: int64 (N, T) source frame of every model frame.
        num_source_frames: T_src of the decoded clip.
        verdict: the input check's verdict on the decoded clip.
    """

    image: torch.Tensor
    frame_index: torch.Tensor
    num_source_frames: int
    verdict: CheckVerdict = field(default_factory=unchecked)


def score_windows(
    window_logits: np.ndarray | torch.Tensor,
    window_relevance: np.ndarray | torch.Tensor,
    frame_index: np.ndarray | torch.Tensor,
    num_source_frames: int,
    temperature: float,
    threshold: float,
) -> ClipScore:
    """One clip's score from its windows' model outputs (no spatial maps).

    Args:
        window_logits: float (N,) logit of every window.
        window_relevance: float (N, T) raw relevance of every model frame of every window.
        frame_index: int (N, T) source-frame index of every model frame.
        num_source_frames: T_src of the decoded clip.
        temperature: calibration temperature (> 0).
        threshold: operating threshold on the calibrated probability.

    Returns:
        :class:`ClipScore` with ``spatial_maps`` empty.
    """
    logit = float(clip_logits(window_logits))
    probability = float(calibrated_probability(logit, temperature))
    on_source = relevance_to_source_frames(window_relevance, frame_index, num_source_frames)
    relevance = normalise_relevance(on_source)
    return ClipScore(
        logit=logit,
        probability=probability,
        decision=bool(decide(probability, threshold)),
        relevance=relevance,
        peak_frames=peak_frames(relevance),
    )


def spatial_maps(
    module: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    image: torch.Tensor,
    frame_index: torch.Tensor | np.ndarray,
    frames: Sequence[int],
) -> list[SpatialMap]:
    """Input-gradient maps of a clip's logit on some of its source frames.

    One forward and one backward pass of ``module`` over the clip's N windows (about three
    forward passes of time), so it is asked for, not done by default.

    Args:
        module: ``forward(x float32 (N, 1, T, h, w)) -> (logits (N,), relevance (N, T))``.
        image: float32 (N, 1, T, h, w) the clip's windows.
        frame_index: int (N, T) source frame of every model frame.
        frames: source frames to map (e.g. the peak frames); a frame the transform did not
            sample uses the nearest sampled one (ties: the earlier), as relevance does.

    Returns:
        One :class:`SpatialMap` per entry of ``frames``, in order.
    """
    if len(frames) == 0:
        return []
    with torch.inference_mode(False), torch.enable_grad():
        x = image.detach().clone().float().requires_grad_(True)
        logits, _ = module(x)
        (grad,) = torch.autograd.grad(logits.sum(), x)
    magnitude = grad.detach().abs()[:, 0].cpu().numpy()  # (N, T, h, w)
    index = np.asarray(torch.as_tensor(frame_index).cpu(), dtype=np.int64).reshape(
        magnitude.shape[:2]
    )
    sampled = np.unique(index)
    maps = []
    for frame in frames:
        nearest = int(sampled[np.argmin(np.abs(sampled - int(frame)))])
        windows, steps = np.nonzero(index == nearest)
        values = magnitude[windows, steps].max(axis=0)  # (h, w)
        top = float(values.max())
        values = (values / top if top > 0 else np.zeros_like(values)).astype(np.float32)
        maps.append(SpatialMap(frame=int(frame), model_frame=nearest, values=values))
    return maps


class ClipScorer:
    """A bundle's scoring of decoded clips (the eval transform and calibration it carries).

    Args:
        bundle: a loaded bundle.
        transform: its eval transform if already built (default: built from
            ``bundle.spec["eval_transform"]``; never another spec).
    """

    def __init__(self, bundle: Bundle, transform: Callable[[dict], dict] | None = None) -> None:
        self.bundle = bundle
        self.transform = transform or build_eval_transform(bundle.spec["eval_transform"])

    def check(self, clip: Clip) -> CheckVerdict:
        """The bundle's input check on a decoded clip (``checked=False`` without one)."""
        if self.bundle.input_check is None:
            return unchecked()
        return self.bundle.input_check.assess(clip)

    def prepare(self, clip: Clip, *, check: bool = True) -> PreparedClip:
        """Check a decoded clip (uint8 frames (T_src, H, W)) and run the eval transform.

        Args:
            check: False skips the input check (the verdict is ``unchecked()``), for passes
                that never read it: altered copies of clips already checked (the bench's
                order controls) and re-prepared clips (its localisation pass).
        """
        verdict = self.check(clip) if check else unchecked()
        data = self.transform({"clip": clip})
        image = torch.as_tensor(data["image"], dtype=torch.float32)
        frame_index = torch.as_tensor(data["frame_index"], dtype=torch.int64)
        if image.ndim == 4:  # a transform that returns (1, T, H, W): one window
            image, frame_index = image.unsqueeze(0), frame_index.reshape(1, -1)
        return PreparedClip(image, frame_index, clip.num_frames, verdict)

    @torch.inference_mode()
    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The model call, for the windows of one or many clips stacked on the batch axis.

        Args:
            image: float32 (B, 1, T, h, w).

        Returns:
            ``{"logits": float32 (B,), "relevance": float32 (B, T)}``, raw (uncalibrated).
        """
        logits, relevance = self.bundle.module(image)
        return {"logits": logits.float(), "relevance": relevance.float()}

    def finish(
        self,
        prepared: PreparedClip,
        window_logits: torch.Tensor | np.ndarray,
        window_relevance: torch.Tensor | np.ndarray,
        *,
        spatial: bool = False,
    ) -> ClipScore:
        """The clip's score from its rows of :meth:`forward` (logits (N,), relevance (N, T)).

        Args:
            spatial: also compute a :class:`SpatialMap` on each peak frame.
        """
        score = score_windows(
            window_logits,
            window_relevance,
            prepared.frame_index,
            prepared.num_source_frames,
            self.bundle.temperature,
            self.bundle.threshold,
        )
        score.verdict = prepared.verdict
        if spatial:
            score.spatial_maps = spatial_maps(
                self.bundle.module, prepared.image, prepared.frame_index, score.peak_frames
            )
        return score

    def score(self, clip: Clip, *, spatial: bool = False) -> ClipScore:
        """Score one decoded clip: prepare, one model call, finish."""
        prepared = self.prepare(clip)
        out = self.forward(prepared.image)
        return self.finish(prepared, out["logits"], out["relevance"], spatial=spatial)
