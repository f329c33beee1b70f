"""Auxiliary training targets the synthetic generator gives for free, and their losses.

A model with heads beyond its logit (:class:`labral.models.cleft_net.CleftNet`) is taught
*where* and *what* as well as *whether*, from the clip's recorded parameters (the
manifest's ``params`` column, written by ``labral synth``):

- ``heatmap``: where the cleft is: the cleft channel of the hip's tissue map at rest, pooled
  to the heatmap's grid and normalised to a distribution; loss: cross-entropy against the
  heatmap's spatial softmax.
- ``extent``: whether fluid fills the cleft in each frame (the generator's cleft extent
  above :data:`EXTENT_ON`); loss: binary cross-entropy per frame.
- ``loading``: the femur's loading velocity per frame, standardised per clip; loss: mean
  squared error.
- ``scenario``: what drives the cleft and which way fluid moves (:data:`SCENARIOS`); loss:
  cross-entropy.
- ``attention``: the frames where fluid is in the cleft (the ``extent`` target, normalised
  over the window) against the model's attention over frames; loss: cross-entropy, on the
  clips with fluid in some frame. The decision then rests on those frames, and so does the
  relevance peak that tells a reader *when* the sign is.

Only training uses them: the exported model keeps the heads but scoring reads the logit.
Clips without ``params`` (a user's own manifest) have no targets; a batch with any such clip
trains on the classification loss alone.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import get_class
from omegaconf import DictConfig

from labral.datasets.synth.shortcut_timing import cleft_axis
from labral.errors import BadConfigError
from labral.train.settings import train_settings

#: Scenario classes, in the order of the model's scenario logits.
SCENARIOS = (
    "positive",
    "normal",
    "sulcus",
    "anisotropy",
    "probe_motion",
    "frozen_twin",
    "incoherent_twin/pocket",
    "incoherent_twin/late",
)
#: Cleft extent (share of the cleft channel the tongue reaches) counted as fluid present.
EXTENT_ON = 0.02
#: Default weight of each auxiliary loss (``auxiliary.<name>`` in the train config).
DEFAULT_WEIGHTS = {
    "heatmap": 0.5,
    "extent": 0.5,
    "loading": 0.25,
    "scenario": 0.5,
    "attention": 0.5,
}
#: Stride of the heatmap grid against the model's input frame.
HEATMAP_STRIDE = 4


def record_params(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The generator parameters of a manifest record (the loader has parsed them to a dict),
    or None when the record has none (a user's own clips)."""
    params = record.get("params")
    return params if isinstance(params, dict) and "traces" in params else None


def scenario_index(params: Mapping[str, Any]) -> int:
    """Index in :data:`SCENARIOS` of a clip's type (and the incoherent twin's variant)."""
    name = str(params.get("clip_type", ""))
    if name == "incoherent_twin":
        name = f"{name}/{params.get('variant') or 'pocket'}"
    return SCENARIOS.index(name) if name in SCENARIOS else SCENARIOS.index("normal")


@functools.lru_cache(maxsize=256)
def _heatmap_target(
    anatomy_json: str, source: tuple[int, int], size: tuple[int, int]
) -> torch.Tensor:
    axis = cleft_axis(json.loads(anatomy_json), source, size)
    inside = torch.from_numpy(np.isfinite(axis).astype(np.float32))[None, None]
    pooled = F.avg_pool2d(inside, HEATMAP_STRIDE)[0, 0]
    return pooled / pooled.sum().clamp_min(1e-6)


def clip_targets(
    params: Mapping[str, Any], frame_index: Sequence[int], size: Sequence[int]
) -> dict[str, torch.Tensor]:
    """The auxiliary targets of one clip.

    Args:
        params: the clip's generator parameters (:func:`record_params`).
        frame_index: int (T,) source frame of each model frame.
        size: (H, W) of the model's frames.

    Returns:
        ``heatmap`` float32 (H/4, W/4) summing to 1, ``extent`` float32 (T,) 0/1,
        ``loading`` float32 (T,) standardised velocity, ``scenario`` int64 scalar.
    """
    index = np.asarray(frame_index, dtype=np.int64)
    traces = params["traces"]
    extent = np.asarray(traces["cleft_extent"], np.float32)[index]
    velocity = np.asarray(traces["loading_velocity"], np.float32)[index]
    velocity = (velocity - velocity.mean()) / (velocity.std() + 1e-3)
    source = tuple(int(v) for v in params["size"])
    anatomy = json.dumps(params["anatomy"], sort_keys=True)
    return {
        "heatmap": _heatmap_target(anatomy, source, (int(size[0]), int(size[1]))),
        "extent": torch.from_numpy((extent > EXTENT_ON).astype(np.float32)),
        "loading": torch.from_numpy(velocity.astype(np.float32)),
        "scenario": torch.tensor(scenario_index(params), dtype=torch.int64),
    }


def auxiliary_losses(
    outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Each auxiliary loss (a scalar tensor) of a batch.

    Args:
        outputs: the model's ``outputs(x)``: ``heatmap`` (B, h, w) logits, ``extent`` (B, T)
            logits, ``loading`` (B, T), ``scenario`` (B, K) logits, ``attention`` (B, T).
        targets: the batch's stacked :func:`clip_targets`.
    """
    heat = outputs["heatmap"].flatten(1).float()
    return {
        "attention": _attention_loss(outputs["attention"].float(), targets["extent"]),
        "heatmap": -(targets["heatmap"].flatten(1) * torch.log_softmax(heat, 1)).sum(1).mean(),
        "extent": F.binary_cross_entropy_with_logits(outputs["extent"].float(), targets["extent"]),
        "loading": F.mse_loss(outputs["loading"].float(), targets["loading"]),
        "scenario": F.cross_entropy(outputs["scenario"].float(), targets["scenario"]),
    }


def _attention_loss(attention: torch.Tensor, extent: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the fluid frames' distribution against the attention (B, T), averaged
    over the clips with fluid in some frame (0 when none has)."""
    frames = extent.sum(dim=1)
    has_fluid = frames > 0
    if not bool(has_fluid.any()):
        return attention.sum() * 0.0
    target = extent[has_fluid] / frames[has_fluid, None]
    return -(target * torch.log(attention[has_fluid] + 1e-6)).sum(dim=1).mean()


def weighted_auxiliary_loss(
    outputs: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    weights: Mapping[str, float],
) -> torch.Tensor:
    """Sum of the auxiliary losses, each times its weight (a weight of 0 drops that target)."""
    losses = auxiliary_losses(outputs, targets)
    total = torch.zeros((), device=outputs["logit"].device)
    for name, loss in losses.items():
        weight = float(weights.get(name, 0.0))
        if weight:
            total = total + weight * loss
    return total


class AuxiliaryTargets:
    """The targets of a manifest record's item, for :class:`~labral.datasets.clip_dataset.
    ClipDataset` (its ``targets`` argument), and the weights the run's losses give them.

    Args:
        size: (H, W) of the model's frames (``transforms.eval.size``).
        weights: the run's loss weights (:func:`run_weights`).
    """

    def __init__(self, size: Sequence[int], weights: Mapping[str, float]) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.weights = dict(weights)

    def available(self, record: Mapping[str, Any]) -> bool:
        """Whether the record carries the generator parameters the targets come from."""
        return record_params(record) is not None

    def __call__(
        self, record: Mapping[str, Any], frame_index: np.ndarray
    ) -> dict[str, torch.Tensor]:
        """:func:`clip_targets` of the record's item (``frame_index`` int (T,))."""
        params = record_params(record)
        if params is None:
            raise ValueError(f"{record.get('path')}: no generator parameters for the targets")
        return clip_targets(params, frame_index, self.size)


def has_auxiliary_heads(model_class: type) -> bool:
    """Whether a model class gives every head through ``outputs(x)`` (CleftNet does)."""
    return callable(getattr(model_class, "outputs", None))


def resolve_weights(setting: Mapping[str, float] | None, model_class: type) -> dict[str, float]:
    """The auxiliary loss weights a run uses.

    Args:
        setting: ``auxiliary`` of the train config: None = :data:`DEFAULT_WEIGHTS` for a
            model with auxiliary heads (none for others); a mapping = those weights.
        model_class: the class ``model._target_`` names.

    Raises:
        BadConfigError: an unknown target name, a negative weight, or weights for a model
            without auxiliary heads.
    """
    heads = has_auxiliary_heads(model_class)
    if setting is None:
        return dict(DEFAULT_WEIGHTS) if heads else {}
    weights = {str(k): float(v) for k, v in setting.items()}
    for name, weight in weights.items():
        if name not in DEFAULT_WEIGHTS:
            raise BadConfigError(
                f"auxiliary.{name}: no such target; use {', '.join(DEFAULT_WEIGHTS)}"
            )
        if weight < 0:
            raise BadConfigError(f"auxiliary.{name}={weight} must be >= 0")
    weights = {k: v for k, v in weights.items() if v > 0}
    if weights and not heads:
        raise BadConfigError(
            f"auxiliary={weights} needs a model with auxiliary heads ({model_class.__name__} "
            "has none): use model=cleft, or auxiliary={}"
        )
    return weights


def run_weights(cfg: DictConfig) -> dict[str, float]:
    """:func:`resolve_weights` of a composed train config (``auxiliary`` and ``model``).

    Raises:
        BadConfigError: as :func:`resolve_weights`, or a ``model._target_`` that is not a class.
    """
    target = str(cfg.model.get("_target_", ""))
    try:
        model_class = get_class(target)
    except Exception as exc:  # noqa: BLE001 - Hydra raises several kinds for a bad path
        raise BadConfigError(f"model._target_={target} is not a model class: {exc}") from exc
    return resolve_weights(train_settings(cfg).auxiliary, model_class)
