"""Export: the filtered events as CSV (formula-safe) and NDJSON, streamed page by page, bounded."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from quart.typing import TestClientProtocol as Client
from werkzeug.datastructures import Headers

from tests.web.dashboard_support import issue, store, stored
from web import export
from web.context import Services
from web.core.exports import EVENT_COLUMNS, csv_cell
from web.core.filters import EventFilter
from web.core.queries import exports as exports_sql
from web.core.queries.base import App, Connection, LogEntry, NewLogEntry
from web.core.queries.exports import IdSpan, select_export_page, select_export_span
from web.core.settings import Limits
from web.openapi import openapi_document

SMALL_PAGE = 7
FORMULAS = ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x","y")']


async def download(client: Client, path: str, **query: str) -> tuple[int, str, Headers]:
    response = await client.get(path, query_string=query)
    return response.status_code, await response.get_data(as_text=True), response.headers


def parsed_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def test_export_csv_has_every_column_newest_first(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    at = datetime(2025, 12, 10, 15, 45, tzinfo=UTC)
    ids = await store(
        pool,
        [
            stored(app.id, name="a", received_at=at, session="s1", plan_version=None),
            stored(
                app.id,
                name="b",
                payload={"eventName": "b", "total": "12.99"},
                errors=[
                    issue("/total", "type", "total must be a number"),
                    issue("/x", "note", "just so", severity="warning"),
                ],
                received_at=at,
            ),
        ],
    )

    status, text, headers = await download(client, f"/apps/{app.id}/events.csv")

    assert status == 200
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Content-Disposition"].startswith(f'attachment; filename="{app.id}-events-')
    assert headers["Content-Disposition"].endswith('.csv"')
    assert text.splitlines()[0] == ",".join(EVENT_COLUMNS)
    rows = parsed_csv(text)
    assert [int(row["id"]) for row in rows] == sorted(ids, reverse=True)
    newest = rows[0]
    assert newest["event_name"] == "b"
    assert newest["status"] == "invalid"
    assert (newest["error_count"], newest["warning_count"]) == ("1", "1")
    assert newest["errors"] == "/total: total must be a number | /x: just so"
    assert orjson.loads(newest["payload"]) == {"eventName": "b", "total": "12.99"}
    assert newest["received_at"] == "2025-12-10T15:45:00+00:00"
    assert rows[1]["session"] == "s1"


async def test_export_csv_neutralises_formula_cells(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    await store(
        pool,
        [stored(app.id, name=formula, session=formula, event_id=formula) for formula in FORMULAS],
    )

    _, text, _ = await download(client, f"/apps/{app.id}/events.csv")

    rows = parsed_csv(text)
    assert sorted(row["event_name"] for row in rows) == sorted(f"'{f}" for f in FORMULAS)
    for row in rows:
        for column in ("event_id", "session", "event_name"):
            assert row[column].startswith("'"), row
        assert not row["payload"].startswith(tuple("=+-@"))


async def test_export_ndjson_one_json_object_per_line(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    ids = await store(
        pool,
        [stored(app.id, name="a"), stored(app.id, name="b", errors=[issue("/a", "type")])],
    )

    status, text, headers = await download(client, f"/apps/{app.id}/events.ndjson")

    assert status == 200
    assert headers["Content-Type"] == "application/x-ndjson"
    assert text.endswith("\n")
    records = [orjson.loads(line) for line in text.splitlines()]
    assert [record["id"] for record in records] == sorted(ids, reverse=True)
    # The CSV's columns but the two counts: a JSON reader counts the errors itself.
    assert set(records[0]) == set(EVENT_COLUMNS) - {"error_count", "warning_count"}
    assert records[0]["errors"][0]["rule"] == "type"
    assert records[1]["payload"] == {"eventName": "a"}


async def test_export_applies_the_live_view_filters(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    await store(
        pool,
        [
            stored(app.id, name="keep", session="qa", errors=[issue("/a", "type")]),
            stored(app.id, name="keep", session="qa"),
            stored(app.id, name="drop", session="qa", errors=[issue("/a", "type")]),
            stored(app.id, name="keep", session="other", errors=[issue("/a", "type")]),
        ],
    )

    _, text, _ = await download(
        client,
        f"/apps/{app.id}/events.ndjson",
        status="invalid",
        event_name="keep",
        session="qa",
    )

    records = [orjson.loads(line) for line in text.splitlines()]
    assert [(r["event_name"], r["status"], r["session"]) for r in records] == [
        ("keep", "invalid", "qa")
    ]


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Pages of SMALL_PAGE rows; the limit each page query was given, in order."""
    asked: list[int] = []

    async def spy(
        conn: Connection, app_id: str, filters: EventFilter, span: IdSpan, limit: int
    ) -> list[LogEntry]:
        asked.append(limit)
        return await select_export_page(conn, app_id, filters, span, limit)

    monkeypatch.setattr(export, "PAGE_ROWS", SMALL_PAGE)
    monkeypatch.setattr(export, "select_export_page", spy)
    return asked


async def test_export_streams_every_row_a_bounded_page_at_a_time(
    client: Client, pool: asyncpg.Pool, app: App, small_pages: list[int]
) -> None:
    ids = await store(pool, [stored(app.id, name=f"e{i}") for i in range(SMALL_PAGE * 3 + 4)])

    _, everything, _ = await download(client, f"/apps/{app.id}/events.ndjson")

    assert [orjson.loads(line)["id"] for line in everything.splitlines()] == sorted(
        ids, reverse=True
    )
    # Three full pages, then the short one that ends it; no query asks for more than a page.
    assert small_pages == [SMALL_PAGE] * 4


async def test_export_limit_stops_mid_page(
    client: Client, pool: asyncpg.Pool, app: App, small_pages: list[int]
) -> None:
    ids = await store(pool, [stored(app.id, name=f"e{i}") for i in range(SMALL_PAGE * 3)])

    _, some, _ = await download(client, f"/apps/{app.id}/events.csv", limit=str(SMALL_PAGE + 3))

    assert [int(row["id"]) for row in parsed_csv(some)] == sorted(ids, reverse=True)[
        : SMALL_PAGE + 3
    ]
    assert small_pages == [SMALL_PAGE, 3]


async def test_export_has_no_ceiling(client: Client, pool: asyncpg.Pool, app: App) -> None:
    count = 60_000  # more than the 50 000 an export used to stop at
    async with pool.acquire() as conn:
        await conn.execute(
            """
            INSERT INTO log_entries (app_id, event_id, event_name, payload, validation_status,
                                     received_at)
            SELECT $1, 'e' || n, 'bulk', jsonb_build_object('n', n), 'valid', now()
            FROM generate_series(1, $2) AS n
            """,
            app.id,
            count,
        )

    _, text, _ = await download(client, f"/apps/{app.id}/events.ndjson")

    records = [orjson.loads(line) for line in text.splitlines()]
    assert len(records) == count
    assert [r["payload"]["n"] for r in records] == list(range(count, 0, -1))


@pytest.mark.parametrize("extension", ["csv", "ndjson"])
async def test_export_resumes_after_a_cut_with_exactly_the_rest_while_events_arrive(
    client: Client, pool: asyncpg.Pool, app: App, small_pages: list[int], extension: str
) -> None:
    before = sorted(
        await store(pool, [stored(app.id, name=f"e{i}") for i in range(SMALL_PAGE * 4)]),
        reverse=True,
    )
    arriving = asyncio.create_task(keep_storing(pool, app.id))
    try:
        _, text, _ = await download(client, f"/apps/{app.id}/events.{extension}")
        whole = ids_in(text, extension)
        await until(lambda: stored_above(pool, app.id, whole[0]), "an event stored since")
        # The connection drops in the middle of a row: the client keeps the rows it has
        # whole and asks for the ones below the last of them.
        received = ids_in(text[: len(text) * 2 // 5], extension)
        _, rest, _ = await download(
            client, f"/apps/{app.id}/events.{extension}", before_id=str(received[-1])
        )
        resumed = ids_in(rest, extension)
    finally:
        arriving.cancel()
        await arriving

    # The export holds what was stored when it began (events stored meanwhile may be first).
    assert whole[-len(before) :] == before
    assert 0 < len(received) < len(before)
    assert received + resumed == whole


async def stored_above(pool: asyncpg.Pool, app_id: str, entry_id: int) -> bool:
    async with pool.acquire() as conn:
        found = await conn.fetchval(
            "SELECT exists(SELECT FROM log_entries WHERE app_id = $1 AND id > $2)",
            app_id,
            entry_id,
        )
    return bool(found)


async def keep_storing(pool: asyncpg.Pool, app_id: str) -> None:
    """Stores an event every few milliseconds until cancelled."""
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            await store(pool, [stored(app_id, name="new")])
            await asyncio.sleep(0.002)


def ids_in(text: str, extension: str) -> list[int]:
    """The ids of the whole rows in what an export sent; a row cut short is left out."""
    if extension == "ndjson":
        return [orjson.loads(line)["id"] for line in text.split("\n")[:-1]]
    # A cut row ends without its line break (the csv module reads it as whole).
    whole = text[: text.rindex("\r\n") + 2]
    return [int(row["id"]) for row in parsed_csv(whole)]


async def test_export_filters_apply_on_every_page(
    client: Client, pool: asyncpg.Pool, app: App, small_pages: list[int]
) -> None:
    at = datetime(2025, 12, 10, 15, 0, tzinfo=UTC)

    def event(i: int, **changes: Any) -> NewLogEntry:
        """A row every filter below keeps, but for `changes`."""
        matching: dict[str, Any] = {
            "name": "pay",
            "errors": [issue("/total", "type")],
            "session": "qa",
            "received_at": at + timedelta(minutes=i % 60),
            "payload": {"eventName": "pay", "card": f"visa-{i}"},
        }
        return stored(app.id, **(matching | changes))

    rows = []
    for i in range(SMALL_PAGE * 3):
        rows += [
            event(i),
            event(i, payload={"eventName": "pay", "card": f"amex-{i}"}),
            event(i, errors=[]),
            event(i, name="view"),
            event(i, session="other"),
            event(i, errors=[issue("/x", "required")]),
            event(i, received_at=at + timedelta(hours=2)),
        ]
    await store(pool, rows)
    query = {
        "status": "invalid",
        "event_name": "pay",
        "session": "qa",
        "rule": "type",
        "q": "VISA",
        "since": "2025-12-10T15:00:00Z",
        "until": "2025-12-10T16:00:00Z",
    }

    _, text, _ = await download(client, f"/apps/{app.id}/events.ndjson", **query)

    records = [orjson.loads(line) for line in text.splitlines()]
    assert sorted(r["payload"]["card"] for r in records) == sorted(
        f"visa-{i}" for i in range(SMALL_PAGE * 3)
    )
    assert [r["id"] for r in records] == sorted((r["id"] for r in records), reverse=True)
    assert len(small_pages) == 4


async def test_export_span_is_the_windows_ids(pool: asyncpg.Pool, app: App) -> None:
    at = datetime(2025, 12, 10, 15, 0, tzinfo=UTC)
    ids = await store(
        pool, [stored(app.id, received_at=at + timedelta(minutes=i)) for i in range(10)]
    )
    window = EventFilter(since=at + timedelta(minutes=3), until=at + timedelta(minutes=7))

    async with pool.acquire() as conn:
        span = await select_export_span(conn, app.id, window)
        resumed = await select_export_span(conn, app.id, window, before_id=ids[5])
        empty = await select_export_span(conn, app.id, EventFilter(since=at + timedelta(days=1)))
        everything = await select_export_span(conn, app.id, EventFilter(), before_id=ids[2])

    assert span == IdSpan(low=ids[3], below=ids[6] + 1)
    assert resumed == IdSpan(low=ids[3], below=ids[5])
    assert empty is None
    assert everything == IdSpan(low=0, below=ids[2])


async def test_export_of_an_empty_window_is_the_header_alone(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    await store(pool, [stored(app.id)])

    _, text, _ = await download(
        client, f"/apps/{app.id}/events.csv", since="2001-01-01T00:00:00Z", until="2001-01-02"
    )

    assert text == ",".join(EVENT_COLUMNS) + "\r\n"


async def test_export_client_disconnect_cancels_the_query_in_flight(
    client: Client,
    pool: asyncpg.Pool,
    app: App,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await store(pool, [stored(app.id)])
    # The page query's filter clause sleeps: the query is still running when the client goes.
    monkeypatch.setattr(
        exports_sql, "filter_sql", lambda filters, params: "(SELECT true FROM pg_sleep(60))"
    )
    idle_before = services.pool.get_idle_size()

    async with client.request(f"/apps/{app.id}/events.ndjson") as conn:
        await until(lambda: sleeping(pool, 1), "the page query is running")
        await conn.disconnect()
        await until(lambda: sleeping(pool, 0), "the page query was cancelled", within=2)

    await until(lambda: idle(services.pool, idle_before), "the connection went back to the pool")
    monkeypatch.undo()
    status, text, _ = await download(client, f"/apps/{app.id}/events.ndjson")
    assert (status, len(text.splitlines())) == (200, 1)


async def test_export_pages_are_planned_for_their_values_without_jit(
    client: Client, pool: asyncpg.Pool, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await store(pool, [stored(app.id) for _ in range(3)])
    # A row matches only if its query runs with the settings every export statement needs.
    monkeypatch.setattr(
        exports_sql,
        "filter_sql",
        lambda filters, params: (
            "current_setting('jit') = 'off'"
            " AND current_setting('plan_cache_mode') = 'force_custom_plan'"
        ),
    )

    _, text, _ = await download(client, f"/apps/{app.id}/events.ndjson")

    assert [orjson.loads(line)["id"] for line in text.splitlines()] == sorted(ids, reverse=True)


async def sleeping(pool: asyncpg.Pool, count: int) -> bool:
    """Whether `count` queries of this database are in the sleeping filter clause."""
    async with pool.acquire() as conn:
        found = await conn.fetchval(
            """
            SELECT count(*) FROM pg_stat_activity
            WHERE datname = current_database() AND state = 'active'
              AND pid <> pg_backend_pid() AND query LIKE '%FROM pg_sleep(60)%'
            """
        )
    return bool(found == count)


async def idle(pool: asyncpg.Pool, at_least: int) -> bool:
    return bool(pool.get_idle_size() >= at_least)


async def until(check: Callable[[], Awaitable[bool]], message: str, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{message}: not within {within} s")
        await asyncio.sleep(0.02)


async def test_export_unknown_app_and_bad_filter(client: Client, app: App) -> None:
    assert (await download(client, "/apps/nope/events.csv"))[0] == 404
    assert (await download(client, f"/apps/{app.id}/events.ndjson", status="bogus"))[0] == 400


@pytest.mark.parametrize("extension", ["csv", "ndjson"])
def test_export_is_described_with_its_cursor(extension: str) -> None:
    path = openapi_document(Limits())["paths"][f"/apps/{{app_id}}/events.{extension}"]
    operation = path["get"]

    names = {parameter.get("name") for parameter in operation["parameters"]}
    assert {"limit", "before_id"} <= names
    assert "before_id" in operation["description"]


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        *[(formula, "'" + formula) for formula in FORMULAS],
        ("plain", "plain"),
        ("a=b", "a=b"),
        (None, ""),
        (42, "42"),
        (datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "2025-01-02T03:04:05+00:00"),
    ],
)
def test_csv_cell_prefixes_formula_starts_only(value: object, cell: str) -> None:
    assert csv_cell(value) == cell
