"""How many messages wait in a queue, on either broker: the figure backpressure is based on."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from web.core.queue.contract import EVENTS_QUEUE


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
