"""The real Segment, Rudder and PostHog python SDKs pointed at a running server, unchanged."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from posthog import Posthog
from posthog.request import APIError as PostHogAPIError
from posthog.request import batch_post as posthog_batch_post
from rudderstack.analytics.client import Client as RudderClient
from rudderstack.analytics.consumer import Consumer as RudderConsumer
from rudderstack.analytics.request import APIError as RudderAPIError
from segment.analytics import request as segment_request
from segment.analytics.client import Client as SegmentClient
from segment.analytics.request import APIError as SegmentAPIError

from tests.conftest import LiveServer

from .helpers import stored_counts, unique

pytestmark = pytest.mark.e2e

PLAN: dict[str, Any] = {
    "events": {
        "Order Completed": {
            "type": "object",
            "required": ["properties"],
            "properties": {
                "properties": {
                    "type": "object",
                    "required": ["total"],
                    "properties": {"total": {"type": "number"}},
                }
            },
        },
        "identify": {
            "type": "object",
            "properties": {"traits": {"type": "object", "required": ["email"]}},
        },
        "page": {"type": "object"},
        "signed_up": {
            "type": "object",
            "properties": {"properties": {"type": "object", "required": ["plan"]}},
        },
    }
}

# Rudder's identify carries its traits in context.traits, not at the top level.
RUDDER_PLAN: dict[str, Any] = {
    "events": {
        **PLAN["events"],
        "identify": {
            "type": "object",
            "properties": {
                "context": {
                    "type": "object",
                    "properties": {"traits": {"type": "object", "required": ["email"]}},
                }
            },
        },
    }
}


async def new_app(http: httpx.AsyncClient, plan: dict[str, Any] | None = PLAN) -> dict[str, Any]:
    response = await http.post("/api/apps", json={"id": unique("sdk")})
    assert response.status_code == 201, response.text
    app: dict[str, Any] = response.json()
    if plan is not None:
        saved = await http.put(f"/api/apps/{app['id']}/plan", json=plan)
        assert saved.status_code == 200, saved.text
    return app


async def wait_for(
    http: httpx.AsyncClient, app_id: str, count: int, **filters: str
) -> list[dict[str, Any]]:
    """The query API's long poll: the matching stored events, newest first."""
    response = await http.get(
        f"/api/logs/{app_id}/wait",
        params={"count": count, "timeout": 15, **filters},
        timeout=30,
    )
    body = response.json()
    assert body["reached"], f"only {body['count']} of {count} events stored: {body['events']}"
    events: list[dict[str, Any]] = body["events"]
    return events


def by_id(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {event["event_id"]: event for event in events}


@pytest.fixture
def segment_clients() -> Iterator[list[SegmentClient]]:
    made: list[SegmentClient] = []
    yield made
    for client in made:
        if client.consumers:
            client.join()


async def test_segment_sdk_events_are_judged_and_stored_once(
    http: httpx.AsyncClient,
    live_server: LiveServer,
    pool: asyncpg.Pool,
    segment_clients: list[SegmentClient],
) -> None:
    app = await new_app(http)
    client = SegmentClient(app["write_key"], host=live_server.base_url, sync_mode=True, gzip=True)
    segment_clients.append(client)
    ids = {name: f"seg-{name}-{uuid.uuid4().hex}" for name in ("ok", "bad", "who", "page")}

    await asyncio.to_thread(
        client.track, "user-1", "Order Completed", {"total": 12.5}, message_id=ids["ok"]
    )
    await asyncio.to_thread(
        client.track, "user-1", "Order Completed", {"total": "twelve"}, message_id=ids["bad"]
    )
    await asyncio.to_thread(
        client.identify, "user-1", {"email": "a@example.com"}, message_id=ids["who"]
    )
    await asyncio.to_thread(client.page, "user-1", name="Home", message_id=ids["page"])

    stored = by_id(await wait_for(http, app["id"], 4))
    assert {event_id: stored[event_id]["event_name"] for event_id in ids.values()} == {
        ids["ok"]: "Order Completed",
        ids["bad"]: "Order Completed",
        ids["who"]: "identify",
        ids["page"]: "page",
    }
    assert [stored[ids[n]]["status"] for n in ("ok", "bad", "who", "page")] == [
        "valid",
        "invalid",
        "valid",
        "valid",
    ]
    assert [(e["path"], e["rule"]) for e in stored[ids["bad"]]["errors"]] == [
        ("/properties/total", "type")
    ]
    who = stored[ids["who"]]["payload"]
    assert (who["type"], who["userId"], who["traits"]) == (
        "identify",
        "user-1",
        {"email": "a@example.com"},
    )
    assert "event" not in who  # stored as the SDK sent it
    assert await stored_counts(pool, app["id"]) == dict.fromkeys(ids.values(), 1)


async def test_segment_sdk_batches_and_flushes_in_the_background(
    http: httpx.AsyncClient, live_server: LiveServer, segment_clients: list[SegmentClient]
) -> None:
    app = await new_app(http)
    client = SegmentClient(app["write_key"], host=live_server.base_url, upload_interval=0.05)
    segment_clients.append(client)

    for n in range(25):
        client.track("user-2", "Order Completed", {"total": n})
    await asyncio.to_thread(client.flush)

    stored = await wait_for(http, app["id"], 25)
    assert {event["status"] for event in stored} == {"valid"}


async def test_segment_sdk_retry_with_the_same_message_id_is_stored_once(
    http: httpx.AsyncClient, live_server: LiveServer, pool: asyncpg.Pool
) -> None:
    app = await new_app(http)
    message = {
        "type": "track",
        "event": "Order Completed",
        "properties": {"total": 3},
        "userId": "user-3",
        "messageId": f"retry-{uuid.uuid4().hex}",
        "timestamp": "2025-12-10T15:45:00.000+00:00",
        "context": {},
    }

    # What the SDK's consumer sends when it retries a batch: the same messages again.
    for attempt in range(3):
        response = await asyncio.to_thread(
            segment_request.post,
            app["write_key"],
            live_server.base_url,
            gzip=True,
            batch=[message],
            retry_count=attempt,
        )
        assert response.status_code == 200

    await wait_for(http, app["id"], 1)
    await asyncio.sleep(0.5)  # a doubled row would have been written by now
    assert await stored_counts(pool, app["id"]) == {message["messageId"]: 1}


async def test_sdk_duplicate_ids_within_one_batch_are_stored_once(
    http: httpx.AsyncClient, live_server: LiveServer, pool: asyncpg.Pool
) -> None:
    app = await new_app(http, plan=None)
    message = {"type": "track", "event": "a", "userId": "u", "messageId": unique("dup")}
    event = {"event": "b", "distinct_id": "u", "uuid": str(uuid.uuid4())}

    segment = await asyncio.to_thread(
        segment_request.post, app["write_key"], live_server.base_url, batch=[message, message]
    )
    posthog = await asyncio.to_thread(
        posthog_batch_post, app["write_key"], live_server.base_url, batch=[event, event]
    )

    assert (segment.status_code, posthog.status_code) == (200, 200)
    await wait_for(http, app["id"], 2)
    await asyncio.sleep(0.5)  # a doubled row would have been written by now
    assert await stored_counts(pool, app["id"]) == {message["messageId"]: 1, event["uuid"]: 1}


async def test_segment_sdk_bad_write_key_raises_its_api_error_at_once(
    live_server: LiveServer,
) -> None:
    client = SegmentClient("wk_wrong", host=live_server.base_url, sync_mode=True)

    with pytest.raises(SegmentAPIError) as raised:
        await asyncio.to_thread(client.track, "user-1", "Order Completed", {"total": 1})

    assert (raised.value.status, raised.value.code) == (401, "invalid_write_key")


async def test_rudder_sdk_gzipped_events_are_judged_and_stored_once(
    http: httpx.AsyncClient, live_server: LiveServer, pool: asyncpg.Pool
) -> None:
    app = await new_app(http, RUDDER_PLAN)
    client = RudderClient(app["write_key"], host=live_server.base_url, sync_mode=True)
    assert client.gzip  # Rudder's default: every request gzipped
    ok, bad, who = (f"rud-{n}-{uuid.uuid4().hex}" for n in ("ok", "bad", "who"))

    await asyncio.to_thread(client.track, "u", "Order Completed", {"total": 5}, message_id=ok)
    await asyncio.to_thread(client.track, "u", "Order Completed", {}, message_id=bad)
    await asyncio.to_thread(client.identify, "u", {"name": "no email"}, message_id=who)

    stored = by_id(await wait_for(http, app["id"], 3))
    assert [stored[i]["status"] for i in (ok, bad, who)] == ["valid", "invalid", "invalid"]
    assert stored[who]["event_name"] == "identify"
    assert [(e["path"], e["rule"]) for e in stored[who]["errors"]] == [
        ("/context/traits/email", "required")
    ]
    assert stored[ok]["payload"]["channel"] == "server"
    assert await stored_counts(pool, app["id"]) == {ok: 1, bad: 1, who: 1}


async def test_rudder_sdk_bad_write_key_is_not_retried(live_server: LiveServer) -> None:
    consumer = RudderConsumer(None, "wk_wrong", host=live_server.base_url, retries=10)
    message = {"type": "track", "event": "x", "userId": "u", "messageId": "m-1"}

    started = time.monotonic()
    with pytest.raises(RudderAPIError) as raised:
        await asyncio.to_thread(consumer.request, [message])

    # A body without a top-level code makes Rudder retry a 401 with backoff for many seconds.
    assert time.monotonic() - started < 3
    assert (raised.value.status, raised.value.code) == (401, "invalid_write_key")


async def test_posthog_sdk_events_are_judged_and_stored_once(
    http: httpx.AsyncClient, live_server: LiveServer, pool: asyncpg.Pool
) -> None:
    app = await new_app(http)
    client = Posthog(app["write_key"], host=live_server.base_url, sync_mode=True, gzip=True)
    good, bad = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        await asyncio.to_thread(
            client.capture, "signed_up", distinct_id="u", properties={"plan": "pro"}, uuid=good
        )
        await asyncio.to_thread(
            client.capture, "signed_up", distinct_id="u", properties={}, uuid=bad
        )
    finally:
        await asyncio.to_thread(client.shutdown)

    stored = by_id(await wait_for(http, app["id"], 2))
    assert [stored[i]["status"] for i in (good, bad)] == ["valid", "invalid"]
    assert stored[good]["event_name"] == "signed_up"
    assert stored[good]["payload"]["distinct_id"] == "u"
    assert await stored_counts(pool, app["id"]) == {good: 1, bad: 1}


async def test_posthog_sdk_bad_api_key_raises_its_api_error_with_our_detail(
    live_server: LiveServer,
) -> None:
    event = {"event": "signed_up", "distinct_id": "u", "uuid": str(uuid.uuid4())}

    # The SDK's own transport (capture() catches this and logs its message).
    with pytest.raises(PostHogAPIError) as raised:
        await asyncio.to_thread(
            posthog_batch_post, "phc_wrong", live_server.base_url, gzip=True, batch=[event]
        )

    assert raised.value.status == 401
    assert raised.value.message == "no app has that write key"


async def test_sdks_on_session_scoped_hosts_are_isolated(
    http: httpx.AsyncClient, live_server: LiveServer
) -> None:
    app = await new_app(http, plan=None)
    job_a, job_b = unique("job-a"), unique("job-b")
    segment = SegmentClient(
        app["write_key"], host=f"{live_server.base_url}/v1/session/{job_a}", sync_mode=True
    )
    rudder = RudderClient(
        app["write_key"], host=f"{live_server.base_url}/v1/session/{job_b}", sync_mode=True
    )
    posthog = Posthog(
        app["write_key"], host=f"{live_server.base_url}/v1/session/{job_b}", sync_mode=True
    )
    try:
        await asyncio.gather(
            asyncio.to_thread(segment.track, "u", "a_1"),
            asyncio.to_thread(rudder.track, "u", "b_1"),
            asyncio.to_thread(posthog.capture, "b_2", distinct_id="u"),
            asyncio.to_thread(segment.track, "u", "a_2"),
        )
    finally:
        await asyncio.to_thread(posthog.shutdown)

    in_a = await wait_for(http, app["id"], 2, session=job_a)
    in_b = await wait_for(http, app["id"], 2, session=job_b)
    assert sorted(e["event_name"] for e in in_a) == ["a_1", "a_2"]
    assert sorted(e["event_name"] for e in in_b) == ["b_1", "b_2"]
    listed = (await http.get(f"/api/logs/{app['id']}", params={"session": job_a})).json()
    assert len(listed["events"]) == 2
