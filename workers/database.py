"""The worker's asyncpg pool, created on Dramatiq's event loop once the worker has booted."""

from __future__ import annotations

import asyncpg
import dramatiq
from dramatiq.asyncio import get_event_loop_thread

from web.core.db import create_pool


class DatabasePool(dramatiq.Middleware):
    """Opens the pool after boot (the loop exists only then) and closes it before shutdown."""

    def __init__(self, database_url: str, *, max_size: int) -> None:
        self._database_url = database_url
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the database pool is not open: the worker has not booted")
        return self._pool

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        loop_thread = get_event_loop_thread()
        assert loop_thread is not None, "the AsyncIO middleware must come before DatabasePool"
        self._pool = loop_thread.run_coroutine(
            create_pool(self._database_url, min_size=1, max_size=self._max_size)
        )

    # after_, not before_: Dramatiq calls before_worker_shutdown while its threads still take
    # prefetched messages, which would then fail on a closed pool. After-hooks run in reverse
    # order, so this still runs before the AsyncIO middleware stops the loop.
    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        loop_thread = get_event_loop_thread()
        if self._pool is not None and loop_thread is not None:
            loop_thread.run_coroutine(self._pool.close())
            self._pool = None
