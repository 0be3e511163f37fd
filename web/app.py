"""create_app(): settings, blueprints and the lifespan that opens the pool, broker and hub."""

from __future__ import annotations

import asyncio
import logging
import secrets

import asyncpg
from quart import Quart

from web import (
    alerts,
    apps,
    auth,
    coverage,
    dashboard,
    dead_letters,
    detail,
    export,
    health,
    metrics,
    openapi,
    plan_pages,
    plans,
    query_api,
    snowplow_micro,
    status,
    stream,
    violations,
)
from web.auth import install_auth
from web.context import Services
from web.core import queries
from web.core.db import create_pool
from web.core.directory import AppDirectory
from web.core.heap import freeze_startup_objects
from web.core.jobs import BatchingEnqueuer, build_broker, persistence_warning
from web.core.logs import configure_logging
from web.core.ratelimit import RateLimiter
from web.core.settings import Settings
from web.errors import register_error_handlers
from web.hub import Hub
from web.ingest import install_ingest
from web.security import install_security

log = logging.getLogger(__name__)

# A web request may wait this long on Redis; past it the answer is 503, not a hang.
WEB_REDIS_SOCKET_TIMEOUT = 1.0
# How long shutdown waits for requests to hand back their database connections before it
# closes them anyway (asyncpg's Pool.close waits for every one, without a limit).
POOL_CLOSE_SECONDS = 3.0


def create_app(settings: Settings | None = None) -> Quart:
    settings = settings or Settings.from_env()
    configure_logging(json=settings.log_json, level=settings.log_level)
    app = Quart(__name__, template_folder="../templates", static_folder="../static")
    app.config.update(
        MAX_CONTENT_LENGTH=settings.limits.max_request_bytes,
        BODY_TIMEOUT=settings.limits.body_timeout_seconds,
        SESSION_COOKIE_NAME="lvd_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=12 * 3600,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep documents in their order
    # query_api after ingest: they share /api/logs/<app_id>, and a browser's preflight
    # OPTIONS must reach ingest's rule (query_api refuses other sites).
    for module in (
        health,
        auth,
        query_api,
        openapi,
        apps,
        plans,
        plan_pages,
        dashboard,
        stream,
        dead_letters,
        detail,
        violations,
        coverage,
        export,
        snowplow_micro,
        status,
        metrics,
        alerts,
    ):
        app.register_blueprint(module.blueprint)
    metrics.prepare_metrics_dir(settings)
    register_error_handlers(app)
    install_security(app)
    install_auth(app)
    install_ingest(app)

    @app.before_serving
    async def open_services() -> None:
        # A short connect timeout: during an outage a request should fail fast, not hang.
        pool = await create_pool(
            settings.database_url, min_size=2, max_size=10, connect_timeout=2.0
        )
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
        app.extensions["lvd"] = Services(settings, pool, enqueuer, directory, hub, limiter)
        app.secret_key = settings.secret_key or await _shared_secret(pool)
        freeze_startup_objects()
        log.info("Serving on http://%s:%d", settings.host, settings.port)

    @app.after_serving
    async def close_services() -> None:
        services: Services | None = app.extensions.pop("lvd", None)
        if services is None:
            return
        await services.hub.close()
        await services.enqueuer.close()
        await close_pool(services.pool, POOL_CLOSE_SECONDS)

    return app


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
        return await queries.instance_secret(conn, "session_key", secrets.token_urlsafe(48))


async def _require_schema(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        ready = await conn.fetchval("SELECT to_regclass('log_entries') IS NOT NULL")
    if not ready:
        raise RuntimeError("the database has no tables yet: run `lvd migrate` first")
