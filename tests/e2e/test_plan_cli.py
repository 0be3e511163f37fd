"""`lvd plan push/pull` against the real web process, and plan changes reaching it live."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from tests.conftest import LiveServer, current_plan_version, new_app, wait_for_rows
from web.core.plans import save_plan
from web.core.queries.base import App
from web.core.settings import Settings

from .helpers import APP_ID, post_event, quick_start_event, run_lvd, unique

pytestmark = pytest.mark.e2e

# Ordinarily a notification is heard in milliseconds; the app cache itself lasts 5 s.
NOTIFY_WITHIN_SECONDS = 1.0

PLAN: dict[str, Any] = {
    "description": "Shop (iOS)",
    "events": {
        "user_login": {
            "type": "object",
            "required": ["userId", "method"],
            "properties": {
                "userId": {"type": "integer"},
                "method": {"enum": ["password", "sso"]},
            },
        }
    },
    "allow_unplanned": False,
    "naming": "snake_case",
}


def write_plan(tmp_path: Path, document: Any, name: str = "plan.json") -> Path:
    path = tmp_path / name
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return path


async def lvd_plan(live_server: LiveServer, *args: str) -> tuple[int, str, str]:
    """`lvd plan <args>` against the live server."""
    return await run_lvd(live_server.settings, "plan", *args, "--url", live_server.base_url)


# --- push and pull --------------------------------------------------------------------------


async def test_plan_push_prints_version_and_pull_prints_same_document(
    live_server: LiveServer,
    pool: asyncpg.Pool,
    test_app_row: App,
    tmp_path: Path,
) -> None:
    path = write_plan(tmp_path, PLAN)

    first = await lvd_plan(live_server, "push", APP_ID, str(path))
    second = await lvd_plan(live_server, "push", APP_ID, str(path))
    pulled = await lvd_plan(live_server, "pull", APP_ID)

    assert first[0] == 0, first[2]
    assert first[1].strip() == f"Saved {path} as version 1 of {APP_ID}'s plan"
    assert second[0] == 0, second[2]
    assert "as version 2 of" in second[1]
    assert pulled[0] == 0, pulled[2]
    assert orjson.loads(pulled[1]) == PLAN
    assert await current_plan_version(pool, APP_ID) == 2


async def test_plan_pull_output_file_and_version(
    live_server: LiveServer,
    test_app_row: App,
    tmp_path: Path,
) -> None:
    older = {"events": {"user_login": {"type": "object"}}}
    await lvd_plan(live_server, "push", APP_ID, str(write_plan(tmp_path, older)))
    await lvd_plan(live_server, "push", APP_ID, str(write_plan(tmp_path, PLAN)))
    current_file, first_file = tmp_path / "current.json", tmp_path / "v1.json"

    current = await lvd_plan(live_server, "pull", APP_ID, "-o", str(current_file))
    first = await lvd_plan(live_server, "pull", APP_ID, "--version", "1", "-o", str(first_file))

    assert current[0] == 0, current[2]
    assert current[1] == ""
    assert f"Wrote version 2 of {APP_ID}'s plan to {current_file}" in current[2]
    assert orjson.loads(current_file.read_bytes()) == PLAN
    assert first[0] == 0, first[2]
    assert orjson.loads(first_file.read_bytes()) == older


async def test_plan_push_broken_plan_exits_1_listing_problem_paths(
    live_server: LiveServer,
    pool: asyncpg.Pool,
    test_app_row: App,
    tmp_path: Path,
) -> None:
    broken = {
        "events": {"user_login": {"properties": {"userId": {"type": "int"}}}},
        "naming": "kebab-case",
    }
    path = write_plan(tmp_path, broken)

    code, stdout, stderr = await lvd_plan(live_server, "push", APP_ID, str(path))

    assert code == 1
    assert stdout == ""
    problem_lines = [line.strip() for line in stderr.splitlines() if line.startswith("  ")]
    assert [line.split(":")[0] for line in problem_lines] == [
        "/events/user_login/properties/userId/type",
        "/naming",
    ]
    assert await current_plan_version(pool, APP_ID) is None


async def test_plan_push_unreadable_file_exits_1(
    live_server: LiveServer, test_app_row: App, tmp_path: Path
) -> None:
    not_json = tmp_path / "plan.json"
    not_json.write_text('{"events": ')

    garbled = await lvd_plan(live_server, "push", APP_ID, str(not_json))
    missing = await lvd_plan(live_server, "push", APP_ID, str(tmp_path / "nope.json"))

    assert garbled[0] == 1
    assert f"cannot read {not_json}" in garbled[2]
    assert missing[0] == 1
    assert "cannot read" in missing[2]


async def test_plan_pull_without_plan_or_app_exits_1(
    live_server: LiveServer, test_app_row: App
) -> None:
    no_plan = await lvd_plan(live_server, "pull", APP_ID)
    no_app = await lvd_plan(live_server, "pull", unique("ghost"))

    assert (no_plan[0], no_plan[1]) == (1, "")
    assert "lvd plan pull:" in no_plan[2]
    assert (no_app[0], no_app[1]) == (1, "")
    assert "no app with id" in no_app[2]


async def test_plan_push_unreachable_server_exits_1(settings: Settings, tmp_path: Path) -> None:
    path = write_plan(tmp_path, PLAN)

    code, _, stderr = await run_lvd(
        settings, "plan", "push", APP_ID, str(path), "--url", "http://127.0.0.1:9"
    )

    assert code == 1
    assert "cannot reach" in stderr


# --- the live process judges by the new plan ----------------------------------------------------


async def test_plan_push_applies_to_next_live_ingest_and_stored_row(
    live_server: LiveServer,
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    app_id = await new_app(pool)
    before = quick_start_event()
    first = await post_event(http, before, app_id)
    assert (first.status_code, first.json()["status"]) == (202, "valid")

    pushed = await lvd_plan(live_server, "push", app_id, str(write_plan(tmp_path, PLAN)))
    after = quick_start_event()
    second = await post_event(http, after, app_id)

    assert pushed[0] == 0, pushed[2]
    assert second.status_code == 202
    body = second.json()
    assert body["status"] == "invalid"
    assert [(e["path"], e["rule"], e["severity"]) for e in body["errors"]] == [
        ("/method", "required", "error")
    ]
    rows = await wait_for_rows(pool, app_id, 2)
    assert {r.event_id: (r.status, r.plan_version) for r in rows} == {
        before["event_id"]: ("valid", None),
        after["event_id"]: ("invalid", 1),
    }


async def test_plan_saved_in_database_reaches_live_process_by_notify(
    live_server: LiveServer, pool: asyncpg.Pool, http: httpx.AsyncClient
) -> None:
    """The web process never sees this save: only the lvd_plans notification tells it."""
    app_id = await new_app(pool)
    warm = await post_event(http, quick_start_event(), app_id)
    assert warm.json()["status"] == "valid"  # the app is now in the live process's cache

    async with pool.acquire() as conn:
        saved = await save_plan(conn, app_id, PLAN)
    committed = time.monotonic()
    attempts: list[str] = []
    while True:
        response = await post_event(http, quick_start_event(method="magic-link"), app_id)
        attempts.append(response.json()["status"])
        took = time.monotonic() - committed
        if attempts[-1] == "invalid" or took > NOTIFY_WITHIN_SECONDS:
            break
        await asyncio.sleep(0.01)

    print(f"plan v{saved.version} applied by the live process after {took * 1000:.0f} ms")
    assert attempts[-1] == "invalid", (
        f"still judged by the old plan {took:.2f} s after the save ({len(attempts)} requests)"
    )
    errors = response.json()["errors"]
    assert [(e["path"], e["rule"]) for e in errors] == [("/method", "enum")]
    assert errors[0]["message"] == 'method must be one of password, sso, got "magic-link"'
