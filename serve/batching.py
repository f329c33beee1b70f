"""Micro-batching: concurrent requests share one model call, run off the event loop.

Requests put their preprocessed tensor on a queue; one collector task takes the first,
waits up to ``window_ms`` for more (up to ``max_batch`` rows), concatenates them and runs
the model in a single dedicated worker thread. While the model runs, new requests queue up,
so batches grow by themselves under load and stay at 1 when idle.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

Predict = Callable[[torch.Tensor], dict[str, torch.Tensor]]


class MicroBatcher:
    """Batch ``predict`` calls from many coroutines.

    Args:
        predict: maps float32 (B, 1, T, H, W) to a dict of tensors with leading dim B.
        max_batch: most rows (windows) per model call.
        window_ms: how long the first request of a batch waits for company.
        on_batch: optional callback with the number of clips of each model call.
        incoming: optional count of requests still decoding; when it is 0 and the queue is
            empty the batch runs at once instead of waiting ``window_ms`` for company that
            cannot come (no added latency at low load).
    """

    def __init__(
        self,
        predict: Predict,
        max_batch: int = 8,
        window_ms: float = 5.0,
        on_batch: Callable[[int], None] | None = None,
        incoming: Callable[[], int] | None = None,
    ) -> None:
        self._predict = predict
        self._max_batch = max_batch
        self._window_s = window_ms / 1000.0
        self._on_batch = on_batch
        self._incoming = incoming or (lambda: 1)
        self._queue: asyncio.Queue[tuple[torch.Tensor, asyncio.Future]] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="labral-model")
        self._task: asyncio.Task | None = None
        self._carry: tuple[torch.Tensor, asyncio.Future] | None = None

    def start(self) -> None:
        """Start the collector task on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        """Cancel the collector, fail pending requests and stop the worker thread."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        pending = [self._carry] if self._carry else []
        while not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for _, future in pending:
            if not future.done():
                future.cancel()
        self._carry = None
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Score ``x`` float32 (N, 1, T, H, W); returns the model outputs for its N rows."""
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put((x, future))
        return await future

    def run_now(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Blocking call in the worker thread's place (warm-up before the loop serves)."""
        return self._predict(x)

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first, self._carry = self._carry or await self._queue.get(), None
            items = [first]
            rows = first[0].shape[0]
            deadline = loop.time() + self._window_s
            while rows < self._max_batch:
                if self._queue.empty() and self._incoming() == 0:
                    break
                timeout = deadline - loop.time()
                try:
                    item = (
                        self._queue.get_nowait()
                        if timeout <= 0
                        else await asyncio.wait_for(self._queue.get(), timeout)
                    )
                except (asyncio.QueueEmpty, TimeoutError):
                    break
                if rows + item[0].shape[0] > self._max_batch:
                    self._carry = item  # first of the next batch
                    break
                items.append(item)
                rows += item[0].shape[0]
            items = [(x, f) for x, f in items if not f.cancelled()]
            if not items:
                continue
            await self._run(loop, items)

    async def _run(self, loop: asyncio.AbstractEventLoop, items: list) -> None:
        batch = torch.cat([x for x, _ in items], dim=0)
        if self._on_batch is not None:
            self._on_batch(len(items))
        try:
            out = await loop.run_in_executor(self._executor, self._predict, batch)
        except Exception as exc:  # the model failed: every waiting request gets the error
            for _, future in items:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for x, future in items:
            stop = start + x.shape[0]
            if not future.done():
                future.set_result({key: value[start:stop] for key, value in out.items()})
            start = stop
