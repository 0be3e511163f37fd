"""Parking what can never be processed: failed messages, and messages that keep crashing us."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import SkipMessage

from workers import store
from workers.database import DatabasePool

log = logging.getLogger("lvd.worker")

# Redis key counting how often a message was handed to a worker without finishing.
DELIVERY_KEY = "lvd:deliveries:{message_id}"
DELIVERY_KEY_SECONDS = 86_400


class DeadLetters(dramatiq.Middleware):
    """Records failed messages in PostgreSQL, and parks a message after too many crashes.

    Dramatiq does not count a delivery that killed its worker (SIGKILL, out of memory) as
    a retry, so such a message would loop forever. Each delivery increments a counter in
    Redis that only a finished delivery (success, failure or retry) clears: a counter
    above max_deliveries means the message crashed the worker that many times.
    """

    def __init__(self, database: DatabasePool, *, max_deliveries: int) -> None:
        self._database = database
        self._max_deliveries = max_deliveries

    def before_process_message(self, broker: Any, message: dramatiq.broker.MessageProxy) -> None:
        key = DELIVERY_KEY.format(message_id=message.message_id)
        pipe = broker.client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, DELIVERY_KEY_SECONDS)
        deliveries = int(pipe.execute()[0])
        if deliveries <= self._max_deliveries:
            return
        reason = (
            f"delivered {deliveries - 1} times without finishing: it crashes or hangs the worker"
        )
        if self._park(message, reason, deliveries - 1):
            broker.client.delete(key)
            raise SkipMessage(reason)

    def after_process_message(
        self,
        broker: Any,
        message: dramatiq.broker.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        broker.client.delete(DELIVERY_KEY.format(message_id=message.message_id))

    def after_nack(self, broker: Any, message: dramatiq.broker.MessageProxy) -> None:
        # Nacked means failed for good: the retry policy gave up or the data is bad.
        exc = message._exception
        reason = f"{type(exc).__name__}: {exc}" if exc else "failed"
        self._park(message, reason, int(message.options.get("retries", 0)) + 1)

    def _park(self, message: dramatiq.broker.MessageProxy, reason: str, attempts: int) -> bool:
        loop_thread = get_event_loop_thread()
        events = message.args[0] if message.args and isinstance(message.args[0], list) else []
        try:
            assert loop_thread is not None
            loop_thread.run_coroutine(
                store.park_message(
                    self._database.pool, message.message_id, events, reason, attempts
                )
            )
        except Exception:
            # The message stays in Dramatiq's own dead-letter set in Redis meanwhile.
            log.exception("Could not record message %s as a dead letter", message.message_id)
            return False
        log.error("Message %s parked as a dead letter: %s", message.message_id, reason)
        return True
