"""The `events` queue's actor: stores judged events, one await of workers.store."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from web.core.queue.contract import EVENTS_QUEUE, STORE_EVENTS_ACTOR
from workers import store
from workers.broker import database
from workers.failures import RETRY_UNTIL_STORED

log = logging.getLogger("lvd.worker")

SHOWN_IDS = 10


@dramatiq.actor(
    actor_name=STORE_EVENTS_ACTOR,
    queue_name=EVENTS_QUEUE,
    **RETRY_UNTIL_STORED,  # a database outage for ever, bad data never (workers.failures)
)
async def store_events(events: list[dict[str, Any]]) -> None:
    message = CurrentMessage.get_current_message()
    message_id = message.message_id if message else ""
    stored = await store.store_events(database.pool, events, message_id=message_id)
    event_ids = [event["event_id"] for event in events]
    shown = ", ".join(event_ids[:SHOWN_IDS]) + (" ..." if len(event_ids) > SHOWN_IDS else "")
    log.info(
        "Message %s: stored %d of %d events (%d already stored): %s",
        message_id,
        len(stored),
        len(events),
        len(events) - len(stored),
        shown,
    )
