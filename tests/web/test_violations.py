"""Violations: failures grouped by fingerprint, window, new marker, sparkline, click-through."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from markupsafe import escape
from quart.typing import TestClientProtocol as Client

from tests.web.dashboard_support import elements, issue, store, stored
from tests.web.support import event_rows, table_rows
from web.core.insights import WINDOWS, fold_violations
from web.core.queries.base import App
from web.core.queries.dashboard import ViolationGroup

HOSTILE = '<img src=x onerror=alert(1)><script>alert(1)</script><i hx-get="/x" hx-trigger="load">'


async def violations(client: Client, app_id: str, window: str | None = None) -> str:
    query = {"window": window} if window else {}
    response = await client.get(f"/apps/{app_id}/violations", query_string=query)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_data(as_text=True)


def groups(page: str) -> list[list[str]]:
    """Each group's cells: event, path, rule + message, count, trend, first seen, last seen."""
    return [row.cells for row in table_rows(page) if "violation" in row.attrs.get("class", "")]


async def test_violations_group_by_name_path_and_rule_with_counts_and_times(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    now = datetime.now(UTC)
    first, last = now - timedelta(hours=5), now - timedelta(minutes=2)
    price = issue("/price", "type", "price must be a number, got a string")
    await store(
        pool,
        [
            stored(app.id, name="checkout", errors=[price], received_at=first),
            stored(app.id, name="checkout", errors=[price], received_at=now - timedelta(hours=3)),
            stored(
                app.id,
                name="checkout",
                errors=[price, issue("/currency", "enum")],
                received_at=last,
            ),
            # Same path and rule, another event: another group.
            stored(app.id, name="refund", errors=[price], received_at=last),
            # Warnings are not failures; valid events have none.
            stored(app.id, name="checkout", errors=[issue("/x", "note", severity="warning")]),
            stored(app.id, name="checkout"),
        ],
    )

    page = await violations(client, app.id)

    rows = groups(page)
    assert [row[:4] for row in rows] == [
        ["checkout", "/price", "type price must be a number, got a string", "3"],
        # First seen two minutes ago: new.
        ["checkout new", "/currency", "enum /currency breaks enum", "1"],
        ["refund new", "/price", "type price must be a number, got a string", "1"],
    ]
    assert rows[0][5] == first.strftime("%Y-%m-%d %H:%M")
    assert rows[0][6] == last.strftime("%Y-%m-%d %H:%M")
    assert "5 failures in 3 groups over the last 24 hours" in page


async def test_violations_window_limits_counts_but_not_first_seen(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    now = datetime.now(UTC)
    bad = [issue("/a", "type")]
    await store(
        pool,
        [
            stored(app.id, name="old_and_recent", errors=bad, received_at=now - timedelta(hours=3)),
            stored(app.id, name="old_and_recent", errors=bad, received_at=now),
            stored(app.id, name="only_old", errors=bad, received_at=now - timedelta(hours=3)),
            stored(app.id, name="ancient", errors=bad, received_at=now - timedelta(days=8)),
        ],
    )

    hour = groups(await violations(client, app.id, "1h"))
    week = groups(await violations(client, app.id, "7d"))

    assert [(row[0], row[3]) for row in hour] == [("old_and_recent", "1")]
    # First seen looks back a week, whatever the window: not new.
    assert "new" not in hour[0][0]
    assert hour[0][5] == (now - timedelta(hours=3)).strftime("%Y-%m-%d %H:%M")
    assert sorted((row[0], row[3]) for row in week) == [("old_and_recent", "2"), ("only_old", "1")]


async def test_violations_mark_fingerprints_first_seen_within_the_hour_as_new(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    now = datetime.now(UTC)
    await store(
        pool,
        [
            stored(app.id, name="fresh", errors=[issue("/a", "type")], received_at=now),
            stored(app.id, name="known", errors=[issue("/a", "type")], received_at=now),
            stored(
                app.id,
                name="known",
                errors=[issue("/a", "type")],
                received_at=now - timedelta(hours=2),
            ),
        ],
    )

    page = await violations(client, app.id)

    new_rows = [row for row in table_rows(page) if "is-new" in row.attrs.get("class", "")]
    assert [row.cells[0] for row in new_rows] == ["fresh new"]
    assert "1 new" in page


async def test_violations_show_events_link_opens_the_filtered_live_view(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    ids = await store(
        pool,
        [
            stored(app.id, name="checkout", errors=[issue("/price", "type")]),
            stored(app.id, name="checkout", errors=[issue("/currency", "enum")]),
            stored(app.id, name="refund", errors=[issue("/price", "type")]),
        ],
    )

    page = await violations(client, app.id)
    links = [a.attrs["href"] for a in elements(page, "a") if a.attrs.get("class") == "show-events"]
    target = next(
        link
        for link in links
        if "checkout" in link and "type" in parse_qs(urlsplit(link).query)["rule"]
    )
    response = await client.get(html.unescape(target))

    assert parse_qs(urlsplit(target).query) == {
        "status": ["invalid"],
        "event_name": ["checkout"],
        "rule": ["type"],
    }
    live = await response.get_data(as_text=True)
    assert [row.attrs["id"] for row in event_rows(live)] == [f"event-{ids[0]}"]


async def test_violations_without_name_link_by_rule_only(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    await store(pool, [stored(app.id, name=None, errors=[issue("/eventName", "required")])])

    page = await violations(client, app.id)

    [link] = [a.attrs["href"] for a in elements(page, "a") if a.attrs.get("class") == "show-events"]
    assert parse_qs(urlsplit(html.unescape(link)).query) == {
        "status": ["invalid"],
        "rule": ["required"],
    }
    assert "(no name)" in groups(page)[0][0]


async def test_violations_show_the_latest_message_with_and_without_the_hourly_counts(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    now = datetime.now(UTC)
    await store(
        pool,
        [
            stored(app.id, name="pay", errors=[issue("/a", "type", "older")], received_at=now),
            stored(
                app.id,
                name="pay",
                errors=[issue("/a", "type", "latest")],
                received_at=now + timedelta(milliseconds=5),
            ),
        ],
    )
    assert groups(await violations(client, app.id))[0][2] == "type latest"
    # As retention leaves an app: its hours counted from the next one on, the counts of the
    # hours before dropped; these failures are then read from the events alone.
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO rollup_horizons (app_id, counted_from) VALUES ($1, $2)",
            app.id,
            now + timedelta(hours=1),
        )
        await conn.execute("DELETE FROM failure_counts_hourly WHERE app_id = $1", app.id)

    assert [row[:4] for row in groups(await violations(client, app.id))] == [
        ["pay new", "/a", "type latest", "2"]
    ]


@pytest.mark.parametrize("window", ["bogus", "2h", "<script>"])
async def test_violations_unknown_window_is_400(client: Client, app: App, window: str) -> None:
    response = await client.get(f"/apps/{app.id}/violations", query_string={"window": window})

    assert response.status_code == 400
    assert "<script>" not in await response.get_data(as_text=True)


async def test_violations_empty_and_unknown_app(client: Client, app: App) -> None:
    assert "No failures over the last 24 hours." in await violations(client, app.id)
    assert (await client.get("/apps/nope/violations")).status_code == 404


async def test_violations_hostile_fingerprints_render_inert(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    await store(
        pool, [stored(app.id, name=HOSTILE, errors=[issue(f"/{HOSTILE}", HOSTILE, HOSTILE)])]
    )

    page = await violations(client, app.id)

    for raw in ("<img src=x", "<script>alert", "<i hx-get", 'hx-get="/x"'):
        assert raw not in page
    assert str(escape(HOSTILE)) in page
    assert '<table class="violations" hx-disable>' in page
    assert "style=" not in page


def test_fold_violations_counts_per_bucket_and_draws_them() -> None:
    now = datetime(2025, 12, 10, 16, 0, tzinfo=UTC)
    window = WINDOWS["1h"]
    group = ViolationGroup(
        event_name="checkout",
        path="/price",
        rule="type",
        message="m",
        count=6,
        first_seen=now - timedelta(minutes=59),
        last_seen=now,
        buckets={"0": 1, "11": 3, "12": 2},  # 12: the very last instant, folded into 11
    )

    [violation] = fold_violations([group], window, now=now)

    assert violation.counts == (1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5)
    assert violation.is_new
    assert [rect.x for rect in violation.sparkline.rects] == [0.0, 110.0]
    assert violation.sparkline.label == "6 failures over the last hour, peak 5 per 5 minutes"
