"""LvdClient: send, query, reset and wait for an app's events from a test suite, and assert on them.

from lvd_client import LvdClient

with LvdClient("http://127.0.0.1:5001", "shop", session="ci-42") as lvd:
    run_the_app(analytics_host=lvd.sdk_host)      # the SDK's events join session ci-42
    lvd.assert_seen("Order Completed")            # waits; no polling loop
    lvd.assert_no_invalid()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import httpx

from .calls import Call, ClientBase, Plan, advance, decoded
from .models import Event, EventFilters, WaitFilters, WaitResult

T = TypeVar("T")


class LvdClient(ClientBase[httpx.Client]):
    """The query API of one app, optionally scoped to one test session."""

    def _new_http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=self.timeout)

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

    def _run(self, plan: Plan[T]) -> T:
        step = advance(plan, None)
        while isinstance(step, Call):
            step = advance(plan, decoded(self._http.request(**step.request_args(self.timeout))))
        return step.value

    # ---- the API

    def send(self, event: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Any:
        """POST one event (or a list) to the native ingest API; returns the verdict body."""
        return self._run(self._send_plan(event))

    def events(self, *, limit: int | None = None, **filters: Unpack[EventFilters]) -> list[Event]:
        """Stored events matching the filters, newest first (every page, or `limit` events)."""
        return self._run(self._events_plan(limit, filters))

    def summary(self, **filters: Unpack[EventFilters]) -> dict[str, Any]:
        """Counts by status and by event name: {"total", "by_status", "by_event_name"}."""
        return self._run(self._summary_plan(filters))

    def reset(self) -> int:
        """Delete the stored events of this session (of the whole app without one)."""
        return self._run(self._reset_plan())

    def wait(
        self, count: int = 1, *, timeout: float | None = None, **filters: Unpack[WaitFilters]
    ) -> WaitResult:
        """Wait until `count` matching events are stored (the server long-polls)."""
        return self._run(self._wait_plan(count, timeout, filters))

    # ---- assertions for test suites

    def wait_for(
        self, count: int = 1, *, timeout: float | None = None, **filters: Unpack[WaitFilters]
    ) -> list[Event]:
        """The `count` newest matching events once stored; AssertionError if they never are."""
        return self._run(self._wait_for_plan(count, timeout, filters))

    def assert_seen(
        self,
        event_name: str,
        *,
        count: int = 1,
        status: str | None = None,
        timeout: float | None = None,
    ) -> list[Event]:
        """At least `count` events of this name (and status) arrive; returns them."""
        return self._run(self._assert_seen_plan(event_name, count, status, timeout))

    def assert_no_invalid(self, **filters: Unpack[EventFilters]) -> None:
        """No stored event (matching the filters) is invalid; else every one is listed.

        It checks what is stored now: wait for the events you expect first.
        """
        self._run(self._assert_no_invalid_plan(filters))

    def expect_events(
        self, names: Sequence[str], *, ordered: bool = False, timeout: float | None = None
    ) -> list[Event]:
        """Each name arrives as many times as listed (in this order when `ordered`); returns
        every event of those names, oldest first. One wait budget covers them all."""
        return self._run(self._expect_events_plan(names, ordered, timeout))

    def expect_scenario(
        self, name: str, *, session: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """The scenario `name` passes in the session (default: this client's) within `timeout`
        seconds; returns the run's report. AssertionError with the report's words when it
        fails or has no verdict in time. The server long-polls: no polling loop here."""
        return self._run(self._expect_scenario_plan(name, session, timeout))
