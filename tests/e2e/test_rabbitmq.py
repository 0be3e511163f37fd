"""RabbitMQ as the broker, end to end: `lvd web` + `lvd worker` with BROKER_URL=amqp://...

Against the RabbitMQ on this machine, in a vhost this run creates and deletes (so its queues
are nobody else's), with a database of its own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pika
import pytest

from lvd.loadtest import format_report, send_load, verify_storage
from tests.conftest import free_port
from tests.core.test_brokers import rabbitmq_vhost
from tests.e2e.test_scale_out import PrivateStack, create_app_over, private_stack
from tests.web.support import message_event
from web.core.queue.brokers import build_broker
from web.core.queue.contract import EVENTS_QUEUE, STORE_EVENTS_ACTOR, build_job_message
from web.core.settings import Settings

__all__ = ["rabbitmq_vhost"]  # a fixture, shared with tests/core/test_brokers.py

MAX_DELIVERIES = 3


@pytest.fixture(scope="module")
def rabbit_stack(
    rabbitmq_vhost: str,
    service_urls: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PrivateStack]:
    log_dir = tmp_path_factory.mktemp("rabbitmq")
    broker_env = {"BROKER_URL": rabbitmq_vhost, "LVD_MAX_DELIVERIES": str(MAX_DELIVERIES)}
    with private_stack(service_urls[0], log_dir, "rabbit", broker_env) as stack:
        yield stack


async def test_rabbitmq_message_that_keeps_crashing_workers_is_parked(
    rabbit_stack: PrivateStack, rabbitmq_vhost: str
) -> None:
    """With no Redis to count deliveries, RabbitMQ's redelivered flag and PostgreSQL do."""
    app_id = f"crash-{uuid.uuid4().hex[:6]}"
    await rabbit_stack.fetch(
        "INSERT INTO apps (id, name, write_key) VALUES ($1, $1, $2)", app_id, uuid.uuid4().hex
    )
    events = [message_event(app_id, name="crash_loop", event_id=f"crash-{n}") for n in range(2)]
    message = build_job_message(EVENTS_QUEUE, STORE_EVENTS_ACTOR, events)

    def enqueue_and_take_without_ack() -> None:
        broker = build_broker(Settings(rabbitmq_url=rabbitmq_vhost), socket_timeout=5, retries=0)
        broker.enqueue(message)
        broker.close()
        # A consumer that takes the message and dies without acking it, as a crashed
        # worker does: RabbitMQ hands it out again, marked redelivered.
        connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_vhost))
        method, _, _ = connection.channel().basic_get(EVENTS_QUEUE, auto_ack=False)
        assert method is not None and not method.redelivered
        connection.close()

    await asyncio.to_thread(enqueue_and_take_without_ack)
    # As if it had crashed workers MAX_DELIVERIES times already.
    await rabbit_stack.fetch(
        "INSERT INTO message_deliveries (message_id, deliveries) VALUES ($1, $2)",
        message.message_id,
        MAX_DELIVERIES,
    )
    worker = await asyncio.to_thread(rabbit_stack.start_worker, "worker-crash")
    try:
        deadline = time.monotonic() + 20
        parked: list[Any] = []
        while time.monotonic() < deadline and len(parked) < 2:
            parked = await rabbit_stack.fetch(
                "SELECT event_id, reason, attempts FROM dead_letters WHERE message_id = $1",
                message.message_id,
            )
            await asyncio.sleep(0.1)
    finally:
        await asyncio.to_thread(rabbit_stack.stop, worker)
    assert sorted(row["event_id"] for row in parked) == ["crash-0", "crash-1"], rabbit_stack.logs()
    assert all("without finishing" in row["reason"] for row in parked)
    assert all(row["attempts"] == MAX_DELIVERIES + 1 for row in parked)
    assert await rabbit_stack.fetch("SELECT 1 FROM log_entries WHERE app_id = $1", app_id) == []
    assert (
        await rabbit_stack.fetch(
            "SELECT 1 FROM message_deliveries WHERE message_id = $1", message.message_id
        )
        == []
    )


async def test_rabbitmq_events_posted_are_stored_exactly_once(rabbit_stack: PrivateStack) -> None:
    base_url = await asyncio.to_thread(rabbit_stack.start_web, "web")
    worker = await asyncio.to_thread(rabbit_stack.start_worker, "worker")
    app_id = f"rabbit-{uuid.uuid4().hex[:8]}"
    await create_app_over(base_url, app_id)
    report = await send_load(
        base_url, app_id, 100.0, 4.0, batch=2, invalid_share=0.1, connections=16, progress=False
    )
    await verify_storage(report, rabbit_stack.database_url, app_id, drain_limit=30.0)
    summary = report.summary()
    print("FIGURE: rabbitmq: " + format_report(summary).replace("\n", "; "), flush=True)
    assert summary["status_counts"] == {"202": summary["requests"]}, summary
    assert summary["stored_once"] == summary["accepted_events"] == 2 * summary["requests"]
    assert (summary["lost"], summary["doubled"], summary["stored_but_refused"]) == (0, 0, 0)
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["broker"] == "ok"
    assert worker.poll() is None


async def test_rabbitmq_unreachable_answers_503_quickly(rabbit_stack: PrivateStack) -> None:
    closed = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    app_id = f"down-{uuid.uuid4().hex[:8]}"
    await rabbit_stack.fetch(
        "INSERT INTO apps (id, name, write_key) VALUES ($1, $1, $2)", app_id, uuid.uuid4().hex
    )
    base_url = await asyncio.to_thread(rabbit_stack.start_web, "web-down", BROKER_URL=closed)
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        started = time.monotonic()
        response = await client.post(
            f"/api/logs/{app_id}", json={"eventName": "lost", "event_id": "never-stored"}
        )
        elapsed = time.monotonic() - started
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "2"
    assert response.json()["error"]["code"] == "queue_unavailable"
    assert elapsed < 3.0
    print(f"FIGURE: rabbitmq: 503 with RabbitMQ unreachable in {elapsed * 1000:.0f} ms")
    assert health.status_code == 200
    assert ready.status_code == 503 and ready.json()["checks"]["broker"] != "ok"
    assert await rabbit_stack.fetch("SELECT 1 FROM log_entries WHERE app_id = $1", app_id) == []
