"""The event filter as SQL: each clause written beside the value it binds, numbered by Params."""

from __future__ import annotations

from typing import Any

from web.core.filters import EventFilter

NO_FILTER = EventFilter()


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
    """The filter's clauses over log_entries, joined by AND, their values added to params.

    Every clause is written whatever the filter holds (an unset value is NULL or empty and
    the clause is true), so the statement's text, and the prepared statement asyncpg caches
    for it, is the same for every filter.
    """
    status = params.add(filters.status)
    names = params.add(list(filters.event_names))
    text = params.add(_like_pattern(filters.text))
    # The jsonb codec encodes the list; errors @> [{"rule": r}] is "some error has rule r".
    rule = params.add([{"rule": filters.rule}] if filters.rule else None)
    session = params.add(filters.session)
    since = params.add(filters.since)
    until = params.add(filters.until)
    return f"""({status}::text IS NULL OR validation_status = {status})
      AND (cardinality({names}::text[]) = 0 OR event_name = ANY({names}::text[]))
      AND ({text}::text IS NULL OR payload::text ILIKE {text})
      AND ({rule}::jsonb IS NULL OR errors @> {rule}::jsonb)
      AND ({session}::text IS NULL OR session = {session})
      AND ({since}::timestamptz IS NULL OR received_at >= {since})
      AND ({until}::timestamptz IS NULL OR received_at < {until})"""


def _like_pattern(text: str | None) -> str | None:
    # ILIKE's own wildcards and escape in the user's text match themselves.
    if not text:
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
