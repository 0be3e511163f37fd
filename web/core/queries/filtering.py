"""The event filter as SQL: each clause written beside the value it binds, numbered by Params."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from web.core.filters import EventFilter

NO_FILTER = EventFilter()
# The widest window read through received_at: a week of a busy app is a few million index
# entries; wider ones are read newest id first.
WINDOW_BY_TIME = timedelta(days=7)


class Params:
    """One statement's positional parameters: add a value, get the `$n` that refers to it.

    A statement that numbers every parameter through one Params cannot pass its values in
    an order other than its placeholders'.
    """

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def filter_sql(filters: EventFilter, params: Params) -> str:
    """The filter's clauses over log_entries joined by AND (TRUE for none), values in params.

    Only the clauses the filter sets are written, so the planner sees each filter's real
    shape and picks the index that serves it: a rare event name its (app_id, event_name,
    id DESC) index. A generic plan of "$n IS NULL OR ..." clauses could use none of them.
    A filter has at most 2^7 shapes: asyncpg's statement cache holds them all.
    """
    names = filters.event_names
    # (the value a clause binds, or None when the filter does not set it; the clause)
    wanted = (
        (filters.status, "validation_status = {}"),
        (names[0] if len(names) == 1 else None, "event_name = {}"),
        (list(names) if len(names) > 1 else None, "event_name = ANY({}::text[])"),
        (_like_pattern(filters.text), _text_match(filters.text)),
        # The jsonb codec encodes the list; errors @> [{"rule": r}]: some error has rule r.
        ([{"rule": filters.rule}] if filters.rule else None, "errors @> {}::jsonb"),
        (filters.session, "session = {}"),
        (filters.since, "received_at >= {}"),
        (filters.until, "received_at < {}"),
    )
    clauses = [clause.format(params.add(value)) for value, clause in wanted if value]
    return "\n      AND ".join(clauses) or "TRUE"


def reads_a_window(filters: EventFilter) -> bool:
    """Whether the filter's rows are best found through received_at, not newest id first.

    A window of history (at most WINDOW_BY_TIME wide, its end now when open) holds a
    bounded number of rows that may lie anywhere: walking the ids back from the newest
    would read everything received since, and a filter matching nothing (a text search)
    would read all of history. Without a start, the newest ids come first.
    """
    if filters.since is None:
        return False
    end = filters.until or datetime.now(UTC)
    return end - filters.since <= WINDOW_BY_TIME


def _text_match(text: str | None) -> str:
    """ILIKE over the payload's JSON, folding case as EventFilter.matches does.

    ILIKE folds case through lower(), which in a UTF-8 database turns each payload into wide
    characters and back: half of a search's cost (issue 18). Text of ASCII alone needs
    only ASCII letters folded, which lower() does byte by byte under the C collation.
    """
    if text and text.isascii():
        return 'payload::text COLLATE "C" ILIKE {}'
    return "payload::text ILIKE {}"


def _like_pattern(text: str | None) -> str | None:
    # ILIKE's own wildcards and escape in the user's text match themselves.
    if not text:
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
