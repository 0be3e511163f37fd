"""Parity across platforms over HTTP: the picker, the table, Markdown, CSV, the JSON API, its
refusals, and reads that stay on the session's index."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from quart.typing import TestClientProtocol as Client

from tests.web.conftest import MakeApp
from tests.web.dashboard_support import Explaining, issue, store, stored
from tests.web.support import assert_error, json_of, table_rows
from tests.web.test_openapi import conforms
from web import parity as parity_routes
from web.core.parity import PropertyState
from web.core.parity_exports import PARITY_COLUMNS
from web.core.queries.base import App, NewLogEntry
from web.core.queries.parity import (
    select_recent_sessions,
    select_session_events,
    select_stored_sessions,
)

HOSTILE = "<script>alert(1)</script>|**x**"


def event(app_id: str, session: str, name: str, errors: int = 0, **properties: Any) -> NewLogEntry:
    return stored(
        app_id,
        name=name,
        session=session,
        payload={"event": name, "properties": properties},
        errors=[issue("/properties", "required")] * errors,
    )


async def three_platforms(pool: asyncpg.Pool, app: App) -> list[str]:
    """ios, android and web ran the same checkout; android never sent signup and sent the
    total as a string; ios's signup was invalid."""
    ios, android, web = "ios", "android", "web"
    await store(
        pool,
        [
            event(app.id, ios, "checkout", total=12.5, currency="EUR"),
            event(app.id, ios, "signup", errors=1, plan="pro"),
            event(app.id, android, "checkout", total="12.5", currency="EUR"),
            event(app.id, web, "checkout", total=12.5, currency="EUR"),
            event(app.id, web, "signup", plan="pro"),
            event(app.id, "elsewhere", "other_event"),
        ],
    )
    return [ios, android, web]


def query(sessions: list[str]) -> list[tuple[str, str]]:
    return [("session", session) for session in sessions]


async def get(client: Client, path: str, params: list[tuple[str, str]]) -> Any:
    encoded = "&".join(f"{k}={v}" for k, v in params)
    return await client.get(f"{path}?{encoded}" if encoded else path)


async def compared(client: Client, pool: asyncpg.Pool, app: App, path: str) -> tuple[Any, str]:
    """The three platforms' sessions compared at `path`: the response and its text."""
    sessions = await three_platforms(pool, app)
    response = await get(client, path.format(app=app.id), query(sessions))
    return response, await response.get_data(as_text=True)


def rows_of(page: str) -> tuple[dict[str, list[str]], dict[tuple[str, str], list[str]]]:
    """The event rows by name and the property rows by (event, path): their cells' text."""
    events, properties = {}, {}
    for row in table_rows(page):
        if "data-path" in row.attrs:
            properties[(row.attrs["data-event-name"], row.attrs["data-path"])] = row.cells
        elif "data-event-name" in row.attrs:
            events[row.attrs["data-event-name"]] = row.cells
    return events, properties


async def test_parity_page_shows_missing_event_type_difference_and_invalid_counts(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    response, page = await compared(client, pool, app, "/apps/{app}/parity")

    assert response.status_code == 200
    events, properties = rows_of(page)
    assert events == {
        "checkout": ["checkout", "1", "1", "1"],
        "signup": ["signup", "1 (1 invalid)", "missing", "1"],
    }
    assert properties[("checkout", "properties.total")] == [
        "properties.total",
        "number",
        "string",
        "number",
        "type differs",
    ]
    assert properties[("checkout", "properties.currency")][-1] == "\N{EN DASH}"
    assert properties[("signup", "properties.plan")][1:3] == ["string", "event not sent"]
    assert 'class="prop-type_differs"' in page
    assert '<td class="num cell-missing" data-session="android">missing</td>' in page
    assert '<dd id="count-only-in-some" class="bad">1</dd>' in page
    assert '<dd id="count-properties-differing" class="bad">1</dd>' in page
    assert 'data-session="ios">1</dd>' in page  # ios's invalid count
    assert "The sessions differ." in page
    assert "other_event" not in page  # another session's event


async def test_parity_page_without_sessions_is_the_picker_of_recent_sessions(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    old = datetime.now(UTC) - parity_routes.RECENT_SPAN - timedelta(hours=2)
    await store(pool, [stored(app.id, name="x", session="long-ago", received_at=old)])
    await three_platforms(pool, app)

    response = await client.get(f"/apps/{app.id}/parity")
    page = await response.get_data(as_text=True)

    assert response.status_code == 200
    listed = {
        row.attrs["data-session"]: row.cells[2:4]
        for row in table_rows(page)
        if "data-session" in row.attrs
    }
    assert listed == {
        "ios": ["2", "1"],
        "android": ["1", "0"],
        "web": ["2", "0"],
        "elsewhere": ["1", "0"],
    }
    assert 'id="parity-table"' not in page
    assert f'href="/apps/{app.id}/parity" aria-current="page"' in page  # in the app nav


async def test_parity_page_refusal_shows_on_the_picker(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    await three_platforms(pool, app)

    one = await get(client, f"/apps/{app.id}/parity", query(["ios"]))
    unknown = await get(client, f"/apps/{app.id}/parity", query(["ios", "nope"]))

    assert one.status_code == 400
    assert 'data-code="too_few_sessions"' in await one.get_data(as_text=True)
    assert unknown.status_code == 404
    text = await unknown.get_data(as_text=True)
    assert 'data-code="unknown_session"' in text and "no events stored for session nope" in text
    # Both are still ticked in the picker, the unknown one listed under its id.
    assert 'value="nope" id="pick-5" checked' in text


async def test_parity_markdown_has_the_same_differences(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    response, text = await compared(client, pool, app, "/apps/{app}/parity.md")

    assert response.status_code == 200
    assert response.content_type == "text/markdown; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith(
        f'attachment; filename="{app.id}-parity-'
    )
    assert "| ios | android | web |" in text
    assert "| signup | missing in android | 1 (1 invalid) | MISSING | 1 |" in text
    assert (
        "| checkout | properties.total | type differs | number x1 | string x1 | number x1 |" in text
    )
    assert "- Invalid events: ios: 1; android: 0; web: 0" in text
    assert f"/apps/{app.id}/parity?session=ios&session=android&session=web>" in text


async def test_parity_csv_rows_per_event_and_property(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    response, text = await compared(client, pool, app, "/apps/{app}/parity.csv")
    rows = list(csv.reader(io.StringIO(text)))

    assert response.status_code == 200
    assert rows[0] == list(PARITY_COLUMNS)
    assert ["signup", "", "android", "0", "0", "", "", "event missing"] in rows
    assert [
        "checkout",
        "properties.total",
        "android",
        "1",
        "",
        "1",
        "string",
        "type differs",
    ] in rows


async def test_parity_api_answers_the_documented_shape(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    response, _ = await compared(client, pool, app, "/api/apps/{app}/parity")
    body = await json_of(response)
    document = await json_of(await get(client, "/openapi.json", []))

    assert response.status_code == 200
    conforms(document, "ParityReport", body)
    assert body["only_in_some"] == ["signup"]
    assert body["properties_differing"] == 1
    assert [s["invalid"] for s in body["sessions"]] == [1, 0, 0]
    checkout = body["events"][0]
    states: dict[str, PropertyState] = {p["path"]: p["state"] for p in checkout["properties"]}
    assert states == {"properties.currency": "same", "properties.total": "type_differs"}


@pytest.mark.parametrize(
    ("sessions", "status", "code"),
    [
        ([], 400, "too_few_sessions"),
        (["ios"], 400, "too_few_sessions"),
        (["ios", "ios"], 400, "too_few_sessions"),
        ([f"s{i}" for i in range(7)], 400, "too_many_sessions"),
        (["ios", "x" * 101], 400, "invalid_session"),
        (["ios", "%00"], 400, "invalid_session"),
        (["ios", "ghost", "web", "phantom"], 404, "unknown_session"),
    ],
)
@pytest.mark.parametrize("path", ["/api/apps/{app}/parity", "/apps/{app}/parity.md"])
async def test_parity_refusals(
    client: Client,
    pool: asyncpg.Pool,
    app: App,
    path: str,
    sessions: list[str],
    status: int,
    code: str,
) -> None:
    await three_platforms(pool, app)

    response = await get(client, path.format(app=app.id), query(sessions))

    if path.startswith("/api/"):
        found = await assert_error(response, status, code)
        if code == "unknown_session":
            assert found["sessions"] == ["ghost", "phantom"]
            assert "ghost, phantom" in found["message"]
    else:
        assert response.status_code == status
        assert code in await response.get_data(as_text=True)


async def test_parity_unknown_app_is_404(client: Client) -> None:
    response = await get(client, "/api/apps/no-such-app/parity", query(["a", "b"]))

    await assert_error(response, 404, "unknown_app")


async def test_parity_caps_events_read_and_says_so(
    client: Client, pool: asyncpg.Pool, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parity_routes, "EVENTS_READ", 2)
    await store(pool, [event(app.id, "ios", "tap", n=i) for i in range(5)])
    await store(pool, [event(app.id, "web", "tap", n="x")])

    response = await get(client, f"/apps/{app.id}/parity", query(["ios", "web"]))
    page = await response.get_data(as_text=True)
    body = await json_of(await get(client, f"/api/apps/{app.id}/parity", query(["ios", "web"])))

    events, properties = rows_of(page)
    assert events["tap"] == ["tap", "5", "1"]  # counts are of every event
    assert properties[("tap", "properties.n")] == [
        "properties.n",
        "integer",
        "string",
        "type differs",
    ]
    assert "Properties of ios are from the newest 2 events of each" in page
    assert [s["capped"] for s in body["sessions"]] == [True, False]
    cells = body["events"][0]["properties"][0]["sessions"]
    assert [(c["session"], c["events_read"]) for c in cells] == [("ios", 2), ("web", 1)]


async def test_parity_escapes_hostile_names_everywhere(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    await store(
        pool,
        [
            stored(app.id, name=HOSTILE, session="a", payload={"properties": {HOSTILE: 1}}),
            stored(app.id, name=HOSTILE, session="b", payload={"properties": {HOSTILE: "1"}}),
        ],
    )

    page = await (await get(client, f"/apps/{app.id}/parity", query(["a", "b"]))).get_data(
        as_text=True
    )
    markdown = await (await get(client, f"/apps/{app.id}/parity.md", query(["a", "b"]))).get_data(
        as_text=True
    )

    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;" in page
    assert "<script>" not in markdown and "\\*\\*x\\*\\*" in markdown


async def test_coverage_page_links_parity_with_its_session_ticked(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    await three_platforms(pool, app)

    coverage = await client.get(f"/apps/{app.id}/coverage", query_string={"session": "ios"})
    html = await coverage.get_data(as_text=True)
    picker = await client.get(f"/apps/{app.id}/parity", query_string={"pick": "ios"})

    assert f'id="coverage-parity" href="/apps/{app.id}/parity?pick=ios"' in html
    assert picker.status_code == 200
    text = await picker.get_data(as_text=True)
    assert re.search(r'value="ios" id="pick-\d+" checked>', text)
    assert text.count(" checked") == 1


async def test_parity_reads_stay_on_indexes(pool: asyncpg.Pool, make_app: MakeApp) -> None:
    app, other = await make_app(prefix="par"), await make_app(prefix="par")
    now = datetime.now(UTC)
    await store(
        pool,
        [
            stored(
                app_id,
                name=f"e{i % 20}",
                session=f"s{i % 40}" if i % 4 == 0 else None,
                payload={"properties": {"i": i}},
                received_at=now - timedelta(seconds=8000 - i),
            )
            for i in range(8000)
            for app_id in (app.id, other.id)
        ],
    )
    async with pool.acquire() as conn:
        # Sixty days of both apps' hourly counts, as a busy history has: a week is a tenth.
        await conn.execute(
            """
            INSERT INTO event_counts_hourly
                (app_id, hour, session, event_name, status, n, first_seen, last_seen)
            SELECT a, date_bin('1 hour', now(), 'epoch') - h * interval '1 hour' - interval '4h',
                   's' || (h % 40), 'e' || (h % 20), 'valid', 1, now() - h * interval '1 hour',
                   now() - h * interval '1 hour'
            FROM unnest($1::text[]) AS a, generate_series(0, 24 * 60) AS h
            """,
            [app.id, other.id],
        )
        await conn.execute("ANALYZE log_entries")
        await conn.execute("ANALYZE event_counts_hourly")
        explain = Explaining(conn)
        await select_recent_sessions(explain, app.id, now - timedelta(days=7), 50)
        await select_stored_sessions(explain, app.id, ["s4", "s8"])
        await select_session_events(explain, app.id, "s4", 2000)
        found, capped = await select_session_events(conn, app.id, "s4", 100)

    recent, stored_sessions, session_events = explain.plans
    # The rollups key leads with (app_id, hour): the recent span is a range of it.
    assert "event_counts_hourly_key" in recent, recent
    assert "log_entries_app_session" in stored_sessions, stored_sessions
    assert "log_entries_app_session" in session_events, session_events
    assert "Seq Scan on log_entries" not in session_events, session_events
    assert (len(found), capped) == (100, True)
    assert found[0].containers == {"properties": {"i": 7964}, "traits": None}
    assert orjson.dumps(found[0].containers)  # plain JSON, as the comparison reads it
