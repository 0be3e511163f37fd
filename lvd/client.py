"""LvdClient: send, query, reset and wait for an app's events from a test suite, and assert on them.

from lvd.client import LvdClient

with LvdClient("http://127.0.0.1:5001", "shop", session="ci-42") as lvd:
    run_the_app(analytics_host=lvd.sdk_host)      # the SDK's events join session ci-42
    lvd.assert_seen("Order Completed")            # waits; no polling loop
    lvd.assert_no_invalid()
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack

import httpx

DEFAULT_BASE_URL = "http://127.0.0.1:5001"
SESSION_HEADER = "X-LVD-Session"
# The server answers one wait after at most this long; longer waits are several calls.
SERVER_MAX_WAIT = 60.0
PAGE_SIZE = 1000
# Events an assertion message lists at most; the rest are counted.
SHOWN_IN_MESSAGES = 20


class LvdError(Exception):
    """The server refused a request (bad filter, unknown app, ...): not a test failure."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Issue:
    path: str
    rule: str
    message: str
    severity: str

    def __str__(self) -> str:
        return f"{self.path or '/'} [{self.rule}] {self.message}"


@dataclass(frozen=True, slots=True)
class Event:
    """One stored event, as the query API returns it."""

    event_id: str
    event_name: str | None
    status: str
    errors: tuple[Issue, ...]
    payload: dict[str, Any]
    plan_version: int | None
    session: str | None
    received_at: datetime
    created_at: datetime

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        return cls(
            event_id=data["event_id"],
            event_name=data["event_name"],
            status=data["status"],
            errors=tuple(
                Issue(e.get("path", ""), e.get("rule", ""), e.get("message", ""), e["severity"])
                for e in data["errors"]
            ),
            payload=data["payload"],
            plan_version=data["plan_version"],
            session=data["session"],
            received_at=datetime.fromisoformat(data["received_at"]),
            created_at=datetime.fromisoformat(data["created_at"]),
        )

    def describe(self) -> str:
        """One line per event, then one per error: how assertion messages show it."""
        head = f"{self.event_name or '(no name)'} [{self.status}] id={self.event_id}"
        problems = [e for e in self.errors if e.severity == "error"] or list(self.errors)
        return "\n".join([head, *(f"      {issue}" for issue in problems)])


@dataclass(frozen=True, slots=True)
class WaitResult:
    reached: bool
    wanted: int
    events: list[Event]


class WaitFilters(TypedDict, total=False):
    """What a wait counts: events of this status, name (one or several) and broken rule."""

    status: str | None
    event_name: str | Iterable[str] | None
    rule: str | None


class EventFilters(WaitFilters, total=False):
    """The query API's filters: a wait's, and text in the payload and a time range."""

    text: str | None
    since: datetime | str | None
    until: datetime | str | None


def new_session_id(prefix: str = "test") -> str:
    """A session id no other test run will use."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


class LvdClient:
    """The query API of one app, optionally scoped to one test session."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        app_id: str = "test-app",
        *,
        session: str | None = None,
        write_key: str | None = None,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self.session = session
        self.write_key = write_key
        self.timeout = timeout
        self._owns_http = http is None
        self._http = http or httpx.Client(base_url=self.base_url, timeout=timeout)

    # ---- lifecycle

    def for_session(self, session: str | None = None) -> LvdClient:
        """The same app in another session (a fresh one when None); shares the connection."""
        return LvdClient(
            self.base_url,
            self.app_id,
            session=session or new_session_id(),
            write_key=self.write_key,
            timeout=self.timeout,
            http=self._http,
        )

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def sdk_host(self) -> str:
        """The host to give a Segment, Rudder or PostHog SDK so its events join this session."""
        if self.session is None:
            return self.base_url
        return f"{self.base_url}/v1/session/{self.session}"

    # ---- the API

    def send(self, event: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Any:
        """POST one event (or a list) to the native ingest API; returns the verdict body."""
        headers = {}
        if self.session:
            headers[SESSION_HEADER] = self.session
        if self.write_key:
            headers["X-Write-Key"] = self.write_key
        body = event if isinstance(event, Mapping) else list(event)
        return self._call("POST", self._logs, json=body, headers=headers)

    def events(self, *, limit: int | None = None, **filters: Unpack[EventFilters]) -> list[Event]:
        """Stored events matching the filters, newest first (every page, or `limit` events)."""
        params = self._filters(filters)
        found: list[Event] = []
        cursor: str | None = None
        while limit is None or len(found) < limit:
            page_size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(found))
            page = self._call(
                "GET", self._logs, params={**params, "limit": page_size, "cursor": cursor}
            )
            found += [Event.from_json(item) for item in page["events"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        return found

    def summary(self, **filters: Unpack[EventFilters]) -> dict[str, Any]:
        """Counts by status and by event name: {"total", "by_status", "by_event_name"}."""
        result: dict[str, Any] = self._call(
            "GET", f"{self._logs}/summary", params=self._filters(filters)
        )
        return result

    def reset(self) -> int:
        """Delete the stored events of this session (of the whole app without one)."""
        params = {"session": self.session} if self.session else {}
        return int(self._call("DELETE", self._logs, params=params)["deleted"])

    def wait(
        self, count: int = 1, *, timeout: float | None = None, **filters: Unpack[WaitFilters]
    ) -> WaitResult:
        """Wait until `count` matching events are stored (the server long-polls)."""
        budget = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        params = self._filters(filters, WaitFilters.__optional_keys__)
        while True:
            chunk = max(0.0, min(deadline - time.monotonic(), SERVER_MAX_WAIT))
            body = self._call(
                "GET",
                f"{self._logs}/wait",
                params={**params, "count": count, "timeout": f"{chunk:.3f}"},
                read_timeout=chunk + 10.0,
            )
            if body["reached"] or time.monotonic() >= deadline:
                events = [Event.from_json(item) for item in body["events"]]
                return WaitResult(bool(body["reached"]), count, events)

    # ---- assertions for test suites

    def wait_for(
        self, count: int = 1, *, timeout: float | None = None, **filters: Unpack[WaitFilters]
    ) -> list[Event]:
        """The `count` newest matching events once stored; AssertionError if they never are."""
        result = self.wait(count, timeout=timeout, **filters)
        if not result.reached:
            wanted = _what(count, filters)
            within = self.timeout if timeout is None else timeout
            raise AssertionError(
                f"expected {wanted} within {within:g} s{self._in_session()},"
                f" found {len(result.events)}.\n{self._seen_lines(result.events)}"
            )
        return result.events

    def assert_seen(
        self,
        event_name: str,
        *,
        count: int = 1,
        status: str | None = None,
        timeout: float | None = None,
    ) -> list[Event]:
        """At least `count` events of this name (and status) arrive; returns them."""
        return self.wait_for(count, status=status, event_name=event_name, timeout=timeout)

    def assert_no_invalid(self, **filters: Unpack[EventFilters]) -> None:
        """No stored event (matching the filters) is invalid; else every one is listed.

        It checks what is stored now: wait for the events you expect first.
        """
        invalid_only: EventFilters = {**filters, "status": "invalid"}
        invalid = self.events(limit=SHOWN_IN_MESSAGES + 1, **invalid_only)
        if not invalid:
            return
        total = self.summary(**filters)["by_status"]["invalid"]
        shown = "\n".join(f"  - {event.describe()}" for event in invalid[:SHOWN_IN_MESSAGES])
        more = total - min(len(invalid), SHOWN_IN_MESSAGES)
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise AssertionError(
            f"{total} invalid event{'s' if total != 1 else ''}{self._in_session()}:\n{shown}{tail}"
        )

    # ---- plumbing

    @property
    def _logs(self) -> str:
        return f"/api/logs/{self.app_id}"

    def _filters(
        self, filters: Mapping[str, Any], known: frozenset[str] = EventFilters.__optional_keys__
    ) -> dict[str, str]:
        # Keywords are not checked at run time: a misspelt filter must not match everything.
        if unknown := filters.keys() - known:
            raise TypeError(f"unknown filter {', '.join(sorted(unknown))}; known: {sorted(known)}")
        since, until = filters.get("since"), filters.get("until")
        found = {
            "status": filters.get("status"),
            "event_name": ",".join(_names(filters)) or None,
            "rule": filters.get("rule"),
            "q": filters.get("text"),
            "session": self.session,
            "since": since.isoformat() if isinstance(since, datetime) else since,
            "until": until.isoformat() if isinstance(until, datetime) else until,
        }
        return {key: value for key, value in found.items() if value}

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        read_timeout: float | None = None,
    ) -> Any:
        timeout = httpx.Timeout(self.timeout, read=read_timeout or self.timeout)
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        response = self._http.request(
            method, path, params=clean, json=json, headers=headers, timeout=timeout
        )
        if response.status_code >= 400:
            try:
                found = response.json()["error"]
                code, message = str(found["code"]), str(found["message"])
            except (ValueError, KeyError, TypeError):
                code, message = "http_error", response.text[:500]
            raise LvdError(response.status_code, code, message)
        return response.json()

    def _in_session(self) -> str:
        return f" in session {self.session!r}" if self.session else ""

    def _seen_lines(self, matching: list[Event]) -> str:
        if matching:
            shown = "\n".join(f"  - {e.describe()}" for e in matching[:SHOWN_IN_MESSAGES])
            return f"Matching events:\n{shown}"
        counts = self.summary()["by_event_name"]
        if not counts:
            return f"No events at all{self._in_session()}."
        seen = Counter({row["event_name"] or "(no name)": row["total"] for row in counts})
        listed = ", ".join(f"{name} x{n}" for name, n in seen.most_common(SHOWN_IN_MESSAGES))
        return f"Events seen{self._in_session()}: {listed}"


def _names(filters: Mapping[str, Any]) -> list[str]:
    event_name = filters.get("event_name")
    return [event_name] if isinstance(event_name, str) else list(event_name or ())


def _what(count: int, filters: WaitFilters) -> str:
    names = _names(filters)
    parts = [f"{count}"]
    if status := filters.get("status"):
        parts.append(status)
    parts.append(" or ".join(repr(n) for n in names) if names else "")
    parts.append("event" if count == 1 else "events")
    if rule := filters.get("rule"):
        parts.append(f"breaking rule {rule!r}")
    return " ".join(part for part in parts if part)
