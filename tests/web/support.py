"""Helpers the web tests share: rows to insert, queued messages to read, an SSE reader."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, cast

import asyncpg
import orjson
import redis.asyncio as aioredis
from quart.testing.connections import TestHTTPConnection
from quart.typing import TestClientProtocol as Client
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Response as WerkzeugResponse

from web.core.queries.base import NewLogEntry
from web.core.queries.events import insert_log_entries, notify
from web.core.queue.contract import EVENTS_CHANNEL

QUEUE_MESSAGES_KEY = "dramatiq:events.msgs"


async def json_of(response: WerkzeugResponse) -> Any:
    assert response.mimetype == "application/json", await response.get_data(as_text=True)
    return orjson.loads(await response.get_data())


async def assert_error(response: WerkzeugResponse, status: int, code: str) -> dict[str, Any]:
    """The response is the JSON error shape {"error": {"code", "message", ...}} with this code."""
    body = await json_of(response)
    assert (response.status_code, body.get("error", {}).get("code")) == (status, code), body
    assert set(body) == {"error"}
    found: dict[str, Any] = body["error"]
    assert {"code", "message"} <= set(found)
    assert isinstance(found["message"], str)
    assert found["message"]
    return found


def error(path: str, rule: str, message: str, severity: str = "error") -> dict[str, Any]:
    return {
        "path": path,
        "rule": rule,
        "message": message,
        "expected": None,
        "actual": None,
        "severity": severity,
    }


def new_entry(
    app_id: str,
    *,
    name: str | None = "user_login",
    status: str = "valid",
    errors: list[dict[str, Any]] | None = None,
    event_id: str | None = None,
    received_at: datetime | None = None,
) -> NewLogEntry:
    return NewLogEntry(
        app_id=app_id,
        event_id=event_id or str(uuid.uuid4()),
        event_name=name,
        payload=orjson.dumps({"eventName": name}).decode(),
        status=status,
        errors=orjson.dumps(errors or []).decode(),
        plan_version=None,
        session=None,
        received_at=received_at or datetime.now(UTC),
    )


def message_event(app_id: str, **fields: Any) -> dict[str, Any]:
    """`new_entry(app_id, **fields)` as a queue message carries it to workers.store.store_events."""
    entry = new_entry(app_id, **fields)
    return {**entry._asdict(), "received_at": entry.received_at.isoformat()}


async def insert_entries(pool: asyncpg.Pool, entries: list[NewLogEntry]) -> list[int]:
    async with pool.acquire() as conn:
        return await insert_log_entries(conn, entries)


async def queued_message(redis_url: str, task_id: str) -> dict[str, Any] | None:
    """The Dramatiq message whose message_id is `task_id`, as it sits in Redis, decoded.

    The hash is keyed by a per-enqueue redis_message_id, so it is searched by message_id.
    """
    async with aioredis.Redis.from_url(redis_url) as client:
        raw_messages = await client.hvals(QUEUE_MESSAGES_KEY)
    found = [m for m in map(orjson.loads, raw_messages) if m["message_id"] == task_id]
    assert len(found) <= 1, f"message {task_id} is queued {len(found)} times"
    return found[0] if found else None


async def queued_copies(redis_url: str, task_id: str, event_id: str) -> list[dict[str, Any]]:
    """Every copy of the event with this id inside the queued message `task_id`."""
    message = await queued_message(redis_url, task_id)
    assert message is not None, f"no message {task_id} in {QUEUE_MESSAGES_KEY}"
    assert message["queue_name"] == "events"
    assert message["actor_name"] == "store_events"
    return [event for event in message["args"][0] if event["event_id"] == event_id]


async def queued_event(redis_url: str, task_id: str, event_id: str) -> dict[str, Any]:
    """The event with this id inside the queued message `task_id`; fails unless it is there once."""
    found = await queued_copies(redis_url, task_id, event_id)
    assert len(found) == 1, f"event {event_id} is in message {task_id} {len(found)} times"
    return found[0]


async def eventually(
    check: Callable[[], bool], within: float = 5.0, message: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} did not hold within {within} s")
        await asyncio.sleep(0.01)


@dataclass(frozen=True)
class SseMessage:
    """One parsed SSE message: its fields as the browser's EventSource would see them."""

    id: str | None
    event: str | None
    data: str
    raw: bytes


def parse_sse(raw: bytes) -> SseMessage:
    """Parse one message the way the SSE spec does: CR, LF or CRLF end a line."""
    event_id = event = None
    data: list[str] = []
    text = raw.decode()
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event_id = value
        elif name == "event":
            event = value
        elif name == "data":
            data.append(value)
    return SseMessage(event_id, event, "\n".join(data), raw)


class SseStream:
    """Reads an open streaming response frame by frame, each wait bounded."""

    def __init__(self, conn: TestHTTPConnection) -> None:
        self.conn = conn
        self._buffer = b""

    @property
    def status_code(self) -> int | None:
        return self.conn.status_code

    @property
    def headers(self) -> Headers | None:
        return self.conn.headers

    async def frame(self, within: float = 5.0) -> bytes:
        """The next raw frame (without its blank-line terminator), comments included."""
        deadline = time.monotonic() + within
        while b"\n\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no SSE frame within {within} s")
            self._buffer += await asyncio.wait_for(self.conn.receive(), remaining)
        frame, _, self._buffer = self._buffer.partition(b"\n\n")
        return frame

    async def message(self, within: float = 5.0) -> SseMessage:
        """The next message that carries an event, skipping retry: and comment frames."""
        deadline = time.monotonic() + within
        while True:
            raw = await self.frame(max(deadline - time.monotonic(), 0.001))
            parsed = parse_sse(raw)
            if parsed.event is not None:
                return parsed

    async def no_message(self, wait: float = 0.3) -> None:
        """Fails if an event message arrives within `wait` seconds."""
        try:
            parsed = await self.message(wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected SSE message: {parsed.raw!r}")


@contextlib.asynccontextmanager
async def open_stream(
    client: Client, path: str, headers: dict[str, str] | None = None
) -> AsyncIterator[SseStream]:
    """GET a streaming response; leaving the block disconnects like a closed browser tab."""
    async with client.request(path, headers=headers) as conn:
        try:
            yield SseStream(cast(TestHTTPConnection, conn))
        finally:
            await conn.disconnect()


@dataclass
class TableRow:
    attrs: dict[str, str]
    cells: list[str]


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[TableRow] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append(TableRow({k: v or "" for k, v in attrs}, []))
        elif tag in ("td", "th") and self.rows:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].cells.append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_rows(html: str) -> list[TableRow]:
    """Every <tr> in the page with its attributes and the text of its cells, unescaped."""
    parser = _TableParser()
    parser.feed(html)
    parser.close()
    return parser.rows


def event_rows(html: str) -> list[TableRow]:
    return [row for row in table_rows(html) if row.attrs.get("id", "").startswith("event-")]


async def commit_out_of_id_order(
    pool: asyncpg.Pool, app_id: str, between: Callable[[], Awaitable[object]] | None = None
) -> tuple[int, int]:
    """Two workers' commits, the lower id committing second; (slow_id, fast_id).

    `between` runs once the higher id is committed and announced, before the lower one is.
    """
    async with pool.acquire() as slow, pool.acquire() as fast:
        slow_tx = slow.transaction()
        await slow_tx.start()
        # Different names: two open transactions counting the same app, hour, name and
        # status would queue on that rollup row until the first commits.
        [slow_id] = await insert_log_entries(slow, [new_entry(app_id, name="slow")])
        async with fast.transaction():
            [fast_id] = await insert_log_entries(fast, [new_entry(app_id, name="fast")])
            await notify(fast, EVENTS_CHANNEL, str(fast_id))
        if between is not None:
            await between()
        await notify(slow, EVENTS_CHANNEL, str(slow_id))
        await slow_tx.commit()
    return slow_id, fast_id
