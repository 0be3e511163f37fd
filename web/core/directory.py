"""An in-process cache of apps, so ingest does not query the database on every request."""

from __future__ import annotations

import time

import asyncpg

from web.core import queries

# Seconds a looked-up app is trusted; unknown ids are never cached, so a new app works at once.
APP_CACHE_SECONDS = 5.0


class AppDirectory:
    def __init__(self, pool: asyncpg.Pool, ttl: float = APP_CACHE_SECONDS) -> None:
        self._pool = pool
        self._ttl = ttl
        self._apps: dict[str, tuple[float, queries.App]] = {}

    async def get(self, app_id: str) -> queries.App | None:
        cached = self._apps.get(app_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        async with self._pool.acquire() as conn:
            app = await queries.select_app(conn, app_id)
        if app is None:
            self._apps.pop(app_id, None)
        else:
            self._apps[app_id] = (now, app)
        return app

    def forget(self, app_id: str) -> None:
        self._apps.pop(app_id, None)
