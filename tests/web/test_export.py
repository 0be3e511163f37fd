"""Export: the filtered events as CSV (formula-safe) and NDJSON, streamed page by page, bounded."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest
from quart.typing import TestClientProtocol as Client
from werkzeug.datastructures import Headers

from tests.web.dashboard_support import issue, store, stored
from web.core.exports import EVENT_COLUMNS, csv_cell
from web.core.queries.base import App
from web.export import CHUNK_ROWS

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


async def test_export_streams_across_pages_without_gaps_or_repeats_and_obeys_limit(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    count = CHUNK_ROWS * 2 + 37
    ids = await store(pool, [stored(app.id, name=f"e{i}") for i in range(count)])

    _, everything, _ = await download(client, f"/apps/{app.id}/events.ndjson")
    _, some, _ = await download(client, f"/apps/{app.id}/events.csv", limit="1500")

    assert [orjson.loads(line)["id"] for line in everything.splitlines()] == sorted(
        ids, reverse=True
    )
    assert [int(row["id"]) for row in parsed_csv(some)] == sorted(ids, reverse=True)[:1500]


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "50001", "1e3"])
async def test_export_bad_limit_is_400(client: Client, app: App, limit: str) -> None:
    status, text, _ = await download(client, f"/apps/{app.id}/events.csv", limit=limit)

    assert status == 400
    assert "invalid_limit" in text


async def test_export_unknown_app_and_bad_filter(client: Client, app: App) -> None:
    assert (await download(client, "/apps/nope/events.csv"))[0] == 404
    assert (await download(client, f"/apps/{app.id}/events.ndjson", status="bogus"))[0] == 400


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
