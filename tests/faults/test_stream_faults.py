"""The live stream under stress: a client that never reads, and a web restart with streams open."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import time
import uuid
from collections import Counter

import httpx
import pytest

from lvd.loadtest import send_load
from web.core.db import create_pool
from workers.store import store_events

from .conftest import (
    APP_ID,
    SseClient,
    Stack,
    check_oracle,
    figure,
    message_event,
    rss_bytes,
    statuses,
    wait_until,
)

pytestmark = pytest.mark.faults

SLOW_CLIENT_EVENTS = 5000
MEMORY_GROWTH_LIMIT = 100 * 1024 * 1024
PAGE_SIZE = 100  # LVD_PAGE_SIZE's default: rows a reconnecting stream back-fills at most
_ID_LINE = re.compile(rb"(?:^|\n)id: (\d+)\n")
_LAST_CHUNK = b"\r\n0\r\n\r\n"


def open_stalled_stream(port: int) -> socket.socket:
    """A raw HTTP client that asks for the stream, reads the headers, then stops reading."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive window, so the server's writes back up soon.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5.0)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET /apps/{APP_ID}/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    head = b""
    deadline = time.monotonic() + 5.0
    while b"retry:" not in head and time.monotonic() < deadline:
        head += sock.recv(1024)
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    assert b"retry:" in head, head
    return sock


async def post_and_see(stack: Stack, live: SseClient, event_ids: list[str], message: str) -> None:
    """Post the events in one request and wait until the open stream shows them all."""
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10.0) as client:
        response = await client.post(
            f"/api/logs/{APP_ID}", json=[{"eventName": "e", "event_id": i} for i in event_ids]
        )
        assert response.status_code == 202, response.text
    await wait_until(
        lambda: set(event_ids) <= {m.event_id for m in live.rows()},
        within=15.0,
        message=message,
    )


def read_to_the_end(sock: socket.socket, within: float) -> tuple[bytes, bool]:
    """Everything the server still sends; True when the stream ended (EOF or last chunk)."""
    sock.settimeout(1.0)
    data = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 16)
        except TimeoutError:
            continue
        if not chunk:
            return data, True
        data += chunk
        if data.endswith(_LAST_CHUNK):
            return data, True
    return data, False


async def sample_rss(pid: int, stop: asyncio.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak.append(rss_bytes(pid))
        await asyncio.sleep(0.2)


async def test_sse_slow_client_is_cut_off_and_memory_stays_bounded(stack: Stack) -> None:
    test = "slow SSE client"
    assert stack.web is not None
    web_pid = stack.web.pid
    sock = await asyncio.to_thread(open_stalled_stream, stack.port)
    try:
        await asyncio.sleep(0.5)  # the subscription exists once the back-fill query ran
        rss_before = rss_bytes(web_pid)
        stop, samples = asyncio.Event(), [rss_before]
        sampler = asyncio.create_task(sample_rss(web_pid, stop, samples))
        try:
            report = await send_load(
                stack.base_url,
                APP_ID,
                100.0,
                SLOW_CLIENT_EVENTS / 1000,
                batch=10,
                run_id=f"slow-{uuid.uuid4().hex[:8]}",
                progress=False,
            )
            await check_oracle(stack, report, test=test, drain_limit=60.0)
            await asyncio.sleep(1.0)  # the last notifications reach the hub
        finally:
            stop.set()
            await sampler
        rss_after = rss_bytes(web_pid)
        assert statuses(report) == {202: len(report.outcomes)}
        assert len(report.accepted_ids) == SLOW_CLIENT_EVENTS

        # Now read: a stream that was cut off ends after what was already on its way.
        data, ended = await asyncio.to_thread(read_to_the_end, sock, 20.0)
    finally:
        sock.close()
    ids = [int(m) for m in _ID_LINE.findall(data)]
    growth = max(samples) - rss_before
    figure(test, "web RSS before", rss_before // 1024, "KiB")
    figure(test, "web RSS peak while 5000 events streamed", max(samples) // 1024, "KiB")
    figure(test, "web RSS after", rss_after // 1024, "KiB")
    figure(test, "rows the stalled client got before the cut", len(ids))
    assert growth < MEMORY_GROWTH_LIMIT, f"the web process grew by {growth // 2**20} MiB"
    assert len(set(ids)) == len(ids), "the stalled stream repeated rows"
    if not ended:
        # The kernel's socket buffers (autotuned to megabytes) absorbed the whole stream, so
        # the server's bounded queue never overflowed: then every row must have arrived.
        figure(test, "stream cut off", 0)
        assert len(ids) == SLOW_CLIENT_EVENTS, f"{len(ids)} rows, neither cut off nor complete"
        return
    assert 0 < len(ids) < SLOW_CLIENT_EVENTS, len(ids)

    # A well-behaved client resumes where the stalled one stopped, and gets the newest
    # rows it missed (one page), each once.
    missed = await stack.fetch(
        "SELECT id FROM log_entries WHERE app_id = $1 AND id > $2 ORDER BY id DESC LIMIT $3",
        APP_ID,
        max(ids),
        PAGE_SIZE,
    )
    expected = sorted(row["id"] for row in missed)
    assert len(expected) == PAGE_SIZE, "more than a page was missed"
    resumed = SseClient(stack.base_url, f"/apps/{APP_ID}/stream", last_event_id=max(ids))
    resumed.start(reconnect=False, max_seconds=30.0)
    try:
        await wait_until(
            lambda: len(resumed.rows()) >= len(expected),
            within=15.0,
            message="the resumed stream back-filling a page",
        )
        await asyncio.sleep(0.5)  # nothing more (and nothing twice) follows
        got = [m.id for m in resumed.rows()]
    finally:
        await resumed.close()
    assert got == expected, f"resumed with {len(got)} rows, expected the newest {len(expected)}"
    assert stack.web.alive()


async def test_web_restart_with_open_streams_clients_resume_missing_nothing(
    stack: Stack,
) -> None:
    test = "web restart with open streams"
    tag = uuid.uuid4().hex[:8]
    live = SseClient(stack.base_url, f"/apps/{APP_ID}/stream")
    live.start(reconnect=True, max_seconds=90.0)
    pool = await create_pool(stack.database_url, min_size=1, max_size=2)
    try:
        await asyncio.wait_for(live.connected.wait(), 10.0)
        first = [f"before-{tag}-{n}" for n in range(10)]
        await post_and_see(stack, live, first, "the open stream showing the first events")

        old_web = stack.web
        assert old_web is not None
        stopping = time.monotonic()
        os.kill(old_web.pid, signal.SIGTERM)
        code = await asyncio.to_thread(old_web.popen.wait, 20)
        stopped_after = time.monotonic() - stopping
        stack.retire(old_web)
        assert code == 0, old_web.log()[-3000:]

        # Committed while no web process runs (as a worker would, with its NOTIFY).
        away = [f"away-{tag}-{n}" for n in range(30)]
        stored = await store_events(pool, [message_event(APP_ID, i) for i in away])
        assert len(stored) == len(away)

        restarting = time.monotonic()
        await stack.start_web()
        await wait_until(
            lambda: set(away) <= {m.event_id for m in live.rows()},
            within=20.0,
            message="the reconnected stream back-filling what it missed",
        )
        restart_to_caught_up = time.monotonic() - restarting

        after = [f"after-{tag}-{n}" for n in range(10)]
        await post_and_see(stack, live, after, "the reconnected stream showing new events live")
        await asyncio.sleep(0.5)
    finally:
        await live.close()
        await pool.close()

    seen = Counter(m.event_id for m in live.rows())
    twice = {i: n for i, n in seen.items() if n > 1}
    assert twice == {}, f"rows shown more than once: {twice}"
    assert set(first + away + after) <= set(seen)
    row_ids = [m.id for m in live.rows()]
    assert len(set(row_ids)) == len(row_ids)
    assert live.connects >= 2
    figure(test, "SIGTERM -> web exited (stream open)", stopped_after, "s")
    figure(test, "web start -> client back-filled the rows it missed", restart_to_caught_up, "s")
    figure(test, "stream connects", live.connects)
