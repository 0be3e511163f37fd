"""The Quart app with its lifespan running against the test database and Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis
from quart import Quart
from quart.typing import TestClientProtocol as Client

from web.app import create_app
from web.context import Services
from web.core.apps import add_app
from web.core.queries.base import App
from web.core.settings import Settings

# Redis database the web tests enqueue into. No worker consumes it, so a test can read its
# messages back, and no worker elsewhere in the run stores events for apps a test deleted.
WEB_REDIS_DB = 14

MakeApp = Callable[..., Awaitable[App]]


@pytest.fixture(scope="session")
def web_settings(settings: Settings) -> Iterator[Settings]:
    redis_url = urlunsplit(urlsplit(settings.redis_url)._replace(path=f"/{WEB_REDIS_DB}"))
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    yield replace(settings, redis_url=redis_url)
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()


@pytest.fixture(scope="session")
async def quart_app(web_settings: Settings) -> AsyncIterator[Quart]:
    app = create_app(web_settings)
    async with app.test_app():
        yield app


@pytest.fixture
def client(quart_app: Quart) -> Client:
    return quart_app.test_client()


@pytest.fixture
def services(quart_app: Quart) -> Services:
    found: Services = quart_app.extensions["lvd"]
    return found


@pytest.fixture
def make_app(pool: asyncpg.Pool) -> MakeApp:
    """Creates an app with a fresh id, so the 5 s app cache never serves a stale one."""

    async def make(*, require_write_key: bool = False, prefix: str = "t") -> App:
        app_id = f"{prefix}-{uuid.uuid4().hex[:12]}"
        async with pool.acquire() as conn:
            app = await add_app(conn, app_id, f"App {app_id}")
            if require_write_key:
                await conn.execute("UPDATE apps SET require_write_key = true WHERE id = $1", app_id)
                app = replace(app, require_write_key=True)
        return app

    return make


@pytest.fixture
async def app(make_app: MakeApp) -> App:
    """An app of the test's own, made as `make_app()` makes it."""
    return await make_app()
