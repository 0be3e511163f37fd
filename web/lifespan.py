"""What a web process opens before it serves and closes after: pool, broker, hub, status board."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncGenerator, AsyncIterator

import asyncpg
from quart import Quart

from web.context import Services
from web.core.db import create_pool
from web.core.directory import AppDirectory
from web.core.heap import freeze_startup_objects
from web.core.ingest.budget import JudgingBudget
from web.core.queries.users import instance_secret
from web.core.queue.brokers import build_broker, persistence_warning
from web.core.queue.enqueuer import BatchingEnqueuer
from web.core.ratelimit import RateLimiter
from web.core.settings import Settings
from web.hub import Hub
from web.status import serve_status_board

log = logging.getLogger(__name__)

# A web request may wait this long on Redis; past it the answer is 503, not a hang.
WEB_REDIS_SOCKET_TIMEOUT = 1.0
# How long shutdown waits for requests to hand back their database connections before it
# closes them anyway (asyncpg's Pool.close waits for every one, without a limit).
POOL_CLOSE_SECONDS = 3.0


def install_lifespan(app: Quart, settings: Settings) -> None:
    """Open everything in order before the app serves, and close it in reverse after."""

    @app.while_serving
    async def serving() -> AsyncGenerator[None, None]:
        async with serve_services(app, settings) as svc, serve_status_board(app, svc):
            freeze_startup_objects()
            log.info(
                "Serving on http://%s:%d; forwarded headers believed from %s",
                settings.host,
                settings.port,
                settings.trusted_proxies.describe(),
            )
            yield
        log.info("Stopped: queued events flushed to the broker, database pool closed")


@contextlib.asynccontextmanager
async def serve_services(app: Quart, settings: Settings) -> AsyncIterator[Services]:
    """The services every blueprint uses, in app.extensions while the block runs."""
    svc = await open_services(settings)
    app.extensions["lvd"] = svc  # web.context.services() reads it
    app.secret_key = settings.secret_key or await _shared_secret(svc.pool)
    yield svc
    app.extensions.pop("lvd", None)
    await close_services(svc)


async def open_services(settings: Settings) -> Services:
    # A short connect timeout: during an outage a request should fail fast, not hang.
    pool = await create_pool(settings.database_url, min_size=2, max_size=10, connect_timeout=2.0)
    await _require_schema(pool)
    broker = build_broker(settings, socket_timeout=WEB_REDIS_SOCKET_TIMEOUT, retries=0)
    enqueuer = BatchingEnqueuer(
        broker,
        max_batch=settings.enqueue_batch_size,
        timeout=settings.enqueue_timeout,
        max_depth=settings.max_queue_depth,
        linger=settings.enqueue_linger_ms / 1000,
    )
    warning = await asyncio.to_thread(persistence_warning, broker)
    if warning:
        log.warning(warning)
    directory = AppDirectory(pool)
    hub = Hub(settings.database_url, pool, on_app_changed=directory.forget)
    await hub.start()
    limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
    judging = JudgingBudget(settings.ingest_budget_bytes)
    return Services(settings, pool, enqueuer, directory, hub, limiter, judging)


async def close_services(svc: Services) -> None:
    await svc.hub.close()
    await svc.enqueuer.close()
    await close_pool(svc.pool, POOL_CLOSE_SECONDS)


async def close_pool(pool: asyncpg.Pool, seconds: float) -> None:
    """Close the pool gracefully, or terminate it if a connection is still held `seconds` on."""
    try:
        await asyncio.wait_for(pool.close(), seconds)
    except TimeoutError:
        log.warning("Database connections still in use %g s into shutdown: closing them", seconds)
        pool.terminate()


async def _shared_secret(pool: asyncpg.Pool) -> str:
    """The session-signing key every web process shares: made once, kept in the database."""
    async with pool.acquire() as conn:
        return await instance_secret(conn, "session_key", secrets.token_urlsafe(48))


async def _require_schema(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        ready = await conn.fetchval("SELECT to_regclass('log_entries') IS NOT NULL")
    if not ready:
        raise RuntimeError("the database has no tables yet: run `lvd migrate` first")
