"""Fine-tuning from a pretrained run: a lower backbone learning rate and a frozen backbone.

``experiment=finetune model.init_weights=<run>/checkpoints/best.pt`` sets the two knobs of
the ``finetune`` node in ``configs/train.yaml`` (the one source of their defaults):

- ``finetune.backbone_lr_scale``: the backbone's learning rate is the optimizer's ``lr``
  times this (the head keeps ``lr``). Two parameter groups, ``head`` then ``backbone``;
  the scheduler scales both alike.
- ``finetune.freeze_backbone_epochs``: for the first N epochs only the head trains. A frozen
  backbone has ``requires_grad=False`` (so it gets no gradient, and AdamW neither steps nor
  decays it) and its modules stay in eval mode (BatchNorm running statistics stay those of
  the pretrained net).

The head is the net's ``head`` attribute (every labral model has one:
``TemporalCamHead`` or the still-frame baseline's linear layer); everything else is the
backbone.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig
from torch import nn

from labral.errors import BadConfigError
from labral.train.settings import train_settings

HEAD = "head"


def head_module(model: nn.Module) -> nn.Module:
    """The classification head of a labral net (its ``head`` attribute).

    Raises:
        BadConfigError: the model has no ``head`` (finetune settings cannot apply).
    """
    head = getattr(model, HEAD, None)
    if not isinstance(head, nn.Module):
        raise BadConfigError(
            f"finetune: {type(model).__name__} has no `head` module, so the backbone cannot "
            "be told apart; use finetune.backbone_lr_scale=1 finetune.freeze_backbone_epochs=0"
        )
    return head


def backbone_modules(model: nn.Module) -> list[nn.Module]:
    """The direct children of ``model`` other than its head (stem, stages/layers, ...)."""
    head = head_module(model)
    return [child for child in model.children() if child is not head]


def finetune_settings(cfg: DictConfig) -> tuple[float, int]:
    """``(backbone_lr_scale, freeze_backbone_epochs)`` from ``cfg.finetune``, checked.

    Raises:
        BadConfigError: a scale outside [0, 1] or a negative epoch count, named.
    """
    node = train_settings(cfg).finetune
    scale, frozen = node.backbone_lr_scale, node.freeze_backbone_epochs
    if not 0.0 <= scale <= 1.0:
        raise BadConfigError(
            f"finetune.backbone_lr_scale={scale}: must be in [0, 1] (a fraction of optim.lr)"
        )
    if frozen < 0:
        raise BadConfigError(f"finetune.freeze_backbone_epochs={frozen}: must be >= 0")
    return scale, frozen


def param_groups(model: nn.Module, cfg: DictConfig, base_lr: float) -> Any:
    """What the optimizer is finished with: all parameters, or head/backbone groups.

    Args:
        model: the unwrapped net.
        cfg: the train config (``finetune`` node).
        base_lr: ``optim.lr``.

    Returns:
        ``model.parameters()`` when ``backbone_lr_scale == 1`` and nothing is frozen (the
        plain run, unchanged), else ``[{"name": "head", "params", "lr": base_lr},
        {"name": "backbone", "params", "lr": base_lr * scale}]``.
    """
    scale, frozen = finetune_settings(cfg)
    if scale == 1.0 and frozen == 0:
        return model.parameters()
    head = list(head_module(model).parameters())
    head_ids = {id(p) for p in head}
    backbone = [p for p in model.parameters() if id(p) not in head_ids]
    return [
        {"name": "head", "params": head, "lr": base_lr},
        {"name": "backbone", "params": backbone, "lr": base_lr * scale},
    ]


def set_backbone_frozen(model: nn.Module, frozen: bool) -> None:
    """Freeze (or unfreeze) every backbone parameter: ``requires_grad = not frozen``."""
    for module in backbone_modules(model):
        for parameter in module.parameters():
            parameter.requires_grad_(not frozen)


def frozen_backbone(model: nn.Module, cfg: DictConfig, epoch: int) -> list[nn.Module]:
    """Apply the freeze for ``epoch`` and return the modules the loop keeps in eval mode.

    Args:
        model: the unwrapped net.
        cfg: the train config.
        epoch: the epoch about to train (0-based).

    Returns:
        The backbone modules while ``epoch < finetune.freeze_backbone_epochs`` (their
        parameters frozen), else ``[]`` (every parameter trainable again).
    """
    _, frozen = finetune_settings(cfg)
    if frozen == 0:
        return []
    freeze = epoch < frozen
    set_backbone_frozen(model, freeze)
    return backbone_modules(model) if freeze else []
