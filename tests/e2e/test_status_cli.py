"""`lvd status` against the live server's Redis and PostgreSQL, with real worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from tests.conftest import (
    LiveServer,
    env_for,
    free_port,
    start_process,
    stop_process,
    wait_for_log,
)
from web.core.apps import add_app
from web.core.settings import Settings
from web.core.status.records import HEARTBEAT_SECONDS

from .helpers import LVD, quick_start_event, run_lvd, unique, wait_for_event_ids

pytestmark = pytest.mark.e2e

# Worker and web processes beat every 2 s; a figure they publish is current within this.
BEAT_WAIT = 6.0


async def lvd_status(settings: Settings, *args: str, **env: str) -> tuple[int, str, str]:
    return await run_lvd(settings, "status", *args, **env)


async def status_json(settings: Settings, **env: str) -> dict[str, Any]:
    code, stdout, stderr = await lvd_status(settings, "--json", **env)
    assert code == 0, stdout + stderr
    found: dict[str, Any] = json.loads(stdout)
    return found


async def status_until(
    settings: Settings, check: Any, within: float = BEAT_WAIT, **env: str
) -> dict[str, Any]:
    """`lvd status --json` again and again until check(figures) holds; the last figures."""
    deadline = time.monotonic() + within
    while True:
        figures = await status_json(settings, **env)
        if check(figures) or time.monotonic() > deadline:
            return figures
        await asyncio.sleep(0.3)


def worker_by_pid(figures: dict[str, Any], pid: int) -> dict[str, Any] | None:
    return next((w for w in figures["workers"] if w["pid"] == pid), None)


async def reporting_worker(settings: Settings, parent_pid: int) -> int:
    """The pid of the one worker process under an `lvd worker` that reports itself alive."""
    children = {child.pid for child in psutil.Process(parent_pid).children(recursive=True)}

    def ours(figures: dict[str, Any]) -> list[int]:
        return [
            w["pid"] for w in figures["workers"] if w["pid"] in children and w["state"] == "alive"
        ]

    [pid] = ours(await status_until(settings, lambda f: len(ours(f)) == 1))
    return pid


@pytest.fixture
async def status_app(pool: asyncpg.Pool) -> str:
    app_id = unique("status")
    async with pool.acquire() as conn:
        await add_app(conn, app_id, "Status e2e")
    return app_id


async def test_status_cli_shows_the_live_worker_and_what_it_stored(
    live_server: LiveServer, http: httpx.AsyncClient, pool: asyncpg.Pool, status_app: str
) -> None:
    worker_pid = await reporting_worker(live_server.settings, live_server.worker.pid)
    valid = [quick_start_event() for _ in range(4)]
    invalid = [{"event_id": unique("bad")} for _ in range(2)]  # no eventName: invalid
    response = await http.post(f"/api/logs/{status_app}", json=valid + invalid)
    assert response.status_code == 202, response.text
    counts = await wait_for_event_ids(pool, status_app, [e["event_id"] for e in valid + invalid])
    assert len(counts) == 6

    figures = await status_until(
        live_server.settings,
        lambda f: (worker_by_pid(f, worker_pid) or {}).get("events", 0) >= 6,
    )

    worker = worker_by_pid(figures, worker_pid)
    assert worker is not None, figures["workers"]
    assert worker["state"] == "alive"
    assert worker["events"] >= 6 and worker["messages"] >= 1
    assert figures["ingest"]["events_last_minute"] >= 6
    assert figures["ingest"]["invalid_last_minute"] >= 2
    assert figures["queue"]["waiting"] == 0
    assert figures["problems"] == []
    assert figures["database_bytes"] > 0


async def test_status_cli_text_has_every_section(live_server: LiveServer) -> None:
    worker_pid = await reporting_worker(live_server.settings, live_server.worker.pid)

    code, stdout, stderr = await lvd_status(live_server.settings)

    assert code == 0, stderr
    for label in (
        "Messages waiting",
        "Retrying",
        "Worker lag",
        "Dramatiq dead set",
        "Dead letters pending",
        "Ingest rate",
        "Share invalid",
        "Database size",
        "Open dashboard streams",
    ):
        assert label in stdout
    [row] = [line for line in stdout.splitlines() if f" {worker_pid} " in line]
    assert row.split()[0] == "alive"


@contextlib.asynccontextmanager
async def open_streams(base_url: str, app_id: str, count: int) -> AsyncIterator[None]:
    """count dashboard streams held open, each on its own connection, like browser tabs."""
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(count):
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=base_url))
            response = await stack.enter_async_context(
                client.stream("GET", f"/apps/{app_id}/stream", timeout=10.0)
            )
            assert response.status_code == 200
        yield


async def settled_stream_count(settings: Settings) -> int:
    """The open-stream count once two readings a heartbeat apart agree. A stream an earlier
    test opened may still be closing, and the web reports its count once a heartbeat: a
    single reading once caught one that was gone a moment later."""
    deadline = time.monotonic() + BEAT_WAIT
    previous = (await status_json(settings))["open_streams"]
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS + 0.5)
        current = (await status_json(settings))["open_streams"]
        if current == previous or time.monotonic() > deadline:
            return int(current)
        previous = current


async def test_status_cli_counts_open_dashboard_streams(
    live_server: LiveServer, status_app: str
) -> None:
    before = await settled_stream_count(live_server.settings)

    async with open_streams(live_server.base_url, status_app, 3):
        during = await status_until(live_server.settings, lambda f: f["open_streams"] == before + 3)
    after = await status_until(live_server.settings, lambda f: f["open_streams"] == before)

    assert during["open_streams"] == before + 3
    assert after["open_streams"] == before


async def test_status_cli_and_status_api_read_the_same_figures(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    cli = await status_json(live_server.settings)
    response = await http.get("/api/status")
    page = response.json()

    assert response.status_code == 200
    for key in ("queue", "dead_letters_pending", "open_streams", "web_processes", "problems"):
        assert cli[key] == page[key], key
    assert {(w["worker_id"], w["state"]) for w in cli["workers"]} == {
        (w["worker_id"], w["state"]) for w in page["workers"]
    }


@pytest.fixture
def extra_worker(
    live_server: LiveServer, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """Another `lvd worker` beside the live server's, stopped afterwards."""
    log = tmp_path / "extra-worker.log"
    env = env_for(live_server.settings)
    process = start_process([LVD, "worker", "--threads", "1"], env, log)
    try:
        wait_for_log(log, "Worker process is ready for action", process)
        yield process, log
    finally:
        stop_process(process)


async def test_status_cli_killed_worker_is_gone(
    live_server: LiveServer, extra_worker: tuple[subprocess.Popen[bytes], Path]
) -> None:
    process, _ = extra_worker
    pid = await reporting_worker(live_server.settings, process.pid)
    alive = await status_json(live_server.settings)
    psutil.Process(pid).send_signal(signal.SIGKILL)  # a crash: no goodbye
    await asyncio.sleep(3.5)

    gone = await status_json(live_server.settings, LVD_WORKER_GONE_SECONDS="3")
    default = await status_json(live_server.settings)  # 15 s: not gone yet

    assert (worker_by_pid(alive, pid) or {}).get("state") == "alive"
    killed = worker_by_pid(gone, pid)
    assert killed is not None and killed["state"] == "gone"
    assert killed["events_per_second"] == 0.0
    assert (worker_by_pid(default, pid) or {}).get("state") == "alive"
    code, stdout, _ = await lvd_status(live_server.settings, LVD_WORKER_GONE_SECONDS="3")
    assert code == 0
    assert any(line.split()[:1] == ["gone"] and f" {pid} " in line for line in stdout.splitlines())


async def test_status_cli_stopped_worker_is_stopped(
    live_server: LiveServer, extra_worker: tuple[subprocess.Popen[bytes], Path]
) -> None:
    process, _ = extra_worker
    pid = await reporting_worker(live_server.settings, process.pid)

    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(process.wait, 15)
    figures = await status_json(live_server.settings)

    stopped = worker_by_pid(figures, pid)
    assert stopped is not None and stopped["state"] == "stopped"


async def test_status_cli_unreachable_redis_exits_1_and_shows_the_database(
    settings: Settings,
) -> None:
    code, stdout, _ = await lvd_status(settings, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")

    assert code == 1
    assert "Problems" in stdout and "Redis: " in stdout
    [waiting] = [line for line in stdout.splitlines() if "Messages waiting" in line]
    [size] = [line for line in stdout.splitlines() if "Database size" in line]
    assert waiting.split()[-1] == "n/a"
    assert size.split()[-1] in ("KiB", "MiB", "GiB")


async def test_status_cli_unreachable_postgres_exits_1_in_json_too(settings: Settings) -> None:
    code, stdout, _ = await lvd_status(
        settings, "--json", DATABASE_URL=f"postgresql://127.0.0.1:{free_port()}/lvd"
    )
    figures = json.loads(stdout)

    assert code == 1
    assert figures["ingest"] is None and figures["database_bytes"] is None
    assert figures["queue"] is not None
    assert [p.split(":")[0] for p in figures["problems"]] == ["PostgreSQL"]


async def test_worker_log_format_json_prints_json_lines_only(
    live_server: LiveServer, tmp_path: Path
) -> None:
    log = tmp_path / "json-worker.log"
    env = env_for(live_server.settings, LVD_LOG_FORMAT="json")
    process = start_process([LVD, "worker", "--threads", "1"], env, log)
    try:
        await asyncio.to_thread(wait_for_log, log, "Worker process is ready for action", process)
    finally:
        await asyncio.to_thread(stop_process, process)

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # each line is one JSON object
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(r["message"] == "Worker process is ready for action." for r in records)


def test_worker_log_format_default_is_readable_lines(live_server: LiveServer) -> None:
    text = (live_server.log_dir / "worker.log").read_text(errors="replace")

    [ready] = [line for line in text.splitlines() if "Worker process is ready" in line]
    assert ready.startswith("[") and "[INFO]" in ready
    with pytest.raises(json.JSONDecodeError):
        json.loads(ready)
