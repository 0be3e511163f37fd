"""Messages that can never be stored are parked with their reason; the rest keeps flowing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import dramatiq
import orjson
import pytest
from dramatiq.brokers.redis import RedisBroker

from lvd.loadtest import send_load
from web.core.queue.brokers import build_broker
from web.core.queue.contract import EVENTS_QUEUE, STORE_EVENTS_ACTOR, build_job_message
from web.core.settings import Settings
from workers.dead_letters import DELIVERY_KEY

from .conftest import (
    APP_ID,
    Stack,
    check_oracle,
    figure,
    message_event,
    statuses,
    wait_until,
)

pytestmark = pytest.mark.faults

MAX_DELIVERIES = 5  # the default of LVD_MAX_DELIVERIES


def store_message(events: list[dict[str, Any]]) -> dramatiq.Message[Any]:
    """A message for the store actor, with events as given (malformed ones too)."""
    return build_job_message(EVENTS_QUEUE, STORE_EVENTS_ACTOR, events)


async def parked(stack: Stack, message_id: str) -> list[dict[str, Any]]:
    rows = await stack.fetch(
        "SELECT app_id, event_id, event, reason, attempts FROM dead_letters"
        " WHERE message_id = $1 ORDER BY id",
        message_id,
    )
    return [{**dict(row), "event": orjson.loads(row["event"])} for row in rows]


async def test_poison_messages_are_parked_while_other_events_flow(stack: Stack) -> None:
    test = "poison messages"
    tag = uuid.uuid4().hex[:8]
    settings = Settings(database_url=stack.database_url, redis_url=stack.redis_url)
    broker = build_broker(settings, socket_timeout=5.0, retries=0)
    assert isinstance(broker, RedisBroker)
    try:
        load = asyncio.create_task(
            send_load(stack.base_url, APP_ID, 200.0, 5.0, run_id=f"poison-{tag}", progress=False)
        )
        await asyncio.sleep(1.0)
        # 1. Malformed arguments: no event fields at all.
        malformed = store_message([{"nonsense": 1}])
        # 2. A message that "crashed its worker" more often than allowed: its delivery
        #    counter is already over the limit when a worker takes it.
        crash_events = [message_event(APP_ID, f"crashloop-{tag}-{n}") for n in range(2)]
        crashing = store_message(crash_events)
        broker.client.set(DELIVERY_KEY.format(message_id=crashing.message_id), MAX_DELIVERIES + 3)
        # 3. One event that breaks a constraint (its app does not exist) between good ones.
        good = [f"good-{tag}-1", f"good-{tag}-2"]
        bad = f"orphan-{tag}"
        mixed = store_message(
            [
                message_event(APP_ID, good[0]),
                message_event("no-such-app", bad),
                message_event(APP_ID, good[1]),
            ]
        )
        for message in (malformed, crashing, mixed):
            broker.enqueue(message)

        async def all_parked() -> bool:
            return all([await parked(stack, m.message_id) for m in (malformed, crashing, mixed)])

        parked_after = await wait_until(
            all_parked, within=30.0, message="the three poison messages parked"
        )
        report = await load
        await check_oracle(stack, report, test=test, drain_limit=60.0)
        assert statuses(report) == {202: len(report.outcomes)}

        [malformed_row] = await parked(stack, malformed.message_id)
        assert malformed_row["event"] == {"nonsense": 1}
        assert malformed_row["reason"].startswith("KeyError"), malformed_row

        crash_rows = await parked(stack, crashing.message_id)
        assert [row["event_id"] for row in crash_rows] == [e["event_id"] for e in crash_events]
        assert all("without finishing" in row["reason"] for row in crash_rows), crash_rows
        assert all(row["attempts"] == MAX_DELIVERIES + 3 for row in crash_rows), crash_rows
        assert not broker.client.exists(DELIVERY_KEY.format(message_id=crashing.message_id))

        [orphan_row] = await parked(stack, mixed.message_id)
        assert orphan_row["event_id"] == bad
        assert orphan_row["app_id"] == "no-such-app"
        assert "ForeignKeyViolation" in orphan_row["reason"], orphan_row

        stored = await stack.fetch(
            "SELECT event_id, count(*) AS n FROM log_entries WHERE event_id = ANY($1::text[])"
            " GROUP BY event_id",
            [*good, bad, *(e["event_id"] for e in crash_events)],
        )
        assert {row["event_id"]: row["n"] for row in stored} == {good[0]: 1, good[1]: 1}
        # Nothing else was parked: the normal load went through untouched.
        total: int = await stack.fetchval("SELECT count(*) FROM dead_letters")
        assert total == 1 + len(crash_events) + 1
        assert all(worker.alive() for worker in stack.workers), stack.logs()
        figure(test, "enqueue -> all three parked (under load)", parked_after, "s")
        figure(test, "attempts recorded for the malformed message", malformed_row["attempts"])
        # Bad data is tried once and not retried: one attempt.
        assert malformed_row["attempts"] == 1, malformed_row
    finally:
        broker.close()
        broker.client.close()
