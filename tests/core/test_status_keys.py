"""web/core/status/keys.py against the installed Dramatiq: the keys it names are the ones written.

Dramatiq spells most of its Redis key names in its Lua script only, so an upgrade could move
them without any import failing; these tests enqueue, delay and kill real messages and look.
"""

from __future__ import annotations

import inspect
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from web.core.queue.brokers import build_broker
from web.core.queue.contract import EVENTS_QUEUE, STORE_EVENTS_ACTOR, build_job_message
from web.core.settings import Settings
from web.core.status.keys import DEFAULT_KEYS, StatusKeys


def test_status_keys_name_the_keys_dramatiq_writes(
    sync_redis: redis.Redis, broker: RedisBroker, keys: StatusKeys
) -> None:
    dead = broker.enqueue(build_job_message(EVENTS_QUEUE, STORE_EVENTS_ACTOR))
    waiting = broker.enqueue(build_job_message(EVENTS_QUEUE, STORE_EVENTS_ACTOR))
    delayed = broker.enqueue(build_job_message(EVENTS_QUEUE, STORE_EVENTS_ACTOR), delay=60_000)
    consumer = broker.consume(EVENTS_QUEUE, prefetch=1, timeout=1000)
    try:
        fetched = next(consumer)
        assert fetched is not None and fetched.message_id == dead.message_id
        consumer.nack(fetched)
    finally:
        consumer.close()

    def redis_id(message: dramatiq.Message[Any]) -> bytes:
        return str(message.options["redis_message_id"]).encode()

    written = set(sync_redis.scan_iter(f"{keys.dramatiq_namespace}:*"))
    named = {keys.queue, keys.queue_messages, keys.delayed_messages, keys.dead_set}
    assert {key.encode() for key in named} <= written
    assert sync_redis.type(keys.queue) == b"list"
    assert sync_redis.lrange(keys.queue, 0, -1) == [redis_id(waiting)]
    assert sync_redis.type(keys.queue_messages) == b"hash"
    assert set(sync_redis.hkeys(keys.queue_messages)) == {redis_id(waiting)}
    assert sync_redis.type(keys.delayed_messages) == b"hash"
    assert set(sync_redis.hkeys(keys.delayed_messages)) == {redis_id(delayed)}
    assert sync_redis.type(keys.dead_set) == b"zset"
    assert sync_redis.zrange(keys.dead_set, 0, -1) == [redis_id(dead)]


def test_status_keys_default_namespace_is_the_brokers(settings: Settings) -> None:
    dramatiq_default = inspect.signature(RedisBroker).parameters["namespace"].default
    assert DEFAULT_KEYS.dramatiq_namespace == dramatiq_default
    broker = build_broker(settings, socket_timeout=1.0, retries=0)
    try:
        assert isinstance(broker, RedisBroker)
        assert broker.namespace == DEFAULT_KEYS.dramatiq_namespace
    finally:
        broker.client.close()
        broker.client.connection_pool.disconnect()
