"""Score a suite on several processes (``torchrun``): one shard of the clips per rank, merged.

    torchrun --nproc_per_node=2 -m labral.bench.command bundle=... suite=...

Each rank runs :func:`labral.bench.suite_scoring.score_pass` unchanged on its shard and the
per-clip :class:`~labral.scoring.ClipScore` objects are all-gathered (gloo on CPU), so every
rank ends with the :class:`~labral.bench.suite_scoring.PassResult` one process would compute.

Why the result is the same, not merely close:

- Shards are whole batches: batch ``b`` (clips ``b * batch_size`` ...) goes to rank
  ``b % world_size``. A rank's consecutive batches are then exactly the one-process batches,
  so every model call sees the same rows (batch composition can change float results).
- A perturbation is applied with the clip's index in the whole suite (its seed is
  ``seed * 1_000_003 + index`` in :func:`~labral.bench.suite_scoring.prepare_clip`), by the shard
  itself, so that ``score_pass`` does not re-seed it with a shard-local index.
- Scores are merged by suite index; logits, probabilities, decisions, relevance, peak frames
  and spatial maps are copied, not recomputed.

Only the timings differ: ``seconds`` is the slowest rank's pass, ``model_seconds`` the sum
over ranks (model time spent in total). With ``WORLD_SIZE`` 1 (or unset) this is exactly
``score_pass``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch.distributed as dist

from labral.bench import perturb
from labral.bench.suite_scoring import ClipSource, ModelScores, PassResult, score_pass
from labral.bundle import Bundle
from labral.datasets.io.clip import Clip


def join_scoring_group() -> tuple[int, int]:
    """Join torchrun's process group (gloo) when ``WORLD_SIZE`` > 1 and none is joined yet.

    Returns:
        ``(rank, world_size)``; ``(0, 1)`` outside torchrun. Leave with
        :func:`leave_scoring_group` (or ``torch.distributed.destroy_process_group``).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    return world()


def leave_scoring_group() -> None:
    """Leave the process group if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: the process group's, else torchrun's env."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def shard_indices(count: int, batch_size: int, rank: int, world_size: int) -> list[int]:
    """Suite indices of ``rank``'s shard: every ``world_size``-th batch, starting at ``rank``.

    Returns:
        Increasing indices; the shards of all ranks partition ``range(count)``.
    """
    size = max(1, int(batch_size))
    return [
        index
        for start in range(rank * size, count, world_size * size)
        for index in range(start, min(start + size, count))
    ]


class ShardSource(ClipSource):
    """The clips of one shard of a :class:`ClipSource`, perturbed with their suite index.

    Args:
        source: the whole suite (its decoded-clip cache is shared).
        indices: suite indices of the shard, in order.
        perturbation: ``(name, level, seed)`` as :func:`score_pass` takes it, or None.
    """

    def __init__(
        self,
        source: ClipSource,
        indices: Sequence[int],
        perturbation: tuple[str, float, int] | None = None,
    ) -> None:
        super().__init__([source.paths[i] for i in indices], keep=False)
        self.source, self.indices, self.perturbation = source, list(indices), perturbation

    def get(self, index: int) -> Clip:
        """Clip ``index`` of the shard (suite clip ``indices[index]``), uint8 (T, H, W)."""
        suite_index = self.indices[index]
        clip = self.source.get(suite_index)
        if self.perturbation is not None:
            name, level, seed = self.perturbation
            clip = perturb.apply(clip, name, level, seed * 1_000_003 + suite_index)
        return clip


def merge_shards(count: int, shards: Sequence[tuple[list[int], PassResult]]) -> PassResult:
    """One :class:`PassResult` over ``count`` clips from every rank's ``(indices, result)``.

    Raises:
        ValueError: the shards do not cover every clip exactly once.
    """
    covered = sorted(i for indices, _ in shards for i in indices)
    if covered != list(range(count)):
        raise ValueError(f"the shards cover {len(covered)} clip slots, not each of {count} once")
    n_bundles = len(shards[0][1].scores)
    scores = [ModelScores.empty(count) for _ in range(n_bundles)]
    for indices, result in shards:
        for b in range(n_bundles):
            for local, suite_index in enumerate(indices):
                scores[b].put(suite_index, result.scores[b].clips[local])
    seconds = max(result.seconds for _, result in shards)
    model_seconds = [sum(result.model_seconds[b] for _, result in shards) for b in range(n_bundles)]
    return PassResult(scores, seconds, model_seconds)


def score_pass_distributed(
    source: ClipSource,
    bundles: Sequence[Bundle],
    transforms: Sequence[Callable[[dict], dict]],
    *,
    batch_size: int = 16,
    perturbation: tuple[str, float, int] | None = None,
    **options: Any,
) -> PassResult:
    """:func:`score_pass` with the clips sharded over the ranks and the scores all-gathered.

    Call it on every rank with the same suite, bundles and arguments. Under torchrun it
    joins the process group first (:func:`join_scoring_group`, gloo); with one process it
    is ``score_pass`` itself.

    Args:
        source, bundles, transforms, batch_size, perturbation: as for :func:`score_pass`.
        options: the other keywords of :func:`score_pass` (``workers``, ``prefetch``,
            ``progress``, ``spatial``), applied to this rank's shard.

    Returns:
        On every rank, the :class:`PassResult` of the whole suite, clips in suite order,
        with the scores one process would compute (see the module docstring).
    """
    rank, world_size = join_scoring_group()
    if world_size <= 1:
        return score_pass(
            source, bundles, transforms, batch_size=batch_size, perturbation=perturbation,
            **options,
        )  # fmt: skip
    indices = shard_indices(len(source), batch_size, rank, world_size)
    shard = ShardSource(source, indices, perturbation)
    local = score_pass(shard, bundles, transforms, batch_size=batch_size, **options)
    gathered: list[Any] = [None] * world_size
    dist.all_gather_object(gathered, (indices, local))
    return merge_shards(len(source), gathered)
