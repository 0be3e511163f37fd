"""Fixtures of the core tests: Redis key names of a test's own, a client that removes them
afterwards, and a Dramatiq Redis broker under them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from web.core.queue.contract import EVENTS_QUEUE
from web.core.settings import Settings
from web.core.status.keys import StatusKeys


@pytest.fixture
def keys() -> StatusKeys:
    """A fresh Dramatiq namespace and status prefix, so no other test changes the figures."""
    tag = uuid.uuid4().hex[:10]
    return StatusKeys(dramatiq_namespace=f"t-{tag}", prefix=f"t-{tag}:status")


@pytest.fixture
def sync_redis(settings: Settings, keys: StatusKeys) -> Iterator[redis.Redis]:
    """A client of the test Redis; every key under `keys` is deleted afterwards."""
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5.0)
    yield client
    for pattern in (f"{keys.dramatiq_namespace}:*", f"{keys.prefix}:*"):
        for key in client.scan_iter(pattern):
            client.delete(key)
    client.close()


@pytest.fixture
def broker(sync_redis: redis.Redis, keys: StatusKeys) -> Iterator[RedisBroker]:
    """A Redis broker in the test's own namespace, with the events queue declared."""
    found = RedisBroker(client=sync_redis, namespace=keys.dramatiq_namespace)  # type: ignore[no-untyped-call]
    found.declare_queue(EVENTS_QUEUE)
    yield found
    found.close()
