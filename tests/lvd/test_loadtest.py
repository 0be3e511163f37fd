"""The load tool's arithmetic: rates, the open-loop schedule, percentiles and the report;
and its HTTP/1.1 client, against a scripted server."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from lvd.loadtest import (
    ConnectionPool,
    HttpConnection,
    Outcome,
    Report,
    due_times,
    format_report,
    garbage_collector_paused,
    parse_rate,
    percentile,
    request_body,
    send_load,
)
from tests.conftest import free_port


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("100/s", 100.0), ("500/min", 500 / 60), ("30 / m", 0.5), ("2.5", 2.5), ("60/minute", 1.0)],
)
def test_parse_rate_reads_seconds_and_minutes(text: str, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["fast", "10/h", "-5/s", "0/s", ""])
def test_parse_rate_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)


def test_due_times_are_evenly_spaced_whatever_the_server_does() -> None:
    due = due_times(rate=4, duration=2)
    assert due == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    assert len(due_times(rate=500 / 60, duration=60)) == 500


@pytest.mark.parametrize(
    ("fraction", "expected"), [(0.5, 50.0), (0.95, 95.0), (0.99, 99.0), (1.0, 100.0), (0.001, 1.0)]
)
def test_percentile_is_nearest_rank(fraction: float, expected: float) -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, fraction) == expected


def test_percentile_of_nothing_is_zero() -> None:
    assert percentile([], 0.99) == 0.0


def test_report_summary_counts_statuses_latencies_and_storage() -> None:
    report = Report(requested=4, duration=2.0)
    report.outcomes = [
        Outcome(202, 0.010, ["a"]),
        Outcome(202, 0.020, ["b", "c"]),
        Outcome(503, 0.030, ["d"]),
        Outcome(202, 0.040, ["e"]),
    ]
    report.stored_once = 3
    report.lost = ["e"]
    report.queue_latencies = [0.005, 0.007, 0.009]
    summary = report.summary()
    assert summary["achieved_rate"] == 2.0
    assert summary["events_sent"] == 5
    assert summary["status_counts"] == {"202": 3, "503": 1}
    assert summary["accepted_events"] == 4
    # Sent counts the refused event too; accepted only the 202s' events.
    assert (summary["events_per_second"], summary["accepted_per_second"]) == (2.5, 2.0)
    assert summary["latency_ms"] == {"p50": 20.0, "p95": 40.0, "p99": 40.0, "max": 40.0}
    assert summary["queue_to_db_ms"]["p50"] == 7.0
    assert (summary["lost"], summary["doubled"], summary["stored_once"]) == (1, 0, 3)
    assert summary["stored_per_second"] == 0  # no span measured: no rate
    report.stored_span_seconds = 1.5
    summary = report.summary()
    assert summary["stored_per_second"] == 2.0  # 3 stored between first arrival and last commit
    text = format_report(summary)
    assert "1 lost" in text and "p99 40.0" in text
    assert "2.0 events/s from first accepted to last committed" in text
    assert "2.5 events/s sent, 2.0 accepted" in text


def test_events_mark_the_invalid_share_and_keep_ids_unique() -> None:
    body, ids = request_body(0, 4, 2, "r")
    events = orjson.loads(body)
    # As long as an SDK's ids (a UUID's 36 characters), unique within the run.
    assert [e["event_id"] for e in events] == ids == [f"r-{i:034d}" for i in range(4)]
    assert {len(i) for i in ids} == {36}
    assert [e["timestamp"] == "not a date" for e in events] == [True, False, True, False]
    assert all(e["eventName"] == "load_test_event" for e in events)


def test_a_single_event_is_sent_as_an_object() -> None:
    body, ids = request_body(7, 1, 0, "abc")
    event = orjson.loads(body)
    assert event == {
        "event_id": "abc-" + "7".rjust(32, "0"),
        "eventName": "load_test_event",
        "userId": 7,
        "timestamp": "2025-12-10T15:45:00Z",
        "properties": {"step": 7, "source": "lvd loadtest"},
    }
    assert ids == ["abc-" + "7".rjust(32, "0")]


def test_retryable_statuses_are_the_ones_a_client_may_send_again() -> None:
    from lvd.loadtest import _retryable

    assert [s for s in (0, 202, 400, 401, 404, 408, 413, 429, 500, 503) if _retryable(s)] == [
        0,
        408,
        429,
        500,
        503,
    ]


# ---------------------------------------------------------------- the HTTP client

REPLIES = [
    b"HTTP/1.1 202 \r\ncontent-type: application/json\r\nX-Extra: a:b\r\n"
    b'Content-Length: 11\r\n\r\n{"ok":true}',
    b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 2\r\nConnection: close\r\n\r\n{}",
]


@pytest.fixture
async def scripted_server() -> AsyncIterator[tuple[int, list[bytes]]]:
    """Answers each request on a connection with the next of REPLIES; records the requests."""
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for reply in REPLIES:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            received.append(head + await reader.readexactly(length))
            writer.write(reply)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port, received
    server.close()
    await server.wait_closed()


async def test_client_reads_status_headers_and_body_and_honours_connection_close(
    scripted_server: tuple[int, list[bytes]],
) -> None:
    port, received = scripted_server
    conn = HttpConnection("127.0.0.1", port)
    first = await conn.post("/api/logs/a", b'{"n":1}', {"X-Write-Key": "k"})
    second = await conn.post("/api/logs/a", b'{"n":2}', {})
    third = await conn.post("/api/logs/a", b'{"n":3}', {})  # a new connection after "close"
    await conn.close()
    assert (first, second, third) == ((202, b'{"ok":true}'), (429, b"{}"), (202, b'{"ok":true}'))
    assert received[0].startswith(b"POST /api/logs/a HTTP/1.1\r\n")
    assert b"X-Write-Key: k\r\n" in received[0] and received[0].endswith(b'{"n":1}')
    assert [r.rsplit(b"\r\n", 1)[1] for r in received] == [b'{"n":1}', b'{"n":2}', b'{"n":3}']


@pytest.fixture
async def hang_up_port() -> AsyncIterator[int]:
    """A server that reads a request's head and closes the connection without an answer."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_client_reports_a_connection_closed_without_an_answer(hang_up_port: int) -> None:
    conn = HttpConnection("127.0.0.1", hang_up_port)
    try:
        with pytest.raises(ConnectionError):
            await conn.post("/api/logs/a", b"", {})
    finally:
        await conn.close()


async def test_a_connection_the_server_closed_while_idle_is_opened_again() -> None:
    """A server's keep-alive timeout closes idle connections: the next request goes on a new
    one instead of failing (a load at a low rate over many connections met this)."""
    answered = 0

    async def answer_once_then_hang_up(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal answered
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        writer.write(REPLIES[0])
        await writer.drain()
        answered += 1
        writer.close()  # no "Connection: close": the client believes it is kept alive

    server = await asyncio.start_server(answer_once_then_hang_up, "127.0.0.1", 0)
    conn = HttpConnection("127.0.0.1", server.sockets[0].getsockname()[1])
    try:
        assert await conn.post("/api/logs/a", b"{}", {}) == (202, b'{"ok":true}')
        await asyncio.sleep(0.1)  # the server's close reaches the client while it is idle
        assert await conn.post("/api/logs/a", b"{}", {}) == (202, b'{"ok":true}')
        assert answered == 2
    finally:
        await conn.close()
        server.close()
        await server.wait_closed()


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per connection the client opens from now on."""
    count: list[int] = []
    original = asyncio.open_connection

    async def counting_open(*args: Any, **kwargs: Any) -> Any:
        count.append(1)
        return await original(*args, **kwargs)

    monkeypatch.setattr(asyncio, "open_connection", counting_open)
    return count


async def test_pool_opens_every_connection_before_the_run_and_reuses_them(
    scripted_server: tuple[int, list[bytes]], opened: list[int]
) -> None:
    port, received = scripted_server
    pool = ConnectionPool(f"http://127.0.0.1:{port}", 3)
    await pool.connect_all()
    assert len(opened) == 3 and received == []  # open, nothing sent yet
    answers = [await pool.post("/api/logs/a", b"{}", {}) for _ in range(2)]
    await pool.close()
    assert answers == [(202, ""), (202, "")] and len(opened) == 3


async def test_pool_to_a_server_that_is_not_there_reports_it_per_request() -> None:
    pool = ConnectionPool(f"http://127.0.0.1:{free_port()}", 2)
    try:
        await pool.connect_all()  # no exception: the requests say what happened
        assert await pool.post("/api/logs/a", b"{}", {}) == (0, "ConnectionRefusedError")
    finally:
        await pool.close()


async def test_pool_gives_the_status_or_the_failures_name_and_keeps_the_connection(
    scripted_server: tuple[int, list[bytes]], hang_up_port: int
) -> None:
    port, received = scripted_server
    pool = ConnectionPool(f"http://127.0.0.1:{port}", 1)
    answers = [await pool.post("/api/logs/a", b"{}", {}) for _ in range(3)]
    await pool.close()
    assert answers == [(202, ""), (429, ""), (202, "")]  # one connection, reopened after close
    assert len(received) == 3

    pool = ConnectionPool(f"http://127.0.0.1:{hang_up_port}", 1)
    try:
        assert await pool.post("/api/logs/a", b"", {}) == (0, "ConnectionError")
        assert await pool.post("/api/logs/a", b"", {}) == (0, "ConnectionError")
    finally:
        await pool.close()


# ---------------------------------------------------------------- the collector while sending


def test_the_collector_is_paused_inside_the_block_and_restored_after() -> None:
    assert gc.isenabled()
    with garbage_collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), garbage_collector_paused():
        raise RuntimeError("a failed run still restores the collector")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with garbage_collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


async def test_requests_are_sent_while_the_collector_is_paused(
    scripted_server: tuple[int, list[bytes]],
) -> None:
    port, received = scripted_server
    enabled_when_answered: list[bool] = []
    original = ConnectionPool.post

    async def noting_post(self: ConnectionPool, *args: Any) -> tuple[int, str]:
        answer = await original(self, *args)
        enabled_when_answered.append(gc.isenabled())
        return answer

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ConnectionPool, "post", noting_post)
        report = await send_load(
            f"http://127.0.0.1:{port}", "a", 20, 0.1, connections=1, progress=False
        )
    assert len(report.outcomes) == len(received) == 2
    assert enabled_when_answered == [False, False]
    assert gc.isenabled()


async def test_warmup_is_sent_over_the_same_connections_and_left_out_of_the_report(
    scripted_server: tuple[int, list[bytes]], opened: list[int]
) -> None:
    port, received = scripted_server  # two answers per connection, then it closes
    report = await send_load(
        f"http://127.0.0.1:{port}",
        "a",
        10,
        0.1,
        connections=1,
        progress=False,
        run_id="run",
        warmup=0.1,
    )
    assert [o.event_ids for o in report.outcomes] == [["run-" + "0" * 32]]
    assert report.requested == 1
    bodies = [r.rsplit(b"\r\n", 1)[1] for r in received]
    assert b'"event_id":"runw-' in bodies[0] and b'"event_id":"run-' in bodies[1]
    assert len(opened) == 1  # the run went on the connection the warm-up used
