"""Which events to show: one filter for the history (SQL), the live stream and the API alike."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from web.core.errors import Rejected
from web.core.queries.base import LogEntry

STATUSES = ("valid", "invalid")
MAX_NAMES = 50
MAX_TEXT = 200
MAX_SESSION = 100
# A text search reads every payload it covers (issue 18: 20 s over 5 M events): without a
# start it covers the last hour before its end, and the page says so, offering wider ones.
SEARCH_WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class EventFilter:
    status: str | None = None
    event_names: tuple[str, ...] = ()
    text: str | None = None  # case-insensitive substring of the payload's JSON (contains_text)
    rule: str | None = None  # some error of the event has this rule
    session: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> EventFilter:
        """Read and check filters from a query string; Rejected (400) for bad values."""
        status = args.get("status") or None
        if status == "all":
            status = None
        if status is not None and status not in STATUSES:
            raise Rejected(400, "invalid_filter", "status must be valid, invalid or all")
        names = tuple(
            name.strip()
            for raw in _all(args, "event_name")
            for name in raw.split(",")
            if name.strip()
        )
        if len(names) > MAX_NAMES:
            raise Rejected(400, "invalid_filter", f"at most {MAX_NAMES} event names")
        if any("\x00" in name for name in names):  # PostgreSQL's text cannot hold one
            raise Rejected(400, "invalid_filter", "event names cannot contain U+0000")
        text = _bounded(args.get("q"), "q", MAX_TEXT)
        rule = _bounded(args.get("rule"), "rule", 100)
        session = _bounded(args.get("session"), "session", MAX_SESSION)
        since, until = _time(args.get("since"), "since"), _time(args.get("until"), "until")
        if since and until and since >= until:
            raise Rejected(400, "invalid_filter", "since must be before until")
        return cls(status, names, text, rule, session, since, until)

    def bounded(self, now: datetime) -> EventFilter:
        """The filter as it is run: a text search without a start gets one, SEARCH_WINDOW
        before its end (`until`, or now). Any other filter is returned unchanged."""
        if not self.text or self.since is not None:
            return self
        return replace(self, since=(self.until or now) - SEARCH_WINDOW)

    def with_status(self, status: str | None) -> EventFilter:
        return replace(self, status=status)

    @property
    def is_empty(self) -> bool:
        return self == EventFilter()

    def query_args(self) -> dict[str, str]:
        """The filter as query-string arguments, for links and the stream's URL."""
        found = {
            "status": self.status,
            "event_name": ",".join(self.event_names) or None,
            "q": self.text,
            "rule": self.rule,
            "session": self.session,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {key: value for key, value in found.items() if value}

    def matches(self, entry: LogEntry) -> bool:
        """The same test as queries.filtering's SQL, for a row the live stream is about to send."""
        if self.status and entry.status != self.status:
            return False
        if self.event_names and entry.event_name not in self.event_names:
            return False
        if self.rule and not any(error.get("rule") == self.rule for error in entry.errors):
            return False
        if self.session and entry.session != self.session:
            return False
        if self.since and entry.received_at < self.since:
            return False
        if self.until and entry.received_at >= self.until:
            return False
        return not self.text or contains_text(orjson.dumps(entry.payload), self.text)


def contains_text(payload_json: bytes, text: str) -> bool:
    """Whether text is in the payload's JSON, in any case, folded as the SQL folds it
    (queries.filtering): ASCII letters alone for ASCII text, every letter otherwise."""
    if text.isascii():
        return text.encode().lower() in payload_json.lower()
    return text.lower() in payload_json.decode().lower()


def _all(args: Mapping[str, Any], key: str) -> list[str]:
    # A query string may repeat a key (werkzeug's MultiDict.getlist); a dict holds one.
    getlist = getattr(args, "getlist", None)
    if getlist is not None:
        return [str(value) for value in getlist(key)]
    value = args.get(key)
    return [str(value)] if value else []


def _bounded(value: Any, name: str, limit: int) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
    if len(text) > limit or "\x00" in text:
        raise Rejected(400, "invalid_filter", f"{name} must be at most {limit} characters")
    return text


def _time(value: Any, name: str) -> datetime | None:
    if not value:
        return None
    try:
        # A "+" in a query string arrives as a space: put it back in front of the offset.
        text = re.sub(r" (\d{2}:\d{2})$", r"+\1", str(value)).replace("Z", "+00:00")
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise Rejected(
            400, "invalid_filter", f"{name} must be an ISO 8601 time such as 2025-12-10T15:45:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
