"""Dynamic batching: requests that arrive together are scored in one model call.

The first waiting request opens a batch; the batch closes when it holds
``max_batch_size`` images or ``timeout`` seconds after it opened, whichever
comes first. The model runs in one worker thread, so the event loop keeps
accepting requests (and answering ``/livez``) while a batch is scored.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: score(items) -> one result per item; runs in the worker thread.
ScoreFn = Callable[[list[Any]], list[Any]]


@dataclass
class _Pending:
    items: list[Any]
    future: asyncio.Future[list[Any]]
    queued_at: float = field(default_factory=time.perf_counter)


class Batcher:
    """Collect items from concurrent requests into batches for ``score``."""

    def __init__(
        self,
        score: ScoreFn,
        max_batch_size: int,
        timeout: float,
        on_batch: Callable[[int], None] | None = None,
        on_queue: Callable[[int], None] | None = None,
    ) -> None:
        self.score = score
        self.max_batch_size = max_batch_size
        self.timeout = timeout
        self.on_batch = on_batch
        self.on_queue = on_queue
        self.queued_images = 0
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="curate-model")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, items: list[Any]) -> list[Any]:
        """Score ``items`` in the next batch; one result per item, in order."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._queued(len(items))
        await self._queue.put(_Pending(items, future))
        return await future

    async def run_alone(self, items: list[Any]) -> list[Any]:
        """Score ``items`` in the model thread, outside any batch (warm-up, canary)."""
        return await self.in_model_thread(lambda: self.score(items))

    async def in_model_thread(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in the thread that runs the model (loading it, for one)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def stop(self) -> None:
        """Score what is queued, then stop."""
        await self._queue.put(None)
        if self._task is not None:
            await self._task
        self._pool.shutdown(wait=True)

    def _queued(self, delta: int) -> None:
        self.queued_images += delta
        if self.on_queue:
            self.on_queue(self.queued_images)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch, size = [first], len(first.items)
            deadline = loop.time() + self.timeout
            while size < self.max_batch_size:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    more = await asyncio.wait_for(self._queue.get(), left)
                except TimeoutError:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
                size += len(more.items)
            await self._score(batch, size)
        while not self._queue.empty():  # anything queued before the stop is still answered
            rest = self._queue.get_nowait()
            if rest is not None:
                await self._score([rest], len(rest.items))

    async def _score(self, batch: list[_Pending], size: int) -> None:
        loop = asyncio.get_running_loop()
        items = [item for pending in batch for item in pending.items]
        self._queued(-size)
        if self.on_batch:
            self.on_batch(size)
        try:
            results = await loop.run_in_executor(self._pool, self.score, items)
        except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        start = 0
        for pending in batch:
            n = len(pending.items)
            if not pending.future.done():
                pending.future.set_result(results[start : start + n])
            start += n
