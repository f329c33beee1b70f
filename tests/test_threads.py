"""Intra-op threads per rank: an explicit count is kept, null shares the cores among local ranks."""

from __future__ import annotations

import pytest

from labral.threads import cores_available, threads_per_rank


def test_an_explicit_count_is_kept(capsys, monkeypatch) -> None:
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert threads_per_rank(3, "trainer.num_threads") == 3
    assert "torch intra-op threads: 3 (trainer.num_threads)" in capsys.readouterr().out


@pytest.mark.parametrize(("cores", "local", "want"), [(2, 1, 2), (2, 2, 1), (16, 4, 4), (2, 4, 1)])
def test_null_divides_the_cores_by_the_local_world_size(
    capsys, monkeypatch, cores, local, want
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(local))
    assert cores_available() == cores
    assert threads_per_rank(None, "trainer.num_threads") == want
    line = capsys.readouterr().out
    assert f"{want} (trainer.num_threads=null: {cores} cores / {local} local ranks)" in line


def test_outside_torchrun_every_core_is_used(monkeypatch) -> None:
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2})
    assert threads_per_rank(None) == 3
