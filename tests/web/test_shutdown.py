"""Shutdown of a web process: it never hangs, on a held connection or a stubborn task."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from web.app import create_app
from web.core.db import create_pool
from web.core.settings import Settings
from web.lifespan import close_pool


async def test_close_pool_terminates_a_connection_still_held(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    held = await pool.acquire()  # a stuck request's connection, never released
    backend = await held.fetchval("SELECT pg_backend_pid()")
    started = time.monotonic()
    await close_pool(pool, 0.3)
    assert time.monotonic() - started < 2
    assert "still in use" in caplog.text
    # The server side is gone too, not only our socket.
    probe = await asyncpg.connect(settings.database_url)
    try:
        for _ in range(50):
            alive = await probe.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", backend
            )
            if not alive:
                break
            await asyncio.sleep(0.05)
        assert alive == 0
    finally:
        await probe.close()


async def test_close_pool_with_every_connection_back_closes_quietly(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    pool = await create_pool(settings.database_url, min_size=2, max_size=2)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1
    await close_pool(pool, 5)
    assert pool.is_closing()
    assert "still in use" not in caplog.text


async def test_an_app_shut_down_right_after_startup_stops_promptly(web_settings: Settings) -> None:
    """The status publisher is then mid-heartbeat in Redis, where redis-py's timeout can
    swallow a cancellation: shutdown must still finish (web.core.tasks.cancel_and_wait)."""
    for _ in range(3):
        app = create_app(web_settings)
        started = time.monotonic()
        async with app.test_app():
            pass  # quart's test app fails the test if shutdown takes over 6 s
        assert time.monotonic() - started < 5
