"""EventFilter: query-string parsing, and SQL and Python (live stream) agreeing on every row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.web.dashboard_support import stored
from web.core.errors import Rejected
from web.core.filters import SEARCH_WINDOW, EventFilter
from web.core.queries.base import App, LogEntry
from web.core.queries.events import insert_log_entries, select_log_entries

BASE = datetime(2025, 12, 10, 15, 0, tzinfo=UTC)
ROWS = [
    # event_id, name, status, rules, session, minutes after BASE, payload extra
    ("e1", "user_login", "valid", [], "s1", 0, {"plan": "Pro"}),
    ("e2", "user_login", "invalid", ["format"], "s1", 5, {"plan": "pro 50%_off"}),
    ("e3", "Order Completed", "invalid", ["type", "required"], "s2", 10, {"total": "12.99"}),
    ("e4", "Order Completed", "valid", [], None, 15, {"total": 12.99}),
    ("e5", None, "invalid", ["required"], "s2", 20, {"note": "<script>"}),
    ("e6", "user_login", "valid", [], "s3", 25, {"shop": "CAFÉ CRÈME"}),
]


@pytest.fixture
async def filter_rows(pool: asyncpg.Pool, test_app_row: App) -> list[LogEntry]:
    entries = [
        stored(
            "test-app",
            event_id=event_id,
            name=name,
            payload={"eventName": name, "event_id": event_id, **extra},
            status=status,
            errors=[
                {"path": "/x", "rule": rule, "message": rule, "severity": "error"} for rule in rules
            ],
            session=session,
            received_at=BASE + timedelta(minutes=minutes),
        )
        for event_id, name, status, rules, session, minutes, extra in ROWS
    ]
    async with pool.acquire() as conn:
        await insert_log_entries(conn, entries)
        return await select_log_entries(conn, "test-app")


FILTERS = {
    "none": {},
    "status": {"status": "invalid"},
    "all is none": {"status": "all"},
    "one name": {"event_name": "user_login"},
    "two names": {"event_name": "user_login,Order Completed"},
    "text any case": {"q": "PRO"},
    "text with % and _ literal": {"q": "50%_off"},
    "text html": {"q": "<script>"},
    "rule": {"rule": "required"},
    "session": {"session": "s2"},
    "since": {"since": "2025-12-10T15:05:00Z"},
    "until": {"until": "2025-12-10T15:10:00+00:00"},
    "window and status": {
        "since": "2025-12-10T15:01:00Z",
        "until": "2025-12-10T15:30:00Z",
        "status": "invalid",
    },
    "nothing matches": {"event_name": "nope"},
    "hostile text": {"q": "' OR 1=1 --"},
    # Non-ASCII text: every letter folded (ILIKE in the database's collation).
    "text non-ascii any case": {"q": "é crè"},
    # ASCII text (folded byte by byte) beside non-ASCII letters.
    "text ascii beside non-ascii": {"q": "caf"},
}
EXPECTED = {
    "none": {"e1", "e2", "e3", "e4", "e5", "e6"},
    "status": {"e2", "e3", "e5"},
    "all is none": {"e1", "e2", "e3", "e4", "e5", "e6"},
    "one name": {"e1", "e2", "e6"},
    "two names": {"e1", "e2", "e3", "e4", "e6"},
    "text any case": {"e1", "e2"},
    "text with % and _ literal": {"e2"},
    "text html": {"e5"},
    "rule": {"e3", "e5"},
    "session": {"e3", "e5"},
    "since": {"e2", "e3", "e4", "e5", "e6"},
    "until": {"e1", "e2"},
    "window and status": {"e2", "e3", "e5"},
    "nothing matches": set(),
    "hostile text": set(),
    "text non-ascii any case": {"e6"},
    "text ascii beside non-ascii": {"e6"},
}


@pytest.mark.parametrize("name", FILTERS)
async def test_event_filter_sql_and_live_matching_agree(
    pool: asyncpg.Pool, filter_rows: list[LogEntry], name: str
) -> None:
    filters = EventFilter.from_args(FILTERS[name])
    async with pool.acquire() as conn:
        from_sql = {r.event_id for r in await select_log_entries(conn, "test-app", filters=filters)}
    live = {r.event_id for r in filter_rows if filters.matches(r)}
    assert from_sql == EXPECTED[name]
    assert live == EXPECTED[name]


@pytest.mark.parametrize(
    "args",
    [
        {"status": "pending"},
        {"since": "yesterday"},
        {"until": "2025-13-01"},
        {"since": "2025-12-10T16:00:00Z", "until": "2025-12-10T15:00:00Z"},
        {"q": "x" * 201},
        {"session": "s" * 101},
        {"event_name": ",".join(f"n{i}" for i in range(51))},
        {"q": "a\x00b"},
        {"event_name": "order\x00completed"},
    ],
)
def test_event_filter_from_args_bad_values_are_400(args: dict[str, str]) -> None:
    with pytest.raises(Rejected) as caught:
        EventFilter.from_args(args)
    assert (caught.value.status, caught.value.code) == (400, "invalid_filter")


def test_event_filter_query_args_round_trip() -> None:
    args = {
        "status": "invalid",
        "event_name": "a,b",
        "q": "pro",
        "rule": "type",
        "session": "s1",
        "since": "2025-12-10T15:00:00+00:00",
        "until": "2025-12-10T16:00:00+00:00",
    }
    filters = EventFilter.from_args(args)
    assert filters.query_args() == args
    assert EventFilter.from_args(filters.query_args()) == filters
    assert EventFilter.from_args({}).is_empty


def test_event_filter_plus_in_offset_survives_query_string_decoding() -> None:
    # "+01:00" arrives as " 01:00" once a query string is decoded.
    filters = EventFilter.from_args({"since": "2025-12-10T16:00:00 01:00"})
    assert filters.since == datetime(2025, 12, 10, 15, 0, tzinfo=UTC)


def test_bounded_gives_a_text_search_without_a_start_the_last_hour_before_its_end() -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    until = now - timedelta(days=3)
    assert EventFilter(text="x").bounded(now).since == now - SEARCH_WINDOW
    assert EventFilter(text="x", until=until).bounded(now).since == until - SEARCH_WINDOW
    explicit = EventFilter(text="x", since=now - timedelta(days=9))
    assert explicit.bounded(now) is explicit
    unsearched = EventFilter(status="invalid")
    assert unsearched.bounded(now) is unsearched
