"""Turns at ingest: at most so many body bytes parsed, judged or on their way to the queue.

Judging a 500-event batch holds the event loop for milliseconds. Under more load than the
process can judge, every request it has read would otherwise be judged at once, each then
waiting behind the others for its turn to be enqueued, and refused (503) when that took
longer than the enqueue timeout: work done, then thrown away. With a budget, a request
waits its turn before any work is done on it; one whose turn does not come in time is
refused then, for the price of a short answer, and the process's CPU goes to requests it
will accept.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class NoTurn(Exception):
    """A request's turn did not come within the wait allowed."""


class JudgingBudget:
    """A first-come, first-served budget of body bytes, taken while a request is worked on.

    A request larger than the whole budget waits until nothing else is being worked on.
    Single events (a few hundred bytes) never wait in practice: the budget holds thousands.
    """

    def __init__(self, budget_bytes: int) -> None:
        self._budget = budget_bytes
        self._free = budget_bytes
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @asynccontextmanager
    async def turn(self, size_bytes: int, within: float) -> AsyncIterator[None]:
        """Hold `size_bytes` of the budget for the block; NoTurn if it is not free in
        `within` seconds (nothing was taken then)."""
        size = min(size_bytes, self._budget)
        await self._take(size, within)
        try:
            yield
        finally:
            self._free += size
            self._wake()

    @property
    def waiting(self) -> int:
        """Requests waiting for their turn now."""
        return sum(1 for _, granted in self._waiting if not granted.done())

    async def _take(self, size: int, within: float) -> None:
        if not self._waiting and size <= self._free:
            self._free -= size
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((size, granted))
        try:
            # A turn given just as the wait ran out is still taken: wait_for returns then.
            await asyncio.wait_for(granted, within)
        except TimeoutError:
            # wait_for cancelled `granted`; _wake drops it. Those queued behind it may fit now.
            self._wake()
            raise NoTurn(f"no turn within {within:g} s") from None
        except asyncio.CancelledError:  # the request went away while it waited
            self._wake()
            raise

    def _wake(self) -> None:
        while self._waiting:
            size, granted = self._waiting[0]
            if granted.done():  # gave up waiting
                self._waiting.popleft()
                continue
            if size > self._free:
                return
            self._waiting.popleft()
            self._free -= size
            granted.set_result(None)
