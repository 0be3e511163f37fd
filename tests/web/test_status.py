"""/status, /status/stream and /api/status: the pipeline's figures, live, on real Redis and PG."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import asyncpg
import orjson
import pytest
import redis
import redis.asyncio as aioredis
from quart import Quart
from quart.typing import TestClientProtocol as Client

from tests.conftest import free_port
from tests.web.support import eventually, message_event, open_stream, parse_sse
from web.app import create_app
from web.context import Services
from web.core.queries.base import App
from web.core.queue.contract import QueuedEvent
from web.core.settings import Settings
from web.core.status.keys import DEFAULT_KEYS
from web.core.status.readers import read_queue, read_web
from web.core.users import create_user
from web.status import READING_MAX_AGE, REFRESH_SECONDS, StatusBoard
from workers.status import WorkerReport

FIGURES = (
    "waiting",
    "in-flight",
    "delayed",
    "worker-lag",
    "dramatiq-dead",
    "dead-letters",
    "ingest-rate",
    "invalid-share",
    "store-delay",
    "database-size",
    "open-streams",
)


def figures(html: str) -> dict[str, str]:
    """Each figure's shown value by its data-figure key."""
    pattern = r'data-figure="([\w-]+)">\s*<dt>[^<]*</dt><dd>([^<]*)</dd>'
    return dict(re.findall(pattern, html))


def as_int(shown: str) -> int:
    return int(shown.replace(",", ""))


async def page_html(client: Client, path: str = "/status") -> str:
    response = await client.get(path)
    assert response.status_code == 200
    return await response.get_data(as_text=True)


async def fresh_page(client: Client) -> str:
    """The page after the cached reading has expired, so it shows what is in Redis now."""
    await asyncio.sleep(READING_MAX_AGE + 0.05)
    return await page_html(client)


def status_board(quart_app: Quart) -> StatusBoard:
    found: StatusBoard = quart_app.extensions["lvd.status"]
    return found


@pytest.fixture
def sync_redis(web_settings: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(web_settings.redis_url, socket_timeout=5.0)
    yield client
    client.close()


@pytest.fixture
def fake_worker(sync_redis: redis.Redis) -> Iterator[WorkerReport]:
    """A worker's report under a name of its own, deleted afterwards."""
    report = WorkerReport()
    report.hostname = f"host-{uuid.uuid4().hex[:8]}"
    report.worker_id = f"{report.hostname}:{report.pid}"
    yield report
    sync_redis.hdel(DEFAULT_KEYS.workers, report.worker_id)


async def test_status_page_renders_every_figure_and_the_live_region(client: Client) -> None:
    html = await page_html(client)

    assert set(figures(html)) == set(FIGURES)
    assert 'sse-connect="/status/stream"' in html
    assert 'sse-swap="status"' in html
    # The strict CSP allows no inline script or style.
    assert " style=" not in html and "<style" not in html
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []


async def test_status_page_is_linked_from_every_page(client: Client) -> None:
    html = await page_html(client, "/")

    assert 'href="/status"' in html


async def test_status_page_waiting_counts_enqueued_messages(
    client: Client, services: Services, web_settings: Settings, app: App
) -> None:
    async with aioredis.Redis.from_url(web_settings.redis_url) as direct:
        before = (await read_queue(direct, now=time.time())).waiting
        for _ in range(3):
            await services.enqueuer.enqueue([QueuedEvent(**message_event(app.id))])
        html = await fresh_page(client)
        now = (await read_queue(direct, now=time.time())).waiting

    shown = as_int(figures(html)["waiting"])
    assert shown == now
    assert shown >= before + 3


async def test_status_page_lists_a_worker_alive_then_gone(
    client: Client, sync_redis: redis.Redis, fake_worker: WorkerReport
) -> None:
    fake_worker.count_message([{"app_id": "a", "status": "valid"}] * 7, failed=False)
    fake_worker.beat(sync_redis)
    alive = await fresh_page(client)
    fake_worker.beat(sync_redis, now=time.time() - 60)  # silent for a minute: gone
    gone = await fresh_page(client)

    row = rf'<tr class="worker worker-(\w+)" data-worker="{re.escape(fake_worker.worker_id)}">'
    assert re.findall(row, alive) == ["alive"]
    assert re.findall(row, gone) == ["gone"]
    assert fake_worker.hostname in alive


async def test_status_open_streams_counts_this_process_dashboard_streams(
    client: Client, services: Services, quart_app: Quart, app: App
) -> None:
    board = status_board(quart_app)
    before = services.hub.subscriber_count
    async with open_stream(client, f"/apps/{app.id}/stream") as stream:
        await stream.frame()
        await eventually(lambda: services.hub.subscriber_count == before + 1)
        await board.publish()
        web = await read_web(board.redis, now=time.time())
        html = await fresh_page(client)
    await board.publish()
    after = await read_web(board.redis, now=time.time())

    ours = {p.process_id: p.streams for p in web.processes}
    assert ours[board.process_id] == before + 1
    assert as_int(figures(html)["open-streams"]) == web.open_streams
    assert {p.process_id: p.streams for p in after.processes}[board.process_id] == before


async def test_status_stream_re_renders_the_partial(client: Client) -> None:
    async with open_stream(client, "/status/stream") as stream:
        assert parse_sse(await stream.frame()).raw == b"retry: 1000"
        first = await stream.message()
        started = time.monotonic()
        second = await stream.message(within=REFRESH_SECONDS + 3)
        waited = time.monotonic() - started
        headers = stream.headers

    assert headers is not None
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["Cache-Control"] == "no-cache"
    assert (first.event, second.event) == ("status", "status")
    assert set(figures(first.data)) == set(FIGURES)
    assert "<html" not in first.data  # the partial, not the page
    assert REFRESH_SECONDS - 0.5 < waited < REFRESH_SECONDS + 3


async def test_status_api_gives_the_same_reading_as_json(client: Client) -> None:
    response = await client.get("/api/status")
    body = orjson.loads(await response.get_data())

    assert response.status_code == 200
    assert set(body) == {
        "taken_at",
        "queue",
        "dead_letters_pending",
        "workers",
        "ingest",
        "database_bytes",
        "open_streams",
        "web_processes",
        "problems",
    }
    assert set(body["queue"]) == {
        "waiting",
        "in_flight",
        "delayed",
        "dramatiq_dead",
        "oldest_waiting_seconds",
    }
    assert body["problems"] == []
    assert body["database_bytes"] > 0


async def test_status_page_redis_down_shows_the_problem_and_the_rest(
    web_settings: Settings,
) -> None:
    app = create_app(replace(web_settings, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    async with app.test_app():
        started = time.monotonic()
        html = await page_html(app.test_client())
        elapsed = time.monotonic() - started

    shown = figures(html)
    assert "Redis: " in html and 'role="alert"' in html
    assert shown["waiting"] == "n/a" and shown["open-streams"] == "n/a"
    assert shown["database-size"] != "n/a"
    assert elapsed < 3.0  # no backoff holding the page


@pytest.fixture(scope="module")
async def locked_app(web_settings: Settings) -> AsyncIterator[Quart]:
    app = create_app(replace(web_settings, require_login=True))
    async with app.test_app():
        yield app


@pytest.mark.parametrize("path", ["/status", "/status/stream", "/metrics"])
async def test_status_pages_need_sign_in_when_required(locked_app: Quart, path: str) -> None:
    response = await locked_app.test_client().get(path)

    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login")


async def test_status_api_accepts_basic_credentials_when_sign_in_required(
    locked_app: Quart, pool: asyncpg.Pool
) -> None:
    username = f"ops-{secrets.token_hex(4)}"
    async with pool.acquire() as conn:
        await create_user(conn, username, "correct horse battery staple")
    token = base64.b64encode(f"{username}:correct horse battery staple".encode()).decode()
    client = locked_app.test_client()

    refused = await client.get("/api/status")
    allowed = await client.get("/api/status", headers={"Authorization": f"Basic {token}"})

    assert (refused.status_code, allowed.status_code) == (401, 200)
