"""End-to-end fixtures: an HTTP client on the live server and a client on the broker's Redis."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from tests.conftest import TEST_REDIS_DB, LiveServer
from web.core.settings import Settings

from .helpers import wait_for_drain

# Redis databases an e2e run may claim: not 0 (`make run`), 11 (tests/core/test_jobs.py),
# 14 (tests/web) or
# TEST_REDIS_DB, which every test session flushes when it starts.
E2E_REDIS_DBS = [db for db in (15, 12, 10, 9, 8, 7) if db != TEST_REDIS_DB]
E2E_REDIS_LOCK = "lvd:e2e:owner"
E2E_REDIS_LOCK_SECONDS = 900


@pytest.fixture(scope="session")
def settings(settings: Settings) -> Iterator[Settings]:
    """The suite's settings, with a Redis database this run alone uses.

    The shared TEST_REDIS_DB is flushed by every test session that starts, and another
    session's worker on it takes our messages (and stores them in its own database): with
    several people running tests at once, e2e events went missing. So the live server and
    its worker get a database claimed with a lock key that expires should the run die.
    """
    parts = urlsplit(settings.redis_url)
    for db in E2E_REDIS_DBS:
        url = urlunsplit(parts._replace(path=f"/{db}"))
        client = redis.Redis.from_url(url, socket_timeout=5.0)
        try:
            owner = f"{os.getpid()}"
            if not client.set(E2E_REDIS_LOCK, owner, nx=True, ex=E2E_REDIS_LOCK_SECONDS):
                continue
            for key in client.scan_iter("dramatiq:*"):  # left by a run that died
                client.delete(key)
            yield replace(settings, redis_url=url)
            if client.get(E2E_REDIS_LOCK) == owner.encode():
                client.delete(E2E_REDIS_LOCK)
            return
        finally:
            client.close()
    pytest.fail(f"every Redis database an e2e run may use is taken: {E2E_REDIS_DBS}")


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with httpx.AsyncClient(
        base_url=live_server.base_url, timeout=10.0, limits=limits
    ) as client:
        yield client


@pytest.fixture
async def broker_redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=5.0)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(autouse=True)
async def _previous_messages_handled(broker_redis: aioredis.Redis) -> None:
    """Let the worker finish earlier tests' messages before this test empties the tables."""
    await wait_for_drain(broker_redis, within=10.0)
