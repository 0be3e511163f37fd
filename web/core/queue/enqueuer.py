"""The web's way onto the queue: concurrent requests' events batched into one message each.

Also the two ways an enqueue is refused: the broker did not answer in time, or the queue
is too deep (backpressure).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import Context
from dataclasses import dataclass, field
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from web.core.queue.contract import QueuedEvent, build_store_message
from web.core.queue.depth import queue_depth

log = logging.getLogger(__name__)


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
            # A fresh context: the batch is every waiting request's, not this one's (its log
            # lines must not carry this request's id).
            self._flusher = asyncio.create_task(self._flush_pending(), context=Context())
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
            # At most one flush per `linger` unless a full message is waiting: under load,
            # requests that arrive meanwhile share it. One after a quiet spell goes at once.
            wait = self._last_flush + self._linger - time.monotonic()
            if wait > 0 and not self._full_message_waits():
                await asyncio.sleep(wait)
            self._last_flush = time.monotonic()
            # Every waiting request goes in this one trip to the thread, however many
            # messages they fill: a busy event loop (large batches being judged) resumes
            # this task once per turn, and a message per turn fell behind and timed out
            # requests that were already judged.
            batches = self._take_batches()
            messages = [
                build_store_message([e for waiting in batch for e in waiting.events])
                for batch in batches
            ]
            try:
                sent, failure = await loop.run_in_executor(
                    self._executor, self._send_in_order, messages
                )
            except Exception as exc:  # the thread is gone (shutting down): nothing was sent
                sent, failure = 0, exc
            for batch, message in zip(batches[:sent], messages, strict=False):
                for waiting in batch:
                    if not waiting.done.done():
                        waiting.done.set_result(message.message_id)
            if failure is None:
                continue
            log.warning("Enqueue failed: %s", failure)
            error = EnqueueUnavailable(f"the queue is unavailable: {failure}")
            for batch in batches[sent:]:
                for waiting in batch:
                    if not waiting.done.done():
                        waiting.done.set_exception(error)

    def _send_in_order(
        self, messages: Sequence[dramatiq.Message[Any]]
    ) -> tuple[int, Exception | None]:
        """Runs on the enqueue thread: how many messages went, and why the next did not."""
        for count, message in enumerate(messages):
            try:
                self._send(message)
            except Exception as exc:  # any broker failure is reported to its callers
                return count, exc
        return len(messages), None

    def _send(self, message: dramatiq.Message[Any]) -> None:
        """Refuse when the queue is too deep, else enqueue."""
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

    def _take_batches(self) -> list[list[_Waiting]]:
        """Every waiting request, in messages of up to max_batch events and max_bytes of
        payloads. A request's events are never split across messages; one large request
        may exceed the limits on its own."""
        batches: list[list[_Waiting]] = []
        count = size = 0
        for waiting in self._pending:
            count += len(waiting.events)
            size += waiting.payload_bytes
            if not batches or count > self._max_batch or size > self._max_bytes:
                batches.append([])
                count, size = len(waiting.events), waiting.payload_bytes
            batches[-1].append(waiting)
        self._pending.clear()
        return batches

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
