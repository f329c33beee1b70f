"""Micro-batching and keeping the event loop free while the model runs."""

from __future__ import annotations

import asyncio
import threading
import time

import torch

from labral.serve.batching import MicroBatcher


def scaled_predict(x: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"value": x.flatten(1).sum(dim=1) * 2}


def test_concurrent_requests_share_a_batch_and_get_their_own_rows():
    sizes: list[int] = []

    async def main() -> list[float]:
        batcher = MicroBatcher(scaled_predict, max_batch=8, window_ms=50, on_batch=sizes.append)
        batcher.start()
        inputs = [torch.full((1, 1, 2, 2, 2), float(i)) for i in range(6)]
        outs = await asyncio.gather(*(batcher.submit(x) for x in inputs))
        await batcher.stop()
        return [float(o["value"][0]) for o in outs]

    values = asyncio.run(main())
    assert values == [16.0 * i for i in range(6)]  # 8 elements * i * 2, in request order
    assert sum(sizes) == 6 and max(sizes) > 1


def test_batches_never_exceed_max_batch():
    rows: list[int] = []

    def predict(x: torch.Tensor) -> dict[str, torch.Tensor]:
        rows.append(x.shape[0])
        return {"value": x.flatten(1).sum(dim=1)}

    async def main() -> None:
        batcher = MicroBatcher(predict, max_batch=3, window_ms=50)
        batcher.start()
        sizes = [1, 2, 1, 2, 2, 1, 1]  # clips with several windows bring several rows
        outs = await asyncio.gather(*(batcher.submit(torch.ones(n, 1, 1, 1, 1)) for n in sizes))
        assert [o["value"].shape[0] for o in outs] == sizes
        await batcher.stop()

    asyncio.run(main())
    assert sum(rows) == 10 and max(rows) == 3


def test_event_loop_answers_while_model_runs():
    release = threading.Event()

    def blocking(x: torch.Tensor) -> dict[str, torch.Tensor]:
        release.wait(5)
        return {"value": x.flatten(1).sum(dim=1)}

    async def main() -> float:
        batcher = MicroBatcher(blocking, max_batch=2, window_ms=0)
        batcher.start()
        pending = asyncio.ensure_future(batcher.submit(torch.ones(1, 1, 1, 1, 1)))
        start = time.perf_counter()
        await asyncio.sleep(0.05)  # would hang if the model ran on the loop
        answered_after = time.perf_counter() - start
        release.set()
        await pending
        await batcher.stop()
        return answered_after

    assert asyncio.run(main()) < 1.0


def test_model_error_reaches_every_waiter():
    def broken(x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise RuntimeError("boom")

    async def main() -> list:
        batcher = MicroBatcher(broken, max_batch=4, window_ms=20)
        batcher.start()
        results = await asyncio.gather(
            *(batcher.submit(torch.ones(1, 1, 1, 1, 1)) for _ in range(3)),
            return_exceptions=True,
        )
        await batcher.stop()
        return results

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(main()))


def test_healthz_answers_during_slow_inference(client, clips, monkeypatch):
    batcher = client.app.state.service.batcher
    real = batcher._predict
    started = threading.Event()

    def slow(x):
        started.set()
        time.sleep(1.5)
        return real(x)

    monkeypatch.setattr(batcher, "_predict", slow)
    result = {}
    worker = threading.Thread(
        target=lambda: result.setdefault(
            "r",
            client.post(
                "/v1/predictions",
                content=clips["bright.dcm"].read_bytes(),
                headers={"Content-Type": "application/dicom"},
            ),
        )
    )
    worker.start()
    assert started.wait(10)
    t0 = time.perf_counter()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert time.perf_counter() - t0 < 0.5
    worker.join(10)
    assert result["r"].status_code == 200
