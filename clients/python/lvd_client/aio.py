"""AsyncLvdClient: LvdClient's calls for asyncio test suites, each one awaited.

from lvd_client import AsyncLvdClient

async with AsyncLvdClient("http://127.0.0.1:5001", "shop", session="ci-42") as lvd:
    await run_the_app(analytics_host=lvd.sdk_host)
    await lvd.assert_seen("Order Completed")       # the server long-polls; no sleep loop
    await lvd.assert_no_invalid()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import httpx

from .calls import Call, ClientBase, Plan, advance, decoded
from .models import Event, EventFilters, WaitFilters, WaitResult

T = TypeVar("T")


class AsyncLvdClient(ClientBase[httpx.AsyncClient]):
    """The query API of one app, optionally scoped to one test session, for asyncio."""

    def _new_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self, plan: Plan[T]) -> T:
        step = advance(plan, None)
        while isinstance(step, Call):
            answer = await self._http.request(**step.request_args(self.timeout))
            step = advance(plan, decoded(answer))
        return step.value

    # ---- the API (each as LvdClient's, awaited)

    async def send(self, event: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Any:
        """POST one event (or a list) to the native ingest API; returns the verdict body."""
        return await self._run(self._send_plan(event))

    async def events(
        self, *, limit: int | None = None, **filters: Unpack[EventFilters]
    ) -> list[Event]:
        """Stored events matching the filters, newest first (every page, or `limit` events)."""
        return await self._run(self._events_plan(limit, filters))

    async def summary(self, **filters: Unpack[EventFilters]) -> dict[str, Any]:
        """Counts by status and by event name: {"total", "by_status", "by_event_name"}."""
        return await self._run(self._summary_plan(filters))

    async def reset(self) -> int:
        """Delete the stored events of this session (of the whole app without one)."""
        return await self._run(self._reset_plan())

    async def wait(
        self, count: int = 1, *, timeout: float | None = None, **filters: Unpack[WaitFilters]
    ) -> WaitResult:
        """Wait until `count` matching events are stored (the server long-polls)."""
        return await self._run(self._wait_plan(count, timeout, filters))

    async def wait_for(
        self, count: int = 1, *, timeout: float | None = None, **filters: Unpack[WaitFilters]
    ) -> list[Event]:
        """The `count` newest matching events once stored; AssertionError if they never are."""
        return await self._run(self._wait_for_plan(count, timeout, filters))

    async def assert_seen(
        self,
        event_name: str,
        *,
        count: int = 1,
        status: str | None = None,
        timeout: float | None = None,
    ) -> list[Event]:
        """At least `count` events of this name (and status) arrive; returns them."""
        return await self._run(self._assert_seen_plan(event_name, count, status, timeout))

    async def assert_no_invalid(self, **filters: Unpack[EventFilters]) -> None:
        """No stored event (matching the filters) is invalid; else every one is listed."""
        await self._run(self._assert_no_invalid_plan(filters))

    async def expect_events(
        self, names: Sequence[str], *, ordered: bool = False, timeout: float | None = None
    ) -> list[Event]:
        """Each name arrives as many times as listed (in this order when `ordered`); returns
        every event of those names, oldest first. One wait budget covers them all."""
        return await self._run(self._expect_events_plan(names, ordered, timeout))

    async def expect_scenario(
        self, name: str, *, session: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """The scenario `name` passes in the session (default: this client's); see
        LvdClient.expect_scenario."""
        return await self._run(self._expect_scenario_plan(name, session, timeout))
