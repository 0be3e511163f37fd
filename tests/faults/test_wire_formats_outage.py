"""Every wire format keeps answering 2xx while PostgreSQL is stopped, and nothing is lost."""

from __future__ import annotations

import asyncio
import base64
import gzip
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from .conftest import APP_ID, Stack, assert_no_dead_letters, figure, wait_until

pytestmark = pytest.mark.faults

# (what is sent, the builder of one request for an event id): every path family, as the
# SDKs send them. A builder returns (method, path, headers, body).
Request = tuple[str, str, dict[str, str], bytes]
Builder = Callable[[str, str], Request]


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def native(key: str, event_id: str) -> Request:
    body = orjson.dumps({"eventName": "outage_native", "event_id": event_id})
    return "POST", f"/api/logs/{APP_ID}", {"Content-Type": "application/json"}, body


def segment_short(key: str, event_id: str) -> Request:
    body = orjson.dumps({"type": "track", "event": "outage_segment", "messageId": event_id})
    return "POST", "/v1/t", {"Content-Type": "text/plain", **_basic(key)}, body


def segment_mobile(key: str, event_id: str) -> Request:
    message = {"type": "screen", "name": "Home", "messageId": event_id}
    body = gzip.compress(orjson.dumps({"batch": [message], "writeKey": key}))
    return "POST", "/v1/b", {"Content-Type": "text/plain", "Content-Encoding": "gzip"}, body


def posthog_js(key: str, event_id: str) -> Request:
    event = {"event": "outage_posthog", "uuid": event_id, "properties": {"token": key}}
    body = gzip.compress(orjson.dumps([event]))
    return "POST", "/e/?compression=gzip-js", {"Content-Type": "text/plain"}, body


def posthog_mobile(key: str, event_id: str) -> Request:
    event = {"event": "$screen", "uuid": event_id, "distinct_id": "u"}
    body = gzip.compress(orjson.dumps({"api_key": key, "batch": [event]}))
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    return "POST", "/batch", headers, body


def amplitude(key: str, event_id: str) -> Request:
    event = {"event_type": "outage_amplitude", "insert_id": event_id, "device_id": "device-1"}
    body = orjson.dumps({"api_key": key, "events": [event]})
    return "POST", "/2/httpapi", {"Content-Type": "application/json"}, body


def snowplow_by_aid(key: str, event_id: str) -> Request:
    item = {"e": "se", "eid": event_id, "aid": APP_ID, "tv": "js-4", "se_ca": "o", "se_ac": "a"}
    body = orjson.dumps({"schema": "iglu:payload_data", "data": [item]})
    return "POST", "/com.snowplowanalytics.snowplow/tp2", {"Content-Type": "application/json"}, body


def snowplow_by_key(key: str, event_id: str) -> Request:
    item = {"e": "pv", "eid": event_id, "tv": "js-4", "url": "https://shop.example/"}
    body = orjson.dumps({"schema": "iglu:payload_data", "data": [item]})
    path = f"/snowplow/{key}/com.snowplowanalytics.snowplow/tp2"
    return "POST", path, {"Content-Type": "application/json"}, body


BUILDERS: dict[str, Builder] = {
    "native": native,
    "segment short path": segment_short,
    "segment mobile batch": segment_mobile,
    "posthog-js": posthog_js,
    "posthog mobile": posthog_mobile,
    "amplitude": amplitude,
    "snowplow by aid": snowplow_by_aid,
    "snowplow by write key": snowplow_by_key,
}


async def send_each(stack: Stack, key: str, prefix: str) -> dict[str, tuple[int, str]]:
    """One request per format; returns (status, event id) by format."""
    outcomes: dict[str, tuple[int, str]] = {}
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10.0) as client:
        for name, build in BUILDERS.items():
            event_id = f"{prefix}-{uuid.uuid4().hex[:12]}"
            method, path, headers, body = build(key, event_id)
            response = await client.request(method, path, headers=headers, content=body)
            outcomes[name] = (response.status_code, event_id)
    return outcomes


async def stored_once(stack: Stack, event_ids: list[str]) -> dict[str, int]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(
            "SELECT event_id, count(*) AS n FROM log_entries"
            " WHERE app_id = $1 AND event_id = ANY($2::text[]) GROUP BY event_id",
            APP_ID,
            event_ids,
        )
    finally:
        await conn.close()
    return {row["event_id"]: row["n"] for row in rows}


async def write_key_of(stack: Stack) -> str:
    conn = await asyncpg.connect(stack.database_url)
    try:
        key: Any = await conn.fetchval("SELECT write_key FROM apps WHERE id = $1", APP_ID)
    finally:
        await conn.close()
    return str(key)


async def test_every_wire_format_answers_2xx_with_postgres_stopped_and_stores_after(
    stack: Stack,
) -> None:
    test = "every wire format, PostgreSQL stopped"
    key = await write_key_of(stack)
    # Each way of finding the app (by id, by write key, by aid) is looked up once first,
    # as a running server would have done before the outage.
    warm = await send_each(stack, key, "warm")
    assert {name: status for name, (status, _) in warm.items() if status >= 300} == {}

    await asyncio.to_thread(stack.pg_ctl, "stop", "-m", "fast")
    during = await send_each(stack, key, "outage")
    await asyncio.to_thread(stack.pg_start)

    refused = {name: status for name, (status, _) in during.items() if status >= 300}
    assert refused == {}, f"answers other than 2xx while PostgreSQL was stopped: {refused}"
    event_ids = [event_id for _, event_id in [*warm.values(), *during.values()]]
    await wait_until(
        lambda: _all_stored(stack, event_ids), within=60.0, message="every event stored"
    )
    counts = await stored_once(stack, event_ids)
    assert counts == dict.fromkeys(event_ids, 1)
    figure(test, "formats answered 2xx during the outage", len(during))
    await assert_no_dead_letters(stack)


async def _all_stored(stack: Stack, event_ids: list[str]) -> bool:
    return len(await stored_once(stack, event_ids)) == len(event_ids)
