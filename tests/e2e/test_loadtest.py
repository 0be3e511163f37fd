"""A short real load run: the drain-and-verify step finds every accepted event, once."""

from __future__ import annotations

import sys
from pathlib import Path

import asyncpg
import orjson
import pytest

from lvd.loadtest import send_load, verify_storage
from tests.conftest import LiveServer, env_for, run_in_project
from web.core.queries.base import App

pytestmark = pytest.mark.e2e


async def test_loadtest_short_run_stores_every_accepted_event_once(
    live_server: LiveServer, test_app_row: App, pool: asyncpg.Pool
) -> None:
    report = await send_load(
        live_server.base_url,
        "test-app",
        rate=100,
        duration=2,
        batch=2,
        invalid_share=0.25,
        progress=False,
        run_id="e2e-load",
    )
    await verify_storage(report, live_server.settings.database_url, "test-app", drain_limit=30)
    summary = report.summary()
    assert summary["status_counts"] == {"202": 200}
    assert summary["accepted_events"] == summary["stored_once"] == 400
    assert (summary["lost"], summary["doubled"], summary["stored_but_refused"]) == (0, 0, 0)
    # 400 events sent over 2 s and stored as they came: the span is about the run's length.
    assert 1.5 < report.stored_span_seconds < 10
    async with pool.acquire() as conn:
        invalid = await conn.fetchval(
            "SELECT count(*) FROM log_entries WHERE app_id = 'test-app'"
            " AND validation_status = 'invalid'"
        )
    assert invalid == 100  # every fourth event carries a bad timestamp


async def test_loadtest_verify_reports_a_lost_event(
    live_server: LiveServer, test_app_row: App
) -> None:
    report = await send_load(
        live_server.base_url, "test-app", rate=20, duration=1, progress=False, run_id="e2e-lost"
    )
    report.outcomes[0].event_ids.append("never-sent-so-never-stored")
    await verify_storage(report, live_server.settings.database_url, "test-app", drain_limit=3)
    assert report.lost == ["never-sent-so-never-stored"]


def test_loadtest_command_prints_json_and_exits_zero(
    live_server: LiveServer, test_app_row: App
) -> None:
    result = run_in_project(
        [
            str(Path(sys.executable).parent / "lvd"),
            "loadtest",
            "--url",
            live_server.base_url,
            "--app",
            "test-app",
            "--rate",
            "50/s",
            "--duration",
            "1",
            "--json",
        ],
        env_for(live_server.settings),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = orjson.loads(result.stdout)
    assert summary["stored_once"] == summary["accepted_events"] == 50
    assert summary["lost"] == 0
