"""web/core/queries.py against real PostgreSQL: inserts are idempotent, selects filter by id."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from tests.web.dashboard_support import stored
from web.core.errors import Rejected
from web.core.filters import EventFilter
from web.core.queries.apps import insert_app, select_app, select_app_summaries, select_apps
from web.core.queries.base import App, NewLogEntry
from web.core.queries.events import (
    insert_log_entries,
    notify,
    select_log_entries,
    select_log_entries_after,
    select_log_entries_by_ids,
    select_max_log_entry_id,
)
from web.core.settings import Settings

RECEIVED = datetime(2025, 12, 10, 15, 45, tzinfo=UTC)


def entry(
    event_id: str,
    *,
    app_id: str = "test-app",
    status: str = "valid",
    payload: dict[str, Any] | None = None,
    name: str | None = "user_login",
    received_at: datetime = RECEIVED,
    **fields: Any,
) -> NewLogEntry:
    """`stored` with this module's defaults: the test app, valid whatever its errors,
    received at RECEIVED, a payload naming its id."""
    return stored(
        app_id,
        event_id=event_id,
        name=name,
        payload={"eventName": name, "id": event_id} if payload is None else payload,
        status=status,
        received_at=received_at,
        **fields,
    )


async def insert(pool: asyncpg.Pool, entries: Sequence[NewLogEntry]) -> list[int]:
    async with pool.acquire() as conn:
        return await insert_log_entries(conn, entries)


async def add_apps(conn: asyncpg.Connection, *app_ids: str) -> None:
    """Apps besides the test app, each named after its id."""
    for app_id in app_ids:
        await insert_app(conn, app_id, app_id.title(), f"wk_{app_id}")


async def count_rows(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM log_entries"))


# ---------------------------------------------------------------- apps


async def test_insert_app_returns_the_app_then_none_on_conflict(
    pool: asyncpg.Pool, clean_db: None
) -> None:
    async with pool.acquire() as conn:
        app = await insert_app(conn, "shop", "Shop", "wk_one")
        again = await insert_app(conn, "shop", "Another", "wk_two")
        stored = await select_app(conn, "shop")
    assert app is not None
    assert (app.id, app.name, app.write_key, app.require_write_key) == (
        "shop",
        "Shop",
        "wk_one",
        False,
    )
    assert app.created_at.tzinfo is not None
    assert again is None
    assert stored == app


async def test_select_app_unknown_is_none(pool: asyncpg.Pool, clean_db: None) -> None:
    async with pool.acquire() as conn:
        assert await select_app(conn, "nope") is None


async def test_select_apps_is_ordered_by_id(pool: asyncpg.Pool, clean_db: None) -> None:
    async with pool.acquire() as conn:
        await add_apps(conn, "zeta", "alpha", "mid")
        apps = await select_apps(conn)
    assert [app.id for app in apps] == ["alpha", "mid", "zeta"]


# ---------------------------------------------------------------- inserting events


async def test_insert_log_entries_returns_new_ids_in_order(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    ids = await insert(pool, [entry("a"), entry("b"), entry("c")])
    assert len(ids) == 3
    assert ids == sorted(ids)
    async with pool.acquire() as conn:
        rows = await select_log_entries_by_ids(conn, ids)
    assert [row.event_id for row in rows] == ["a", "b", "c"]


async def test_insert_log_entries_empty_is_nothing(pool: asyncpg.Pool, test_app_row: App) -> None:
    assert await insert(pool, []) == []
    assert await count_rows(pool) == 0


async def test_insert_log_entries_same_event_id_again_stores_once(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    first = await insert(pool, [entry("e1"), entry("e2")])
    second = await insert(pool, [entry("e1", name="changed"), entry("e2")])
    third = await insert(pool, [entry("e2"), entry("e3")])
    assert len(first) == 2
    assert second == []
    assert len(third) == 1
    async with pool.acquire() as conn:
        rows = await select_log_entries(conn, "test-app")
    assert sorted(row.event_id for row in rows) == ["e1", "e2", "e3"]
    # The first write wins: a retry never overwrites what was stored.
    assert next(row for row in rows if row.event_id == "e1").event_name == "user_login"


async def test_insert_log_entries_duplicates_inside_one_call_store_once(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    ids = await insert(pool, [entry("d"), entry("d"), entry("x"), entry("d")])
    assert len(ids) == 2
    assert await count_rows(pool) == 2


async def test_insert_log_entries_same_event_id_in_other_app_is_separate(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    async with pool.acquire() as conn:
        await add_apps(conn, "other-app")
    ids = await insert(pool, [entry("same"), entry("same", app_id="other-app")])
    assert len(ids) == 2


async def test_insert_log_entries_unknown_app_violates_the_foreign_key(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await insert(pool, [entry("ok"), entry("orphan", app_id="no-such-app")])
    assert await count_rows(pool) == 0


async def test_insert_log_entries_stores_every_column(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    errors = [{"path": "/eventName", "rule": "required", "message": "missing", "severity": "error"}]
    received = datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    (row_id,) = await insert(
        pool,
        [
            entry(
                "cols",
                status="invalid",
                errors=errors,
                name=None,
                plan_version=7,
                session="qa-run-1",
                received_at=received,
                payload={"userId": 1},
            )
        ],
    )
    async with pool.acquire() as conn:
        (row,) = await select_log_entries_by_ids(conn, [row_id])
    assert row.id == row_id
    assert (row.app_id, row.event_id, row.event_name) == ("test-app", "cols", None)
    assert row.status == "invalid"
    assert row.errors == errors
    assert row.payload == {"userId": 1}
    assert (row.plan_version, row.session) == (7, "qa-run-1")
    assert row.received_at == received
    assert row.created_at.tzinfo is not None


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"eventName": "caf\u00e9 \u65e5\u672c \U0001f600"}, id="unicode-emoji"),
        pytest.param({"name": "<script>alert(1)</script>", "x": '"><img onerror=x>'}, id="html"),
        pytest.param({"tpl": "{{7*7}}", "htmx": "<div hx-get='/x'>"}, id="templates"),
        pytest.param({"n": [1, 2.5, -3, True, None], "o": {"k": {"d": "v"}}}, id="nested"),
        pytest.param({"big": 18446744073709551615, "tiny": 1e-300}, id="numbers"),
        pytest.param({"quote": 'it\'s "quoted" \\ back\nslash\ttab'}, id="escapes"),
        pytest.param({}, id="empty"),
    ],
)
async def test_insert_log_entries_payload_round_trips_as_dict(
    pool: asyncpg.Pool, test_app_row: App, payload: dict[str, Any]
) -> None:
    (row_id,) = await insert(pool, [entry("rt", payload=payload)])
    async with pool.acquire() as conn:
        (row,) = await select_log_entries_by_ids(conn, [row_id])
    assert isinstance(row.payload, dict)
    assert row.payload == payload


# ---------------------------------------------------------------- selecting events


@pytest.fixture
async def six_rows(pool: asyncpg.Pool, test_app_row: App) -> list[int]:
    """Six events, alternately valid and invalid; returns their ids, oldest first."""
    statuses = ["valid", "invalid"] * 3
    return await insert(pool, [entry(f"r{i}", status=s) for i, s in enumerate(statuses)])


@pytest.mark.parametrize(
    ("kwargs", "picked"),
    [
        ({}, [5, 4, 3, 2, 1, 0]),
        ({"status": "valid"}, [4, 2, 0]),
        ({"status": "invalid"}, [5, 3, 1]),
        ({"limit": 2}, [5, 4]),
        ({"limit": 1, "status": "valid"}, [4]),
        ({"before": 3}, [2, 1, 0]),
        ({"after": 3}, [5, 4]),
        ({"after": 1, "before": 5}, [4, 3, 2]),
        ({"after": 1, "before": 5, "status": "invalid"}, [3]),
        ({"before": 0}, []),
        ({"after": 5}, []),
        ({"before": 4, "limit": 2}, [3, 2]),
    ],
)
async def test_select_log_entries_newest_first_with_filters(
    pool: asyncpg.Pool, six_rows: list[int], kwargs: dict[str, Any], picked: list[int]
) -> None:
    arguments: dict[str, Any] = {}
    if "status" in kwargs:
        arguments["filters"] = EventFilter(status=kwargs["status"])
    if "limit" in kwargs:
        arguments["limit"] = kwargs["limit"]
    if "before" in kwargs:
        arguments["before_id"] = six_rows[kwargs["before"]]
    if "after" in kwargs:
        arguments["after_id"] = six_rows[kwargs["after"]]
    async with pool.acquire() as conn:
        rows = await select_log_entries(conn, "test-app", **arguments)
    assert [row.id for row in rows] == [six_rows[i] for i in picked]
    assert [row.event_id for row in rows] == [f"r{i}" for i in picked]


async def test_select_log_entries_only_the_given_app(
    pool: asyncpg.Pool, six_rows: list[int]
) -> None:
    async with pool.acquire() as conn:
        await add_apps(conn, "other-app")
        await insert_log_entries(conn, [entry("o1", app_id="other-app")])
        mine = await select_log_entries(conn, "test-app")
        theirs = await select_log_entries(conn, "other-app")
        nobody = await select_log_entries(conn, "no-such-app")
    assert len(mine) == 6
    assert [row.event_id for row in theirs] == ["o1"]
    assert nobody == []


@pytest.mark.parametrize(
    "status",
    ["VALID", "pending", "valid' OR '1'='1", "invalid; DROP TABLE log_entries"],
)
async def test_select_log_entries_hostile_status_is_a_parameter_not_sql(
    pool: asyncpg.Pool, six_rows: list[int], status: str
) -> None:
    with pytest.raises(Rejected):
        EventFilter.from_args({"status": status})
    # Even unchecked, the value is a bind parameter: it matches nothing and runs nothing.
    async with pool.acquire() as conn:
        rows = await select_log_entries(conn, "test-app", filters=EventFilter(status=status))
        remaining = await conn.fetchval("SELECT count(*) FROM log_entries")
    assert rows == []
    assert remaining == 6


@pytest.mark.parametrize(
    ("picked", "expected"),
    [
        ([], []),
        ([3], [3]),
        ([4, 0, 2], [0, 2, 4]),
        ([1, 1, 1], [1]),
    ],
)
async def test_select_log_entries_by_ids_is_ordered_by_id(
    pool: asyncpg.Pool, six_rows: list[int], picked: list[int], expected: list[int]
) -> None:
    async with pool.acquire() as conn:
        rows = await select_log_entries_by_ids(conn, [six_rows[i] for i in picked])
    assert [row.id for row in rows] == [six_rows[i] for i in expected]


async def test_select_log_entries_by_ids_unknown_ids_are_skipped(
    pool: asyncpg.Pool, six_rows: list[int]
) -> None:
    async with pool.acquire() as conn:
        rows = await select_log_entries_by_ids(conn, [six_rows[0], 10**15, -1])
    assert [row.id for row in rows] == [six_rows[0]]


@pytest.mark.parametrize(
    ("after", "limit", "expected"),
    [
        (None, 100, [0, 1, 2, 3, 4, 5]),
        (None, 2, [0, 1]),
        (2, 100, [3, 4, 5]),
        (2, 1, [3]),
        (5, 100, []),
    ],
)
async def test_select_log_entries_after_is_oldest_first_across_apps(
    pool: asyncpg.Pool,
    six_rows: list[int],
    after: int | None,
    limit: int,
    expected: list[int],
) -> None:
    after_id = six_rows[after] if after is not None else six_rows[0] - 1
    async with pool.acquire() as conn:
        rows = await select_log_entries_after(conn, after_id, limit)
    assert [row.id for row in rows] == [six_rows[i] for i in expected]


async def test_select_log_entries_after_includes_every_app(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    async with pool.acquire() as conn:
        await add_apps(conn, "other-app")
        ids = await insert_log_entries(
            conn, [entry("m1"), entry("t1", app_id="other-app"), entry("m2")]
        )
        rows = await select_log_entries_after(conn, ids[0] - 1, 10)
    assert [(row.app_id, row.event_id) for row in rows] == [
        ("test-app", "m1"),
        ("other-app", "t1"),
        ("test-app", "m2"),
    ]


async def test_select_max_log_entry_id(pool: asyncpg.Pool, test_app_row: App) -> None:
    async with pool.acquire() as conn:
        before = await select_max_log_entry_id(conn)
    ids = await insert(pool, [entry("a"), entry("b")])
    async with pool.acquire() as conn:
        after = await select_max_log_entry_id(conn)
    assert before < ids[0]
    assert after == ids[-1]


async def test_select_max_log_entry_id_empty_table_is_zero(
    pool: asyncpg.Pool, clean_db: None
) -> None:
    async with pool.acquire() as conn:
        assert await select_max_log_entry_id(conn) == 0


async def test_select_app_summaries_counts_total_and_invalid(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    async with pool.acquire() as conn:
        await add_apps(conn, "b-app", "a-empty")
        await insert_log_entries(
            conn,
            [
                entry("1"),
                entry("2", status="invalid"),
                entry("3", status="invalid"),
                entry("4"),
                entry("5", app_id="b-app", status="invalid"),
            ],
        )
        summaries = await select_app_summaries(conn)
    assert [(s.app.id, s.total, s.invalid) for s in summaries] == [
        ("a-empty", 0, 0),
        ("b-app", 1, 1),
        ("test-app", 4, 2),
    ]
    test_summary = summaries[2]
    assert test_summary.app == test_app_row
    assert isinstance(test_summary.total, int)


async def test_notify_reaches_a_listener(
    pool: asyncpg.Pool, clean_db: None, settings: Settings
) -> None:
    received: list[str] = []
    listener = await asyncpg.connect(settings.database_url)
    try:
        await listener.add_listener("lvd_test_queries", lambda *args: received.append(args[3]))
        async with pool.acquire() as conn:
            await notify(conn, "lvd_test_queries", "1,2,3")
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.01)
    finally:
        await listener.close()
    assert received == ["1,2,3"]
