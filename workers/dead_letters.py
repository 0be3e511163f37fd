"""Parking what can never be processed: failed messages, and messages that keep crashing us."""

from __future__ import annotations

import logging
import time
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import SkipMessage

from web.core.queries.message_deliveries import count_message_delivery, delete_message_deliveries
from workers import store
from workers.database import DatabasePool
from workers.event_loop import run_on_loop

log = logging.getLogger("lvd.worker")

# Redis key counting how often a message was handed to a worker without finishing.
DELIVERY_KEY = "lvd:deliveries:{message_id}"
DELIVERY_KEY_SECONDS = 86_400
# RabbitMQ hands out messages as soon as a worker consumes, which can be before its database
# pool is open: a redelivered message waits this long for it to count its delivery.
POOL_WAIT_SECONDS = 30.0


class DeadLetters(dramatiq.Middleware):
    """Records failed messages in PostgreSQL, and parks a message after too many crashes.

    Dramatiq does not count a delivery that killed its worker (SIGKILL, out of memory) as
    a retry, so such a message would loop forever. Each delivery increments a counter in
    Redis that only a finished delivery (success, failure or retry) clears: a counter
    above max_deliveries means the message crashed the worker that many times.

    With RabbitMQ there is no Redis: RabbitMQ marks a message it hands out again after a
    consumer died as redelivered, and only such deliveries are counted, in PostgreSQL
    (message_deliveries). A first delivery costs nothing; a redelivered one an upsert, and
    a delete once it finishes. The count assumes the first delivery started, so it may be
    one too high (a message prefetched by a worker that then stopped), never too low.
    """

    def __init__(self, database: DatabasePool, *, max_deliveries: int) -> None:
        self._database = database
        self._max_deliveries = max_deliveries

    def before_process_message(self, broker: Any, message: dramatiq.broker.MessageProxy) -> None:
        deliveries = self._count_delivery(broker, message)
        if deliveries <= self._max_deliveries:
            return
        reason = (
            f"delivered {deliveries - 1} times without finishing: it crashes or hangs the worker"
        )
        if self._park(message, reason, deliveries - 1):
            self._forget_deliveries(broker, message)
            raise SkipMessage(reason)

    def _count_delivery(self, broker: Any, message: dramatiq.broker.MessageProxy) -> int:
        """This delivery's number, counting the earlier ones that never finished."""
        if isinstance(broker, RedisBroker):
            key = DELIVERY_KEY.format(message_id=message.message_id)
            pipe = broker.client.pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, DELIVERY_KEY_SECONDS)
            return int(pipe.execute()[0])
        if not getattr(message, "redelivered", False):
            return 1
        self._wait_for_pool()
        return 1 + run_on_loop(self._count_in_database(message.message_id))

    def _wait_for_pool(self) -> None:
        deadline = time.monotonic() + POOL_WAIT_SECONDS
        while True:
            try:
                self._database.pool  # noqa: B018  (raises until the worker has booted)
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _forget_deliveries(self, broker: Any, message: dramatiq.broker.MessageProxy) -> None:
        if isinstance(broker, RedisBroker):
            broker.client.delete(DELIVERY_KEY.format(message_id=message.message_id))
        elif getattr(message, "redelivered", False):
            try:
                run_on_loop(self._forget_in_database(message.message_id))
            except Exception:  # a stale counter row is purged after a day
                log.warning("Could not clear the delivery count of %s", message.message_id)

    async def _count_in_database(self, message_id: str) -> int:
        async with self._database.pool.acquire() as conn:
            return await count_message_delivery(conn, message_id)

    async def _forget_in_database(self, message_id: str) -> None:
        async with self._database.pool.acquire() as conn:
            await delete_message_deliveries(conn, message_id)

    def after_process_message(
        self,
        broker: Any,
        message: dramatiq.broker.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._forget_deliveries(broker, message)

    def after_nack(self, broker: Any, message: dramatiq.broker.MessageProxy) -> None:
        # Nacked means failed for good: the retry policy gave up or the data is bad.
        exc = message._exception
        reason = f"{type(exc).__name__}: {exc}" if exc else "failed"
        # Dramatiq's Retries middleware has already counted this try in "retries".
        self._park(message, reason, int(message.options.get("retries", 1)))

    def _park(self, message: dramatiq.broker.MessageProxy, reason: str, attempts: int) -> bool:
        events = message.args[0] if message.args and isinstance(message.args[0], list) else []
        try:
            run_on_loop(
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
