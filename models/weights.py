"""Start a network from a local state dict (``model.init_weights=PATH``); nothing downloads.

Accepted files, all read with ``torch.load(..., weights_only=True)``:

- a labral checkpoint (``checkpoints/best.pt`` or ``last.pt``: its ``model`` entry);
- a plain state dict (``torch.save(model.state_dict(), path)``), or a dict holding one
  under ``state_dict``;
- torchvision's Kinetics-400 files for ``r2plus1d_18`` / ``r3d_18`` / ``mc3_18``, as users
  download them (e.g. ``r2plus1d_18-91a641e6.pth``), for ``labral.models.video_resnet``.

On the way in: ``module.`` (DDP) and ``_orig_mod.`` (``torch.compile``) prefixes are
stripped; torchvision's ``layer1``..``layer4`` become labral's ``layers.0``..``layers.3``;
a kernel that takes 3 input channels where the model takes 1 (the RGB stem) is summed over
its input channels, which gives a grey clip exactly the response the RGB net gives the same
grey frames on all three channels. The Kinetics classifier (``fc``) matches nothing and is
reported as unexpected; the labral head starts from scratch. Kinetics nets were trained on
mean/std-normalised RGB; labral feeds [0, 1] grey, and fine-tuning absorbs the offset.

This module reads the one file it is given and no config (see ``labral.train.command``).
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from labral.errors import BadConfigError

_PREFIXES = ("module.", "_orig_mod.")
_TORCHVISION_LAYER = re.compile(r"^layer([1-4])\.")
_SHOWN = 4


@dataclass
class WeightsReport:
    """What :func:`load_init_weights` did; ``str()`` is the line ``labral train`` prints."""

    path: str
    source: str
    loaded: int
    total: int
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        def names(keys: list[str]) -> str:
            shown = ", ".join(keys[:_SHOWN]) + (", ..." if len(keys) > _SHOWN else "")
            return f" ({shown})" if keys else ""

        adapted = f"; RGB kernels summed to 1 channel: {', '.join(self.adapted)}"
        return (
            f"init_weights: loaded {self.loaded} of the model's {self.total} tensors from "
            f"{self.path} ({self.source}{adapted if self.adapted else ''}); "
            f"missing {len(self.missing)}{names(self.missing)}, "
            f"unexpected {len(self.unexpected)}{names(self.unexpected)}"
        )


def _tensors_only(state: object) -> bool:
    return (
        isinstance(state, dict)
        and bool(state)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    )


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict in ``path`` and the kind of file it came from.

    Args:
        path: a labral checkpoint, a plain state dict, or a torchvision weights file.

    Returns:
        ``(state dict with prefixes stripped, source description)``.

    Raises:
        BadConfigError: no such file, a file ``torch.load(weights_only=True)`` refuses, or
            no state dict inside.
    """
    where = f"model.init_weights={path}"
    file = Path(path).expanduser()
    if not file.is_file():
        raise BadConfigError(f"{where}: no such file; give a local state dict (nothing downloads)")
    try:
        raw = torch.load(file, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BadConfigError(
            f"{where}: not a weights file torch.load(weights_only=True) accepts ({first[:200]}); "
            "save a state dict with torch.save(model.state_dict(), path)"
        ) from error
    if isinstance(raw, dict) and _tensors_only(raw.get("model")):
        state, source = raw["model"], "labral checkpoint"
    elif isinstance(raw, dict) and _tensors_only(raw.get("state_dict")):
        state, source = raw["state_dict"], "state dict"
    elif _tensors_only(raw):
        state, source = raw, "state dict"
    else:
        raise BadConfigError(
            f"{where}: holds no state dict (a dict of tensors, or a labral checkpoint with "
            "a 'model' entry)"
        )
    stripped = {}
    for key, value in state.items():
        while key.startswith(_PREFIXES):
            key = key.split(".", 1)[1]
        stripped[key] = value
    return stripped, source


def adapt_state_dict(
    state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], list[str], bool]:
    """Rename torchvision's video ResNet keys and fold 3-channel kernels to the target's 1.

    Args:
        state: the file's state dict.
        target: the model's own state dict (names and shapes).

    Returns:
        ``(adapted state dict, names of the summed kernels, whether keys were renamed)``.
    """
    renamed = False
    if any(_TORCHVISION_LAYER.match(k) for k in state) and not any(
        _TORCHVISION_LAYER.match(k) for k in target
    ):
        state = {
            _TORCHVISION_LAYER.sub(lambda m: f"layers.{int(m.group(1)) - 1}.", k): v
            for k, v in state.items()
        }
        renamed = True
    adapted, out = [], {}
    for key, value in state.items():
        want = target.get(key)
        if (
            want is not None
            and value.ndim >= 4
            and value.shape[1] == 3
            and want.shape[1] == 1
            and value.shape[:1] + value.shape[2:] == want.shape[:1] + want.shape[2:]
        ):
            value = value.sum(dim=1, keepdim=True)
            adapted.append(key)
        out[key] = value
    return out, adapted, renamed


def load_init_weights(model: nn.Module, path: str | Path) -> WeightsReport:
    """Load the weights in ``path`` into ``model`` where names match (in place).

    Args:
        model: the freshly built network.
        path: a labral checkpoint, a state dict, or a torchvision Kinetics-400 file.

    Returns:
        A :class:`WeightsReport` (loaded, missing and unexpected keys; print it).

    Raises:
        BadConfigError: an unreadable file, a tensor whose shape differs from the model's
            (naming the first such layer and both shapes), or no tensor that fits at all.
    """
    state, source = read_state_dict(path)
    target = model.state_dict()
    state, adapted, renamed = adapt_state_dict(state, target)
    if renamed:
        source = "torchvision video ResNet"
    for key, want in target.items():
        if key in state and state[key].shape != want.shape:
            raise BadConfigError(
                f"model.init_weights={path}: layer {key!r} is {tuple(want.shape)} in the model "
                f"but {tuple(state[key].shape)} in the file; the weights belong to another "
                "architecture or setting: pick the model config they were trained with"
            )
    matched = {k: v for k, v in state.items() if k in target}
    if not matched:
        raise BadConfigError(
            f"model.init_weights={path}: no tensor of the file fits the model (the file has "
            f"{', '.join(list(state)[:_SHOWN])}, ...); pick the model config it was trained with"
        )
    model.load_state_dict(matched, strict=False)
    return WeightsReport(
        path=str(path),
        source=source,
        loaded=len(matched),
        total=len(target),
        missing=[k for k in target if k not in matched],
        unexpected=[k for k in state if k not in target],
        adapted=adapted,
    )
