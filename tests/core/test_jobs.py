"""web/core/queue/: the message contract, and BatchingEnqueuer against a real (or dead) Redis."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dramatiq
import orjson
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from tests.conftest import free_port
from web.core.queue.brokers import UNHURRIED_POLL_MS, build_broker
from web.core.queue.contract import (
    EMAILS_QUEUE,
    EVENTS_CHANNEL,
    EVENTS_QUEUE,
    MAINTENANCE_QUEUE,
    STORE_EVENTS_ACTOR,
    OrjsonEncoder,
    QueuedEvent,
    build_store_message,
)
from web.core.queue.enqueuer import BatchingEnqueuer, EnqueueUnavailable
from web.core.settings import Settings

QUEUE_KEY = f"dramatiq:{EVENTS_QUEUE}"
MESSAGES_KEY = f"dramatiq:{EVENTS_QUEUE}.msgs"
# Generous: the contract is ~2 s; this only proves that nothing hangs.
NO_HANG_SECONDS = 5.0
QUEUE_TEST_REDIS_DB = 11
HEARTBEATS_KEY = "dramatiq:__heartbeats__"


def queued(event_id: str, app_id: str = "test-app") -> QueuedEvent:
    return QueuedEvent(
        app_id=app_id,
        event_id=event_id,
        event_name="user_login",
        payload=orjson.dumps({"eventName": "user_login", "event_id": event_id}).decode(),
        status="valid",
        errors="[]",
        plan_version=None,
        session=None,
        received_at="2025-12-10T15:45:00+00:00",
    )


# ---------------------------------------------------------------- message contract


def test_queue_and_actor_names_are_the_contract() -> None:
    assert (EVENTS_QUEUE, STORE_EVENTS_ACTOR, EVENTS_CHANNEL) == (
        "events",
        "store_events",
        "lvd_events",
    )


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"queue_name": "events", "args": [[{"a": 1}]], "kwargs": {}, "options": {}},
        {"text": "caf\u00e9 \U0001f600 <b>", "n": [1, 2.5, None, True], "nested": {"k": {}}},
        {"big": 2**63 - 1, "neg": -(2**63)},
    ],
)
def test_orjson_encoder_round_trips_and_reads_dramatiqs_json(data: dict[str, Any]) -> None:
    encoder = OrjsonEncoder()
    encoded = encoder.encode(data)
    assert isinstance(encoded, bytes)
    assert encoded == orjson.dumps(data)
    assert encoder.decode(encoded) == data
    # Messages written by a process with Dramatiq's default encoder still decode.
    assert encoder.decode(dramatiq.JSONEncoder().encode(data)) == data
    assert dramatiq.JSONEncoder().decode(encoded) == data


@pytest.mark.parametrize("count", [0, 1, 3, 200])
def test_build_store_message_shape(count: int) -> None:
    events = [queued(f"id-{i}") for i in range(count)]
    message = build_store_message(events)
    assert message.queue_name == "events"
    assert message.actor_name == "store_events"
    assert message.args == (events,)
    assert message.kwargs == {}
    assert message.options == {}
    assert uuid.UUID(message.message_id)
    decoded = OrjsonEncoder().decode(OrjsonEncoder().encode(message.asdict()))
    assert decoded["args"] == [[message_data(event) for event in events]]
    assert decoded["actor_name"] == "store_events"


def test_build_store_message_ids_are_unique() -> None:
    ids = {build_store_message([queued("x")]).message_id for _ in range(100)}
    assert len(ids) == 100


def message_data(event: QueuedEvent) -> dict[str, Any]:
    """A queued event as the worker reads it from the message."""
    decoded: dict[str, Any] = orjson.loads(OrjsonEncoder().encode({"event": event}))["event"]
    return decoded


def test_queued_event_in_a_message_is_plain_json() -> None:
    event = replace(queued("e1"), plan_version=3, session="qa", status="invalid")
    data = message_data(event)
    assert data == {
        "app_id": "test-app",
        "event_id": "e1",
        "event_name": "user_login",
        "payload": '{"eventName":"user_login","event_id":"e1"}',
        "status": "invalid",
        "errors": "[]",
        "plan_version": 3,
        "session": "qa",
        "received_at": "2025-12-10T15:45:00+00:00",
    }
    assert orjson.loads(orjson.dumps(data)) == data


# ---------------------------------------------------------------- real Redis


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class QueueReader:
    """Reads this test's messages from the Dramatiq queue in Redis, and removes them after.

    Nothing here flushes a database: other test sessions on this machine share the server.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._seen: set[str] = set()

    def messages(self, message_ids: set[str]) -> dict[str, list[str]]:
        """message id -> event ids, for the given messages found in the queue hash."""
        found: dict[str, list[str]] = {}
        queued_ids = {text(raw) for raw in self.client.lrange(QUEUE_KEY, 0, -1)}
        for raw_id, raw in self.client.hgetall(MESSAGES_KEY).items():
            redis_id = text(raw_id)
            data = orjson.loads(raw)
            if data["message_id"] not in message_ids:
                continue
            self._seen.add(redis_id)
            assert data["queue_name"] == EVENTS_QUEUE
            assert data["actor_name"] == STORE_EVENTS_ACTOR
            assert redis_id in queued_ids, "the message is stored but not on the queue"
            assert data["message_id"] not in found, "one message enqueued twice"
            (events,) = data["args"]
            found[data["message_id"]] = [event["event_id"] for event in events]
        return found

    def remove_seen(self) -> None:
        for redis_id in self._seen:
            self.client.hdel(MESSAGES_KEY, redis_id)
            self.client.lrem(QUEUE_KEY, 0, redis_id)


@pytest.fixture(scope="module")
def queue_settings(settings: Settings) -> Settings:
    """The suite's Redis server, on a database index no worker consumes.

    The suite's own index is shared with the workers that end-to-end tests (of this run or
    of another run on this machine) start: they would take these messages off the queue.
    """
    return replace(
        settings,
        redis_url=urlunsplit(urlsplit(settings.redis_url)._replace(path=f"/{QUEUE_TEST_REDIS_DB}")),
    )


@pytest.fixture
def queue_reader(queue_settings: Settings) -> Iterator[QueueReader]:
    client = redis.Redis.from_url(queue_settings.redis_url)
    reader = QueueReader(client)
    yield reader
    reader.remove_seen()
    client.close()


def close_broker(broker: RedisBroker) -> None:
    broker.client.close()
    broker.client.connection_pool.disconnect()


@pytest.fixture
async def enqueue_broker(queue_settings: Settings) -> AsyncIterator[RedisBroker]:
    broker = build_broker(queue_settings, socket_timeout=1.0, retries=0)
    yield broker
    # Every enqueue registers the broker as a heartbeat; leave the database as it was.
    broker.client.zrem(HEARTBEATS_KEY, broker.broker_id)
    close_broker(broker)


async def test_batching_enqueuer_coalesces_200_concurrent_requests(
    enqueue_broker: RedisBroker, queue_reader: QueueReader
) -> None:
    enqueuer = BatchingEnqueuer(enqueue_broker, max_batch=50, timeout=2.0, max_depth=100_000)
    event_ids = [f"c-{i}" for i in range(200)]
    try:
        message_ids = await asyncio.gather(*(enqueuer.enqueue([queued(e)]) for e in event_ids))
    finally:
        await enqueuer.close()
    assert all(isinstance(m, str) and m for m in message_ids)
    distinct = set(message_ids)
    assert len(distinct) <= 10, f"{len(distinct)} messages for 200 requests: no coalescing"
    stored = queue_reader.messages(distinct)
    assert set(stored) == distinct, "a caller got an id of a message that is not in Redis"
    all_events = [e for events in stored.values() for e in events]
    assert len(all_events) == 200
    assert Counter(all_events) == Counter(event_ids)
    assert all(len(events) <= 50 for events in stored.values())
    for event_id, message_id in zip(event_ids, message_ids, strict=True):
        assert event_id in stored[message_id]


@pytest.mark.parametrize(
    ("sizes", "max_batch"),
    [
        pytest.param([(i % 9) + 1 for i in range(60)], 10, id="sizes-1-to-9-batch-10"),
        pytest.param([3] * 30 + [25] + [3] * 30, 10, id="one-request-over-max-batch"),
        pytest.param([7] * 40, 7, id="exactly-max-batch"),
        pytest.param([1] * 5, 200, id="few-small"),
    ],
)
async def test_batching_enqueuer_never_splits_a_request(
    enqueue_broker: RedisBroker,
    queue_reader: QueueReader,
    sizes: list[int],
    max_batch: int,
) -> None:
    requests = [
        [f"r{r}-{uuid.uuid4().hex[:6]}-{i}" for i in range(size)] for r, size in enumerate(sizes)
    ]
    enqueuer = BatchingEnqueuer(enqueue_broker, max_batch=max_batch, timeout=2.0, max_depth=100_000)
    try:
        message_ids = await asyncio.gather(
            *(enqueuer.enqueue([queued(e) for e in request]) for request in requests)
        )
    finally:
        await enqueuer.close()
    stored = queue_reader.messages(set(message_ids))
    assert set(stored) == set(message_ids)
    for request, message_id in zip(requests, message_ids, strict=True):
        events = stored[message_id]
        start = events.index(request[0])
        assert events[start : start + len(request)] == request, "a request was split or reordered"
    for events in stored.values():
        # A message holds at most max_batch events, unless one request alone is larger.
        assert len(events) <= max(max_batch, max(sizes))
    assert sum(len(events) for events in stored.values()) == sum(sizes)
    big = [m for r, m in zip(requests, message_ids, strict=True) if len(r) > max_batch]
    for message_id in big:
        assert len(stored[message_id]) == max(sizes), "an oversized request shares its message"


async def test_batching_enqueuer_sequential_requests_get_their_own_messages(
    enqueue_broker: RedisBroker, queue_reader: QueueReader
) -> None:
    enqueuer = BatchingEnqueuer(enqueue_broker, max_batch=200, timeout=2.0, max_depth=100_000)
    try:
        first = await enqueuer.enqueue([queued("s-1"), queued("s-2")])
        second = await enqueuer.enqueue([queued("s-3")])
    finally:
        await enqueuer.close()
    assert first != second
    assert queue_reader.messages({first, second}) == {
        first: ["s-1", "s-2"],
        second: ["s-3"],
    }


async def test_batching_enqueuer_caps_a_message_by_payload_bytes(
    enqueue_broker: RedisBroker, queue_reader: QueueReader
) -> None:
    # 10 concurrent requests of one 40 KB event with a 100 KB cap: at most 2 per message.
    enqueuer = BatchingEnqueuer(
        enqueue_broker, max_batch=500, timeout=2.0, max_depth=100_000, max_bytes=100_000
    )
    big = "x" * 40_000
    events = [replace(queued(f"b-{i}"), payload=f'{{"blob": "{big}"}}') for i in range(10)]
    try:
        message_ids = await asyncio.gather(*(enqueuer.enqueue([e]) for e in events))
    finally:
        await enqueuer.close()
    stored = queue_reader.messages(set(message_ids))
    assert sorted(e for ids in stored.values() for e in ids) == sorted(e.event_id for e in events)
    assert all(len(ids) <= 2 for ids in stored.values())
    assert len(stored) >= 5


async def test_batching_enqueuer_linger_gathers_requests_spread_in_time(
    enqueue_broker: RedisBroker, queue_reader: QueueReader
) -> None:
    # 20 requests 1 ms apart: without a linger each would go alone (a round trip to a local
    # Redis takes well under 1 ms); a 10 ms linger caps it at a message per 10 ms.
    enqueuer = BatchingEnqueuer(
        enqueue_broker, max_batch=200, timeout=2.0, max_depth=100_000, linger=0.010
    )

    async def one(index: int) -> str:
        await asyncio.sleep(index * 0.001)
        return await enqueuer.enqueue([queued(f"l-{index}")])

    try:
        message_ids = await asyncio.gather(*(one(i) for i in range(20)))
    finally:
        await enqueuer.close()
    distinct = set(message_ids)
    assert len(distinct) <= 6, f"{len(distinct)} messages for 20 requests in ~20 ms"
    stored = queue_reader.messages(distinct)
    assert sorted(e for events in stored.values() for e in events) == sorted(
        f"l-{i}" for i in range(20)
    )


async def test_batching_enqueuer_linger_does_not_delay_a_request_after_a_quiet_spell(
    enqueue_broker: RedisBroker,
) -> None:
    enqueuer = BatchingEnqueuer(
        enqueue_broker, max_batch=200, timeout=2.0, max_depth=100_000, linger=0.5
    )
    try:
        started = time.monotonic()
        await enqueuer.enqueue([queued("q-1")])
        first = time.monotonic() - started
        started = time.monotonic()
        await enqueuer.enqueue([queued("q-2")])  # within the linger: waits for its turn
        second = time.monotonic() - started
    finally:
        await enqueuer.close()
    assert first < 0.25
    assert second >= 0.3


async def test_batching_enqueuer_sends_every_waiting_full_request_while_the_loop_is_busy(
    enqueue_broker: RedisBroker, queue_reader: QueueReader
) -> None:
    """Large batches being judged keep the event loop busy, and the flusher resumes once per
    turn of it. 40 full requests waiting must all go in a turn or two, not one message per
    turn: at a turn of 30 ms that took 1.2 s and timed out requests already judged."""
    enqueuer = BatchingEnqueuer(enqueue_broker, max_batch=5, timeout=1.0, max_depth=100_000)
    requests = [[queued(f"busy-{r}-{i}") for i in range(5)] for r in range(40)]
    busy = True

    async def judging_elsewhere() -> None:
        while busy:
            time.sleep(0.03)  # noqa: ASYNC251 (a large batch judged: the loop waits meanwhile)
            await asyncio.sleep(0)

    hog = asyncio.create_task(judging_elsewhere())
    try:
        outcomes = await asyncio.gather(
            *(enqueuer.enqueue(events) for events in requests), return_exceptions=True
        )
    finally:
        busy = False
        await hog
        await enqueuer.close()
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert refused == []
    message_ids = [str(o) for o in outcomes]
    stored = queue_reader.messages(set(message_ids))
    assert len(stored) == 40  # still a message per full request
    for events, message_id in zip(requests, message_ids, strict=True):
        assert stored[message_id] == [e.event_id for e in events]


# ---------------------------------------------------------------- Redis down or hung


async def test_batching_enqueuer_redis_unreachable_is_unavailable_fast(
    settings: Settings,
) -> None:
    dead = replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    broker = build_broker(dead, socket_timeout=1.0, retries=0)
    enqueuer = BatchingEnqueuer(broker, max_batch=200, timeout=2.0, max_depth=100_000)
    started = time.monotonic()
    try:
        outcomes = await asyncio.gather(
            *(enqueuer.enqueue([queued(f"u-{i}")]) for i in range(20)), return_exceptions=True
        )
    finally:
        elapsed = time.monotonic() - started
        await enqueuer.close()
        close_broker(broker)
    # No caller may believe its events were enqueued.
    assert all(isinstance(outcome, EnqueueUnavailable) for outcome in outcomes), outcomes
    assert "unavailable" in str(outcomes[0])
    assert elapsed < NO_HANG_SECONDS


class SilentServer:
    """A TCP server that accepts connections and never answers: a hung Redis."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._connections.append(connection)

    @property
    def accepted(self) -> int:
        return len(self._connections)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        for connection in self._connections:
            connection.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.mark.parametrize("enqueue_timeout", [0.5, 2.0])
async def test_batching_enqueuer_redis_hung_is_unavailable_within_timeout(
    settings: Settings, silent_server: SilentServer, enqueue_timeout: float
) -> None:
    hung = replace(settings, redis_url=f"redis://127.0.0.1:{silent_server.port}/0")
    # A socket timeout longer than the enqueue timeout: the caller's bound must still hold.
    broker = build_broker(hung, socket_timeout=3.0, retries=0)
    enqueuer = BatchingEnqueuer(broker, max_batch=200, timeout=enqueue_timeout, max_depth=100_000)
    started = time.monotonic()
    try:
        with pytest.raises(EnqueueUnavailable, match=f"within {enqueue_timeout:g} s"):
            await enqueuer.enqueue([queued("h-1")])
        elapsed = time.monotonic() - started
    finally:
        silent_server.close()  # frees the blocked enqueue thread at once
        await enqueuer.close()
        close_broker(broker)
    assert silent_server.accepted >= 1, "the client never reached the hung server"
    assert enqueue_timeout <= elapsed < min(enqueue_timeout + 1.0, NO_HANG_SECONDS)


async def test_build_broker_socket_timeout_bounds_a_hung_redis(
    settings: Settings, silent_server: SilentServer
) -> None:
    hung = replace(settings, redis_url=f"redis://127.0.0.1:{silent_server.port}/0")
    broker = build_broker(hung, socket_timeout=0.5, retries=0)
    started = time.monotonic()
    try:
        with pytest.raises(redis.exceptions.TimeoutError):
            await asyncio.to_thread(broker.enqueue, build_store_message([queued("t-1")]))
        elapsed = time.monotonic() - started
    finally:
        close_broker(broker)
    assert elapsed < 2.0


def test_build_broker_uses_settings(settings: Settings) -> None:
    tuned = replace(settings, heartbeat_timeout_ms=1234, maintenance_chance=42)
    broker = build_broker(tuned, socket_timeout=0.75, retries=0)
    try:
        assert broker.heartbeat_timeout == 1234
        assert broker.maintenance_chance == 42
        assert EVENTS_QUEUE in broker.get_declared_queues()
        kwargs = broker.client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == 0.75
        assert kwargs["socket_connect_timeout"] == 0.75
        assert isinstance(dramatiq.get_encoder(), OrjsonEncoder)
    finally:
        close_broker(broker)


def test_only_the_events_queue_is_polled_at_the_workers_timeout(settings: Settings) -> None:
    # lvd worker runs with worker_timeout 50 ms; every other consumer backs off to 1 s.
    broker = build_broker(settings, socket_timeout=0.75, retries=0)
    try:
        timeouts = {
            name: broker.consume(name, prefetch=1, timeout=50).timeout
            for name in (EVENTS_QUEUE, f"{EVENTS_QUEUE}.DQ", EMAILS_QUEUE, MAINTENANCE_QUEUE)
        }
        patient = broker.consume(EMAILS_QUEUE, prefetch=1, timeout=5000).timeout
    finally:
        close_broker(broker)
    assert timeouts == {
        EVENTS_QUEUE: 50,
        f"{EVENTS_QUEUE}.DQ": UNHURRIED_POLL_MS,
        EMAILS_QUEUE: UNHURRIED_POLL_MS,
        MAINTENANCE_QUEUE: UNHURRIED_POLL_MS,
    }
    assert patient == 5000  # a longer timeout than the floor is kept
