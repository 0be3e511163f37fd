"""Dead letters in the UI and API, sending them again, and the readiness probe."""

from __future__ import annotations

from dataclasses import replace

import asyncpg
from quart.typing import TestClientProtocol as Client

from tests.web.support import message_event, queued_copies
from web.app import create_app
from web.core.queries.base import App
from web.core.queries.dead_letters import count_dead_letters, select_dead_letters
from web.core.settings import Settings
from workers.store import park_message, store_events


async def park_orphan(
    pool: asyncpg.Pool, name: str = "<img src=x onerror=alert(1)>"
) -> dict[str, object]:
    """An event for an app that does not exist: the store parks it (foreign key)."""
    event = message_event("no-such-app", name=name)
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE dead_letters")
    assert await store_events(pool, [event], message_id="msg-1") == []
    return event


async def test_dead_letters_page_lists_reason_escaped(client: Client, pool: asyncpg.Pool) -> None:
    event = await park_orphan(pool)
    response = await client.get("/dead-letters")
    text = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert "ForeignKeyViolationError" in text
    assert str(event["event_id"]) in text
    assert "<img src=x" not in text
    assert 'name="id"' in text


async def test_dead_letters_api_lists_pending(client: Client, pool: asyncpg.Pool) -> None:
    event = await park_orphan(pool)
    body = await (await client.get("/api/dead-letters")).get_json()
    assert body["pending"] == 1
    [letter] = body["dead_letters"]
    assert (letter["app_id"], letter["event_id"], letter["retried_at"]) == (
        "no-such-app",
        event["event_id"],
        None,
    )
    assert letter["event"] == event


async def test_dead_letters_retry_enqueues_the_event_and_marks_it(
    client: Client, pool: asyncpg.Pool, web_settings: Settings, app: App
) -> None:
    event = await park_orphan(pool)
    async with pool.acquire() as conn:
        # The cause is fixed: the event now names an app that exists.
        await conn.execute(
            "UPDATE dead_letters SET event = jsonb_set(event, '{app_id}', to_jsonb($1::text))",
            app.id,
        )
        [letter] = await select_dead_letters(conn)
    response = await client.post("/api/dead-letters/retry", json={"ids": [letter.id]})
    body = await response.get_json()
    assert (body["sent"], body["not_retryable"]) == (1, 0)
    copies = await queued_copies(web_settings.redis_url, body["task_id"], str(event["event_id"]))
    assert [copy["app_id"] for copy in copies] == [app.id]
    async with pool.acquire() as conn:
        assert await count_dead_letters(conn) == 0
    again = await (
        await client.post("/api/dead-letters/retry", json={"ids": [letter.id]})
    ).get_json()
    assert again["sent"] == 0  # already sent: never twice


async def test_dead_letters_raw_message_is_not_retryable(
    client: Client, pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE dead_letters")
    await park_message(pool, "msg-raw", ["not an event"], "KeyError: 'app_id'", 1)
    async with pool.acquire() as conn:
        [letter] = await select_dead_letters(conn)
    body = await (
        await client.post("/api/dead-letters/retry", json={"ids": [letter.id]})
    ).get_json()
    assert (body["sent"], body["not_retryable"], body["task_id"]) == (0, 1, None)


async def test_dead_letters_form_retry_redirects_with_a_notice(
    client: Client, pool: asyncpg.Pool
) -> None:
    await park_orphan(pool, name="orphan")
    async with pool.acquire() as conn:
        [letter] = await select_dead_letters(conn)
    response = await client.post("/dead-letters/retry", form={"id": str(letter.id)})
    assert response.status_code == 303
    assert "notice=Sent" in response.headers["Location"]


async def test_readyz_reports_each_dependency(client: Client, web_settings: Settings) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert (await response.get_json())["checks"] == {"database": "ok", "broker": "ok"}

    broken = create_app(replace(web_settings, redis_url="redis://127.0.0.1:1/0"))
    async with broken.test_app():
        down = await broken.test_client().get("/readyz")
        health = await broken.test_client().get("/healthz")
    body = await down.get_json()
    assert down.status_code == 503
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("error")
    assert health.status_code == 200
