"""The live view: filter form round trip, older pages by id cursor, tiles, row attributes, plans."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from markupsafe import escape
from quart.typing import TestClientProtocol as Client

from tests.web.conftest import MakeApp
from tests.web.dashboard_support import Explaining, elements, issue, store, stored
from tests.web.support import event_rows, open_stream
from web.core.filters import EventFilter
from web.core.insights import TILE_MINUTES, build_tiles, column_chart
from web.core.queries.base import App
from web.core.queries.dashboard import (
    MinuteCount,
    select_known_values,
    select_minute_counts,
    select_name_activity,
    select_top_failing_events,
    select_violation_groups,
)
from web.core.queries.events import select_log_entries, select_log_entry

HOSTILE = '<img src=x onerror=alert(1)><script>alert(1)</script><b hx-get="/x" hx-trigger="load">'


async def get_text(client: Client, path: str, **kwargs: Any) -> tuple[int, str]:
    response = await client.get(path, **kwargs)
    return response.status_code, await response.get_data(as_text=True)


def form_fields(page: str) -> dict[str, str]:
    """The filter form's fields by name, with their values."""
    form = page[page.index('<form class="filter-form') : page.index("</form>")]
    return {field.attrs["name"]: field.attrs.get("value", "") for field in elements(form, "input")}


def pager(page: str) -> tuple[bool, bool, str]:
    """(older button shown, end-of-history shown, the button's hx-get URL)."""
    [button] = [b for b in elements(page, "button") if b.attrs.get("id") == "older"]
    [status] = [p for p in elements(page, "p") if p.attrs.get("id") == "older-status"]
    return "hidden" not in button.attrs, "hidden" not in status.attrs, button.attrs["hx-get"]


# --- the filter form --------------------------------------------------------------------


async def test_live_view_filter_form_round_trips_every_filter(client: Client, app: App) -> None:
    args = {
        "status": "invalid",
        "event_name": "user_login,Order Completed",
        "q": "pro 50%",
        "rule": "type",
        "session": "qa-42",
        "since": "2025-12-10T15:00:00Z",
        "until": "2025-12-11T09:30:15+00:00",
    }

    status, page = await get_text(client, f"/apps/{app.id}", query_string=args)
    fields = form_fields(page)

    assert status == 200
    assert set(fields) == set(EventFilter.from_args(args).query_args())
    # Submitting the form as rendered reproduces the same filter: the view is a link.
    submitted = {name: value for name, value in fields.items() if value}
    assert EventFilter.from_args(submitted) == EventFilter.from_args(args)
    assert fields["since"] == "2025-12-10T15:00:00Z"
    assert fields["until"] == "2025-12-11T09:30:15Z"


async def test_live_view_empty_filter_form_has_no_values_and_no_clear_link(
    client: Client, app: App
) -> None:
    _, page = await get_text(client, f"/apps/{app.id}")

    fields = form_fields(page)
    assert "status" not in fields
    assert set(fields.values()) == {""}
    assert "Clear all" not in page


async def test_live_view_quick_ranges_keep_other_filters_with_absolute_times(
    client: Client, app: App
) -> None:
    before = datetime.now(UTC)

    _, page = await get_text(
        client, f"/apps/{app.id}", query_string={"rule": "type", "until": "2030-01-01T00:00:00Z"}
    )

    ranges = page[page.index('<span class="quick-ranges">') :]
    links = elements(ranges[: ranges.index("</div>")], "a")
    assert [a.text for a in links] == ["last 15 min", "last hour", "last 24 h"]
    query = parse_qs(urlsplit(html.unescape(links[1].attrs["href"])).query)
    assert set(query) == {"rule", "since"}
    since = datetime.fromisoformat(query["since"][0])
    assert before - timedelta(hours=1, seconds=5) < since <= before - timedelta(minutes=59)


async def test_live_view_filters_apply_to_rows_and_stream_url(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    await store(
        pool,
        [
            stored(app.id, name="a", session="s1", payload={"eventName": "a", "plan": "Pro"}),
            stored(app.id, name="a", session="s2", payload={"eventName": "a", "plan": "Pro"}),
            stored(app.id, name="b", session="s1", payload={"eventName": "b", "plan": "Pro"}),
            stored(app.id, name="a", session="s1", payload={"eventName": "a", "plan": "Free"}),
        ],
    )

    _, page = await get_text(
        client, f"/apps/{app.id}", query_string={"event_name": "a", "session": "s1", "q": "pro"}
    )

    assert [row.cells[1] for row in event_rows(page)] == ["a"]
    stream = html.unescape(re.search(r'sse-connect="([^"]*)"', page)[1])  # type: ignore[index]
    assert "event_name=a" in stream and "session=s1" in stream and "q=pro" in stream


# --- older pages --------------------------------------------------------------------------


async def test_live_view_older_rows_page_back_by_id_cursor_to_the_start(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    ids = await store(pool, [stored(app.id, name=f"e{i}") for i in range(250)])
    newest_first = sorted(ids, reverse=True)

    _, page = await get_text(client, f"/apps/{app.id}")
    first = [int(row.attrs["id"][6:]) for row in event_rows(page)]
    shown, ended, url = pager(page)
    assert first == newest_first[:100]
    assert (shown, ended) == (True, False)

    _, second_page = await get_text(client, html.unescape(url), query_string={"before": first[-1]})
    second = [int(row.attrs["id"][6:]) for row in event_rows(second_page)]
    _, third_page = await get_text(client, html.unescape(url), query_string={"before": second[-1]})
    third = [int(row.attrs["id"][6:]) for row in event_rows(third_page)]

    assert second == newest_first[100:200]
    assert third == newest_first[200:]
    # The last page tells the pager, out of band, that history ends here.
    assert 'id="older-pager" class="pager" hx-swap-oob="true"' in third_page
    assert pager(third_page)[:2] == (False, True)
    assert pager(second_page)[:2] == (True, False)


async def test_live_view_older_rows_keep_the_filters(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    ids = await store(
        pool,
        [
            stored(app.id, name="keep" if i % 3 == 0 else "drop", errors=[issue("/x", "type")])
            for i in range(30)
        ],
    )

    _, page = await get_text(
        client,
        f"/apps/{app.id}/rows",
        query_string={"before": max(ids) + 1, "event_name": "keep", "status": "invalid"},
    )

    rows = event_rows(page)
    assert [row.cells[1] for row in rows] == ["keep"] * 10
    assert pager(page)[:2] == (False, True)
    assert "for these filters" in page


@pytest.mark.parametrize("before", ["", "abc", "-1", "1.5", "1 OR 1=1"])
async def test_live_view_older_rows_bad_cursor_is_400(
    client: Client, app: App, before: str
) -> None:
    status, page = await get_text(client, f"/apps/{app.id}/rows", query_string={"before": before})

    assert status == 400
    assert "invalid_cursor" in page


async def test_live_view_older_rows_unknown_app_is_404(client: Client) -> None:
    status, _ = await get_text(client, "/apps/no-such-app/rows?before=5")

    assert status == 404


async def test_live_view_few_rows_start_with_history_ended(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    await store(pool, [stored(app.id) for _ in range(3)])

    _, page = await get_text(client, f"/apps/{app.id}")

    assert pager(page)[:2] == (False, True)


# --- rows ---------------------------------------------------------------------------------


async def test_live_view_rows_carry_times_detail_link_and_hx_disable(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    at = datetime(2025, 12, 10, 15, 45, 0, 250_000, tzinfo=UTC)
    [row_id] = await store(pool, [stored(app.id, received_at=at)])
    async with pool.acquire() as conn:
        entry = await select_log_entry(conn, app.id, row_id)
    assert entry is not None

    _, page = await get_text(client, f"/apps/{app.id}")

    [row] = event_rows(page)
    assert row.attrs["data-received-at"] == "1765381500250"
    assert row.attrs["data-created-at"] == str(int(entry.created_at.timestamp() * 1000))
    assert "hx-disable" in row.attrs
    [link] = [a for a in elements(page, "a") if "open-detail" in a.attrs.get("class", "")]
    assert link.attrs["href"] == f"/apps/{app.id}/events/{row_id}"


async def test_live_view_stream_rows_are_the_same_inert_partial(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    [row_id] = await store(
        pool, [stored(app.id, name=HOSTILE, errors=[issue(f"/{HOSTILE}", "type", HOSTILE)])]
    )

    async with open_stream(client, f"/apps/{app.id}/stream?after=0") as stream:
        message = await stream.message()
    _, page = await get_text(client, f"/apps/{app.id}")

    assert message.id == str(row_id)
    [row] = event_rows(message.data)
    [page_row] = event_rows(page)
    assert row == page_row
    assert "hx-disable" in row.attrs and "data-created-at" in row.attrs
    assert f'href="/apps/{app.id}/events/{row_id}"' in message.data
    for raw in ("<img", "<script", "<b hx-get"):
        assert raw not in message.data


# --- tiles ----------------------------------------------------------------------------------


async def test_live_view_tiles_count_the_last_hour_only(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    now = datetime.now(UTC)
    bad = [issue("/x", "type")]
    await store(
        pool,
        [
            *[stored(app.id, name="ok", received_at=now - timedelta(minutes=5)) for _ in range(5)],
            *[stored(app.id, name="checkout", errors=bad, received_at=now) for _ in range(2)],
            stored(app.id, name="signup", errors=bad, received_at=now - timedelta(minutes=30)),
            # Outside the hour: counted nowhere.
            stored(app.id, name="old", errors=bad, received_at=now - timedelta(hours=2)),
        ],
    )

    status, fragment = await get_text(client, f"/apps/{app.id}/tiles")

    assert status == 200
    assert "3 of 8 events" in fragment
    assert "37.5 %" in fragment
    assert re.search(r'class="figure">2 <small>in the last minute', fragment)
    names = [a.text for a in elements(fragment, "a")]
    assert names == ["checkout", "signup"]
    assert "old" not in names
    assert 'hx-trigger="every 10s, lvd-rows from:body throttle:5s"' in fragment
    assert "style=" not in fragment


async def test_live_view_tiles_render_hostile_names_inert(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    await store(pool, [stored(app.id, name=HOSTILE, errors=[issue("/x", "type", HOSTILE)])])

    _, page = await get_text(client, f"/apps/{app.id}")

    tiles = page[page.index('<section id="tiles"') : page.index("</section>")]
    assert "<img" not in tiles and "<script" not in tiles and "<b hx-get" not in tiles
    assert str(escape(HOSTILE)) in tiles
    assert '<ol class="top-failing" hx-disable>' in tiles


def test_insights_tiles_put_each_minute_in_its_column() -> None:
    since = datetime(2025, 12, 10, 15, 0, tzinfo=UTC)
    minutes = [
        MinuteCount(since, 4, 1),
        MinuteCount(since + timedelta(minutes=59), 10, 0),
    ]

    tiles = build_tiles(minutes, [], since=since)

    assert (tiles.total, tiles.invalid, tiles.last_minute, tiles.peak_per_minute) == (14, 1, 10, 10)
    assert tiles.share_invalid == pytest.approx(1 / 14)
    xs = sorted({rect.x for rect in tiles.per_minute.rects})
    assert xs == [0.0, round(59 * 240 / TILE_MINUTES, 2)]
    tallest = max(tiles.per_minute.rects, key=lambda rect: rect.height)
    assert tallest.y == pytest.approx(48 - tallest.height)


def test_insights_column_chart_stacks_layers_and_keeps_tiny_values_visible() -> None:
    chart = column_chart([[1000, 0], [1, 0]], ["a", "b"], width=20, height=50, label="x")

    assert [rect.css for rect in chart.rects] == ["a", "b"]
    lower, upper = chart.rects
    assert upper.height == 1.0
    assert upper.y + upper.height == pytest.approx(lower.y)
    assert column_chart([], [], width=10, height=10, label="x").rects == ()


def test_insights_share_chart_is_scaled_to_one_hundred_percent() -> None:
    since = datetime(2025, 12, 10, 15, 0, tzinfo=UTC)
    minutes = [
        MinuteCount(since, 4, 1),
        MinuteCount(since + timedelta(minutes=5), 2, 2),
    ]

    chart = build_tiles(minutes, [], since=since).share_chart

    assert [(rect.x, rect.height) for rect in chart.rects] == [(0.0, 11.75), (20.0, 47.0)]


# --- the 10 000+ events plan check ---------------------------------------------------------


@pytest.fixture
async def big_app(pool: asyncpg.Pool, make_app: MakeApp) -> App:
    app = await make_app(prefix="big")
    # Another app as busy, so that (as in production) app_id alone is selective.
    other = await make_app(prefix="other")
    now = datetime.now(UTC)
    entries = [
        stored(
            app_id,
            name=f"event_{i % 40}",
            errors=[issue(f"/p{i % 7}", "type")] if i % 5 == 0 else [],
            session=f"s{i % 50}" if i % 10 == 0 else None,
            received_at=now - timedelta(seconds=12_000 - i),
        )
        for i in range(12_000)
        for app_id in (app.id, other.id)
    ]
    await store(pool, entries)
    async with pool.acquire() as conn:
        await conn.execute("ANALYZE log_entries")
    return app


async def test_live_view_queries_use_indexes_on_12000_events(
    pool: asyncpg.Pool, big_app: App
) -> None:
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        explain = Explaining(conn)
        app_id = big_app.id
        await select_log_entries(explain, app_id, limit=101)
        await select_log_entries(explain, app_id, before_id=5_000_000, limit=101)
        await select_log_entries(
            explain, app_id, filters=EventFilter(status="invalid"), before_id=9_999_999, limit=101
        )
        await select_log_entries(
            explain, app_id, filters=EventFilter(event_names=("event_3", "event_4")), limit=101
        )
        # One name: its own index, however rare. A past window: through received_at.
        await select_log_entries(explain, app_id, filters=EventFilter(event_names=("event_7",)))
        window = EventFilter(since=now - timedelta(hours=2), until=now - timedelta(hours=1))
        await select_log_entries(explain, app_id, filters=window, limit=101)
        # A text search reads the hour it covers, not all of history.
        searched = EventFilter(text="u_1234567").bounded(now)
        await select_log_entries(explain, app_id, filters=searched, limit=101)
        await select_log_entry(explain, app_id, 1)
        await select_minute_counts(explain, app_id, now - timedelta(hours=1))
        await select_top_failing_events(explain, app_id, now - timedelta(hours=1), 5)
        await select_violation_groups(
            explain,
            app_id,
            horizon=now - timedelta(days=7),
            window=now - timedelta(days=1),
            bucket_seconds=3600,
            scan_limit=100_000,
            limit=200,
        )
        await select_name_activity(explain, app_id, EventFilter(session="s10"), 2000)
        await select_known_values(explain, app_id, 2000)

    # The list query walks an index in id order and stops at the LIMIT: the app's
    # (app_id, id DESC) index, or, when the planner expects the app's rows to be dense
    # among the newest ids (as here, two apps interleaved), the primary key backwards.
    ordered = ("log_entries_app_recent", "log_entries_pkey", "log_entries_app_status_recent")
    expected: list[tuple[str, ...]] = [
        ordered,
        ordered,
        ordered,
        ordered,
        ("log_entries_app_name_recent",),
        ("log_entries_app_received_ids",),
        ("log_entries_app_received_ids",),
        ("log_entries_pkey",),
        ("log_entries_app_received_ids",),
        ("log_entries_app_received_ids", "log_entries_app_status_recent"),
        ("failure_counts_hourly_key",),  # violations and coverage: the rollups (0010)
        ("event_counts_hourly_session",),
        ordered,  # select_known_values reads twice: names, then rules of invalid events
    ]
    expected.append(("log_entries_app_status_recent",))
    for plan, indexes in zip(explain.plans, expected, strict=True):
        assert "Seq Scan on log_entries" not in plan, plan
        assert any(index in plan for index in indexes), plan
    for plan in explain.plans[:4]:  # pages of rows: read in order, never sorted
        assert "Index Scan" in plan.splitlines()[1], plan


# --- text search: what it covers --------------------------------------------------------


async def store_aged(
    pool: asyncpg.Pool, app_id: str, payload: dict[str, Any], ages: dict[str, timedelta]
) -> None:
    """An event per name with this payload, received that long ago; the oldest stored first,
    so ids rise with time as a worker's do."""
    now = datetime.now(UTC)
    oldest_first = sorted(ages.items(), key=lambda item: item[1], reverse=True)
    entries = [
        stored(app_id, name=n, payload=payload, received_at=now - age) for n, age in oldest_first
    ]
    await store(pool, entries)


async def test_a_text_search_without_a_start_covers_the_last_hour_and_says_so(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    now = datetime.now(UTC)
    ages = {"yesterday": timedelta(hours=20), "recent": timedelta(0)}
    await store_aged(pool, app.id, {"user": "u_777"}, ages)

    status, page = await get_text(client, f"/apps/{app.id}", query_string={"q": "u_777"})

    assert status == 200

    def shown(page: str) -> list[str]:
        return [row.cells[1] for row in event_rows(page)]

    assert [name.split()[0] for name in shown(page)] == ["recent"]
    # The start the search got is in the form and in the sentence that explains it.
    start = form_fields(page)["since"]
    assert now - timedelta(hours=1, minutes=1) < EventFilter.from_args({"since": start}).since  # type: ignore[operator]
    [note] = [p for p in elements(page, "p") if "search-scope" in p.attrs.get("class", "")]
    assert f"from {start}" in note.text and "the last hour" in note.text
    wider = dict(
        (a.text, a.attrs["href"]) for a in elements(page[page.index("search-scope") :], "a")
    )
    status, page = await get_text(client, html.unescape(wider["24 hours"]))
    assert status == 200 and "search-scope" not in page
    assert [name.split()[0] for name in shown(page)] == ["recent", "yesterday"]


async def test_a_text_search_with_a_start_covers_what_it_asks(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    now = datetime.now(UTC)
    await store_aged(pool, app.id, {"u": "u_9"}, {"old": timedelta(days=2)})
    since = (now - timedelta(days=3)).isoformat()

    _, page = await get_text(client, f"/apps/{app.id}", query_string={"q": "u_9", "since": since})

    assert "old" in page and "search-scope" not in page


async def test_the_query_api_bounds_a_text_search_the_same_way_and_says_from_when(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    now = datetime.now(UTC)
    await store_aged(
        pool, app.id, {"u": "u_5"}, {"old": timedelta(hours=5), "recent": timedelta(0)}
    )

    bounded = await (await client.get(f"/api/logs/{app.id}", query_string={"q": "u_5"})).get_json()
    asked = {"q": "u_5", "since": (now - timedelta(hours=6)).isoformat()}
    explicit = await (await client.get(f"/api/logs/{app.id}", query_string=asked)).get_json()

    assert [e["event_name"] for e in bounded["events"]] == ["recent"]
    searched_since = datetime.fromisoformat(bounded["searched_since"])
    assert timedelta(minutes=59) < now - searched_since < timedelta(minutes=61)
    assert [e["event_name"] for e in explicit["events"]] == ["recent", "old"]
    assert "searched_since" not in explicit


async def test_a_bounded_text_search_pages_through_the_window_it_began_with(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    ages = {f"e{n}": timedelta(minutes=50 - n) for n in range(5)}  # all in the last hour
    await store_aged(pool, app.id, {"u": "u_42"}, ages)
    args = {"q": "u_42", "limit": "2"}

    first = await (await client.get(f"/api/logs/{app.id}", query_string=args)).get_json()
    names = [e["event_name"] for e in first["events"]]
    cursor = first["next_cursor"]
    while cursor is not None:
        page = await (
            await client.get(f"/api/logs/{app.id}", query_string={**args, "cursor": cursor})
        ).get_json()
        assert page["searched_since"] == first["searched_since"], "a page moved the window"
        names += [e["event_name"] for e in page["events"]]
        cursor = page["next_cursor"]

    assert names == ["e4", "e3", "e2", "e1", "e0"]


@pytest.mark.parametrize("cursor", ["s12", "12s99999999999999999999", "0", "12sx", "12s1s2"])
async def test_a_cursor_the_api_did_not_give_is_refused(
    client: Client, app: App, cursor: str
) -> None:
    answer = await client.get(f"/api/logs/{app.id}", query_string={"q": "x", "cursor": cursor})
    assert answer.status_code == 400
    assert (await answer.get_json())["error"]["code"] == "invalid_cursor"


def test_insights_chart_outlines_draw_untitled_rects_as_one_path_per_class() -> None:
    chart = column_chart([[2, 0, 4], [1, 0, 0]], ["a", "b"], width=30, height=10, label="x")

    a, b = chart.outlines
    assert (a.css, b.css) == ("a", "b")
    # Column 0 of layer a: x 0, width 9, from the bottom up to 2/5 of the height less a pixel.
    assert a.d.count("M") == 2 and a.d.startswith("M0 ") and "h9v" in a.d and a.d.endswith("z")
    assert b.d.count("M") == 1
    assert chart.titled == ()
    titled = column_chart([[1, 2]], ["a"], width=20, height=10, label="x", titles=["t0", "t1"])
    assert titled.outlines == () and [rect.title for rect in titled.titled] == ["t0", "t1"]
