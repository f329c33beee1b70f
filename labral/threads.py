"""Intra-op threads for one process of a job that torchrun may have started several of."""

from __future__ import annotations

import os


def cores_available() -> int:
    """CPU cores this process may run on (its affinity mask), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def local_ranks() -> int:
    """Processes torchrun started on this machine (``LOCAL_WORLD_SIZE``; 1 outside torchrun)."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def cores_per_rank() -> int:
    """This process's share of the cores: :func:`cores_available` / :func:`local_ranks`, >= 1."""
    return max(1, cores_available() // local_ranks())


def threads_per_rank(requested: int | None, setting: str = "num_threads") -> int:
    """The intra-op thread count to use; ``requested`` None means auto, and the choice is printed.

    Auto is this rank's share of the cores: :func:`cores_available` divided by torchrun's
    ``LOCAL_WORLD_SIZE`` (1 outside torchrun), at least 1. On a 2-core machine two DDP ranks
    of 2 threads each oversubscribe the cores and train several times slower than one
    thread each (README, Benchmarks).

    Args:
        requested: a thread count from the config, or None for auto.
        setting: the config key, named in the printed line.
    """
    if requested is not None:
        threads, why = int(requested), setting
    else:
        threads = cores_per_rank()
        why = f"{setting}=null: {cores_available()} cores / {local_ranks()} local ranks"
    print(f"torch intra-op threads: {threads} ({why})")
    return threads
