"""What web and workers agree on: queue and actor names, message shapes and their encoding.

Both sides import this module and nothing else of the queue's, so a message the web builds
is one the workers can read. It builds messages but never talks to a broker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dramatiq
import orjson

EVENTS_QUEUE = "events"
STORE_EVENTS_ACTOR = "store_events"
# Postgres NOTIFY channel a worker signals after each commit; the payload is row ids.
EVENTS_CHANNEL = "lvd_events"
# Alerts (issue 8): the periodic look for new failures, and one delivery per message.
EMAILS_QUEUE = "emails"
CHECK_ALERTS_ACTOR = "check_alerts"
SEND_ALERT_ACTOR = "send_alert"
# Housekeeping (issue 8): the periodic purge of expired events.
MAINTENANCE_QUEUE = "maintenance"
PURGE_EVENTS_ACTOR = "purge_expired_events"


class OrjsonEncoder(dramatiq.Encoder):
    """Dramatiq's message encoding, with orjson: same JSON, a fraction of the CPU.

    Store messages carry QueuedEvent dataclasses, which orjson writes and the stdlib's json
    does not; web.core.queue.brokers.build_broker makes it Dramatiq's encoder.
    """

    def encode(self, data: dict[str, Any]) -> bytes:
        return orjson.dumps(data)

    def decode(self, data: bytes) -> dict[str, Any]:
        decoded: dict[str, Any] = orjson.loads(data)
        return decoded


def build_job_message(queue_name: str, actor_name: str, *args: Any) -> dramatiq.Message[Any]:
    """A message for an actor the web side cannot import (the workers define it)."""
    return dramatiq.Message(
        queue_name=queue_name, actor_name=actor_name, args=args, kwargs={}, options={}
    )


# Not frozen: one is built per event, and frozen __init__ costs 4x (2.1 against 0.5 us).
@dataclass(slots=True)
class QueuedEvent:
    """A judged event on its way to a worker. payload and errors are JSON text.

    In the message it is a JSON object of these fields: orjson writes the dataclass itself
    (building a dict per event first cost 7 % of the web's CPU with batches).
    """

    app_id: str
    event_id: str
    event_name: str | None
    payload: str
    status: str
    errors: str
    plan_version: int | None
    session: str | None
    received_at: str  # ISO 8601, UTC


def build_store_message(events: Sequence[QueuedEvent]) -> dramatiq.Message[Any]:
    return dramatiq.Message(
        queue_name=EVENTS_QUEUE,
        actor_name=STORE_EVENTS_ACTOR,
        args=(list(events),),
        kwargs={},
        options={},
    )
