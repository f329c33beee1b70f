"""``labral pretrain``: self-supervised pretraining on unlabelled clips.

A clinic has thousands of unlabelled exams and a hundred labelled hips. ``labral pretrain``
reads a manifest whose rows need only ``path`` and ``patient`` (a ``label`` column is allowed
and never read), trains the network of ``model=...`` without labels, and writes
``<run dir>/checkpoints/best.pt``, which ``labral train experiment=finetune
model.init_weights=<run dir>/checkpoints/best.pt`` starts from::

    labral pretrain experiment=cleft data.manifest=unlabelled.jsonl trainer.max_epochs=10
    labral train experiment=cleft data.manifest=labelled.jsonl \\
        model.init_weights=outputs/.../checkpoints/best.pt

It composes the same config tree as ``labral train`` (model, data, transforms, optim,
scheduler, trainer; ``experiment=cleft`` included), so the pretrained weights fit the model
that fine-tunes.

**The objective: temporal contrastive (InfoNCE), sized for 2 cores.** Each clip gives two
views, each a random window with the training augmentation drawn independently (gain, TGC,
speckle, JPEG, frame jitter). A projection head maps the network's clip embedding
(``outputs(x)["embedding"]``, float32 (B, D)) to the unit sphere, and each view must pick its
twin among the batch's other clips *and every clip played backwards*, its own reversed copy
included (``pretrain.reversed_negatives``). Appearance alone cannot tell a clip from its
reversal; only the direction of motion can, and the direction in which fluid crosses the
cleft during loading is what the sign is. A masked-video objective (a decoder rebuilding
hidden tubes) would cost several times the network's own forward pass on 2 cores.

Clips whose ``split`` is ``test`` are left out (so a test split stays unseen). Each epoch
writes ``checkpoints/last.pt`` atomically (weights, projection head, optimizer, scheduler,
RNG states); ``resume=true`` continues from it. The epoch with the lowest loss is ``best.pt``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from labral.datasets.clip_dataset import ClipDataset
from labral.datasets.manifests.manifest import load_manifest
from labral.errors import BadConfigError, BadManifestError
from labral.threads import threads_per_rank
from labral.train.checkpoint_files import (
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from labral.train.data import manifest_path
from labral.train.parts import build_model, seed_everything, select_device
from labral.train.settings import PretrainSettings, train_settings


class ProjectionHead(nn.Module):
    """Embedding (B, D) -> unit vectors (B, P): Linear, ReLU, Linear, L2 normalisation."""

    def __init__(self, dim: int, out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, out))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(embedding), dim=1)


def embed(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The network's clip embedding, float32 (B, D), of clips x float32 (B, 1, T, H, W).

    Raises:
        BadConfigError: the model has no ``outputs(x)["embedding"]`` (model=cleft has).
    """
    outputs = getattr(model, "outputs", None)
    result = outputs(x) if callable(outputs) else None
    if not isinstance(result, dict) or "embedding" not in result:
        raise BadConfigError(
            f"labral pretrain: {type(model).__name__} gives no clip embedding "
            "(outputs(x)['embedding']); pretrain model=cleft (experiment=cleft)"
        )
    return result["embedding"]


def contrastive_loss(
    first: torch.Tensor,
    second: torch.Tensor,
    reversed_first: torch.Tensor | None,
    temperature: float,
) -> torch.Tensor:
    """Symmetric InfoNCE between two views' unit vectors.

    Args:
        first, second: float32 (B, P) unit vectors of the two views of B clips (row i of
            each is clip i).
        reversed_first: float32 (B, P) unit vectors of the first views played backwards, or
            None: every one is a negative for every anchor, its own clip's included.
        temperature: softmax temperature.

    Returns:
        The mean cross-entropy of picking the twin, over both directions (scalar).
    """
    target = torch.arange(first.shape[0], device=first.device)
    losses = []
    for anchor, twin in ((first, second), (second, first)):
        candidates = twin if reversed_first is None else torch.cat([twin, reversed_first])
        losses.append(F.cross_entropy(anchor @ candidates.T / temperature, target))
    return (losses[0] + losses[1]) / 2


def unlabelled_rows(cfg: DictConfig, fraction: float) -> list[dict[str, Any]]:
    """The manifest's clips for pretraining: every split but ``test``, labels ignored;
    ``fraction`` < 1 keeps that share of the patients (sorted ids, every k-th).

    Raises:
        BadManifestError: no clip left.
    """
    path = manifest_path(cfg)
    rows = [r for r in load_manifest(path, labelled=False) if r.get("split") != "test"]
    if fraction < 1.0:
        patients = sorted({r["patient"] for r in rows})
        keep = set(patients[:: max(1, round(1 / fraction))])
        rows = [r for r in rows if r["patient"] in keep]
    if len(rows) < 2:
        raise BadManifestError(f"{path}: {len(rows)} clip(s) outside the test split; need 2+")
    # ClipDataset carries a label per clip; pretraining never reads it
    return [{**r, "label": 0} for r in rows]


def _clips(cfg: DictConfig, rows: list[dict[str, Any]]) -> ClipDataset:
    """The clips with the training transform (random window, augmentation), each decoded
    once: both views are draws of the same cached clip."""
    spec = OmegaConf.to_container(cfg.transforms.eval, resolve=True)
    augment = OmegaConf.to_container(cfg.transforms.get("augment", {}) or {}, resolve=True)
    return ClipDataset(
        rows, spec, train=True, augment=augment, cache_dir=cfg.data.cache_dir, seed=int(cfg.seed)
    )


class _Pairs(torch.utils.data.Dataset):
    """Item i: two views of clip i, float32 (1, T, H, W) each: the dataset's augmentation
    draws ``2 * epoch`` and ``2 * epoch + 1``."""

    def __init__(self, clips: ClipDataset) -> None:
        self.clips, self.epoch = clips, 0

    def __len__(self) -> int:
        return len(self.clips)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        draw = 2 * self.epoch
        return self.clips.item(index, draw)["image"], self.clips.item(index, draw + 1)["image"]


def run(cfg: DictConfig) -> dict[str, Any]:
    """Entry point of ``labral pretrain``; returns the run's summary (also ``pretrain.json``).

    Raises:
        BadConfigError: a model without a clip embedding, or ``trainer=ddp``;
            BadManifestError: no clips.
    """
    settings = train_settings(cfg)
    ssl: PretrainSettings = settings.pretrain
    if settings.trainer.strategy == "ddp":
        raise BadConfigError("labral pretrain runs in one process: leave out trainer=ddp")
    run_dir = Path(str(cfg.paths.output_dir))
    torch.set_num_threads(threads_per_rank(settings.trainer.num_threads, "trainer.num_threads"))
    seed_everything(settings.seed)
    device = select_device(settings.trainer)
    pairs = _Pairs(_clips(cfg, unlabelled_rows(cfg, ssl.unlabelled_fraction)))
    batch = min(int(cfg.data.batch_size), len(pairs))
    loader = DataLoader(
        pairs, batch_size=batch, shuffle=True, drop_last=True, num_workers=int(cfg.data.num_workers)
    )
    model = build_model(cfg).to(device)
    with torch.no_grad():
        width = embed(model.eval(), pairs[0][0].unsqueeze(0).to(device)).shape[1]
    head = ProjectionHead(width, ssl.projection_dim).to(device)
    epochs = int(settings.trainer.max_epochs)
    optimizer = instantiate(cfg.optim)(params=[*model.parameters(), *head.parameters()])
    scheduler = instantiate(cfg.scheduler)(
        optimizer, total_steps=len(loader) * epochs, steps_per_epoch=len(loader)
    )
    parts = {"model": model, "projection": head, "optimizer": optimizer, "scheduler": scheduler}
    folder = run_dir / "checkpoints"
    state: dict[str, Any] = {"epoch": -1, "best_loss": math.inf, "history": []}
    if settings.resume and (folder / "last.pt").is_file():
        ckpt = load_checkpoint(folder / "last.pt")
        for name, part in parts.items():
            part.load_state_dict(ckpt[name])
        restore_rng_state(ckpt["rng"])
        state = ckpt["pretrain_state"]
        print(f"pretrain: resumed after epoch {state['epoch']}", flush=True)
    print(
        f"pretrain: {len(pairs)} unlabelled clips, {len(loader)} batches of {batch}, "
        f"{epochs} epochs, {type(model).__name__}",
        flush=True,
    )
    for epoch in range(state["epoch"] + 1, epochs):
        started = time.perf_counter()
        pairs.set_epoch(epoch)
        loss = _epoch(model, head, loader, optimizer, scheduler, ssl, device)
        seconds = time.perf_counter() - started
        state["epoch"] = epoch
        state["history"].append({"epoch": epoch, "loss": loss, "seconds": round(seconds, 1)})
        print(
            f"pretrain epoch {epoch}: loss {loss:.4f} ({len(loader) * batch / seconds:.1f} clips/s)"
        )
        improved = loss < state["best_loss"]
        state["best_loss"] = min(loss, state["best_loss"])
        checkpoint = {name: part.state_dict() for name, part in parts.items()}
        checkpoint.update(
            rng=capture_rng_state(),
            pretrain_state=state,
            config=OmegaConf.to_container(cfg, resolve=True),
        )
        if improved:
            save_checkpoint(checkpoint, folder / "best.pt")
        save_checkpoint(checkpoint, folder / "last.pt")
    summary = {
        "clips": len(pairs),
        "skipped": pairs.clips.skipped,  # unreadable clips (ClipDataset logs them too)
        "epochs": epochs,
        "history": state["history"],
        "best_loss": state["best_loss"],
        "weights": str(folder / "best.pt"),
    }
    (run_dir / "pretrain.json").write_text(json.dumps(summary, indent=2))
    print(f"labral pretrain: best loss {state['best_loss']:.4f}\n  {folder / 'best.pt'}")
    return summary


def _epoch(
    model: nn.Module,
    head: ProjectionHead,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    ssl: PretrainSettings,
    device: torch.device,
) -> float:
    """One pass over the pairs; the mean loss."""
    model.train()
    head.train()
    total, count = 0.0, 0
    for first, second in loader:
        first, second = first.to(device), second.to(device)
        n = first.shape[0]
        clips = [first, second] + ([first.flip(2)] if ssl.reversed_negatives else [])
        vectors = head(embed(model, torch.cat(clips)))
        reversed_first = vectors[2 * n :] if ssl.reversed_negatives else None
        loss = contrastive_loss(vectors[:n], vectors[n : 2 * n], reversed_first, ssl.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total, count = total + loss.item() * n, count + n
    return total / max(count, 1)
