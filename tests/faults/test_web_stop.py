"""The web process stops within seconds on SIGTERM or SIGINT, to it or to its whole group.

Under load and with a live stream open, as systemd, supervisord or a Ctrl-C stops it: it
exits 0, says so, leaves no child behind, and every event it answered 202 is stored once.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from .conftest import (
    APP_ID,
    STOP_LOAD_RATE,
    STOPS,
    SseClient,
    Stack,
    check_oracle,
    deliver_stop,
    figure,
    group_gone,
    start_load,
    wait_until,
)

pytestmark = pytest.mark.faults

STOP_LIMIT_SECONDS = 10.0


@pytest.mark.parametrize("how", list(STOPS))
async def test_web_stops_under_load_with_a_stream_open(stack: Stack, how: str) -> None:
    test = f"web stop, {how}"
    web = stack.web
    assert web is not None
    live = SseClient(stack.base_url, f"/apps/{APP_ID}/stream")
    live.start(reconnect=False, max_seconds=60.0)
    await asyncio.wait_for(live.connected.wait(), 10.0)
    load = start_load(stack, STOP_LOAD_RATE, 5.0, "web-stop")
    await asyncio.sleep(2.0)

    log_offset = web.log_path.stat().st_size
    stopping = time.monotonic()
    deliver_stop(web, how)
    code = await asyncio.to_thread(web.popen.wait, 20)
    # Its children (Hypercorn's workers, multiprocessing's resource tracker) go with it.
    await wait_until(lambda: group_gone(web), within=5.0, message="the web's group gone")
    stopped_after = time.monotonic() - stopping
    stack.retire(web)
    report = await load
    await live.close()
    shutdown_log = web.log()[log_offset:]

    await check_oracle(stack, report, test=test, drain_limit=30.0)
    figure(test, "stop signal -> web and its children gone (stream open, load)", stopped_after, "s")
    assert code == 0, shutdown_log[-3000:]
    assert stopped_after < STOP_LIMIT_SECONDS
    # One line says it stopped; the lifespan ran (queued events flushed, pool closed).
    assert shutdown_log.count("Web server stopped") == 1, shutdown_log[-3000:]
    assert "queued events flushed to the broker" in shutdown_log, shutdown_log[-3000:]
    assert "Logging error" not in web.log()
