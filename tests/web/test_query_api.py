"""The query API: list with filters and cursors, summary, reset, and the long-polling wait."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from quart.typing import TestClientProtocol as Client

from tests.web.conftest import MakeApp
from tests.web.support import assert_error, error, eventually, json_of, message_event
from web.context import Services
from web.core.filters import EventFilter
from web.core.queries.base import App
from web.core.queries.events import EventCount, select_event_counts
from workers.store import store_events

EVENT_KEYS = {
    "event_id",
    "event_name",
    "status",
    "errors",
    "payload",
    "plan_version",
    "session",
    "received_at",
    "created_at",
}


async def store(
    pool: asyncpg.Pool,
    app_id: str,
    name: str | None = "user_login",
    *,
    status: str = "valid",
    session: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    count: int = 1,
) -> list[str]:
    """Store events as a worker would (rows plus the notification); returns their event ids."""
    events = []
    for _ in range(count):
        event = message_event(app_id, name=name, status=status, errors=errors)
        event["session"] = session
        events.append(event)
    await store_events(pool, events)
    return [event["event_id"] for event in events]


async def get_json(client: Client, path: str, **args: Any) -> Any:
    response = await client.get(path, query_string={k: str(v) for k, v in args.items()})
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await json_of(response)


# --- GET /api/logs/<app_id> --------------------------------------------------------------


async def test_list_events_newest_first_with_documented_fields(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    first = await store(pool, app.id, "first", session="s1")
    second = await store(pool, app.id, "second")

    body = await get_json(client, f"/api/logs/{app.id}")

    assert body["next_cursor"] is None
    assert [e["event_id"] for e in body["events"]] == second + first
    newest, oldest = body["events"]
    assert set(newest) == EVENT_KEYS
    assert (newest["event_name"], newest["status"], newest["session"]) == ("second", "valid", None)
    assert oldest["session"] == "s1"
    assert oldest["payload"] == {"eventName": "first"}
    assert oldest["errors"] == []
    assert datetime.fromisoformat(oldest["received_at"]) <= datetime.fromisoformat(
        oldest["created_at"]
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"status": "invalid"}, ["bad"]),
        ({"status": "valid"}, ["login", "other-session", "signup"]),
        ({"status": "all"}, ["bad", "login", "other-session", "signup"]),
        ({"event_name": "signup"}, ["signup"]),
        ({"event_name": "signup,bad"}, ["bad", "signup"]),
        ({"session": "s-a"}, ["bad", "login", "signup"]),
        ({"session": "s-b"}, ["other-session"]),
        ({"rule": "required"}, ["bad"]),
        ({"rule": "type"}, []),
        ({"q": "SIGN"}, ["signup"]),
        ({"since": "2000-01-01T00:00:00Z"}, ["bad", "login", "other-session", "signup"]),
        ({"until": "2000-01-01T00:00:00Z"}, []),
    ],
)
async def test_list_events_filter_selects_matching_events(
    client: Client,
    app: App,
    pool: asyncpg.Pool,
    args: dict[str, str],
    expected: list[str],
) -> None:
    await store(pool, app.id, "login", session="s-a")
    await store(pool, app.id, "signup", session="s-a")
    missing = [error("/userId", "required", "userId is missing")]
    await store(pool, app.id, "bad", status="invalid", session="s-a", errors=missing)
    await store(pool, app.id, "other-session", session="s-b")

    body = await get_json(client, f"/api/logs/{app.id}", **args)

    assert sorted(e["event_name"] for e in body["events"]) == expected


async def test_list_events_cursor_pages_through_everything_once(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    stored = await store(pool, app.id, count=7)

    seen: list[str] = []
    pages = 0
    cursor: str | None = ""
    while cursor is not None:
        body = await get_json(client, f"/api/logs/{app.id}", limit=3, cursor=cursor)
        assert len(body["events"]) <= 3
        seen += [e["event_id"] for e in body["events"]]
        cursor = body["next_cursor"]
        pages += 1

    assert pages == 3
    assert seen == list(reversed(stored))


async def test_list_events_limit_defaults_to_100(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await store(pool, app.id, count=101)

    body = await get_json(client, f"/api/logs/{app.id}")

    assert len(body["events"]) == 100
    assert body["next_cursor"] is not None


@pytest.mark.parametrize("limit", ["0", "1001", "ten", "-1", "1.5", "٣"])
async def test_list_events_bad_limit_is_invalid_filter(
    client: Client, app: App, limit: str
) -> None:
    response = await client.get(f"/api/logs/{app.id}", query_string={"limit": limit})

    await assert_error(response, 400, "invalid_filter")


@pytest.mark.parametrize("cursor", ["abc", "0", "-5", "12x", "9" * 30])
async def test_list_events_bad_cursor_is_invalid_cursor(
    client: Client, app: App, cursor: str
) -> None:
    response = await client.get(f"/api/logs/{app.id}", query_string={"cursor": cursor})

    await assert_error(response, 400, "invalid_cursor")


@pytest.mark.parametrize(
    "args",
    [{"status": "broken"}, {"since": "yesterday"}, {"session": "s" * 101}],
)
async def test_list_events_bad_filter_is_invalid_filter(
    client: Client, app: App, args: dict[str, str]
) -> None:
    response = await client.get(f"/api/logs/{app.id}", query_string=args)

    await assert_error(response, 400, "invalid_filter")


@pytest.mark.parametrize("suffix", ["", "/summary", "/wait?timeout=0"])
async def test_query_api_unknown_app_is_404(client: Client, suffix: str) -> None:
    response = await client.get(f"/api/logs/no-such-app-{uuid.uuid4().hex[:8]}{suffix}")

    await assert_error(response, 404, "unknown_app")


async def test_query_api_refuses_a_page_of_another_site(client: Client, app: App) -> None:
    read = await client.get(f"/api/logs/{app.id}", headers={"Origin": "https://evil.example"})
    reset = await client.delete(f"/api/logs/{app.id}", headers={"Sec-Fetch-Site": "cross-site"})

    await assert_error(read, 403, "cross_site_request")
    await assert_error(reset, 403, "cross_site_request")


async def test_query_api_answers_same_origin_browser(client: Client, app: App) -> None:
    response = await client.get(
        f"/api/logs/{app.id}",
        headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
    )

    assert response.status_code == 200


async def test_ingest_preflight_still_allows_cross_origin_posts(client: Client, app: App) -> None:
    response = await client.options(
        f"/api/logs/{app.id}",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"


# --- summary ------------------------------------------------------------------------------


async def test_summary_counts_by_status_and_event_name(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await store(pool, app.id, "login", count=3)
    await store(pool, app.id, "login", status="invalid")
    await store(pool, app.id, "signup", count=2)
    await store(pool, app.id, None, status="invalid")

    body = await get_json(client, f"/api/logs/{app.id}/summary")

    assert body == {
        "total": 7,
        "by_status": {"valid": 5, "invalid": 2},
        "by_event_name": [
            {"event_name": "login", "total": 4, "valid": 3, "invalid": 1},
            {"event_name": "signup", "total": 2, "valid": 2, "invalid": 0},
            {"event_name": None, "total": 1, "valid": 0, "invalid": 1},
        ],
    }


async def test_summary_session_counts_only_that_session(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await store(pool, app.id, "login", session="mine", count=2)
    await store(pool, app.id, "login", session="theirs", count=5)

    body = await get_json(client, f"/api/logs/{app.id}/summary", session="mine")

    assert body["total"] == 2
    assert body["by_event_name"] == [{"event_name": "login", "total": 2, "valid": 2, "invalid": 0}]


async def test_summary_of_app_without_events_is_zero(client: Client, app: App) -> None:
    body = await get_json(client, f"/api/logs/{app.id}/summary")

    assert body == {"total": 0, "by_status": {"valid": 0, "invalid": 0}, "by_event_name": []}


# --- DELETE -------------------------------------------------------------------------------


async def test_reset_deletes_every_event_of_the_app_only(
    client: Client, make_app: MakeApp, pool: asyncpg.Pool
) -> None:
    app, other = await make_app(), await make_app()
    await store(pool, app.id, count=3, session="s")
    await store(pool, app.id, count=2)
    kept = await store(pool, other.id)

    response = await client.delete(f"/api/logs/{app.id}")

    assert response.status_code == 200
    assert await json_of(response) == {"deleted": 5, "session": None}
    assert (await get_json(client, f"/api/logs/{app.id}"))["events"] == []
    others = await get_json(client, f"/api/logs/{other.id}")
    assert [e["event_id"] for e in others["events"]] == kept


async def test_reset_session_deletes_only_that_session(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await store(pool, app.id, count=2, session="ci-job-1")
    kept = await store(pool, app.id, session="ci-job-2")

    response = await client.delete(f"/api/logs/{app.id}", query_string={"session": "ci-job-1"})

    assert await json_of(response) == {"deleted": 2, "session": "ci-job-1"}
    body = await get_json(client, f"/api/logs/{app.id}")
    assert [e["event_id"] for e in body["events"]] == kept


async def test_reset_unknown_app_is_404(client: Client) -> None:
    response = await client.delete(f"/api/logs/gone-{uuid.uuid4().hex[:8]}")

    await assert_error(response, 404, "unknown_app")


# --- wait ---------------------------------------------------------------------------------


async def test_wait_answers_at_once_when_enough_are_stored(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    ids = await store(pool, app.id, "login", count=3)

    started = time.monotonic()
    body = await get_json(client, f"/api/logs/{app.id}/wait", count=2, timeout=20)

    assert time.monotonic() - started < 5
    assert (body["reached"], body["count"], body["wanted"]) == (True, 2, 2)
    assert [e["event_id"] for e in body["events"]] == list(reversed(ids))[:2]
    assert set(body["events"][0]) == EVENT_KEYS


async def test_wait_wakes_promptly_when_a_matching_event_is_stored(
    client: Client, app: App, pool: asyncpg.Pool, services: Services
) -> None:
    await store(pool, app.id, "login", session="s")
    subscribers = services.hub.subscriber_count
    waiting = asyncio.create_task(
        get_json(client, f"/api/logs/{app.id}/wait", count=3, session="s", timeout=30)
    )
    await eventually(lambda: services.hub.subscriber_count > subscribers, message="subscribed")
    await store(pool, app.id, "login", session="other")  # not this session: does not count
    await store(pool, app.id, "signup", session="s")
    await asyncio.sleep(0.2)
    assert not waiting.done()

    stored_at = time.monotonic()
    [last] = await store(pool, app.id, "login", session="s")
    body = await asyncio.wait_for(waiting, 20)
    woke_after = time.monotonic() - stored_at

    assert woke_after < 5, f"the wait answered {woke_after:.2f} s after the event was stored"
    assert body["reached"] is True
    assert body["count"] == 3
    assert body["events"][0]["event_id"] == last
    assert {e["session"] for e in body["events"]} == {"s"}


async def test_wait_timeout_answers_with_what_there_is(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    [only] = await store(pool, app.id, "login")

    started = time.monotonic()
    body = await get_json(client, f"/api/logs/{app.id}/wait", count=2, timeout=0.5)
    waited = time.monotonic() - started

    assert 0.4 < waited < 5
    assert (body["reached"], body["count"], body["wanted"]) == (False, 1, 2)
    assert [e["event_id"] for e in body["events"]] == [only]


async def test_wait_filters_by_status_and_name(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await store(pool, app.id, "login", status="invalid")
    await store(pool, app.id, "signup", status="invalid")
    await store(pool, app.id, "login")

    body = await get_json(
        client, f"/api/logs/{app.id}/wait", count=5, status="invalid", event_name="login", timeout=0
    )

    assert body["reached"] is False
    assert [(e["event_name"], e["status"]) for e in body["events"]] == [("login", "invalid")]


async def test_wait_two_parallel_sessions_each_see_only_their_own(
    client: Client, app: App, pool: asyncpg.Pool, services: Services
) -> None:
    subscribers = services.hub.subscriber_count
    path = f"/api/logs/{app.id}/wait"
    job_a = asyncio.create_task(get_json(client, path, count=3, session="job-a", timeout=30))
    job_b = asyncio.create_task(get_json(client, path, count=2, session="job-b", timeout=30))
    await eventually(lambda: services.hub.subscriber_count >= subscribers + 2, message="both wait")

    sent_a, sent_b = [], []
    for _ in range(3):
        sent_a += await store(pool, app.id, "a", session="job-a")
        if len(sent_b) < 2:
            sent_b += await store(pool, app.id, "b", session="job-b")
    body_a, body_b = await asyncio.wait_for(asyncio.gather(job_a, job_b), 20)

    assert sorted(e["event_id"] for e in body_a["events"]) == sorted(sent_a)
    assert sorted(e["event_id"] for e in body_b["events"]) == sorted(sent_b)
    listed = await get_json(client, f"/api/logs/{app.id}", session="job-b")
    assert sorted(e["event_id"] for e in listed["events"]) == sorted(sent_b)


async def test_wait_client_disconnect_releases_the_subscription(
    client: Client, app: App, services: Services
) -> None:
    before = services.hub.subscriber_count

    async with client.request(f"/api/logs/{app.id}/wait?count=1&timeout=30") as conn:
        await eventually(lambda: services.hub.subscriber_count == before + 1, message="subscribed")
        await conn.disconnect()
        await eventually(lambda: services.hub.subscriber_count == before, message="released")


async def test_wait_releases_the_subscription_when_it_answers(
    client: Client, app: App, services: Services
) -> None:
    before = services.hub.subscriber_count

    await get_json(client, f"/api/logs/{app.id}/wait", timeout=0.1)

    assert services.hub.subscriber_count == before


@pytest.mark.parametrize(
    "args",
    [
        {"count": "0"},
        {"count": "1001"},
        {"count": "many"},
        {"timeout": "61"},
        {"timeout": "-1"},
        {"timeout": "nan"},
        {"timeout": "soon"},
        {"status": "maybe"},
    ],
)
async def test_wait_bad_parameter_is_invalid_filter(
    client: Client, app: App, args: dict[str, str]
) -> None:
    response = await client.get(f"/api/logs/{app.id}/wait", query_string=args)

    await assert_error(response, 400, "invalid_filter")


async def test_wait_since_counts_only_newer_events(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await store(pool, app.id, count=2)
    since = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()

    body = await get_json(client, f"/api/logs/{app.id}/wait", since=since, timeout=0)

    assert (body["reached"], body["count"]) == (False, 0)


async def test_select_event_counts_matches_the_filter(pool: asyncpg.Pool, app: App) -> None:
    await store(pool, app.id, "x", session="s", count=2)
    await store(pool, app.id, "x", session="t")

    async with pool.acquire() as conn:
        counts = await select_event_counts(conn, app.id, filters=EventFilter(session="s"))

    assert counts == [EventCount("x", "valid", 2)]
