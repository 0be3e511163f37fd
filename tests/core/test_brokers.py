"""web/core/queue/ with RabbitMQ: the broker the URL names, queue depth, backpressure, faults.

Runs against the RabbitMQ on this machine (amqp://guest:guest@127.0.0.1:5672/), in a vhost
of its own that is deleted afterwards, so no other queue on that server is ever touched.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from urllib.parse import quote

import pika
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker

from tests.conftest import free_port, skip_or_fail
from tests.core.test_jobs import queued
from web.core.queue.brokers import build_broker, persistence_warning
from web.core.queue.contract import EVENTS_QUEUE
from web.core.queue.depth import queue_depth
from web.core.queue.enqueuer import BatchingEnqueuer, EnqueueUnavailable
from web.core.settings import Settings, SettingsError

RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672
RABBITMQ_USER = "guest"


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def rabbitmq_vhost() -> Iterator[str]:
    """amqp:// URL of a vhost made for this run (deleted afterwards, queues and all)."""
    if shutil.which("rabbitmqctl") is None:
        skip_or_fail("rabbitmqctl is not installed: no RabbitMQ to test against")
    try:
        connection = pika.BlockingConnection(
            pika.ConnectionParameters(RABBITMQ_HOST, RABBITMQ_PORT, socket_timeout=3)
        )
        connection.close()
    except pika.exceptions.AMQPError as exc:
        skip_or_fail(f"RabbitMQ does not answer on {RABBITMQ_HOST}:{RABBITMQ_PORT}: {exc!r}")
    vhost = f"lvd-test-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, RABBITMQ_USER, ".*", ".*", ".*")
        yield f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{quote(vhost, safe='')}"
    finally:
        rabbitmqctl("delete_vhost", vhost)


def rabbit_settings(url: str) -> Settings:
    return Settings(rabbitmq_url=url)


@pytest.fixture
async def rabbit_broker(rabbitmq_vhost: str) -> AsyncIterator[RabbitmqBroker]:
    broker = build_broker(rabbit_settings(rabbitmq_vhost), socket_timeout=2.0, retries=0)
    assert isinstance(broker, RabbitmqBroker)
    await asyncio.to_thread(broker.flush, EVENTS_QUEUE)
    yield broker
    await asyncio.to_thread(broker.flush, EVENTS_QUEUE)
    broker.close()


# ---------------------------------------------------------------- settings and building


@pytest.mark.parametrize(
    ("env", "rabbitmq_url", "redis_url"),
    [
        pytest.param({}, None, "redis://127.0.0.1:6379/0", id="default-redis"),
        pytest.param(
            {"BROKER_URL": "amqp://u:p@rabbit:5672/lvd"},
            "amqp://u:p@rabbit:5672/lvd",
            "redis://127.0.0.1:6379/0",
            id="amqp-selects-rabbitmq",
        ),
        pytest.param(
            {"BROKER_URL": "amqps://rabbit/lvd", "REDIS_URL": "redis://r:1/2"},
            "amqps://rabbit/lvd",
            "redis://r:1/2",
            id="amqps-beside-redis-url",
        ),
        pytest.param({"BROKER_URL": "redis://b:1/3"}, None, "redis://b:1/3", id="redis-broker-url"),
    ],
)
def test_settings_broker_url_selects_the_broker(
    env: dict[str, str], rabbitmq_url: str | None, redis_url: str
) -> None:
    settings = Settings.from_env(env)
    assert (settings.rabbitmq_url, settings.redis_url) == (rabbitmq_url, redis_url)
    assert settings.broker_url == (rabbitmq_url or redis_url)


def test_settings_bad_broker_url_fails_fast() -> None:
    with pytest.raises(SettingsError, match="REDIS_URL must start with"):
        Settings.from_env({"BROKER_URL": "kafka://k:9092"})


def test_build_broker_amqp_url_builds_a_bounded_rabbitmq_broker() -> None:
    url = "amqp://guest:guest@127.0.0.1:5672/some-vhost"
    broker = build_broker(rabbit_settings(url), socket_timeout=1.5, retries=2)
    assert isinstance(broker, RabbitmqBroker)
    assert broker.confirm_delivery is True
    assert EVENTS_QUEUE in broker.get_declared_queues()
    parameters = broker.parameters
    assert (parameters.host, parameters.port, parameters.virtual_host) == (
        "127.0.0.1",
        5672,
        "some-vhost",
    )
    assert parameters.socket_timeout == 1.5
    assert parameters.connection_attempts == 3
    assert parameters.blocked_connection_timeout == 3.0
    assert persistence_warning(broker) is None
    assert not broker.connections, "building the broker must not connect"


def test_build_broker_redis_url_still_builds_redis(settings: Settings) -> None:
    broker = build_broker(settings, socket_timeout=1.0, retries=0)
    try:
        assert isinstance(broker, RedisBroker)
    finally:
        broker.client.close()


# ---------------------------------------------------------------- a real RabbitMQ


async def test_batching_enqueuer_rabbitmq_enqueues_and_counts_depth(
    rabbit_broker: RabbitmqBroker,
) -> None:
    enqueuer = BatchingEnqueuer(rabbit_broker, max_batch=50, timeout=5.0, max_depth=1000)
    try:
        ids = await asyncio.gather(*(enqueuer.enqueue([queued(f"r-{i}")]) for i in range(30)))
        await asyncio.to_thread(enqueuer.ping)
    finally:
        await enqueuer.close()
    assert all(ids)
    deadline = time.monotonic() + 5
    depth = 0
    while time.monotonic() < deadline:
        depth = await asyncio.to_thread(queue_depth, rabbit_broker)
        if depth == len(set(ids)):
            break
        await asyncio.sleep(0.05)
    assert depth == len(set(ids)) <= 30


async def test_batching_enqueuer_rabbitmq_refuses_beyond_max_depth(
    rabbit_broker: RabbitmqBroker,
) -> None:
    enqueuer = BatchingEnqueuer(rabbit_broker, max_batch=50, timeout=5.0, max_depth=2)
    try:
        await enqueuer.enqueue([queued("d-1")])
        await enqueuer.enqueue([queued("d-2")])
        await asyncio.sleep(0.2)  # past the depth cache: the next enqueue reads RabbitMQ
        with pytest.raises(EnqueueUnavailable, match="over its limit"):
            await enqueuer.enqueue([queued("d-3")])
    finally:
        await enqueuer.close()


async def test_queue_depth_rabbitmq_reconnects_after_a_lost_connection(
    rabbit_broker: RabbitmqBroker,
) -> None:
    assert await asyncio.to_thread(queue_depth, rabbit_broker) == 0

    def close_and_count() -> int:
        # As after RabbitMQ dropped an idle connection: the next call must open a new one.
        rabbit_broker.connection.close()
        return queue_depth(rabbit_broker)

    assert await asyncio.to_thread(close_and_count) == 0


async def test_batching_enqueuer_rabbitmq_unreachable_is_unavailable_fast() -> None:
    dead = rabbit_settings(f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    broker = build_broker(dead, socket_timeout=1.0, retries=0)
    enqueuer = BatchingEnqueuer(broker, max_batch=200, timeout=2.0, max_depth=100)
    started = time.monotonic()
    try:
        outcomes = await asyncio.gather(
            *(enqueuer.enqueue([queued(f"u-{i}")]) for i in range(10)), return_exceptions=True
        )
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            await asyncio.to_thread(enqueuer.ping)
    finally:
        await enqueuer.close()
    assert all(isinstance(outcome, EnqueueUnavailable) for outcome in outcomes), outcomes
    assert time.monotonic() - started < 5.0


def test_settings_replace_keeps_the_redis_broker_for_redis_tests(settings: Settings) -> None:
    # Tests and tools swap redis_url with dataclasses.replace: that must keep working.
    swapped = replace(settings, redis_url="redis://127.0.0.1:1/0")
    assert swapped.broker_url == "redis://127.0.0.1:1/0"
