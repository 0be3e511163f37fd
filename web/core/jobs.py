"""The queue contract between web and workers: names, message shape, the broker and enqueueing.

The broker is Redis (REDIS_URL) or RabbitMQ (an amqp:// BROKER_URL); everything here works
with either, through the small part of Dramatiq's Broker both share.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import orjson
import redis
from dramatiq.brokers.redis import RedisBroker
from redis.backoff import NoBackoff
from redis.retry import Retry

from web.core.settings import Settings

log = logging.getLogger(__name__)

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
    """Dramatiq's message encoding, with orjson: same JSON, a fraction of the CPU."""

    def encode(self, data: dict[str, Any]) -> bytes:
        return orjson.dumps(data)

    def decode(self, data: bytes) -> dict[str, Any]:
        decoded: dict[str, Any] = orjson.loads(data)
        return decoded


class EnqueueUnavailable(Exception):
    """The broker did not take the message in time; the client should retry later."""


class QueueFull(Exception):
    """Backpressure: workers are this far behind, so new events are refused for now."""


# Payload bytes one queue message carries at most (unless one request alone is larger): a
# message of many large events stays small enough for Redis, the worker's prefetch and
# one INSERT.
MAX_MESSAGE_PAYLOAD_BYTES = 1024 * 1024
# How long a measured queue depth is trusted before it is read again (seconds).
DEPTH_CHECK_INTERVAL = 0.1


def persistence_warning(broker: dramatiq.Broker) -> str | None:
    """A warning when Redis keeps nothing on disk (a Redis restart then loses the queue)."""
    if not isinstance(broker, RedisBroker):
        return None  # RabbitMQ: Dramatiq declares durable queues and persistent messages
    try:
        config = broker.client.config_get("save")
        config.update(broker.client.config_get("appendonly"))
    except redis.RedisError:
        return None  # managed Redis services often refuse CONFIG; nothing to say then
    if config.get("appendonly") == "no" and not config.get("save"):
        return (
            "Redis keeps nothing on disk (appendonly no, no save points): events accepted but"
            " not yet stored are lost if Redis restarts. See the README's reliability section."
        )
    return None


# An idle Redis consumer polls with a backoff that grows to its timeout (the worker's
# worker_timeout: 50 ms under `lvd worker`, so the first event after a quiet spell is stored
# at once). Only the events queue needs that; the others (alerts, housekeeping and every
# delay queue of retries) poll at most once a second. Six consumers at 50 ms cost an idle
# worker 158 Redis scripts a second and 12 % of a core on this project's 2-core machine.
UNHURRIED_POLL_MS = 1000


class EventsFirstRedisBroker(RedisBroker):
    """Dramatiq's Redis broker, with a quick idle poll for the events queue alone."""

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        if queue_name != EVENTS_QUEUE:
            timeout = max(timeout, UNHURRIED_POLL_MS)
        return super().consume(queue_name, prefetch, timeout)


_CONNECT_TIMEOUT_SECONDS = 5.0
# Probe an idle connection after 10 s, then every 5 s; 3 unanswered probes close it.
_KEEPALIVE = {socket.TCP_KEEPIDLE: 10, socket.TCP_KEEPINTVL: 5, socket.TCP_KEEPCNT: 3}


def build_broker(
    settings: Settings, *, socket_timeout: float | None, retries: int
) -> dramatiq.Broker:
    """The broker settings.broker_url names: RabbitMQ for amqp://, else Redis.

    socket_timeout bounds every Redis call (the web's answer to a hung Redis is a quick
    503). None, for workers, means no read timeout: a command that timed out mid-way may
    still run once Redis resumes, and a fetch whose reply is lost strands its messages in
    this worker's ack set. TCP keepalive still notices a dead peer within about 25 s.
    """
    # Process-wide in Dramatiq. Both sides need it: store messages carry QueuedEvent
    # dataclasses, which orjson writes and the stdlib's json does not.
    dramatiq.set_encoder(OrjsonEncoder())
    if settings.rabbitmq_url:
        return _build_rabbitmq_broker(
            settings.rabbitmq_url, socket_timeout or _CONNECT_TIMEOUT_SECONDS, retries
        )
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout or _CONNECT_TIMEOUT_SECONDS,
        socket_keepalive=True,
        socket_keepalive_options=_KEEPALIVE,
        retry=Retry(NoBackoff(), retries),
        health_check_interval=30,
    )
    broker = EventsFirstRedisBroker(  # type: ignore[no-untyped-call]
        client=client,
        heartbeat_timeout=settings.heartbeat_timeout_ms,
        maintenance_chance=settings.maintenance_chance,
    )
    broker.declare_queue(EVENTS_QUEUE)
    return broker


def _build_rabbitmq_broker(url: str, socket_timeout: float, retries: int) -> dramatiq.Broker:
    # Imported here: pika is needed only when RabbitMQ is the broker.
    import pika
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    # Several nodes may be listed, separated by ";", as Dramatiq accepts them.
    parameters = [pika.URLParameters(node) for node in url.split(";")]
    for each in parameters:
        each.socket_timeout = socket_timeout
        each.stack_timeout = socket_timeout * 2
        each.connection_attempts = retries + 1
        each.retry_delay = 0.1
        # RabbitMQ blocks publishers when short of memory or disk: give up (503), not wait.
        each.blocked_connection_timeout = socket_timeout * 2
    # confirm_delivery: enqueue returns once RabbitMQ has the message, so a 202 means it is
    # in the queue, as with Redis. No connection is opened here.
    broker = RabbitmqBroker(confirm_delivery=True, url=url)
    broker.parameters = parameters if len(parameters) > 1 else parameters[0]
    broker.declare_queue(EVENTS_QUEUE)
    return broker


def queue_depth(broker: dramatiq.Broker, queue_name: str = EVENTS_QUEUE) -> int:
    """Messages waiting in a queue (not those a worker holds). Blocking: call from a thread.

    With RabbitMQ this uses the calling thread's connection (pika's are not thread-safe,
    Dramatiq keeps one per thread); a stale one (idle past its heartbeat, or RabbitMQ
    restarted) is dropped and the count read once more on a fresh one.
    """
    if isinstance(broker, RedisBroker):
        return int(broker.client.llen(f"{broker.namespace}:{queue_name}"))
    import pika.exceptions
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    if not isinstance(broker, RabbitmqBroker):
        raise TypeError(f"no queue depth for a {type(broker).__name__}")
    try:
        return int(broker.get_queue_message_counts(queue_name)[0])
    except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError):
        del broker.connection
        return int(broker.get_queue_message_counts(queue_name)[0])


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


def _new_future() -> asyncio.Future[str]:
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    # A caller that timed out never reads its future; mark any failure as seen so asyncio
    # does not log it as lost.
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
    return future


@dataclass
class _Waiting:
    events: Sequence[QueuedEvent]
    done: asyncio.Future[str] = field(default_factory=_new_future)
    payload_bytes: int = field(init=False)

    def __post_init__(self) -> None:
        self.payload_bytes = sum(len(event.payload) for event in self.events)


class BatchingEnqueuer:
    """Coalesces concurrent requests' events into one queue message per Redis round trip.

    Each caller still waits until the message carrying its events is in Redis, so a 202 is
    never given for an event that was not enqueued. The blocking redis-py call runs on one
    dedicated thread, never on the event loop; while it runs, new requests gather into the
    next batch, so batches grow exactly when load does. The broker comes from build_broker,
    which sets the encoder these messages need.
    """

    def __init__(
        self,
        broker: dramatiq.Broker,
        *,
        max_batch: int,
        timeout: float,
        max_depth: int,
        linger: float = 0.0,
        max_bytes: int = MAX_MESSAGE_PAYLOAD_BYTES,
    ) -> None:
        self._broker = broker
        self._linger = linger
        self._max_bytes = max_bytes
        self._max_batch = max_batch
        self._timeout = timeout
        self._max_depth = max_depth
        self._depth = 0
        self._depth_read_at = float("-inf")
        self._pending: list[_Waiting] = []
        self._last_flush = float("-inf")
        self._flusher: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enqueue")

    async def enqueue(self, events: Sequence[QueuedEvent]) -> str:
        """Enqueue events; returns the queue message id, or raises EnqueueUnavailable."""
        waiting = _Waiting(events)
        self._pending.append(waiting)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_pending())
        try:
            # shield: a timed-out caller must not cancel the batch other callers share.
            return await asyncio.wait_for(asyncio.shield(waiting.done), self._timeout)
        except TimeoutError:
            # Not yet sent? Then never send it: this caller is told 503. (A batch already on
            # its way to a hung Redis cannot be recalled; see the README's reliability notes.)
            if waiting in self._pending:
                self._pending.remove(waiting)
            raise EnqueueUnavailable(
                f"the queue did not answer within {self._timeout:g} s"
            ) from None

    async def _flush_pending(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            # At most one message per `linger` unless a full one is waiting: under load,
            # requests that arrive meanwhile share it. One after a quiet spell goes at once.
            wait = self._last_flush + self._linger - time.monotonic()
            if wait > 0 and not self._full_message_waits():
                await asyncio.sleep(wait)
            self._last_flush = time.monotonic()
            batch = self._take_batch()
            message = build_store_message([e for waiting in batch for e in waiting.events])
            try:
                await loop.run_in_executor(self._executor, self._send, message)
            except Exception as exc:  # any broker failure is reported to every waiting caller
                log.warning("Enqueue failed: %s", exc)
                error = EnqueueUnavailable(f"the queue is unavailable: {exc}")
                for waiting in batch:
                    if not waiting.done.done():
                        waiting.done.set_exception(error)
                continue
            for waiting in batch:
                if not waiting.done.done():
                    waiting.done.set_result(message.message_id)

    def _send(self, message: dramatiq.Message[Any]) -> None:
        """Runs on the enqueue thread: refuse when the queue is too deep, else enqueue."""
        now = time.monotonic()
        if now - self._depth_read_at > DEPTH_CHECK_INTERVAL:
            self._depth = queue_depth(self._broker)
            self._depth_read_at = now
        if self._depth >= self._max_depth:
            raise QueueFull(f"the queue holds {self._depth} messages, over its limit")
        self._broker.enqueue(message)
        self._depth += 1

    def _full_message_waits(self) -> bool:
        events = sum(len(waiting.events) for waiting in self._pending)
        size = sum(waiting.payload_bytes for waiting in self._pending)
        return events >= self._max_batch or size >= self._max_bytes

    def _take_batch(self) -> list[_Waiting]:
        # Up to max_batch events and max_bytes of payloads. A request's events are never
        # split across messages; one large request may exceed the limits on its own.
        first = self._pending.pop(0)
        batch, count, size = [first], len(first.events), first.payload_bytes
        while self._pending:
            following = self._pending[0]
            count += len(following.events)
            size += following.payload_bytes
            if count > self._max_batch or size > self._max_bytes:
                break
            batch.append(self._pending.pop(0))
        return batch

    def ping(self) -> None:
        """Blocking round trip to the broker (call it from a thread); raises if it is away."""
        if isinstance(self._broker, RedisBroker):
            self._broker.client.ping()
            return
        # A RabbitMQ connection belongs to one thread: ask on the enqueue thread's own.
        self._executor.submit(queue_depth, self._broker).result(timeout=self._timeout)

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)
