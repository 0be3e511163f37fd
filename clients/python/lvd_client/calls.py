"""The client's logic without I/O: every call a generator of requests that sync and async run.

A plan yields `Call`s and is sent each one's decoded answer; its return value is the call's
result. `LvdClient` runs plans with httpx.Client, `AsyncLvdClient` with httpx.AsyncClient,
so both clients share every request they build and every answer they read.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Self, TypeVar
from urllib.parse import quote, urlencode

import httpx

from .models import (
    SESSION_HEADER,
    Event,
    EventFilters,
    LvdError,
    WaitFilters,
    WaitResult,
    new_session_id,
)

DEFAULT_BASE_URL = "http://127.0.0.1:5001"
# The server answers one wait after at most this long; longer waits are several calls.
SERVER_MAX_WAIT = 60.0
PAGE_SIZE = 1000
# Events an assertion message lists at most; the rest are counted.
SHOWN_IN_MESSAGES = 20

T = TypeVar("T")
H = TypeVar("H", httpx.Client, httpx.AsyncClient)
# Yields the requests to make, is sent each one's decoded JSON answer, returns the result.
Plan = Generator["Call", Any, T]


@dataclass(frozen=True, slots=True)
class Call:
    """One request a plan needs made."""

    method: str
    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    read_timeout: float | None = None

    def request_args(self, timeout: float) -> dict[str, Any]:
        """Keyword arguments for httpx's `request()`, sync or async alike."""
        return {
            "method": self.method,
            "url": self.path,
            "params": {k: v for k, v in self.params.items() if v is not None},
            "json": self.json,
            "headers": dict(self.headers),
            "timeout": httpx.Timeout(timeout, read=self.read_timeout or timeout),
        }


def decoded(response: httpx.Response) -> Any:
    """The answer's JSON body; LvdError (with the server's code when it gave one) for 4xx/5xx."""
    if response.status_code >= 400:
        try:
            found = response.json()["error"]
            code, message = str(found["code"]), str(found["message"])
        except (ValueError, KeyError, TypeError):
            code, message = "http_error", response.text[:500]
        raise LvdError(response.status_code, code, message)
    return response.json()


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """A plan's result."""

    value: T


def advance(plan: Plan[T], answer: Any) -> Call | Done[T]:
    """Send the plan its last answer (None at first): the next call it needs, or its result."""
    try:
        return plan.send(answer)
    except StopIteration as done:
        return Done(done.value)


class ClientBase(Generic[H]):
    """One app's query API, optionally scoped to one test session, as plans of calls."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        app_id: str = "test-app",
        *,
        session: str | None = None,
        write_key: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        http: H | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self.session = session
        self.write_key = write_key
        self.token = token
        self.timeout = timeout
        self._owns_http = http is None
        self._http: H = self._new_http() if http is None else http

    def _new_http(self) -> H:
        raise NotImplementedError

    def for_session(self, session: str | None = None) -> Self:
        """The same app in another session (a fresh one when None); shares the connection."""
        return type(self)(
            self.base_url,
            self.app_id,
            session=session or new_session_id(),
            write_key=self.write_key,
            token=self.token,
            timeout=self.timeout,
            http=self._http,
        )

    @property
    def sdk_host(self) -> str:
        """The host to give a Segment, Rudder or PostHog SDK so its events join this session."""
        if self.session is None:
            return self.base_url
        return f"{self.base_url}/v1/session/{quote(self.session, safe='')}"

    @property
    def session_header(self) -> dict[str, str]:
        """The header that puts an app's native-API requests in this session ({} without one)."""
        return {SESSION_HEADER: self.session} if self.session else {}

    @property
    def dashboard_url(self) -> str:
        """The app's live view, filtered to this session when there is one."""
        query = f"?{urlencode({'session': self.session})}" if self.session else ""
        return f"{self.base_url}/apps/{quote(self.app_id, safe='')}{query}"

    # ---- plans: one per call of the API

    def _send_plan(self, event: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Plan[Any]:
        # Ingest takes write keys, never the query API's token.
        headers = dict(self.session_header)
        if self.write_key:
            headers["X-Write-Key"] = self.write_key
        body = event if isinstance(event, Mapping) else list(event)
        return (yield Call("POST", self._logs, json=body, headers=headers))

    def _events_plan(self, limit: int | None, filters: Mapping[str, Any]) -> Plan[list[Event]]:
        params = self._filters(filters)
        found: list[Event] = []
        cursor: str | None = None
        while limit is None or len(found) < limit:
            page_size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(found))
            page = yield self._query("", {**params, "limit": page_size, "cursor": cursor})
            found += [Event.from_json(item) for item in page["events"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        return found

    def _summary_plan(self, filters: Mapping[str, Any]) -> Plan[dict[str, Any]]:
        result: dict[str, Any] = yield self._query("/summary", self._filters(filters))
        return result

    def _reset_plan(self) -> Plan[int]:
        params = {"session": self.session} if self.session else {}
        body = yield self._query("", params, method="DELETE")
        return int(body["deleted"])

    def _wait_plan(
        self, count: int, timeout: float | None, filters: Mapping[str, Any]
    ) -> Plan[WaitResult]:
        budget = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        params = self._filters(filters, WaitFilters.__optional_keys__)
        while True:
            chunk = max(0.0, min(deadline - time.monotonic(), SERVER_MAX_WAIT))
            asked = {**params, "count": count, "timeout": f"{chunk:.3f}"}
            body = yield self._query("/wait", asked, read_timeout=chunk + 10.0)
            if body["reached"] or time.monotonic() >= deadline:
                events = [Event.from_json(item) for item in body["events"]]
                return WaitResult(bool(body["reached"]), count, events)

    def _wait_for_plan(
        self,
        count: int,
        timeout: float | None,
        filters: Mapping[str, Any],
        stated: float | None = None,
    ) -> Plan[list[Event]]:
        """The events, or AssertionError; `stated` is the wait named in it (default `timeout`)."""
        result = yield from self._wait_plan(count, timeout, filters)
        if not result.reached:
            wanted = _what(count, filters)
            within = stated if stated is not None else timeout
            within = self.timeout if within is None else within
            seen = yield from self._seen_lines_plan(result.events)
            raise AssertionError(
                f"expected {wanted} within {within:g} s{self._in_session()},"
                f" found {len(result.events)}.\n{seen}"
            )
        return result.events

    def _assert_seen_plan(
        self, event_name: str, count: int, status: str | None, timeout: float | None
    ) -> Plan[list[Event]]:
        filters = {"status": status, "event_name": event_name}
        return (yield from self._wait_for_plan(count, timeout, filters))

    def _assert_no_invalid_plan(self, filters: Mapping[str, Any]) -> Plan[None]:
        invalid = yield from self._events_plan(
            SHOWN_IN_MESSAGES + 1, {**filters, "status": "invalid"}
        )
        if not invalid:
            return
        summary = yield from self._summary_plan(filters)
        total = summary["by_status"]["invalid"]
        shown = "\n".join(f"  - {event.describe()}" for event in invalid[:SHOWN_IN_MESSAGES])
        more = total - min(len(invalid), SHOWN_IN_MESSAGES)
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise AssertionError(
            f"{total} invalid event{'s' if total != 1 else ''}{self._in_session()}:\n{shown}{tail}"
        )

    def _expect_events_plan(
        self, names: Sequence[str], ordered: bool, timeout: float | None
    ) -> Plan[list[Event]]:
        """Each name as many times as listed (in that order when `ordered`), oldest first."""
        if isinstance(names, str) or not names:
            raise TypeError("expect_events takes a non-empty list of event names")
        budget = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        wanted = Counter(names)
        for name, count in wanted.items():
            left = max(0.0, deadline - time.monotonic())
            yield from self._wait_for_plan(count, left, {"event_name": name}, stated=budget)
        found = yield from self._events_plan(None, {"event_name": list(wanted)})
        arrived = sorted(found, key=lambda event: event.received_at)
        if ordered and not _in_order(names, arrived):
            order = ", ".join(repr(event.event_name) for event in arrived[:SHOWN_IN_MESSAGES])
            raise AssertionError(
                f"expected {', '.join(map(repr, names))} in this order{self._in_session()};"
                f" they arrived as {order}"
            )
        return arrived

    def _expect_scenario_plan(
        self, name: str, session: str | None, timeout: float | None
    ) -> Plan[dict[str, Any]]:
        """The run's report once it passed; AssertionError with the report's words when it
        failed, or when no verdict came within the wait (the server long-polls)."""
        session = session or self.session
        if not session:
            raise TypeError("expect_scenario needs a session: session=, or a client with one")
        budget = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        app, scenario = quote(self.app_id, safe=""), quote(name, safe="")
        path = f"/api/apps/{app}/scenarios/{scenario}/runs/{quote(session, safe='')}"
        while True:
            chunk = max(0.0, min(deadline - time.monotonic(), SERVER_MAX_WAIT))
            params = {"wait": f"{chunk:.3f}"}
            report: dict[str, Any] = yield Call(
                "GET", path, params, None, self._auth_headers, read_timeout=chunk + 10.0
            )
            if report["verdict"] == "passed":
                return report
            if report["verdict"] == "failed":
                raise AssertionError(report["text"])
            if time.monotonic() >= deadline:
                raise AssertionError(f"{report['text']}\n- no verdict within {budget:g} s")

    # ---- plumbing

    @property
    def _auth_headers(self) -> dict[str, str]:
        """The token for the query API, when there is one (ingest takes write keys)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def _logs(self) -> str:
        return f"/api/logs/{quote(self.app_id, safe='')}"

    def _query(
        self,
        tail: str,
        params: Mapping[str, Any],
        *,
        method: str = "GET",
        read_timeout: float | None = None,
    ) -> Call:
        """A call to the query API, with the token when there is one."""
        return Call(method, self._logs + tail, params, None, self._auth_headers, read_timeout)

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

    def _in_session(self) -> str:
        return f" in session {self.session!r}" if self.session else ""

    def _seen_lines_plan(self, matching: list[Event]) -> Plan[str]:
        if matching:
            shown = "\n".join(f"  - {e.describe()}" for e in matching[:SHOWN_IN_MESSAGES])
            return f"Matching events:\n{shown}"
        summary = yield from self._summary_plan({})
        counts = summary["by_event_name"]
        if not counts:
            return f"No events at all{self._in_session()}."
        seen = Counter({row["event_name"] or "(no name)": row["total"] for row in counts})
        listed = ", ".join(f"{name} x{n}" for name, n in seen.most_common(SHOWN_IN_MESSAGES))
        return f"Events seen{self._in_session()}: {listed}"


def _names(filters: Mapping[str, Any]) -> list[str]:
    event_name: str | Iterable[str] | None = filters.get("event_name")
    return [event_name] if isinstance(event_name, str) else list(event_name or ())


def _what(count: int, filters: Mapping[str, Any]) -> str:
    names = _names(filters)
    parts = [f"{count}"]
    if status := filters.get("status"):
        parts.append(status)
    parts.append(" or ".join(repr(n) for n in names) if names else "")
    parts.append("event" if count == 1 else "events")
    if rule := filters.get("rule"):
        parts.append(f"breaking rule {rule!r}")
    return " ".join(part for part in parts if part)


def _in_order(names: Sequence[str], events: Sequence[Event]) -> bool:
    """Whether the names appear in this order among the events' (others may come between)."""
    arrived = iter(event.event_name for event in events)
    return all(name in arrived for name in names)
