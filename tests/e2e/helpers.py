"""End-to-end helpers: events to send, SQL counts, and the state of the Dramatiq queue."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis

from tests.conftest import env_for
from web.core.queue.contract import EVENTS_QUEUE
from web.core.settings import Settings

APP_ID = "test-app"
LVD = str(Path(sys.executable).parent / "lvd")
# Dramatiq's Redis keys: a message stays in its queue's .msgs hash until it is acked, and a
# retried one waits in the delay queue's hash; both empty means every message was handled.
QUEUE_MESSAGES = f"dramatiq:{EVENTS_QUEUE}.msgs"
DELAY_MESSAGES = f"dramatiq:{EVENTS_QUEUE}.DQ.msgs"
DEAD_LETTERS = f"dramatiq:{EVENTS_QUEUE}.XQ.msgs"


def run_lvd_sync(
    settings: Settings, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`lvd <args>` run to the end against the test services, `stdin` its input."""
    return subprocess.run(
        [LVD, *args],
        input=stdin,
        env=env_for(settings, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def run_lvd(settings: Settings, *args: str, **env: str) -> tuple[int, str, str]:
    """`lvd <args>` run against the test services, env added to theirs; the exit code,
    stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        LVD,
        *args,
        env=env_for(settings, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def quick_start_event(**fields: Any) -> dict[str, Any]:
    """The README's quick-start event, with a fresh event_id unless one is given."""
    return {
        "eventName": "user_login",
        "userId": 123,
        "timestamp": "2025-12-10T15:45:00Z",
        "event_id": unique("evt"),
        **fields,
    }


async def post_event(client: httpx.AsyncClient, event: Any, app_id: str = APP_ID) -> httpx.Response:
    return await client.post(f"/api/logs/{app_id}", json=event)


async def stored_counts(
    pool: asyncpg.Pool, app_id: str, event_ids: Iterable[str] | None = None
) -> dict[str, int]:
    """How many rows each event id has for the app (every id of the app when None)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT event_id, count(*) AS n FROM log_entries"
            " WHERE app_id = $1 AND ($2::text[] IS NULL OR event_id = ANY($2::text[]))"
            " GROUP BY event_id",
            app_id,
            None if event_ids is None else list(event_ids),
        )
    return {row["event_id"]: row["n"] for row in rows}


async def wait_for_event_ids(
    pool: asyncpg.Pool, app_id: str, event_ids: Iterable[str], within: float = 15.0
) -> dict[str, int]:
    """Poll until every id is stored or `within` seconds pass; returns the counts found."""
    wanted = set(event_ids)
    deadline = time.monotonic() + within
    while True:
        counts = await stored_counts(pool, app_id, wanted)
        if wanted <= counts.keys() or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.05)


async def queued_messages(client: aioredis.Redis) -> int:
    pending: int = await client.hlen(QUEUE_MESSAGES) + await client.hlen(DELAY_MESSAGES)
    return pending


async def wait_for_drain(client: aioredis.Redis, within: float = 20.0) -> int:
    """Poll until the worker acked every queued message; returns how many are still queued."""
    deadline = time.monotonic() + within
    while True:
        left = await queued_messages(client)
        if left == 0 or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.05)


async def dead_letter_count(client: aioredis.Redis) -> int:
    count: int = await client.hlen(DEAD_LETTERS)
    return count
