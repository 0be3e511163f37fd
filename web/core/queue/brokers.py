"""Building the broker: Redis (REDIS_URL) or RabbitMQ (an amqp:// BROKER_URL), and its checks.

build_broker is the one place that touches Dramatiq's process-wide state: every process that
enqueues or consumes (web, workers, tests) builds its broker here, and doing so makes
OrjsonEncoder Dramatiq's encoder. Importing this module changes nothing.
"""

from __future__ import annotations

import socket
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from redis.backoff import NoBackoff
from redis.retry import Retry

from web.core.queue.contract import EVENTS_QUEUE, OrjsonEncoder
from web.core.settings import Settings

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

    Sets Dramatiq's global encoder to OrjsonEncoder (see the module's docstring).

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
