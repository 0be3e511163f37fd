"""Dramatiq actors: thin, idempotent, each one await of a function in workers.store."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from web.core.jobs import EVENTS_QUEUE, STORE_EVENTS_ACTOR
from workers import store
from workers.broker import database

log = logging.getLogger("lvd.worker")

SHOWN_IDS = 10


@dramatiq.actor(
    actor_name=STORE_EVENTS_ACTOR,
    queue_name=EVENTS_QUEUE,
    # A database outage is retried with capped backoff: about 25 minutes before giving up.
    max_retries=50,
    min_backoff=200,
    max_backoff=30_000,
)
async def store_events(events: list[dict[str, Any]]) -> None:
    stored = await store.store_events(database.pool, events)
    message = CurrentMessage.get_current_message()
    event_ids = [event["event_id"] for event in events]
    shown = ", ".join(event_ids[:SHOWN_IDS]) + (" ..." if len(event_ids) > SHOWN_IDS else "")
    log.info(
        "Message %s: stored %d of %d events (%d already stored): %s",
        message.message_id if message else "?",
        len(stored),
        len(events),
        len(events) - len(stored),
        shown,
    )
